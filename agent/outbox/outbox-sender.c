/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "keyhold-contract.h"

#include "base/backoff.h"
#include "base/url-policy.h"
#include "net/http.h"
#include "outbox/outbox-key.h"
#include "outbox/outbox-request.h"
#include "outbox/outbox-sender.h"

/* Sends in flight at once across all queues: enough to drain many queues
 * in parallel, few enough that a caller with ten thousand queues cannot
 * make the agent open ten thousand connections. */
#define MAX_IN_FLIGHT 32
/* ARCHITECTURE.md, "The life of an outbox item": exponential with full
 * jitter, capped. */
static const KeyholdBackoff retry_backoff = { 1, 5 * 60 };
/* Overdue items are expired, and old finished ones deleted, this often and
 * this many per main-loop turn. */
#define SWEEP_INTERVAL_S (60 * 60)
#define SWEEP_BATCH 500

typedef enum
{
  /* No head loaded and nothing scheduled. */
  PHASE_IDLE,
  /* In the ready list, waiting for a free send slot. */
  PHASE_READY,
  PHASE_SENDING,
  /* A retry timer runs. */
  PHASE_BACKOFF,
  /* The head waits for a sign-in; only its expiry timer runs. */
  PHASE_WAITING,
} QueuePhase;

typedef struct _Attempt Attempt;

struct _OutboxQueue
{
  KeyholdOutbox *outbox;
  char *account;
  char *name;
  QueuePhase phase;
  /* The oldest unfinished item, as last read; NULL while IDLE. */
  KeyholdOutboxItem *head;
  Attempt *attempt;
  guint timer_id;
  /* Writes for this queue not committed yet: until they are, the head is
   * not read again, or it could be an item that is about to change. */
  guint pending_writes;
  /* Failed tries of the head in a row, for the backoff; also those that
   * never reached the server, which the head's attempts do not count. */
  guint failures;
  /* The last retry waited for the network, not for the server. */
  gboolean network_backoff;
  /* Set by events that give a waiting head, or one in network backoff, a
   * new chance; used by the next kick. */
  gboolean resume_waiting;
  gboolean retry_now;
};

/* One try at sending a queue's head: token, then request. Owned by the
 * callback chain; the queue borrows it and detaches it (queue = NULL) to
 * abandon it, after which callbacks only free it. */
struct _Attempt
{
  OutboxQueue *queue;
  KeyholdAccount *account;
  GCancellable *cancellable;
  KeyholdSecret *token;
  /* The one forced refresh after a 401 has been used. */
  gboolean refreshed;
  char *url;
  GVariant *request;
};

struct _AccountWatch
{
  gulong handler_id;
  GWeakRef account;
};

static void queue_kick (OutboxQueue *queue);

/* ---- queues ------------------------------------------------------------------------- */

static char *
queue_key (const char *account, const char *name)
{
  return g_strconcat (account, "\n", name, NULL);
}

static void
queue_set_head (OutboxQueue *queue, KeyholdOutboxItem *head)
{
  KeyholdOutbox *self = queue->outbox;

  if (queue->head != NULL)
    g_hash_table_remove (self->heads, queue->head->id);
  g_clear_pointer (&queue->head, keyhold_outbox_item_free);
  queue->head = head;
  if (head != NULL)
    g_hash_table_insert (self->heads, g_strdup (head->id), queue);
}

static void attempt_detach (Attempt *attempt);

void
keyhold_outbox_queue_free (OutboxQueue *queue)
{
  if (queue->attempt != NULL)
    attempt_detach (queue->attempt);
  g_queue_remove (&queue->outbox->ready, queue);
  g_clear_handle_id (&queue->timer_id, g_source_remove);
  queue_set_head (queue, NULL);
  g_free (queue->account);
  g_free (queue->name);
  g_free (queue);
}

static OutboxQueue *
ensure_queue (KeyholdOutbox *self, const char *account, const char *name)
{
  g_autofree char *key = queue_key (account, name);
  OutboxQueue *queue = g_hash_table_lookup (self->queues, key);

  if (queue != NULL)
    return queue;
  queue = g_new0 (OutboxQueue, 1);
  queue->outbox = self;
  queue->account = g_strdup (account);
  queue->name = g_strdup (name);
  g_hash_table_insert (self->queues, g_steal_pointer (&key), queue);
  return queue;
}

static void
queue_remove (OutboxQueue *queue)
{
  g_autofree char *key = queue_key (queue->account, queue->name);

  g_hash_table_remove (queue->outbox->queues, key);
}

static gboolean
on_queue_timer (gpointer user_data)
{
  OutboxQueue *queue = user_data;

  queue->timer_id = 0;
  queue_kick (queue);
  return G_SOURCE_REMOVE;
}

/* GLib timers run on the monotonic clock; kick () compares with the wall
 * clock again, and recheck () re-arms after a suspend. */
static void
queue_arm_timer (OutboxQueue *queue, gint64 at_ms)
{
  gint64 delay_ms = CLAMP (at_ms - keyhold_outbox_now_ms (), 0, (gint64) G_MAXUINT);

  g_clear_handle_id (&queue->timer_id, g_source_remove);
  queue->timer_id = g_timeout_add ((guint) delay_ms, on_queue_timer, queue);
}

static void start_attempt (OutboxQueue *queue);

static void
pump_ready (KeyholdOutbox *self)
{
  OutboxQueue *queue;

  while (self->in_flight < MAX_IN_FLIGHT && (queue = g_queue_pop_head (&self->ready)) != NULL)
    start_attempt (queue);
}

static void
queue_storage_failed (OutboxQueue *queue, const GError *error)
{
  keyhold_outbox_set_error_field (queue->outbox, &queue->outbox->write_error, error);
  queue->phase = PHASE_BACKOFF;
  queue_arm_timer (queue, keyhold_outbox_now_ms () + STORAGE_RETRY_S * 1000);
}

static void queue_write (OutboxQueue *queue, const KeyholdOutboxChange *change, gboolean then_wait);

static void
queue_expire_head (OutboxQueue *queue)
{
  KeyholdOutboxItem *head = queue->head;
  KeyholdOutboxChange change = {
    KEYHOLD_OUTBOX_STATE_EXPIRED,
    head->attempts,
    0,
    head->status,
    NULL,
    "The item could not be sent within its max_age",
  };

  queue_write (queue, &change, FALSE);
}

/* Reads the head again and decides what the queue does next. Only an
 * idle, waiting or backing-off queue with no write in flight moves. */
static void
queue_kick (OutboxQueue *queue)
{
  g_autoptr (GError) error = NULL;
  KeyholdOutboxItem *head;
  gint64 now = keyhold_outbox_now_ms ();
  gboolean resume_waiting, retry_now;

  if (queue->pending_writes > 0 || queue->phase == PHASE_SENDING || queue->phase == PHASE_READY)
    return;
  g_clear_handle_id (&queue->timer_id, g_source_remove);
  resume_waiting = queue->resume_waiting;
  retry_now = queue->retry_now && queue->network_backoff;
  queue->resume_waiting = queue->retry_now = FALSE;

  head = keyhold_outbox_store_get_head (queue->outbox->store, queue->account, queue->name, &error);
  if (error != NULL)
    {
      queue_storage_failed (queue, error);
      return;
    }
  queue_set_head (queue, head);
  queue->phase = PHASE_IDLE;
  if (head == NULL)
    {
      queue_remove (queue);
      return;
    }

  if (head->expires_ms <= now)
    queue_expire_head (queue);
  else if (head->next_attempt_ms > now && !retry_now)
    {
      queue->phase = PHASE_BACKOFF;
      queue_arm_timer (queue, MIN (head->next_attempt_ms, head->expires_ms));
    }
  else if (head->state == KEYHOLD_OUTBOX_STATE_WAITING && !resume_waiting)
    {
      queue->phase = PHASE_WAITING;
      queue_arm_timer (queue, head->expires_ms);
    }
  else
    {
      queue->phase = PHASE_READY;
      g_queue_push_tail (&queue->outbox->ready, queue);
      pump_ready (queue->outbox);
    }
}

void
keyhold_outbox_item_inserted (KeyholdOutbox *self,
                              const char *account,
                              const char *queue_name,
                              const char *id)
{
  OutboxQueue *queue = ensure_queue (self, account, queue_name);

  keyhold_outbox_emit_item_changed (self, id, KEYHOLD_OUTBOX_STATE_PENDING, 0);
  if (queue->phase == PHASE_IDLE)
    queue_kick (queue);
}

/* ---- writes of a queue's head ------------------------------------------------------ */

typedef struct
{
  OutboxHandle *handle;
  OutboxQueue *queue;
  char *id;
  KeyholdOutboxState state;
  int status;
  gboolean then_wait;
} QueueWrite;

static void
queue_write_free (QueueWrite *write)
{
  keyhold_outbox_handle_unref (write->handle);
  g_free (write->id);
  g_free (write);
}

static void
on_queue_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  QueueWrite *write = user_data;
  KeyholdOutbox *self = write->handle->outbox;
  OutboxQueue *queue = write->queue;
  g_autoptr (GError) error = NULL;
  gboolean written = keyhold_outbox_store_change_finish (result, &error);

  if (self == NULL)
    {
      queue_write_free (write);
      return;
    }
  queue->pending_writes--;
  if (written)
    {
      keyhold_outbox_set_error_field (self, &self->write_error, NULL);
      keyhold_outbox_emit_item_changed (self, write->id, write->state, write->status);
    }
  /* INVALID_ARGUMENT: the item finished meanwhile (its owner cancelled
   * it); the queue simply moves on. */
  else if (!g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT))
    keyhold_outbox_set_error_field (self, &self->write_error, error);

  if (queue->pending_writes == 0)
    {
      /* A sign-in that happened while the attempt ran was not seen by it. */
      if (written && write->then_wait && !queue->resume_waiting)
        {
          queue->phase = PHASE_WAITING;
          queue_arm_timer (queue, queue->head->expires_ms);
        }
      else if (error != NULL && error->code == KEYHOLD_ERROR_STORAGE)
        queue_storage_failed (queue, error);
      else
        queue_kick (queue);
    }
  queue_write_free (write);
}

/* Writes @change for the head; once it is on disk the queue either waits
 * for a sign-in (@then_wait) or moves on. */
static void
queue_write (OutboxQueue *queue, const KeyholdOutboxChange *change, gboolean then_wait)
{
  KeyholdOutbox *self = queue->outbox;
  QueueWrite *write = g_new0 (QueueWrite, 1);

  write->handle = keyhold_outbox_handle_ref (self->handle);
  write->queue = queue;
  write->id = g_strdup (queue->head->id);
  write->state = change->state;
  write->status = change->status;
  write->then_wait = then_wait;
  queue->head->state = change->state;
  queue->phase = PHASE_IDLE;
  queue->pending_writes++;
  keyhold_outbox_store_change_async (self->store, queue->head->id, change, NULL, on_queue_written,
                                     write);
}

/* ---- attempts ------------------------------------------------------------------------- */

static void
attempt_free (Attempt *attempt)
{
  g_clear_object (&attempt->account);
  g_clear_object (&attempt->cancellable);
  g_clear_pointer (&attempt->token, keyhold_secret_unref);
  g_free (attempt->url);
  g_clear_pointer (&attempt->request, g_variant_unref);
  g_free (attempt);
}

/* Ends the queue's part in @attempt; a callback still pending frees it. */
static void
attempt_detach (Attempt *attempt)
{
  OutboxQueue *queue = attempt->queue;

  queue->attempt = NULL;
  queue->outbox->in_flight--;
  attempt->queue = NULL;
  g_cancellable_cancel (attempt->cancellable);
}

/* The attempt is over; @queue goes on with whatever the outcome wrote. */
static OutboxQueue *
attempt_end (Attempt *attempt)
{
  OutboxQueue *queue = attempt->queue;

  queue->attempt = NULL;
  queue->outbox->in_flight--;
  attempt_free (attempt);
  pump_ready (queue->outbox);
  return queue;
}

static GBytes *
seal_response (KeyholdOutbox *self,
               const KeyholdOutboxItem *item,
               const KeyholdHttpResponse *response)
{
  gsize length = 0;
  const char *body = "";
  gboolean truncated;
  GVariant *value;

  if (response->body != NULL)
    {
      body = keyhold_secret_get (response->body);
      length = keyhold_secret_get_length (response->body);
    }
  truncated = length > KEYHOLD_OUTBOX_MAX_KEPT_RESPONSE_BYTES;
  length = MIN (length, KEYHOLD_OUTBOX_MAX_KEPT_RESPONSE_BYTES);
  value = g_variant_new (
      "(@a(ss)@ayb)",
      keyhold_outbox_headers_variant (response->header_names, response->header_values),
      g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, body, length, 1), truncated);
  return keyhold_outbox_seal_variant (self, item, KEYHOLD_OUTBOX_PART_RESPONSE, value);
}

static void
attempt_finish (Attempt *attempt,
                KeyholdOutboxState state,
                const KeyholdHttpResponse *response,
                const char *reason)
{
  OutboxQueue *queue = attempt->queue;
  KeyholdOutboxItem *head = queue->head;
  g_autoptr (GBytes) sealed = NULL;
  KeyholdOutboxChange change = { state, head->attempts, 0, head->status, NULL, reason };

  queue->failures = 0;
  if (response != NULL)
    {
      change.status = (int) response->status;
      head->status = change.status;
      change.sealed_response = sealed = seal_response (queue->outbox, head, response);
    }
  queue_write (attempt_end (attempt), &change, FALSE);
}

static void
attempt_wait (Attempt *attempt, const KeyholdHttpResponse *response, const char *reason)
{
  OutboxQueue *queue = attempt->queue;
  KeyholdOutboxItem *head = queue->head;
  g_autoptr (GBytes) sealed = NULL;
  KeyholdOutboxChange change = {
    KEYHOLD_OUTBOX_STATE_WAITING, head->attempts, 0, head->status, NULL, reason,
  };

  if (response != NULL)
    {
      change.status = (int) response->status;
      head->status = change.status;
      change.sealed_response = sealed = seal_response (queue->outbox, head, response);
    }
  queue->network_backoff = FALSE;
  queue->failures = 0;
  queue_write (attempt_end (attempt), &change, TRUE);
}

static void
attempt_retry (Attempt *attempt,
               const KeyholdHttpResponse *response,
               gboolean network,
               const char *reason)
{
  OutboxQueue *queue = attempt->queue;
  KeyholdOutboxItem *head = queue->head;
  g_autoptr (GBytes) sealed = NULL;
  gint64 retry_after_s = response != NULL ? keyhold_http_response_get_retry_after (response) : -1;
  guint delay_s = keyhold_backoff_delay_s (&retry_backoff, MAX (++queue->failures, head->attempts),
                                           retry_after_s, g_random_double ());
  KeyholdOutboxChange change = {
    KEYHOLD_OUTBOX_STATE_PENDING,
    head->attempts,
    keyhold_outbox_now_ms () + (gint64) delay_s * 1000,
    head->status,
    NULL,
    reason,
  };

  if (response != NULL)
    {
      change.status = (int) response->status;
      head->status = change.status;
      change.sealed_response = sealed = seal_response (queue->outbox, head, response);
    }
  queue->network_backoff = network;
  queue_write (attempt_end (attempt), &change, FALSE);
}

static gboolean
is_retryable_status (guint status)
{
  return status == 408 || status == 425 || status == 429 || (status >= 500 && status <= 599);
}

/* The reason an item keeps for a failed transfer. It is stored in the
 * clear, so it names the URL's origin only: paths and queries can be
 * personal data, and the HTTP module's messages carry the path. */
static char *
transfer_failure_reason (const char *url, const GError *error)
{
  g_autofree char *origin = keyhold_url_policy_origin (url, NULL);
  const char *what = "the transfer failed";

  if (error->domain == KEYHOLD_HTTP_ERROR)
    switch ((KeyholdHttpError) error->code)
      {
      case KEYHOLD_HTTP_ERROR_CONNECT:
        what = "could not connect";
        break;
      case KEYHOLD_HTTP_ERROR_ANSWER_LOST:
        what = "the connection broke before a complete answer arrived";
        break;
      case KEYHOLD_HTTP_ERROR_TIMED_OUT:
        what = "no complete answer in time";
        break;
      case KEYHOLD_HTTP_ERROR_TOO_LARGE:
        what = "the response was too large";
        break;
      case KEYHOLD_HTTP_ERROR_TLS:
        what = "no secure connection";
        break;
      case KEYHOLD_HTTP_ERROR_INVALID:
        what = "the request cannot be sent";
        break;
      case KEYHOLD_HTTP_ERROR_FAILED:
        break;
      }
  return g_strdup_printf ("The request to %s could not be completed: %s",
                          origin != NULL ? origin : "the API", what);
}

static void get_token (Attempt *attempt);

static void
on_response (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Attempt *attempt = user_data;
  g_autoptr (KeyholdHttpResponse) response = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *reason = NULL;

  response = keyhold_http_send_finish (NULL, result, &error);
  if (attempt->queue == NULL)
    {
      attempt_free (attempt);
      return;
    }
  attempt->queue->head->attempts++;

  if (response == NULL)
    {
      reason = transfer_failure_reason (attempt->url, error);
      if (g_error_matches (error, KEYHOLD_HTTP_ERROR, KEYHOLD_HTTP_ERROR_TOO_LARGE)
          || g_error_matches (error, KEYHOLD_HTTP_ERROR, KEYHOLD_HTTP_ERROR_INVALID))
        attempt_finish (attempt, KEYHOLD_OUTBOX_STATE_FAILED, NULL, reason);
      else
        attempt_retry (attempt, NULL, TRUE, reason);
      return;
    }

  if (response->status >= 200 && response->status <= 299)
    attempt_finish (attempt, KEYHOLD_OUTBOX_STATE_DONE, response, "");
  else if (response->status == 401 && !attempt->refreshed)
    {
      /* The token may have been revoked or expired early on the server's
       * side: one forced refresh, one retry. */
      attempt->refreshed = TRUE;
      keyhold_account_invalidate_token (attempt->account, NULL, "", attempt->token);
      get_token (attempt);
    }
  else if (response->status == 401)
    attempt_wait (attempt, response,
                  "The API refused a freshly refreshed token; waiting for a new sign-in");
  else if (is_retryable_status (response->status))
    {
      reason = g_strdup_printf ("The server answered %u; will retry", response->status);
      attempt_retry (attempt, response, FALSE, reason);
    }
  else
    {
      reason = g_strdup_printf ("The server answered %u", response->status);
      attempt_finish (attempt, KEYHOLD_OUTBOX_STATE_FAILED, response, reason);
    }
}

static KeyholdHttpRequest *
build_http_request (Attempt *attempt)
{
  KeyholdOutboxItem *head = attempt->queue->head;
  g_autoptr (KeyholdHttpRequest) request = keyhold_http_request_new (head->method, attempt->url);
  g_autoptr (GVariant) headers = g_variant_get_child_value (attempt->request, 0);
  g_autoptr (GVariant) maybe_body = g_variant_get_child_value (attempt->request, 1);
  g_autoptr (GVariant) body = g_variant_get_maybe (maybe_body);
  g_autofree char *idempotency_key = g_strdup_printf ("\"%s\"", head->idempotency_key);
  const char *content_type = NULL;
  GVariantIter iter;
  const char *name, *value;

  g_variant_iter_init (&iter, headers);
  while (g_variant_iter_next (&iter, "(&s&s)", &name, &value))
    {
      if (body != NULL && g_ascii_strcasecmp (name, "Content-Type") == 0)
        content_type = value;
      else
        keyhold_http_request_add_header (request, name, value);
    }
  keyhold_http_request_add_header (request, "Idempotency-Key", idempotency_key);
  if (body != NULL)
    {
      g_autoptr (GBytes) bytes = g_variant_get_data_as_bytes (body);

      keyhold_http_request_set_body (request, bytes, content_type);
    }
  keyhold_http_request_set_bearer (request, attempt->token);
  return g_steal_pointer (&request);
}

static void
send_request (Attempt *attempt)
{
  KeyholdOutbox *self = attempt->queue->outbox;

  keyhold_http_send_async (self->context->http, build_http_request (attempt), attempt->cancellable,
                           on_response, attempt);
}

static gboolean
token_error_means_sign_in (const GError *error)
{
  return g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NEEDS_LOGIN)
         || g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NOT_SIGNED_IN);
}

static void
on_token (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Attempt *attempt = user_data;
  g_autoptr (GError) error = NULL;
  g_autofree char *reason = NULL;
  g_autofree char *approved_url = NULL;
  const KeyholdAccountConfig *config;

  g_clear_pointer (&attempt->token, keyhold_secret_unref);
  attempt->token
      = keyhold_account_get_token_finish (KEYHOLD_ACCOUNT (source), result, NULL, &error);
  if (attempt->queue == NULL)
    {
      attempt_free (attempt);
      return;
    }

  if (attempt->token == NULL)
    {
      reason = g_strdup_printf ("No access token: %s", error->message);
      if (token_error_means_sign_in (error))
        attempt_wait (attempt, NULL, reason);
      else if (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NO_SUCH_ACCOUNT))
        attempt_finish (attempt, KEYHOLD_OUTBOX_STATE_FAILED, NULL, "The account was removed");
      else
        attempt_retry (attempt, NULL, TRUE, reason);
      return;
    }
  /* Never under another user than the one who queued it. The subject is
   * checked after the token came, since a refresh may have ended in a new
   * sign-in. */
  if (g_strcmp0 (keyhold_account_get_subject (attempt->account), attempt->queue->head->subject)
      != 0)
    {
      attempt_wait (attempt, NULL,
                    "The account is signed in as another user than the one who queued this; "
                    "waiting for that user to sign in again");
      return;
    }
  /* The account's origins may have changed since the item was queued. */
  config = keyhold_account_get_config (attempt->account);
  approved_url
      = keyhold_url_policy_approve (attempt->url, (const char *const *) config->api_origins, NULL);
  if (approved_url == NULL)
    {
      attempt_finish (attempt, KEYHOLD_OUTBOX_STATE_FAILED, NULL,
                      "The URL's origin is no longer one of the account's API origins");
      return;
    }
  /* What goes out is exactly what was approved. */
  g_free (attempt->url);
  attempt->url = g_steal_pointer (&approved_url);
  send_request (attempt);
}

static void
get_token (Attempt *attempt)
{
  /* 0: the default for the token's lifetime, which a provider with
   * short-lived tokens can meet, where a fixed 60 s would stall the queue. */
  keyhold_account_get_token_async (attempt->account, NULL, "", 0, attempt->cancellable, on_token,
                                   attempt);
}

static void watch_account (KeyholdOutbox *self, KeyholdAccount *account);

static gboolean
attempt_open_request (Attempt *attempt, GError **error)
{
  KeyholdOutbox *self = attempt->queue->outbox;
  KeyholdOutboxItem *head = attempt->queue->head;
  g_autoptr (GBytes) sealed_request = NULL;

  attempt->url = keyhold_outbox_open_url (self, head, error);
  if (attempt->url == NULL)
    return FALSE;
  /* Read now, not kept with the head: a waiting queue holds no request. */
  sealed_request = keyhold_outbox_store_get_request (self->store, head->id, error);
  if (sealed_request == NULL)
    return FALSE;
  attempt->request = keyhold_outbox_open_variant (
      self, head, KEYHOLD_OUTBOX_PART_REQUEST, KEYHOLD_OUTBOX_REQUEST_TYPE, sealed_request, error);
  return attempt->request != NULL;
}

static void
start_attempt (OutboxQueue *queue)
{
  KeyholdOutbox *self = queue->outbox;
  KeyholdOutboxItem *head = queue->head;
  Attempt *attempt = g_new0 (Attempt, 1);
  KeyholdAccount *account;
  g_autoptr (GError) error = NULL;

  attempt->queue = queue;
  attempt->cancellable = g_cancellable_new ();
  queue->attempt = attempt;
  queue->phase = PHASE_SENDING;
  self->in_flight++;
  keyhold_outbox_emit_item_changed (self, head->id, KEYHOLD_OUTBOX_STATE_SENDING, head->status);

  account = keyhold_accounts_lookup (self->accounts, head->account, NULL);
  if (account == NULL)
    {
      attempt_finish (attempt, KEYHOLD_OUTBOX_STATE_FAILED, NULL, "The account was removed");
      return;
    }
  if (!attempt_open_request (attempt, &error))
    {
      attempt_finish (attempt, KEYHOLD_OUTBOX_STATE_FAILED, NULL, error->message);
      return;
    }
  attempt->account = g_object_ref (account);
  watch_account (self, account);
  get_token (attempt);
}

/* ---- accounts ------------------------------------------------------------------------- */

void
keyhold_outbox_account_watch_free (AccountWatch *watch)
{
  g_autoptr (KeyholdAccount) account = g_weak_ref_get (&watch->account);

  if (account != NULL)
    g_signal_handler_disconnect (account, watch->handler_id);
  g_weak_ref_clear (&watch->account);
  g_free (watch);
}

/* A kick may remove its queue, so the table is not walked while kicking. */
static GPtrArray *
queues_of (KeyholdOutbox *self, const char *account)
{
  GPtrArray *queues = g_ptr_array_new ();
  GHashTableIter iter;
  OutboxQueue *queue;

  g_hash_table_iter_init (&iter, self->queues);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &queue))
    if (account == NULL || g_str_equal (queue->account, account))
      g_ptr_array_add (queues, queue);
  return queues;
}

/* The account is signed in (again): waiting heads, and those that waited
 * for the network or a token, get a new chance now. A head in flight sees
 * the flags when its attempt ends. */
static void
resume_queues (KeyholdOutbox *self, const char *account)
{
  g_autoptr (GPtrArray) queues = queues_of (self, account);

  for (guint i = 0; i < queues->len; i++)
    {
      OutboxQueue *queue = queues->pdata[i];

      queue->resume_waiting = TRUE;
      queue->retry_now = TRUE;
      if (queue->phase == PHASE_WAITING || queue->phase == PHASE_BACKOFF)
        queue_kick (queue);
    }
}

static void
on_account_state (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  KeyholdOutbox *self = user_data;
  KeyholdAccount *account = KEYHOLD_ACCOUNT (object);

  if (keyhold_account_get_state (account) == KEYHOLD_ACCOUNT_SIGNED_IN)
    resume_queues (self, keyhold_account_get_config (account)->name);
}

static void
watch_account (KeyholdOutbox *self, KeyholdAccount *account)
{
  const char *name = keyhold_account_get_config (account)->name;
  AccountWatch *watch = g_hash_table_lookup (self->watches, name);
  g_autoptr (KeyholdAccount) watched = watch != NULL ? g_weak_ref_get (&watch->account) : NULL;

  if (watched == account)
    return;
  watch = g_new0 (AccountWatch, 1);
  g_weak_ref_init (&watch->account, account);
  watch->handler_id
      = g_signal_connect (account, "notify::state", G_CALLBACK (on_account_state), self);
  g_hash_table_replace (self->watches, g_strdup (name), watch);
}

void
keyhold_outbox_account_added (KeyholdOutbox *self, KeyholdAccount *account)
{
  g_return_if_fail (KEYHOLD_IS_OUTBOX (self));

  /* Its name may have queues left from an account of that name that was
   * removed, waiting for a sign-in: one of the new account resumes them,
   * and the subject check of each attempt keeps them from going out under
   * another user. */
  watch_account (self, account);
}

/* ---- replay and sweeps --------------------------------------------------------------- */

static void sweep (KeyholdOutbox *self);

static gboolean
on_sweep (gpointer user_data)
{
  KeyholdOutbox *self = user_data;

  self->sweep_id = 0;
  sweep (self);
  return G_SOURCE_REMOVE;
}

void
keyhold_outbox_start_replay (KeyholdOutbox *self)
{
  g_autoptr (GPtrArray) names = NULL;
  g_autoptr (GError) error = NULL;

  if (self->replaying)
    return;
  names = keyhold_outbox_store_list_queues (self->store, &error);
  if (names == NULL)
    {
      keyhold_outbox_set_error_field (self, &self->write_error, error);
      return;
    }
  self->replaying = TRUE;
  for (guint i = 0; i + 1 < names->len; i += 2)
    {
      OutboxQueue *queue = ensure_queue (self, names->pdata[i], names->pdata[i + 1]);

      /* At start every head gets a chance, a waiting one included: the
       * account may have been signed in again while the agent was down. */
      queue->resume_waiting = TRUE;
      queue_kick (queue);
    }
  self->sweep_id = g_idle_add (on_sweep, self);
}

typedef struct
{
  OutboxHandle *handle;
  char *account;
  char *queue;
  char *id;
  int status;
  KeyholdOutboxState state;
  GTask *task;
} FinishData;

static void
finish_data_free (FinishData *data)
{
  keyhold_outbox_handle_unref (data->handle);
  g_free (data->account);
  g_free (data->queue);
  g_free (data->id);
  g_clear_object (&data->task);
  g_free (data);
}

static void
on_finished_unsent (GObject *source, GAsyncResult *result, gpointer user_data)
{
  FinishData *data = user_data;
  KeyholdOutbox *self = data->handle->outbox;
  GError *error = NULL;
  gboolean written = keyhold_outbox_store_change_finish (result, &error);
  OutboxQueue *queue = NULL;

  if (self != NULL)
    {
      g_autofree char *key = queue_key (data->account, data->queue);

      queue = g_hash_table_lookup (self->queues, key);
      if (written)
        keyhold_outbox_emit_item_changed (self, data->id, data->state, data->status);
    }
  if (queue != NULL && --queue->pending_writes == 0)
    queue_kick (queue);

  if (data->task == NULL)
    g_clear_error (&error);
  else if (written)
    g_task_return_boolean (data->task, TRUE);
  else
    g_task_return_error (data->task, error);
  finish_data_free (data);
}

/* Ends @item, which is not being sent, as @state. Its queue, if it has one
 * loaded, holds still until the write is on disk, so that it cannot start
 * sending the item meanwhile. */
void
keyhold_outbox_finish_unsent (KeyholdOutbox *self,
                              const KeyholdOutboxItem *item,
                              KeyholdOutboxState state,
                              const char *reason,
                              GTask *task)
{
  g_autofree char *key = queue_key (item->account, item->queue);
  OutboxQueue *queue = g_hash_table_lookup (self->queues, key);
  KeyholdOutboxChange change = { state, item->attempts, 0, item->status, NULL, reason };
  FinishData *data = g_new0 (FinishData, 1);

  if (queue != NULL)
    {
      if (queue->head != NULL && g_str_equal (queue->head->id, item->id))
        {
          if (queue->attempt != NULL)
            {
              attempt_detach (queue->attempt);
              pump_ready (self);
            }
          g_queue_remove (&self->ready, queue);
          g_clear_handle_id (&queue->timer_id, g_source_remove);
          queue->phase = PHASE_IDLE;
          change.attempts = queue->head->attempts;
        }
      queue->pending_writes++;
    }
  data->handle = keyhold_outbox_handle_ref (self->handle);
  data->account = g_strdup (item->account);
  data->queue = g_strdup (item->queue);
  data->id = g_strdup (item->id);
  data->status = item->status;
  data->state = state;
  data->task = task;
  keyhold_outbox_store_change_async (self->store, item->id, &change, NULL, on_finished_unsent,
                                     data);
}

gboolean
keyhold_outbox_is_being_sent (KeyholdOutbox *self, const char *id)
{
  OutboxQueue *queue = g_hash_table_lookup (self->heads, id);

  return queue != NULL && queue->phase == PHASE_SENDING;
}

/* Items behind a blocked head expire on time too, not only once they get
 * to the front. */
static gboolean
expire_overdue (KeyholdOutbox *self, GError **error)
{
  g_autoptr (GPtrArray) ids = NULL;

  ids = keyhold_outbox_store_list_overdue (self->store, keyhold_outbox_now_ms (), SWEEP_BATCH,
                                           error);
  if (ids == NULL)
    return FALSE;
  for (guint i = 0; i < ids->len; i++)
    {
      g_autoptr (KeyholdOutboxItem) item = NULL;

      if (keyhold_outbox_is_being_sent (self, ids->pdata[i]))
        continue;
      item = keyhold_outbox_store_get (self->store, ids->pdata[i], error);
      if (item == NULL)
        return FALSE;
      keyhold_outbox_finish_unsent (self, item, KEYHOLD_OUTBOX_STATE_EXPIRED,
                                    "The item could not be sent within its max_age", NULL);
    }
  return TRUE;
}

static void
sweep (KeyholdOutbox *self)
{
  g_autoptr (GError) error = NULL;
  gint64 retention_end_ms = keyhold_outbox_now_ms () - (gint64) KEYHOLD_OUTBOX_RETENTION_S * 1000;
  guint deleted = 0;

  if (!expire_overdue (self, &error)
      || !keyhold_outbox_store_delete_finished (self->store, retention_end_ms, SWEEP_BATCH,
                                                &deleted, &error))
    {
      keyhold_outbox_set_error_field (self, &self->write_error, error);
      self->sweep_id = g_timeout_add_seconds (STORAGE_RETRY_S, on_sweep, self);
      return;
    }
  /* A full batch means there may be more: go on at the next turn, so the
   * main loop is never blocked for long. */
  if (deleted == SWEEP_BATCH)
    self->sweep_id = g_idle_add (on_sweep, self);
  else
    self->sweep_id = g_timeout_add_seconds (SWEEP_INTERVAL_S, on_sweep, self);
}

void
keyhold_outbox_recheck (KeyholdOutbox *self)
{
  g_autoptr (GPtrArray) queues = NULL;

  g_return_if_fail (KEYHOLD_IS_OUTBOX (self));

  if (self->key == NULL && self->key_error != NULL)
    keyhold_outbox_load_key (self);
  queues = queues_of (self, NULL);
  for (guint i = 0; i < queues->len; i++)
    {
      OutboxQueue *queue = queues->pdata[i];

      if (queue->phase != PHASE_BACKOFF)
        continue;
      queue->retry_now = TRUE;
      queue_kick (queue);
    }
}
