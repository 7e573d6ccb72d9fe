/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "keyhold-contract.h"

#include "base/backoff.h"
#include "base/clock.h"
#include "outbox/outbox-crypto.h"
#include "outbox/outbox.h"
#include "accounts/token-request.h"

/* Sends in flight at once across all queues: enough to drain many queues
 * in parallel, few enough that a caller with ten thousand queues cannot
 * make the agent open ten thousand connections. */
#define MAX_IN_FLIGHT 32
/* DESIGN.md: exponential with full jitter, capped. */
static const KeyholdBackoff retry_backoff = { 1, 5 * 60 };
/* After a failed database write or key lookup, try again this much later. */
#define STORAGE_RETRY_S 60
/* Overdue items are expired, and old finished ones deleted, this often and
 * this many per main-loop turn. */
#define SWEEP_INTERVAL_S (60 * 60)
#define SWEEP_BATCH 500
#define DEFAULT_QUEUE "default"
#define REQUEST_TYPE "(a(ss)may)"
#define RESPONSE_TYPE "(a(ss)ayb)"

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

typedef struct
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
} OutboxQueue;

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

/* A call that needs the key, continued by @func once the key is loaded,
 * or failed with the reason it cannot be. */
typedef void (*KeyReadyFunc) (KeyholdOutbox *self, GTask *task);

typedef struct
{
  GTask *task;
  KeyReadyFunc func;
} KeyWaiter;

/* Lets callbacks that outlive the outbox (group commits finish when the
 * store closes) see that it is gone. */
typedef struct
{
  KeyholdOutbox *outbox;
} OutboxHandle;

typedef struct
{
  gulong handler_id;
  GWeakRef account;
} AccountWatch;

struct _KeyholdOutbox
{
  GObject parent_instance;

  KeyholdContext *context;
  KeyholdAccounts *accounts;
  KeyholdOutboxStore *store;
  OutboxHandle *handle;
  GCancellable *cancellable;

  KeyholdSecret *key;
  gboolean key_loading;
  guint key_retry_id;
  /* KeyWaiter: calls that wait for the key */
  GQueue key_waiters;
  gboolean replaying;

  /* "account\nqueue" -> OutboxQueue */
  GHashTable *queues;
  /* head item id -> OutboxQueue, to find the queue of an item */
  GHashTable *heads;
  GQueue ready;
  guint in_flight;
  /* account name -> AccountWatch */
  GHashTable *watches;
  guint sweep_id;

  char *open_error;
  char *key_error;
  char *write_error;
  char *storage_error;
};

enum
{
  PROP_0,
  PROP_STORAGE_ERROR,
  N_PROPS
};

enum
{
  SIGNAL_ITEM_CHANGED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (KeyholdOutbox, keyhold_outbox, G_TYPE_OBJECT)

static void queue_kick (OutboxQueue *queue);
static void start_replay (KeyholdOutbox *self);
static void when_key_ready (KeyholdOutbox *self, GTask *task, KeyReadyFunc func);
static void load_key (KeyholdOutbox *self);

static gint64
now_ms (void)
{
  return keyhold_clock_now_us () / 1000;
}

/* ---- requests and item infos ---------------------------------------------- */

KeyholdOutboxRequest *
keyhold_outbox_request_new (const char *method, const char *url)
{
  KeyholdOutboxRequest *request = g_new0 (KeyholdOutboxRequest, 1);

  request->method = g_strdup (method);
  request->url = g_strdup (url);
  request->header_names = g_ptr_array_new_with_free_func (g_free);
  request->header_values = g_ptr_array_new_with_free_func (g_free);
  return request;
}

void
keyhold_outbox_request_add_header (KeyholdOutboxRequest *request,
                                   const char *name,
                                   const char *value)
{
  g_ptr_array_add (request->header_names, g_strdup (name));
  g_ptr_array_add (request->header_values, g_strdup (value));
}

void
keyhold_outbox_request_free (KeyholdOutboxRequest *request)
{
  if (request == NULL)
    return;
  g_free (request->method);
  g_free (request->url);
  g_ptr_array_unref (request->header_names);
  g_ptr_array_unref (request->header_values);
  g_clear_pointer (&request->body, g_bytes_unref);
  g_free (request);
}

void
keyhold_outbox_item_info_free (KeyholdOutboxItemInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->id);
  g_free (info->account);
  g_free (info->queue);
  g_free (info->method);
  g_free (info->url);
  g_free (info->idempotency_key);
  g_free (info->reason);
  g_clear_pointer (&info->response_header_names, g_ptr_array_unref);
  g_clear_pointer (&info->response_header_values, g_ptr_array_unref);
  g_clear_pointer (&info->response_body, g_bytes_unref);
  g_free (info);
}

/* ---- storage errors ---------------------------------------------------------- */

static void
update_storage_error (KeyholdOutbox *self)
{
  const char *message = "";

  if (self->context->storage_error != NULL)
    message = self->context->storage_error->message;
  else if (self->open_error != NULL)
    message = self->open_error;
  else if (self->key_error != NULL)
    message = self->key_error;
  else if (self->write_error != NULL)
    message = self->write_error;

  if (g_strcmp0 (self->storage_error, message) == 0)
    return;
  g_free (self->storage_error);
  self->storage_error = g_strdup (message);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STORAGE_ERROR]);
}

static void
set_error_field (KeyholdOutbox *self, char **field, const GError *error)
{
  g_free (*field);
  *field = error != NULL ? g_strdup (error->message) : NULL;
  update_storage_error (self);
}

/* Whether the database can be used at all; the key may still be missing. */
static gboolean
check_store (KeyholdOutbox *self, GError **error)
{
  if (self->store != NULL)
    return TRUE;
  g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE, "The outbox cannot be used: %s",
               self->storage_error);
  return FALSE;
}

static void
emit_item_changed (KeyholdOutbox *self, const char *id, KeyholdOutboxState state, int status)
{
  g_signal_emit (self, signals[SIGNAL_ITEM_CHANGED], 0, id,
                 keyhold_outbox_state_to_string (state), status);
}

/* ---- sealing ---------------------------------------------------------------------- */

static GVariant *
headers_variant (GPtrArray *names, GPtrArray *values)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(ss)"));
  for (guint i = 0; names != NULL && i < names->len; i++)
    g_variant_builder_add (&builder, "(ss)", names->pdata[i], values->pdata[i]);
  return g_variant_builder_end (&builder);
}

static GVariant *
body_variant (GBytes *body)
{
  return g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, body, TRUE);
}

static GBytes *
seal_string (KeyholdOutbox *self, const char *id, KeyholdOutboxPart part, const char *text)
{
  g_autoptr (GBytes) plaintext = g_bytes_new_static (text, strlen (text));

  return keyhold_outbox_crypto_seal (self->key, id, part, plaintext);
}

/* Takes @value if it is floating. */
static GBytes *
seal_variant (KeyholdOutbox *self, const char *id, KeyholdOutboxPart part, GVariant *value)
{
  g_autoptr (GVariant) owned = g_variant_ref_sink (value);
  g_autoptr (GBytes) plaintext = g_variant_get_data_as_bytes (owned);

  return keyhold_outbox_crypto_seal (self->key, id, part, plaintext);
}

static char *
open_string (KeyholdOutbox *self, const char *id, GBytes *sealed, GError **error)
{
  g_autoptr (GBytes) plaintext = keyhold_outbox_crypto_open (self->key, id,
                                                             KEYHOLD_OUTBOX_PART_URL, sealed,
                                                             error);
  gsize length;
  const char *data;

  if (plaintext == NULL)
    return NULL;
  data = g_bytes_get_data (plaintext, &length);
  return g_strndup (data != NULL ? data : "", length);
}

/* Sealed data is authenticated, so it is what this agent wrote; still, it
 * is read as untrusted (GVariant checks it) in case a bug wrote nonsense. */
static GVariant *
open_variant (KeyholdOutbox *self,
              const char *id,
              KeyholdOutboxPart part,
              const char *type,
              GBytes *sealed,
              GError **error)
{
  g_autoptr (GBytes) plaintext = keyhold_outbox_crypto_open (self->key, id, part, sealed, error);

  if (plaintext == NULL)
    return NULL;
  return g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type), plaintext, FALSE));
}

/* ---- validating requests ---------------------------------------------------------- */

static gboolean G_GNUC_PRINTF (3, 4)
fail (GError **error, KeyholdError code, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_propagate_error (error, g_error_new_valist (KEYHOLD_ERROR, code, format, args));
  va_end (args);
  return FALSE;
}

/* RFC 9110 §5.6.2 token. */
static gboolean
is_token (const char *string, gsize max_length)
{
  gsize length = strlen (string);

  if (length == 0 || length > max_length)
    return FALSE;
  for (const char *c = string; *c != '\0'; c++)
    if (!g_ascii_isalnum (*c) && strchr ("!#$%&'*+-.^_`|~", *c) == NULL)
      return FALSE;
  return TRUE;
}

static gboolean
validate_queue_name (const char *queue, GError **error)
{
  gsize length = strlen (queue);

  if (length == 0 || length > KEYHOLD_OUTBOX_MAX_QUEUE_NAME)
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT,
                 "A queue name has 1 to %d characters", KEYHOLD_OUTBOX_MAX_QUEUE_NAME);
  for (const char *c = queue; *c != '\0'; c++)
    if (!g_ascii_isalnum (*c) && strchr ("._:-", *c) == NULL)
      return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "A queue name holds only A-Z a-z 0-9 . _ : -");
  return TRUE;
}

static gboolean
validate_method (const char *method, gboolean has_body, GError **error)
{
  if (!is_token (method, 32))
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT, "The method is not an HTTP method token");
  /* CONNECT opens a tunnel and TRACE echoes the request, token included. */
  if (g_ascii_strcasecmp (method, "CONNECT") == 0 || g_ascii_strcasecmp (method, "TRACE") == 0)
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT, "%s requests cannot be queued", method);
  if (has_body && strcmp (method, "HEAD") == 0)
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT, "A HEAD request cannot carry a body");
  return TRUE;
}

/* Invariant 8: the token goes only to origins the account allows. The
 * messages never repeat the URL, which may carry data. */
static gboolean
validate_url (const char *url, const KeyholdAccountConfig *config, GError **error)
{
  g_autoptr (GError) policy_error = NULL;

  if (strlen (url) > KEYHOLD_OUTBOX_MAX_URL_BYTES)
    return fail (error, KEYHOLD_ERROR_QUOTA_EXCEEDED, "The URL is longer than %d bytes",
                 KEYHOLD_OUTBOX_MAX_URL_BYTES);
  if (keyhold_url_policy_origin_allowed (url, (const char *const *) config->api_origins,
                                         &policy_error))
    return TRUE;
  if (g_error_matches (policy_error, KEYHOLD_ERROR, KEYHOLD_ERROR_ACCESS_DENIED))
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT,
                 "The URL's origin is not one of the API origins of account %s", config->name);
  return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT, "The URL cannot be used: %s",
               policy_error->message);
}

/* The HTTP module's own check is the one that counts at send time, so a
 * header it would refuse then is refused now. */
static gboolean
validate_header (KeyholdHttpRequest *probe, const char *name, const char *value, GError **error)
{
  if (g_ascii_strcasecmp (name, "Authorization") == 0
      || g_ascii_strcasecmp (name, "Proxy-Authorization") == 0)
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT,
                 "Queued requests carry no credentials of their own: the agent adds the "
                 "account's token when it sends them");
  if (g_ascii_strcasecmp (name, "Idempotency-Key") == 0)
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT,
                 "The agent sets the Idempotency-Key header itself");
  if (!keyhold_http_request_add_header (probe, name, value))
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT,
                 "Header \"%s\" is malformed or is one that only the agent may set",
                 is_token (name, 256) ? name : "?");
  return TRUE;
}

static gboolean
validate_headers (const KeyholdOutboxRequest *request, gsize *out_bytes, GError **error)
{
  g_autoptr (KeyholdHttpRequest) probe = keyhold_http_request_new ("GET", "http://localhost/");
  gsize bytes = 0;
  guint content_types = 0;

  if (request->header_names->len > KEYHOLD_OUTBOX_MAX_HEADERS)
    return fail (error, KEYHOLD_ERROR_QUOTA_EXCEEDED, "A request has at most %d headers",
                 KEYHOLD_OUTBOX_MAX_HEADERS);
  for (guint i = 0; i < request->header_names->len; i++)
    {
      const char *name = request->header_names->pdata[i];
      const char *value = request->header_values->pdata[i];

      bytes += strlen (name) + strlen (value) + 4;
      if (!validate_header (probe, name, value, error))
        return FALSE;
      if (g_ascii_strcasecmp (name, "Content-Type") == 0)
        content_types++;
    }
  if (bytes > KEYHOLD_OUTBOX_MAX_HEADER_BYTES)
    return fail (error, KEYHOLD_ERROR_QUOTA_EXCEEDED, "The headers are larger than %d bytes",
                 KEYHOLD_OUTBOX_MAX_HEADER_BYTES);
  if (content_types > 1)
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT, "More than one Content-Type header");
  *out_bytes = bytes;
  return TRUE;
}

/* Returns the bytes the request takes, for the quota. */
static gboolean
validate_request (const KeyholdOutboxRequest *request,
                  const KeyholdAccountConfig *config,
                  gsize *out_size,
                  GError **error)
{
  gsize body_size = request->body != NULL ? g_bytes_get_size (request->body) : 0;
  gsize header_bytes = 0;

  if (!validate_method (request->method, request->body != NULL, error)
      || !validate_url (request->url, config, error)
      || !validate_headers (request, &header_bytes, error))
    return FALSE;
  if (body_size > KEYHOLD_OUTBOX_MAX_BODY_BYTES)
    return fail (error, KEYHOLD_ERROR_QUOTA_EXCEEDED, "The body is larger than %d bytes",
                 KEYHOLD_OUTBOX_MAX_BODY_BYTES);
  if (request->max_age_s > KEYHOLD_OUTBOX_MAX_MAX_AGE_S)
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT, "max_age is at most %d seconds",
                 KEYHOLD_OUTBOX_MAX_MAX_AGE_S);
  *out_size = strlen (request->url) + header_bytes + body_size;
  return TRUE;
}

/* ---- enqueue ----------------------------------------------------------------------- */

typedef struct
{
  OutboxHandle *handle;
  /* Until it goes to the store. */
  KeyholdOutboxItem *item;
  char *id;
  char *account;
  char *queue;
  /* Plaintext, until sealed. */
  char *url;
  GVariant *request;
} EnqueueData;

static OutboxHandle *
handle_ref (OutboxHandle *handle)
{
  return g_rc_box_acquire (handle);
}

static void
handle_unref (OutboxHandle *handle)
{
  g_rc_box_release (handle);
}

static void
enqueue_data_free (EnqueueData *data)
{
  handle_unref (data->handle);
  g_clear_pointer (&data->item, keyhold_outbox_item_free);
  g_free (data->id);
  g_free (data->account);
  g_free (data->queue);
  g_free (data->url);
  g_clear_pointer (&data->request, g_variant_unref);
  g_free (data);
}

static KeyholdOutboxItem *
new_item (const char *owner,
          KeyholdAccount *account,
          const char *queue,
          const KeyholdOutboxRequest *request,
          gsize request_size)
{
  KeyholdOutboxItem *item = g_new0 (KeyholdOutboxItem, 1);
  guint max_age_s = request->max_age_s > 0 ? request->max_age_s
                                           : KEYHOLD_OUTBOX_DEFAULT_MAX_AGE_S;

  item->id = g_uuid_string_random ();
  item->owner = g_strdup (owner);
  item->account = g_strdup (keyhold_account_get_config (account)->name);
  item->queue = g_strdup (queue);
  item->subject = g_strdup (keyhold_account_get_subject (account));
  item->method = g_strdup (request->method);
  item->request_size = request_size;
  item->idempotency_key = g_uuid_string_random ();
  item->state = KEYHOLD_OUTBOX_STATE_PENDING;
  item->created_ms = now_ms ();
  item->expires_ms = item->created_ms + (gint64) max_age_s * 1000;
  item->reason = g_strdup ("");
  return item;
}

static GVariant *
request_variant (const KeyholdOutboxRequest *request)
{
  GVariant *body = request->body != NULL ? body_variant (request->body) : NULL;

  return g_variant_ref_sink (
      g_variant_new ("(@a(ss)@may)", headers_variant (request->header_names,
                                                      request->header_values),
                     g_variant_new_maybe (G_VARIANT_TYPE_BYTESTRING, body)));
}

static OutboxQueue *ensure_queue (KeyholdOutbox *self, const char *account, const char *name);

static void
on_inserted (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  EnqueueData *data = g_task_get_task_data (task);
  KeyholdOutbox *self = data->handle->outbox;
  GError *error = NULL;

  if (!keyhold_outbox_store_insert_finish (result, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  /* Committed even if the agent is shutting down: the caller gets its id. */
  if (self != NULL)
    {
      OutboxQueue *queue = ensure_queue (self, data->account, data->queue);

      emit_item_changed (self, data->id, KEYHOLD_OUTBOX_STATE_PENDING, 0);
      if (queue->phase == PHASE_IDLE)
        queue_kick (queue);
    }
  g_task_return_pointer (task, g_strdup (data->id), g_free);
}

static void
seal_and_insert (KeyholdOutbox *self, GTask *task)
{
  EnqueueData *data = g_task_get_task_data (task);
  KeyholdOutboxItem *item = data->item;

  item->sealed_url = seal_string (self, item->id, KEYHOLD_OUTBOX_PART_URL, data->url);
  item->sealed_request = seal_variant (self, item->id, KEYHOLD_OUTBOX_PART_REQUEST,
                                       data->request);
  keyhold_outbox_store_insert_async (self->store, g_steal_pointer (&data->item), NULL,
                                     on_inserted, task);
}

void
keyhold_outbox_enqueue_async (KeyholdOutbox *self,
                              const char *owner,
                              const char *account_name,
                              const char *queue,
                              const KeyholdOutboxRequest *request,
                              GAsyncReadyCallback callback,
                              gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  KeyholdAccount *account;
  EnqueueData *data;
  GError *error = NULL;
  gsize request_size = 0;

  g_return_if_fail (KEYHOLD_IS_OUTBOX (self));
  g_return_if_fail (owner != NULL && account_name != NULL && queue != NULL && request != NULL);

  task = g_task_new (NULL, NULL, callback, user_data);
  g_task_set_source_tag (task, keyhold_outbox_enqueue_async);
  if (*queue == '\0')
    queue = DEFAULT_QUEUE;

  if (!check_store (self, &error)
      || !validate_queue_name (queue, &error)
      || (account = keyhold_accounts_lookup (self->accounts, account_name, &error)) == NULL
      || !validate_request (request, keyhold_account_get_config (account), &request_size,
                            &error))
    {
      g_task_return_error (task, error);
      return;
    }
  /* The item is bound to the user signed in now (the subject); with none
   * there is nobody it could ever be sent for. */
  if (*keyhold_account_get_subject (account) == '\0')
    {
      g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_NOT_SIGNED_IN,
                               "Account %s is not signed in", account_name);
      return;
    }

  data = g_new0 (EnqueueData, 1);
  data->handle = handle_ref (self->handle);
  data->item = new_item (owner, account, queue, request, request_size);
  data->id = g_strdup (data->item->id);
  data->account = g_strdup (data->item->account);
  data->queue = g_strdup (data->item->queue);
  data->url = g_strdup (request->url);
  data->request = request_variant (request);
  g_task_set_task_data (task, data, (GDestroyNotify) enqueue_data_free);

  when_key_ready (self, g_steal_pointer (&task), seal_and_insert);
}

char *
keyhold_outbox_enqueue_finish (KeyholdOutbox *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_async_result_is_tagged (result, keyhold_outbox_enqueue_async), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- the key ------------------------------------------------------------------------ */

static gboolean
on_key_retry (gpointer user_data)
{
  KeyholdOutbox *self = user_data;

  self->key_retry_id = 0;
  load_key (self);
  return G_SOURCE_REMOVE;
}

static void
fail_key_waiters (KeyholdOutbox *self, const GError *error)
{
  KeyWaiter *waiter;

  while ((waiter = g_queue_pop_head (&self->key_waiters)) != NULL)
    {
      g_task_return_error (waiter->task, g_error_copy (error));
      g_object_unref (waiter->task);
      g_free (waiter);
    }
}

/* The fingerprint goes to the database before anything is sealed with
 * the key: from then on, a missing key is an error, never a reason to make
 * a new one. */
static gboolean
adopt_key (KeyholdOutbox *self, KeyholdSecret *key, GError **error)
{
  g_autoptr (GBytes) fingerprint = keyhold_outbox_crypto_fingerprint (key);
  g_autoptr (GBytes) stored = NULL;
  GError *local_error = NULL;

  stored = keyhold_outbox_store_get_key_fingerprint (self->store, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return FALSE;
    }
  if (stored == NULL && !keyhold_outbox_store_set_key_fingerprint (self->store, fingerprint, error))
    return FALSE;
  self->key = keyhold_secret_ref (key);
  return TRUE;
}

static void
key_failed (KeyholdOutbox *self, const GError *error)
{
  set_error_field (self, &self->key_error, error);
  fail_key_waiters (self, error);
  if (self->key_retry_id == 0)
    self->key_retry_id = g_timeout_add_seconds (STORAGE_RETRY_S, on_key_retry, self);
}

static void
on_key_loaded (GObject *source, GAsyncResult *result, gpointer user_data)
{
  OutboxHandle *handle = user_data;
  KeyholdOutbox *self = handle->outbox;
  g_autoptr (KeyholdSecret) key = NULL;
  g_autoptr (GError) error = NULL;
  KeyWaiter *waiter;

  key = keyhold_outbox_crypto_load_key_finish (result, &error);
  handle_unref (handle);
  if (self == NULL || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
      || g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_CANCELLED))
    return;
  self->key_loading = FALSE;

  if (key == NULL || !adopt_key (self, key, &error))
    {
      key_failed (self, error);
      return;
    }
  set_error_field (self, &self->key_error, NULL);
  while ((waiter = g_queue_pop_head (&self->key_waiters)) != NULL)
    {
      waiter->func (self, waiter->task);
      g_free (waiter);
    }
  start_replay (self);
}

static void
load_key (KeyholdOutbox *self)
{
  g_autoptr (GBytes) fingerprint = NULL;
  g_autoptr (GError) error = NULL;

  if (self->key != NULL || self->key_loading || self->store == NULL)
    return;
  g_clear_handle_id (&self->key_retry_id, g_source_remove);
  fingerprint = keyhold_outbox_store_get_key_fingerprint (self->store, &error);
  if (error != NULL)
    {
      key_failed (self, error);
      return;
    }
  self->key_loading = TRUE;
  keyhold_outbox_crypto_load_key_async (fingerprint, self->cancellable, on_key_loaded,
                                        handle_ref (self->handle));
}

/* Takes @task. The store must be usable. */
static void
when_key_ready (KeyholdOutbox *self, GTask *task, KeyReadyFunc func)
{
  KeyWaiter *waiter;

  if (self->key != NULL)
    {
      func (self, task);
      return;
    }
  waiter = g_new0 (KeyWaiter, 1);
  waiter->task = task;
  waiter->func = func;
  g_queue_push_tail (&self->key_waiters, waiter);
  load_key (self);
}

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

static void
queue_free (OutboxQueue *queue)
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
  gint64 delay_ms = CLAMP (at_ms - now_ms (), 0, (gint64) G_MAXUINT);

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
  set_error_field (queue->outbox, &queue->outbox->write_error, error);
  queue->phase = PHASE_BACKOFF;
  queue_arm_timer (queue, now_ms () + STORAGE_RETRY_S * 1000);
}

static void queue_write (OutboxQueue *queue, const KeyholdOutboxChange *change, gboolean then_wait);

static void
queue_expire_head (OutboxQueue *queue)
{
  KeyholdOutboxItem *head = queue->head;
  KeyholdOutboxChange change = {
    KEYHOLD_OUTBOX_STATE_EXPIRED, head->attempts, 0, head->status, NULL,
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
  gint64 now = now_ms ();
  gboolean resume_waiting, retry_now;

  if (queue->pending_writes > 0 || queue->phase == PHASE_SENDING || queue->phase == PHASE_READY)
    return;
  g_clear_handle_id (&queue->timer_id, g_source_remove);
  resume_waiting = queue->resume_waiting;
  retry_now = queue->retry_now && queue->network_backoff;
  queue->resume_waiting = queue->retry_now = FALSE;

  head = keyhold_outbox_store_get_head (queue->outbox->store, queue->account, queue->name,
                                        &error);
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
  handle_unref (write->handle);
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
      set_error_field (self, &self->write_error, NULL);
      emit_item_changed (self, write->id, write->state, write->status);
    }
  /* INVALID_ARGUMENT: the item finished meanwhile (its owner cancelled
   * it); the queue simply moves on. */
  else if (!g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT))
    set_error_field (self, &self->write_error, error);

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

  write->handle = handle_ref (self->handle);
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
seal_response (KeyholdOutbox *self, const char *id, const KeyholdHttpResponse *response)
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
  value = g_variant_new ("(@a(ss)@ayb)",
                         headers_variant (response->header_names, response->header_values),
                         g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, body, length, 1),
                         truncated);
  return seal_variant (self, id, KEYHOLD_OUTBOX_PART_RESPONSE, value);
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
      change.sealed_response = sealed = seal_response (queue->outbox, head->id, response);
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
      change.sealed_response = sealed = seal_response (queue->outbox, head->id, response);
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
    KEYHOLD_OUTBOX_STATE_PENDING, head->attempts, now_ms () + (gint64) delay_s * 1000,
    head->status, NULL, reason,
  };

  if (response != NULL)
    {
      change.status = (int) response->status;
      head->status = change.status;
      change.sealed_response = sealed = seal_response (queue->outbox, head->id, response);
    }
  queue->network_backoff = network;
  queue_write (attempt_end (attempt), &change, FALSE);
}

static gboolean
is_retryable_status (guint status)
{
  return status == 408 || status == 425 || status == 429 || (status >= 500 && status <= 599);
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
      reason = g_strdup_printf ("The request could not be completed: %s", error->message);
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
  const KeyholdAccountConfig *config;

  g_clear_pointer (&attempt->token, keyhold_secret_unref);
  attempt->token = keyhold_account_get_token_finish (KEYHOLD_ACCOUNT (source), result, NULL,
                                                     &error);
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
  if (!keyhold_url_policy_origin_allowed (attempt->url, (const char *const *) config->api_origins,
                                          NULL))
    {
      attempt_finish (attempt, KEYHOLD_OUTBOX_STATE_FAILED, NULL,
                      "The URL's origin is no longer one of the account's API origins");
      return;
    }
  send_request (attempt);
}

static void
get_token (Attempt *attempt)
{
  keyhold_account_get_token_async (attempt->account, NULL, "",
                                   KEYHOLD_TOKEN_DEFAULT_MIN_VALIDITY_S, attempt->cancellable,
                                   on_token, attempt);
}

static void watch_account (KeyholdOutbox *self, KeyholdAccount *account);

static gboolean
attempt_open_request (Attempt *attempt, GError **error)
{
  KeyholdOutbox *self = attempt->queue->outbox;
  KeyholdOutboxItem *head = attempt->queue->head;

  attempt->url = open_string (self, head->id, head->sealed_url, error);
  if (attempt->url == NULL)
    return FALSE;
  attempt->request = open_variant (self, head->id, KEYHOLD_OUTBOX_PART_REQUEST, REQUEST_TYPE,
                                   head->sealed_request, error);
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
  emit_item_changed (self, head->id, KEYHOLD_OUTBOX_STATE_SENDING, head->status);

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

static void
account_watch_free (AccountWatch *watch)
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
  watch->handler_id = g_signal_connect (account, "notify::state", G_CALLBACK (on_account_state),
                                        self);
  g_hash_table_replace (self->watches, g_strdup (name), watch);
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

static void
start_replay (KeyholdOutbox *self)
{
  g_autoptr (GPtrArray) names = NULL;
  g_autoptr (GError) error = NULL;

  if (self->replaying)
    return;
  names = keyhold_outbox_store_list_queues (self->store, &error);
  if (names == NULL)
    {
      set_error_field (self, &self->write_error, error);
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
  handle_unref (data->handle);
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
        emit_item_changed (self, data->id, data->state, data->status);
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
static void
finish_unsent (KeyholdOutbox *self,
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
  data->handle = handle_ref (self->handle);
  data->account = g_strdup (item->account);
  data->queue = g_strdup (item->queue);
  data->id = g_strdup (item->id);
  data->status = item->status;
  data->state = state;
  data->task = task;
  keyhold_outbox_store_change_async (self->store, item->id, &change, NULL, on_finished_unsent,
                                     data);
}

static gboolean
is_being_sent (KeyholdOutbox *self, const char *id)
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

  ids = keyhold_outbox_store_list_overdue (self->store, now_ms (), SWEEP_BATCH, error);
  if (ids == NULL)
    return FALSE;
  for (guint i = 0; i < ids->len; i++)
    {
      g_autoptr (KeyholdOutboxItem) item = NULL;

      if (is_being_sent (self, ids->pdata[i]))
        continue;
      item = keyhold_outbox_store_get (self->store, ids->pdata[i], error);
      if (item == NULL)
        return FALSE;
      finish_unsent (self, item, KEYHOLD_OUTBOX_STATE_EXPIRED,
                     "The item could not be sent within its max_age", NULL);
    }
  return TRUE;
}

static void
sweep (KeyholdOutbox *self)
{
  g_autoptr (GError) error = NULL;
  gint64 retention_end_ms = now_ms () - (gint64) KEYHOLD_OUTBOX_RETENTION_S * 1000;
  guint deleted = 0;

  if (!expire_overdue (self, &error)
      || !keyhold_outbox_store_delete_finished (self->store, retention_end_ms, SWEEP_BATCH,
                                                &deleted, &error))
    {
      set_error_field (self, &self->write_error, error);
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
    load_key (self);
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

/* ---- get, list, cancel -------------------------------------------------------------- */

static KeyholdOutboxItem *
get_owned_item (KeyholdOutbox *self, const char *owner, const char *id, GError **error)
{
  g_autoptr (KeyholdOutboxItem) item = NULL;
  g_autoptr (GError) local_error = NULL;

  if (!check_store (self, error))
    return NULL;
  item = keyhold_outbox_store_get (self->store, id, &local_error);
  /* Another owner's item looks exactly like a missing one. */
  if (item != NULL && g_str_equal (item->owner, owner))
    return g_steal_pointer (&item);
  if (item != NULL || g_error_matches (local_error, KEYHOLD_ERROR, KEYHOLD_ERROR_NOT_FOUND))
    g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NOT_FOUND, "There is no item %s", id);
  else
    g_propagate_error (error, g_steal_pointer (&local_error));
  return NULL;
}

static gint64
ms_to_s (gint64 ms)
{
  return ms / 1000;
}

static KeyholdOutboxItemInfo *
item_info (KeyholdOutbox *self, const KeyholdOutboxItem *item, GError **error)
{
  g_autoptr (KeyholdOutboxItemInfo) info = g_new0 (KeyholdOutboxItemInfo, 1);

  info->url = open_string (self, item->id, item->sealed_url, error);
  if (info->url == NULL)
    return NULL;
  info->id = g_strdup (item->id);
  info->account = g_strdup (item->account);
  info->queue = g_strdup (item->queue);
  info->method = g_strdup (item->method);
  info->idempotency_key = g_strdup (item->idempotency_key);
  info->state = is_being_sent (self, item->id) ? KEYHOLD_OUTBOX_STATE_SENDING : item->state;
  info->attempts = item->attempts;
  info->created_s = ms_to_s (item->created_ms);
  info->expires_s = ms_to_s (item->expires_ms);
  info->next_attempt_s = ms_to_s (item->next_attempt_ms);
  info->finished_s = ms_to_s (item->finished_ms);
  info->status = item->status;
  info->reason = g_strdup (item->reason);
  return g_steal_pointer (&info);
}

static gboolean
add_response (KeyholdOutbox *self,
              KeyholdOutboxItemInfo *info,
              GBytes *sealed,
              GError **error)
{
  g_autoptr (GVariant) response = NULL;
  g_autoptr (GVariant) headers = NULL;
  g_autoptr (GVariant) body = NULL;
  GVariantIter iter;
  const char *name, *value;

  response = open_variant (self, info->id, KEYHOLD_OUTBOX_PART_RESPONSE, RESPONSE_TYPE, sealed,
                           error);
  if (response == NULL)
    return FALSE;
  headers = g_variant_get_child_value (response, 0);
  body = g_variant_get_child_value (response, 1);
  g_variant_get_child (response, 2, "b", &info->response_truncated);

  info->response_header_names = g_ptr_array_new_with_free_func (g_free);
  info->response_header_values = g_ptr_array_new_with_free_func (g_free);
  g_variant_iter_init (&iter, headers);
  while (g_variant_iter_next (&iter, "(&s&s)", &name, &value))
    {
      g_ptr_array_add (info->response_header_names, g_strdup (name));
      g_ptr_array_add (info->response_header_values, g_strdup (value));
    }
  info->response_body = g_variant_get_data_as_bytes (body);
  return TRUE;
}

typedef struct
{
  char *owner;
  char *id;
  char *account;
  char *queue;
  guint state_mask;
  char *after_id;
  guint limit;
} ReadData;

static void
read_data_free (ReadData *data)
{
  g_free (data->owner);
  g_free (data->id);
  g_free (data->account);
  g_free (data->queue);
  g_free (data->after_id);
  g_free (data);
}

static GTask *
new_read_task (gpointer source_tag,
               const char *owner,
               GAsyncReadyCallback callback,
               gpointer user_data)
{
  GTask *task = g_task_new (NULL, NULL, callback, user_data);
  ReadData *data = g_new0 (ReadData, 1);

  g_task_set_source_tag (task, source_tag);
  data->owner = g_strdup (owner);
  g_task_set_task_data (task, data, (GDestroyNotify) read_data_free);
  return task;
}

static KeyholdOutboxItemInfo *
get_info (KeyholdOutbox *self, const char *owner, const char *id, GError **error)
{
  g_autoptr (KeyholdOutboxItem) item = NULL;
  g_autoptr (KeyholdOutboxItemInfo) info = NULL;

  item = get_owned_item (self, owner, id, error);
  if (item == NULL)
    return NULL;
  info = item_info (self, item, error);
  if (info == NULL)
    return NULL;
  if (item->sealed_response != NULL && !add_response (self, info, item->sealed_response, error))
    return NULL;
  return g_steal_pointer (&info);
}

static void
finish_get (KeyholdOutbox *self, GTask *task)
{
  g_autoptr (GTask) owned_task = task;
  ReadData *data = g_task_get_task_data (task);
  GError *error = NULL;
  KeyholdOutboxItemInfo *info = get_info (self, data->owner, data->id, &error);

  if (info == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, info, (GDestroyNotify) keyhold_outbox_item_info_free);
}

void
keyhold_outbox_get_async (KeyholdOutbox *self,
                          const char *owner,
                          const char *id,
                          GAsyncReadyCallback callback,
                          gpointer user_data)
{
  GTask *task;
  GError *error = NULL;

  g_return_if_fail (KEYHOLD_IS_OUTBOX (self));
  g_return_if_fail (owner != NULL && id != NULL);

  task = new_read_task (keyhold_outbox_get_async, owner, callback, user_data);
  ((ReadData *) g_task_get_task_data (task))->id = g_strdup (id);
  if (!check_store (self, &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  when_key_ready (self, task, finish_get);
}

KeyholdOutboxItemInfo *
keyhold_outbox_get_finish (KeyholdOutbox *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_async_result_is_tagged (result, keyhold_outbox_get_async), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* "sending" is not on disk: such items are stored as pending. */
static guint
stored_state_mask (guint state_mask)
{
  if (state_mask & (1 << KEYHOLD_OUTBOX_STATE_SENDING))
    state_mask |= 1 << KEYHOLD_OUTBOX_STATE_PENDING;
  return state_mask;
}

static GPtrArray *
list_infos (KeyholdOutbox *self, const ReadData *query, GError **error)
{
  g_autoptr (GPtrArray) infos = NULL;
  g_autofree char *after = g_strdup (query->after_id);
  const char *owner = query->owner, *account = query->account, *queue = query->queue;
  guint state_mask = query->state_mask, limit = query->limit;

  infos = g_ptr_array_new_with_free_func ((GDestroyNotify) keyhold_outbox_item_info_free);
  /* Each round loses at most the few items whose state in memory differs
   * from the one on disk, so this ends after a round or two. */
  while (infos->len < limit)
    {
      g_autoptr (GPtrArray) items = NULL;

      items = keyhold_outbox_store_list (self->store, owner, account, queue,
                                         stored_state_mask (state_mask), after,
                                         limit - infos->len, error);
      if (items == NULL)
        return NULL;
      if (items->len == 0)
        break;
      for (guint i = 0; i < items->len; i++)
        {
          KeyholdOutboxItemInfo *info = item_info (self, items->pdata[i], error);

          if (info == NULL)
            return NULL;
          if (state_mask == 0 || (state_mask & (1u << info->state)) != 0)
            g_ptr_array_add (infos, info);
          else
            keyhold_outbox_item_info_free (info);
        }
      g_free (after);
      after = g_strdup (((KeyholdOutboxItem *) items->pdata[items->len - 1])->id);
    }
  return g_steal_pointer (&infos);
}

static void
finish_list (KeyholdOutbox *self, GTask *task)
{
  g_autoptr (GTask) owned_task = task;
  GError *error = NULL;
  GPtrArray *infos = list_infos (self, g_task_get_task_data (task), &error);

  if (infos == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, infos, (GDestroyNotify) g_ptr_array_unref);
}

void
keyhold_outbox_list_async (KeyholdOutbox *self,
                           const char *owner,
                           const char *account,
                           const char *queue,
                           guint state_mask,
                           const char *after_id,
                           guint limit,
                           GAsyncReadyCallback callback,
                           gpointer user_data)
{
  GTask *task;
  ReadData *data;
  GError *error = NULL;

  g_return_if_fail (KEYHOLD_IS_OUTBOX (self));
  g_return_if_fail (owner != NULL);
  g_return_if_fail (limit >= 1 && limit <= KEYHOLD_OUTBOX_MAX_LIST);

  task = new_read_task (keyhold_outbox_list_async, owner, callback, user_data);
  data = g_task_get_task_data (task);
  data->account = g_strdup (account);
  data->queue = g_strdup (queue);
  data->state_mask = state_mask;
  data->after_id = g_strdup (after_id);
  data->limit = limit;
  if (!check_store (self, &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  when_key_ready (self, task, finish_list);
}

GPtrArray *
keyhold_outbox_list_finish (KeyholdOutbox *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_async_result_is_tagged (result, keyhold_outbox_list_async), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

void
keyhold_outbox_cancel_async (KeyholdOutbox *self,
                             const char *owner,
                             const char *id,
                             GAsyncReadyCallback callback,
                             gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  g_autoptr (KeyholdOutboxItem) item = NULL;
  GError *error = NULL;

  g_return_if_fail (KEYHOLD_IS_OUTBOX (self));
  g_return_if_fail (owner != NULL && id != NULL);

  task = g_task_new (NULL, NULL, callback, user_data);
  g_task_set_source_tag (task, keyhold_outbox_cancel_async);
  item = get_owned_item (self, owner, id, &error);
  if (item == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (keyhold_outbox_state_is_finished (item->state))
    {
      g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                               "Item %s has already finished", id);
      return;
    }
  finish_unsent (self, item, KEYHOLD_OUTBOX_STATE_CANCELLED, "Cancelled by its owner",
                 g_steal_pointer (&task));
}

gboolean
keyhold_outbox_cancel_finish (KeyholdOutbox *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_async_result_is_tagged (result, keyhold_outbox_cancel_async), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

const char *
keyhold_outbox_get_storage_error (KeyholdOutbox *self)
{
  g_return_val_if_fail (KEYHOLD_IS_OUTBOX (self), NULL);

  return self->storage_error;
}

/* ---- life cycle ----------------------------------------------------------------------- */

KeyholdOutbox *
keyhold_outbox_new (KeyholdContext *context, KeyholdAccounts *accounts)
{
  const KeyholdOutboxQuota quota = {
    KEYHOLD_OUTBOX_MAX_ITEMS_PER_OWNER,
    KEYHOLD_OUTBOX_MAX_BYTES_PER_OWNER,
  };
  KeyholdOutbox *self = g_object_new (KEYHOLD_TYPE_OUTBOX, NULL);
  g_autoptr (GBytes) fingerprint = NULL;
  g_autoptr (GError) error = NULL;

  self->context = context;
  self->accounts = accounts;
  if (context->store != NULL)
    self->store = keyhold_outbox_store_new (context->store, &quota, &error);
  if (self->store != NULL)
    fingerprint = keyhold_outbox_store_get_key_fingerprint (self->store, &error);
  if (error != NULL)
    {
      self->open_error = g_strdup (error->message);
      g_clear_pointer (&self->store, keyhold_outbox_store_free);
    }
  update_storage_error (self);

  /* The key is made on first use; if the database records one, there is
   * data to replay and the key is needed now. */
  if (fingerprint != NULL)
    load_key (self);
  return self;
}

static void
keyhold_outbox_init (KeyholdOutbox *self)
{
  self->handle = g_rc_box_new0 (OutboxHandle);
  self->handle->outbox = self;
  self->cancellable = g_cancellable_new ();
  self->queues = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) queue_free);
  self->heads = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->watches = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) account_watch_free);
  g_queue_init (&self->key_waiters);
  g_queue_init (&self->ready);
  self->storage_error = g_strdup ("");
}

static void
keyhold_outbox_dispose (GObject *object)
{
  KeyholdOutbox *self = KEYHOLD_OUTBOX (object);
  g_autoptr (GError) error = g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_CANCELLED,
                                          "The agent is shutting down");

  /* From here on, callbacks that come back find no outbox. */
  if (self->handle != NULL)
    {
      self->handle->outbox = NULL;
      g_clear_pointer (&self->handle, handle_unref);
    }
  g_cancellable_cancel (self->cancellable);
  fail_key_waiters (self, error);
  g_clear_handle_id (&self->key_retry_id, g_source_remove);
  g_clear_handle_id (&self->sweep_id, g_source_remove);
  g_hash_table_remove_all (self->watches);
  g_queue_clear (&self->ready);
  g_hash_table_remove_all (self->queues);
  /* Commits what is still waiting: every outcome that was reached stays. */
  g_clear_pointer (&self->store, keyhold_outbox_store_free);
  G_OBJECT_CLASS (keyhold_outbox_parent_class)->dispose (object);
}

static void
keyhold_outbox_finalize (GObject *object)
{
  KeyholdOutbox *self = KEYHOLD_OUTBOX (object);

  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->key, keyhold_secret_unref);
  g_hash_table_unref (self->queues);
  g_hash_table_unref (self->heads);
  g_hash_table_unref (self->watches);
  g_free (self->open_error);
  g_free (self->key_error);
  g_free (self->write_error);
  g_free (self->storage_error);
  G_OBJECT_CLASS (keyhold_outbox_parent_class)->finalize (object);
}

static void
keyhold_outbox_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  KeyholdOutbox *self = KEYHOLD_OUTBOX (object);

  switch (prop_id)
    {
    case PROP_STORAGE_ERROR:
      g_value_set_string (value, self->storage_error);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
keyhold_outbox_class_init (KeyholdOutboxClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = keyhold_outbox_dispose;
  object_class->finalize = keyhold_outbox_finalize;
  object_class->get_property = keyhold_outbox_get_property;

  properties[PROP_STORAGE_ERROR] = g_param_spec_string (
      "storage-error", NULL, NULL, "",
      G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  signals[SIGNAL_ITEM_CHANGED] = g_signal_new ("item-changed", G_TYPE_FROM_CLASS (klass),
                                               G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                               G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING,
                                               G_TYPE_INT);
}

gboolean
keyhold_outbox_has_unfinished_items (KeyholdOutbox *self)
{
  /* A queue exists exactly while it holds unfinished items. */
  return g_hash_table_size (self->queues) > 0;
}
