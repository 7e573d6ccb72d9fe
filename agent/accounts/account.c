/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "keyhold-contract.h"

#include "accounts/account.h"
#include "base/backoff.h"
#include "base/clock.h"
#include "base/untrusted-json.h"
#include "accounts/identity.h"
#include "storage/keyring.h"
#include "accounts/token-cache.h"
#include "accounts/token-request.h"

/* A caller waits at most this long for a refresh; the D-Bus default call
 * timeout is 25 s, and an answer must come before the caller gives up. The
 * refresh itself goes on (KEYHOLD_OAUTH_REFRESH_TIMEOUT_MS). */
#define WAITER_DEADLINE_S 20
/* Refresh when this share of the lifetime has passed, less up to
 * REFRESH_JITTER_PERCENT more, so many agents do not refresh in step. */
#define REFRESH_AT_PERCENT 80
#define REFRESH_JITTER_PERCENT 5
/* A proactive refresh comes at least this long after the last answer, and
 * after an answer with a token too short-lived to cache, no refresh for the
 * same scopes and audience starts sooner either: a provider whose tokens
 * live 0 or 2 s must not turn callers into a stream of requests
 * (ARCHITECTURE.md, "Token lifetime"). */
#define REFRESH_FLOOR_S 2
#define BACKOFF_FIRST_S 4
#define BACKOFF_CAP_S 300
#define KEYRING_RETRY_CAP_S 60
/* Revocation is a courtesy; sign-out must answer well within the D-Bus
 * call timeout even when the provider hangs. */
#define REVOKE_DEADLINE_S 8

struct _KeyholdAccount
{
  GObject parent_instance;

  KeyholdContext *context;
  KeyholdAccountConfig *config;

  /* The sign-in generation, bumped by sign-in, sign-out and removal.
   * Everything started for one sign-in (refresh, keyring writes, timers)
   * carries the generation it began in and, should it complete after the
   * sign-in ended, changes nothing (ARCHITECTURE.md, "Token lifetime").
   * @cancellable belongs to the current generation and is cancelled with it. */
  guint generation;
  GCancellable *cancellable;
  /* Cancelled in dispose: what outlives every generation, such as a
   * sign-out's revocation, must end with the agent's services. */
  GCancellable *lifetime;
  /* Set when removal starts; sign-ins are refused from then on. */
  gboolean removed;

  gboolean restored;
  KeyholdAccountState state;
  char *subject;
  char *display_name;
  JsonObject *claims;
  gint64 access_token_expiry_s;
  gint64 next_refresh_s;
  char *last_error;
  /* The message part of last_error, for messages that cite it. */
  char *last_error_message;

  /* The current refresh token; NULL until read from the keyring. The one it
   * replaced is unreferenced at once and never sent again. */
  KeyholdSecret *refresh_token;
  gboolean keyring_write_pending;
  guint keyring_retry_id;
  guint keyring_retry_delay_s;
  /* Changes to the keyring item (GTask), in the order asked for; one runs
   * at a time. */
  GQueue keyring_changes;
  gboolean keyring_change_running;

  KeyholdTokenCache *tokens;
  GQueue waiters; /* TokenWaiter, in arrival order */
  gboolean refreshing;
  guint consecutive_failures;
  /* Monotonic time before which no caller may start a refresh: the backoff
   * after a transient failure. A recheck (resume, network back) clears it. */
  gint64 retry_not_before_us;
  /* The part of that pause the server asked for with Retry-After, which a
   * recheck must still honour. */
  gint64 retry_after_until_us;
  guint refresh_timer_id;
  /* Request key -> monotonic time its last refresh answered with a token
   * the cache did not keep, for REFRESH_FLOOR_S; entries older than that
   * are dropped. */
  GHashTable *last_refreshed_us;
  /* Wakes the waiters that wait for that floor to pass. */
  guint pump_timer_id;
};

enum
{
  PROP_0,
  PROP_STATE,
  PROP_SUBJECT,
  PROP_DISPLAY_NAME,
  PROP_ACCESS_TOKEN_EXPIRY,
  PROP_NEXT_REFRESH,
  PROP_LAST_ERROR,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum
{
  SIGNAL_FAILURE,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (KeyholdAccount, keyhold_account, G_TYPE_OBJECT)

typedef struct
{
  KeyholdAccount *account;
  GTask *task;
  char *key;
  GStrv scopes;
  char *audience;
  guint min_validity_s; /* 0: the default for the token's lifetime */
  guint deadline_id;
} TokenWaiter;

/* What one refresh attempt is for and what came of it. */
typedef struct
{
  char *key;
  char *scope;    /* NULL: the account's own scopes */
  char *audience; /* NULL: none */
  KeyholdProviderMetadata *metadata;
  KeyholdSecret *sent_refresh_token;
  KeyholdTokenResponse *response;
  gboolean resent_after_lost_answer;
  gboolean resent_to_confirm_refusal;
  guint generation;
} RefreshAttempt;

static void pump_waiters (KeyholdAccount *self);
static void fail_waiters_for_key (KeyholdAccount *self, const char *key, const GError *error);
static void start_refresh (KeyholdAccount *self,
                           const char *key,
                           const char *const *scopes,
                           const char *audience);

static const char *
state_to_string (KeyholdAccountState state)
{
  switch (state)
    {
    case KEYHOLD_ACCOUNT_SIGNED_OUT:
      return "signed-out";
    case KEYHOLD_ACCOUNT_SIGNED_IN:
      return "signed-in";
    case KEYHOLD_ACCOUNT_REFRESHING:
      return "refreshing";
    case KEYHOLD_ACCOUNT_OFFLINE:
      return "offline";
    case KEYHOLD_ACCOUNT_NEEDS_LOGIN:
      return "needs-login";
    default:
      g_assert_not_reached ();
    }
}

/* A failure with no caller to return it to: whoever listens (the daemon)
 * logs it. */
static void
report_failure (KeyholdAccount *self, const char *what, const GError *error)
{
  g_signal_emit (self, signals[SIGNAL_FAILURE], 0, what, error);
}

/* ---- properties -------------------------------------------------------- */

static void
set_state (KeyholdAccount *self, KeyholdAccountState state)
{
  if (self->state == state)
    return;
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
}

static void
set_string_property (KeyholdAccount *self, char **field, const char *value, guint prop)
{
  if (g_strcmp0 (*field, value) == 0)
    return;
  g_free (*field);
  *field = g_strdup (value);
  g_object_notify_by_pspec (G_OBJECT (self), properties[prop]);
}

static void
set_time_property (KeyholdAccount *self, gint64 *field, gint64 value, guint prop)
{
  if (*field == value)
    return;
  *field = value;
  g_object_notify_by_pspec (G_OBJECT (self), properties[prop]);
}

/* LastError is "org.keyhold.Error.NAME: message", what a caller would
 * have been told; @error is in the KEYHOLD_ERROR domain. Another domain
 * has no stable name, so it is shown as Failed instead. */
static void
set_last_error (KeyholdAccount *self, const GError *error)
{
  g_autofree char *text = NULL;

  g_free (self->last_error_message);
  self->last_error_message = g_strdup (error != NULL ? error->message : "");
  if (error != NULL)
    text
        = g_strdup_printf ("%s: %s",
                           keyhold_contract_error_name (
                               error->domain == KEYHOLD_ERROR ? error->code : KEYHOLD_ERROR_FAILED),
                           error->message);
  set_string_property (self, &self->last_error, text != NULL ? text : "", PROP_LAST_ERROR);
}

static void
adopt_claims (KeyholdAccount *self, JsonObject *claims)
{
  g_clear_pointer (&self->claims, json_object_unref);
  self->claims = json_object_ref (claims);
  set_string_property (self, &self->subject, json_object_get_string_member (claims, "sub"),
                       PROP_SUBJECT);
  set_string_property (self, &self->display_name, keyhold_identity_display_name (claims),
                       PROP_DISPLAY_NAME);
}

/* ---- keyring ------------------------------------------------------------ */

/* The account's keyring item changes one request at a time, in the order
 * asked for: libsecret takes several round trips per change, so a write
 * still running when sign-out deletes the item could otherwise land after
 * the delete, or a late write for an ended sign-in replace the next one's
 * token. A change asked for in a generation that has since ended is not
 * made; it fails with KEYHOLD_ERROR_CANCELLED, as a cancelled one does. */
typedef struct
{
  guint generation;
  /* Made whatever the generation then: removal's delete. */
  gboolean any_generation;
  KeyholdSecret *refresh_token; /* NULL: delete the item */
} KeyringChange;

static void
keyring_change_free (KeyringChange *change)
{
  g_clear_pointer (&change->refresh_token, keyhold_secret_unref);
  g_free (change);
}

static void run_keyring_changes (KeyholdAccount *self);

static void
on_keyring_changed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  KeyringChange *change = g_task_get_task_data (task);
  g_autoptr (KeyholdAccount) self = g_object_ref (g_task_get_source_object (task));
  GError *error = NULL;
  gboolean done = change->refresh_token != NULL ? keyhold_keyring_store_finish (result, &error)
                                                : keyhold_keyring_delete_finish (result, &error);

  self->keyring_change_running = FALSE;
  if (done)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
  g_object_unref (task);
  run_keyring_changes (self);
}

static void
run_keyring_changes (KeyholdAccount *self)
{
  while (!self->keyring_change_running && !g_queue_is_empty (&self->keyring_changes))
    {
      GTask *task = g_queue_pop_head (&self->keyring_changes);
      KeyringChange *change = g_task_get_task_data (task);

      if (!change->any_generation && change->generation != self->generation)
        {
          g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_CANCELLED,
                                   "The sign-in this change was for has ended");
          g_object_unref (task);
          continue;
        }
      self->keyring_change_running = TRUE;
      if (change->refresh_token != NULL)
        keyhold_keyring_store_async (KEYHOLD_KEYRING_REFRESH_TOKEN, self->config->name,
                                     self->config->issuer, change->refresh_token,
                                     g_task_get_cancellable (task), on_keyring_changed, task);
      else
        keyhold_keyring_delete_async (KEYHOLD_KEYRING_REFRESH_TOKEN, self->config->name,
                                      self->config->issuer, g_task_get_cancellable (task),
                                      on_keyring_changed, task);
    }
}

/* Stores @refresh_token as the account's, or deletes the item when it is
 * NULL, once the changes asked for before are done, if @generation is
 * still current then. */
static void
queue_keyring_change (KeyholdAccount *self,
                      KeyringChange *change,
                      GCancellable *cancellable,
                      GAsyncReadyCallback callback,
                      gpointer user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_task_data (task, change, (GDestroyNotify) keyring_change_free);
  g_queue_push_tail (&self->keyring_changes, task);
  run_keyring_changes (self);
}

static void
change_keyring_async (KeyholdAccount *self,
                      guint generation,
                      KeyholdSecret *refresh_token,
                      GCancellable *cancellable,
                      GAsyncReadyCallback callback,
                      gpointer user_data)
{
  KeyringChange *change = g_new0 (KeyringChange, 1);

  change->generation = generation;
  if (refresh_token != NULL)
    change->refresh_token = keyhold_secret_ref (refresh_token);
  queue_keyring_change (self, change, cancellable, callback, user_data);
}

static gboolean
change_keyring_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void write_refresh_token (KeyholdAccount *self, GTask *refresh);
static void continue_refresh (GTask *task);
static void refresh_failed (KeyholdAccount *self,
                            GTask *task,
                            const GError *error,
                            gint64 retry_after_s);

typedef struct
{
  KeyholdAccount *self;
  guint generation;
  /* The refresh that rotated the token and waits for the write, or NULL
   * for a retry. */
  GTask *refresh;
} KeyringWrite;

static gboolean
retry_keyring_write (gpointer user_data)
{
  KeyholdAccount *self = user_data;

  self->keyring_retry_id = 0;
  write_refresh_token (self, NULL);
  return G_SOURCE_REMOVE;
}

static void
on_refresh_token_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  KeyringWrite *write = user_data;
  g_autoptr (KeyholdAccount) self = write->self;
  GTask *refresh = write->refresh;
  guint generation = write->generation;
  g_autoptr (GError) error = NULL;
  gboolean written = change_keyring_finish (result, &error);

  g_free (write);
  if (generation != self->generation)
    {
      /* The token belonged to a sign-in that has ended since. */
      g_clear_object (&refresh);
      return;
    }
  if (written)
    {
      self->keyring_write_pending = FALSE;
      self->keyring_retry_delay_s = 0;
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
           || g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_CANCELLED))
    {
      if (refresh != NULL)
        refresh_failed (self, refresh, error, -1);
      return;
    }
  else
    {
      /* Invariant 2: the rotated token is the only valid one now, so it
       * stays in memory and the write is tried again until it succeeds. */
      report_failure (self, "could not save the new refresh token, will retry", error);
      self->keyring_retry_delay_s = CLAMP (self->keyring_retry_delay_s * 2, 1, KEYRING_RETRY_CAP_S);
      self->keyring_retry_id
          = g_timeout_add_seconds (self->keyring_retry_delay_s, retry_keyring_write, self);
    }
  if (refresh != NULL)
    continue_refresh (refresh);
}

static void
write_refresh_token (KeyholdAccount *self, GTask *refresh)
{
  KeyringWrite *write = g_new0 (KeyringWrite, 1);

  write->self = g_object_ref (self);
  write->generation = self->generation;
  write->refresh = refresh;
  self->keyring_write_pending = TRUE;
  g_clear_handle_id (&self->keyring_retry_id, g_source_remove);
  change_keyring_async (self, self->generation, self->refresh_token, self->cancellable,
                        on_refresh_token_written, write);
}

static void forget_tokens (KeyholdAccount *self);

/* Ends the current sign-in generation: cancels its refresh and keyring
 * writes, stops its timers and forgets its tokens. What still completes
 * for it finds the generation ended and changes nothing. */
static void
end_generation (KeyholdAccount *self)
{
  self->generation++;
  g_cancellable_cancel (self->cancellable);
  g_object_unref (self->cancellable);
  self->cancellable = g_cancellable_new ();
  self->refreshing = FALSE;
  self->consecutive_failures = 0;
  self->retry_not_before_us = 0;
  self->retry_after_until_us = 0;
  forget_tokens (self);
}

static void
forget_tokens (KeyholdAccount *self)
{
  g_clear_pointer (&self->refresh_token, keyhold_secret_unref);
  g_clear_handle_id (&self->keyring_retry_id, g_source_remove);
  g_clear_handle_id (&self->refresh_timer_id, g_source_remove);
  g_hash_table_remove_all (self->last_refreshed_us);
  self->keyring_write_pending = FALSE;
  keyhold_token_cache_clear (self->tokens);
  set_time_property (self, &self->access_token_expiry_s, 0, PROP_ACCESS_TOKEN_EXPIRY);
  set_time_property (self, &self->next_refresh_s, 0, PROP_NEXT_REFRESH);
}

/* ---- waiters ------------------------------------------------------------ */

static void
token_waiter_free (TokenWaiter *waiter)
{
  g_clear_handle_id (&waiter->deadline_id, g_source_remove);
  g_clear_object (&waiter->task);
  g_free (waiter->key);
  g_strfreev (waiter->scopes);
  g_free (waiter->audience);
  g_free (waiter);
}

static void
finish_waiter (TokenWaiter *waiter, KeyholdSecret *token, gint64 expires_at_us, GError *error)
{
  KeyholdAccount *self = waiter->account;

  g_queue_remove (&self->waiters, waiter);
  if (token != NULL)
    {
      gint64 *expires_at_s = g_new (gint64, 1);

      *expires_at_s = expires_at_us / G_USEC_PER_SEC;
      g_task_set_task_data (waiter->task, expires_at_s, g_free);
      g_task_return_pointer (waiter->task, keyhold_secret_ref (token),
                             (GDestroyNotify) keyhold_secret_unref);
    }
  else
    {
      g_task_return_error (waiter->task, error);
    }
  token_waiter_free (waiter);
}

static gboolean
on_waiter_deadline (gpointer user_data)
{
  TokenWaiter *waiter = user_data;

  waiter->deadline_id = 0;
  finish_waiter (waiter, NULL, 0,
                 g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_TIMED_OUT,
                              "The provider did not answer within %d seconds", WAITER_DEADLINE_S));
  return G_SOURCE_REMOVE;
}

static gboolean
serve_from_cache (TokenWaiter *waiter)
{
  KeyholdAccount *self = waiter->account;
  gint64 now_us = keyhold_clock_now_us ();
  gint64 expires_at_us;
  g_autoptr (KeyholdSecret) token = NULL;

  keyhold_token_cache_expire (self->tokens, now_us);
  token = keyhold_token_cache_lookup (self->tokens, waiter->key, now_us, waiter->min_validity_s,
                                      &expires_at_us);
  if (token == NULL)
    return FALSE;
  finish_waiter (waiter, token, expires_at_us, NULL);
  return TRUE;
}

static GError *
state_error (KeyholdAccount *self)
{
  if (self->state == KEYHOLD_ACCOUNT_NEEDS_LOGIN)
    return g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_NEEDS_LOGIN,
                        "The provider ended the sign-in of account %s; sign in again",
                        self->config->name);
  return g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_NOT_SIGNED_IN, "Account %s is not signed in",
                      self->config->name);
}

static void
fail_all_waiters (KeyholdAccount *self, const GError *error)
{
  while (!g_queue_is_empty (&self->waiters))
    finish_waiter (g_queue_peek_head (&self->waiters), NULL, 0, g_error_copy (error));
}

/* When the last refresh for @key answered less than REFRESH_FLOOR_S ago,
 * the monotonic time at which another may start; else 0. */
static gint64
refresh_floor_end_us (KeyholdAccount *self, const char *key)
{
  gint64 *answered_us = g_hash_table_lookup (self->last_refreshed_us, key);
  gint64 end_us = answered_us != NULL ? *answered_us + REFRESH_FLOOR_S * G_USEC_PER_SEC : 0;

  return end_us > g_get_monotonic_time () ? end_us : 0;
}

static gboolean
is_older_than_floor (gpointer key, gpointer value, gpointer user_data)
{
  return *(gint64 *) value + REFRESH_FLOOR_S * G_USEC_PER_SEC <= *(gint64 *) user_data;
}

static void
note_refresh_answered (KeyholdAccount *self, const char *key)
{
  gint64 now_us = g_get_monotonic_time ();

  g_hash_table_foreach_remove (self->last_refreshed_us, is_older_than_floor, &now_us);
  g_hash_table_replace (self->last_refreshed_us, g_strdup (key),
                        g_memdup2 (&now_us, sizeof now_us));
}

static gboolean
on_pump_timer (gpointer user_data)
{
  KeyholdAccount *self = user_data;

  self->pump_timer_id = 0;
  pump_waiters (self);
  return G_SOURCE_REMOVE;
}

/* Serves every waiter the cache can satisfy and starts one refresh for the
 * first that it cannot; the others wait for that refresh to end, or for
 * the refresh floor of their key to pass (their deadline is longer). */
static void
pump_waiters (KeyholdAccount *self)
{
  GList *link, *next;
  TokenWaiter *first_unserved = NULL, *first_ready = NULL;
  gint64 floor_end_us = G_MAXINT64;

  if (!self->restored || self->refreshing)
    return;

  for (link = self->waiters.head; link != NULL; link = next)
    {
      TokenWaiter *waiter = link->data;
      gint64 end_us;

      next = link->next;
      if (serve_from_cache (waiter))
        continue;
      if (first_unserved == NULL)
        first_unserved = waiter;
      end_us = refresh_floor_end_us (self, waiter->key);
      if (end_us != 0)
        floor_end_us = MIN (floor_end_us, end_us);
      else if (first_ready == NULL)
        first_ready = waiter;
    }
  if (first_unserved == NULL)
    return;

  if (self->state == KEYHOLD_ACCOUNT_SIGNED_OUT || self->state == KEYHOLD_ACCOUNT_NEEDS_LOGIN)
    {
      g_autoptr (GError) error = state_error (self);
      fail_all_waiters (self, error);
      return;
    }
  if (first_ready == NULL)
    {
      g_clear_handle_id (&self->pump_timer_id, g_source_remove);
      /* The floor may have passed while waiters were served above. */
      self->pump_timer_id
          = g_timeout_add ((guint) (MAX (floor_end_us - g_get_monotonic_time (), 0) / 1000 + 1),
                           on_pump_timer, self);
      return;
    }
  if (g_get_monotonic_time () < self->retry_not_before_us)
    {
      g_autoptr (GError) offline = g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_OFFLINE,
                                                "The provider cannot be reached (%s); "
                                                "keyhold retries by itself",
                                                self->last_error_message);
      fail_waiters_for_key (self, first_ready->key, offline);
      return;
    }
  start_refresh (self, first_ready->key, (const char *const *) first_ready->scopes,
                 first_ready->audience);
}

/* Waiters for @key get @error. During an outage the cached token is still
 * served, but only to callers whose min_validity it meets: those never got
 * here, pump_waiters () answered them from the cache. */
static void
fail_waiters_for_key (KeyholdAccount *self, const char *key, const GError *error)
{
  GList *link, *next;

  for (link = self->waiters.head; link != NULL; link = next)
    {
      TokenWaiter *waiter = link->data;

      next = link->next;
      if (g_strcmp0 (waiter->key, key) == 0)
        finish_waiter (waiter, NULL, 0, g_error_copy (error));
    }
}

/* ---- refresh ------------------------------------------------------------ */

static void
refresh_attempt_free (RefreshAttempt *attempt)
{
  g_free (attempt->key);
  g_free (attempt->scope);
  g_free (attempt->audience);
  g_clear_pointer (&attempt->metadata, keyhold_provider_metadata_free);
  g_clear_pointer (&attempt->sent_refresh_token, keyhold_secret_unref);
  g_clear_pointer (&attempt->response, keyhold_token_response_free);
  g_free (attempt);
}

static gboolean on_refresh_timer (gpointer user_data);

/* Millisecond timers: a token that lives seconds cannot afford the up to
 * one second of slack of g_timeout_add_seconds (). */
static void
schedule_refresh_in_ms (KeyholdAccount *self, gint64 delay_ms)
{
  delay_ms = CLAMP (delay_ms, 100, (gint64) G_MAXUINT);
  g_clear_handle_id (&self->refresh_timer_id, g_source_remove);
  self->refresh_timer_id = g_timeout_add ((guint) delay_ms, on_refresh_timer, self);
  set_time_property (self, &self->next_refresh_s,
                     (keyhold_clock_now_us () / 1000 + delay_ms) / 1000, PROP_NEXT_REFRESH);
}

/* Keeps the account's own token fresh ahead of expiry, if the cache kept
 * it (@cached): a token too short-lived to keep is not worth renewing
 * before anyone asks. */
static void
schedule_proactive_refresh (KeyholdAccount *self,
                            gint64 sent_at_us,
                            gint64 expires_at_us,
                            gboolean cached)
{
  gint64 lifetime_us = MAX (expires_at_us - sent_at_us, 0);
  gint64 jitter_us = g_random_int_range (0, REFRESH_JITTER_PERCENT + 1) * (lifetime_us / 100);
  gint64 refresh_at_us = sent_at_us + lifetime_us * REFRESH_AT_PERCENT / 100 - jitter_us;

  if (!cached)
    {
      g_clear_handle_id (&self->refresh_timer_id, g_source_remove);
      set_time_property (self, &self->next_refresh_s, 0, PROP_NEXT_REFRESH);
      return;
    }
  schedule_refresh_in_ms (
      self, MAX ((refresh_at_us - keyhold_clock_now_us ()) / 1000, REFRESH_FLOOR_S * 1000));
}

static void
schedule_backoff (KeyholdAccount *self, gint64 retry_after_s)
{
  static const KeyholdBackoff refresh_backoff
      = { .first_bound_s = BACKOFF_FIRST_S, .cap_s = BACKOFF_CAP_S };
  guint delay_s = keyhold_backoff_delay_s (&refresh_backoff, self->consecutive_failures,
                                           retry_after_s, g_random_double ());

  /* Callers arriving during the pause get the cached token or Offline at
   * once instead of sending requests of their own: an outage must not turn
   * many callers into many requests. */
  self->retry_not_before_us = g_get_monotonic_time () + (gint64) delay_s * G_USEC_PER_SEC;
  self->retry_after_until_us
      = retry_after_s > 0 ? g_get_monotonic_time () + retry_after_s * G_USEC_PER_SEC : 0;
  schedule_refresh_in_ms (self, (gint64) delay_s * 1000);
}

static gboolean
on_refresh_timer (gpointer user_data)
{
  KeyholdAccount *self = user_data;

  self->refresh_timer_id = 0;
  set_time_property (self, &self->next_refresh_s, 0, PROP_NEXT_REFRESH);
  if (!self->refreshing
      && (self->state == KEYHOLD_ACCOUNT_SIGNED_IN || self->state == KEYHOLD_ACCOUNT_OFFLINE))
    start_refresh (self, "", NULL, NULL);
  return G_SOURCE_REMOVE;
}

static void finish_refresh (KeyholdAccount *self, GTask *task);

typedef enum
{
  REFRESH_FAILED_TRANSIENTLY,
  REFRESH_FAILED_SIGN_IN_GONE,
  REFRESH_FAILED_REJECTED,
} RefreshFailure;

static RefreshFailure
classify_refresh_error (const GError *error)
{
  /* A bare 400, 401 or 403 reaches here only after a confirming retry
   * (on_refresh_response): it is how some servers say invalid_grant. */
  if (g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_INVALID_GRANT)
      || g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_REFUSED_WITHOUT_REASON))
    return REFRESH_FAILED_SIGN_IN_GONE;
  if (error->domain == KEYHOLD_HTTP_ERROR
      || g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_TEMPORARILY_UNAVAILABLE)
      || g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_MALFORMED_RESPONSE))
    return REFRESH_FAILED_TRANSIENTLY;
  return REFRESH_FAILED_REJECTED;
}

/* Garbage or an oversized answer: the provider was reached but is not
 * working. Still transient (it may recover), but not "offline" to callers. */
static gboolean
provider_answer_unusable (const GError *error)
{
  return g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_MALFORMED_RESPONSE)
         || g_error_matches (error, KEYHOLD_HTTP_ERROR, KEYHOLD_HTTP_ERROR_TOO_LARGE);
}

static void on_sign_in_gone_deleted (GObject *source, GAsyncResult *result, gpointer user_data);

/* Every step of a refresh begins here: a refresh whose sign-in has ended
 * (sign-out, another sign-in, removal) is dropped without touching the
 * account. Returns TRUE, having released @task, when it was. */
static gboolean
drop_if_stale (KeyholdAccount *self, GTask *task)
{
  RefreshAttempt *attempt = g_task_get_task_data (task);

  if (attempt->generation == self->generation)
    return FALSE;
  g_object_unref (task);
  return TRUE;
}

static void
refresh_failed (KeyholdAccount *self, GTask *task, const GError *error, gint64 retry_after_s)
{
  RefreshAttempt *attempt = g_task_get_task_data (task);
  g_autoptr (GError) reported = NULL;

  self->refreshing = FALSE;
  /* Only shutdown cancels a refresh; nobody is waiting for its outcome. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_object_unref (task);
      return;
    }

  switch (classify_refresh_error (error))
    {
    case REFRESH_FAILED_SIGN_IN_GONE:
      /* Invariant 5: the sign-in is gone. Wipe tokens, drop the dead refresh
       * token from the keyring, keep the identity (queued work waits for the
       * same subject to sign in again). */
      report_failure (self, "the provider ended the sign-in", error);
      forget_tokens (self);
      set_state (self, KEYHOLD_ACCOUNT_NEEDS_LOGIN);
      change_keyring_async (self, self->generation, NULL, NULL, on_sign_in_gone_deleted,
                            g_object_ref (self));
      reported = state_error (self);
      fail_all_waiters (self, reported);
      break;

    case REFRESH_FAILED_TRANSIENTLY:
      /* Invariant 6: a network failure is not a sign-out. */
      report_failure (self, "could not refresh, will retry", error);
      self->consecutive_failures++;
      set_state (self, KEYHOLD_ACCOUNT_OFFLINE);
      schedule_backoff (self, retry_after_s);
      if (provider_answer_unusable (error))
        reported = g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_PROVIDER_ERROR,
                                "The provider's answer was unusable: %s", error->message);
      else
        reported = g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_OFFLINE,
                                "The provider cannot be reached: %s", error->message);
      fail_waiters_for_key (self, attempt->key, reported);
      break;

    case REFRESH_FAILED_REJECTED:
      report_failure (self, "the provider refused the refresh", error);
      set_state (self, KEYHOLD_ACCOUNT_SIGNED_IN);
      reported = g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_PROVIDER_ERROR,
                              "The provider refused the token request: %s", error->message);
      fail_waiters_for_key (self, attempt->key, reported);
      break;
    }
  set_last_error (self, reported);

  g_object_unref (task);
  pump_waiters (self);
}

static void
on_sign_in_gone_deleted (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (KeyholdAccount) self = user_data;
  g_autoptr (GError) error = NULL;

  /* Not made because a new sign-in came first: its token is not rejected. */
  if (!change_keyring_finish (result, &error)
      && !g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_CANCELLED))
    report_failure (self, "could not delete the rejected refresh token", error);
}

static void
on_refreshed_identity (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  KeyholdAccount *self = g_task_get_source_object (task);
  g_autoptr (JsonObject) claims = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) failure = NULL;
  KeyholdIdentityFailure kind;

  claims = keyhold_identity_validate_finish (result, &kind, &error);
  if (drop_if_stale (self, task))
    return;
  if (claims == NULL)
    {
      /* The rotated refresh token is already in the keyring and stays
       * there. Only an ID token that names another issuer, client or
       * subject ends the sign-in: the grant no longer speaks for this user.
       * A key set that could not be fetched or a token that is otherwise
       * unusable (a clock beyond the allowed skew) is transient, and the
       * access token of an answer whose ID token did not validate is not
       * used (ARCHITECTURE.md, "Token lifetime"). */
      if (kind == KEYHOLD_IDENTITY_OTHER_IDENTITY)
        failure = g_error_new (KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_INVALID_GRANT, "%s",
                               error->message);
      else if (kind == KEYHOLD_IDENTITY_UNVERIFIED)
        failure = g_error_new (KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_TEMPORARILY_UNAVAILABLE,
                               "%s", error->message);
      else
        failure = g_error_new (KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_MALFORMED_RESPONSE, "%s",
                               error->message);
      refresh_failed (self, task, failure, -1);
      return;
    }
  adopt_claims (self, claims);
  if (self->context->store != NULL)
    {
      g_autoptr (JsonNode) claims_node = json_node_init_object (json_node_alloc (), claims);
      g_autofree char *claims_json = json_to_string (claims_node, FALSE);
      g_autoptr (GError) store_error = NULL;

      if (!keyhold_store_put_identity (self->context->store, self->config->name,
                                       self->config->issuer, self->subject, claims_json,
                                       &store_error))
        report_failure (self, "could not save the refreshed identity", store_error);
    }
  finish_refresh (self, task);
}

/* The waiters for @key get the token just fetched: those that left
 * min_validity at 0 whatever its lifetime (it is the freshest there is,
 * and the only use of one the cache did not keep), the others if it meets
 * their min_validity. A waiter that even a fresh token cannot satisfy
 * would make every refresh start another; it gets a clear error instead. */
static void
serve_fresh_token (KeyholdAccount *self, const char *key, const KeyholdTokenResponse *response)
{
  gint64 lifetime_us = response->expires_at_us - response->sent_at_us;
  gint64 now_us = keyhold_clock_now_us ();
  GList *link, *next;

  for (link = self->waiters.head; link != NULL; link = next)
    {
      TokenWaiter *waiter = link->data;

      next = link->next;
      if (g_strcmp0 (waiter->key, key) != 0)
        continue;
      if (waiter->min_validity_s == 0
          || response->expires_at_us > now_us
                                           + keyhold_token_request_min_validity_us (
                                               waiter->min_validity_s, lifetime_us))
        finish_waiter (waiter, response->access_token, response->expires_at_us, NULL);
      else
        finish_waiter (waiter, NULL, 0,
                       g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_PROVIDER_ERROR,
                                    "The provider's tokens live %" G_GINT64_FORMAT
                                    " s, less than the requested min_validity of %u s",
                                    lifetime_us / G_USEC_PER_SEC, waiter->min_validity_s));
    }
}

static void
finish_refresh (KeyholdAccount *self, GTask *task)
{
  RefreshAttempt *attempt = g_task_get_task_data (task);
  KeyholdTokenResponse *response = attempt->response;
  gboolean cached = keyhold_token_cache_insert (self->tokens, attempt->key, response->access_token,
                                                response->sent_at_us, response->expires_at_us);

  /* A kept token serves later callers by itself; one that was not would
   * send each of them to the provider. */
  if (!cached)
    note_refresh_answered (self, attempt->key);
  if (*attempt->key == '\0')
    {
      set_time_property (self, &self->access_token_expiry_s,
                         response->expires_at_us / G_USEC_PER_SEC, PROP_ACCESS_TOKEN_EXPIRY);
      schedule_proactive_refresh (self, response->sent_at_us, response->expires_at_us, cached);
    }
  self->consecutive_failures = 0;
  self->retry_not_before_us = 0;
  self->retry_after_until_us = 0;
  self->refreshing = FALSE;
  set_last_error (self, NULL);
  set_state (self, KEYHOLD_ACCOUNT_SIGNED_IN);
  serve_fresh_token (self, attempt->key, response);
  g_object_unref (task);
  pump_waiters (self);
}

static void send_refresh (GTask *task);

static void
on_refresh_response (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  KeyholdAccount *self = g_task_get_source_object (task);
  RefreshAttempt *attempt = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  gint64 retry_after_s = -1;

  attempt->response = keyhold_oauth_refresh_finish (result, &retry_after_s, &error);
  if (drop_if_stale (self, task))
    return;
  if (attempt->response == NULL)
    {
      /* The provider may have rotated the token and lost only its answer;
       * servers with a rotation grace window accept the same token once
       * more, so that retry comes before anything else. */
      if (g_error_matches (error, KEYHOLD_HTTP_ERROR, KEYHOLD_HTTP_ERROR_ANSWER_LOST)
          && !attempt->resent_after_lost_answer)
        {
          attempt->resent_after_lost_answer = TRUE;
          send_refresh (task);
          return;
        }
      /* A refusal that does not say why may come from a proxy or a
       * hiccup; asked again, the same refusal confirms that the grant is
       * gone. The token was refused, not rotated, so it may go again. */
      if (g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_REFUSED_WITHOUT_REASON)
          && !attempt->resent_to_confirm_refusal)
        {
          attempt->resent_to_confirm_refusal = TRUE;
          send_refresh (task);
          return;
        }
      refresh_failed (self, task, error, retry_after_s);
      return;
    }

  /* RFC 6749 §6: a new refresh token replaces the old one, which is never
   * sent again; without one the old token stays valid. The refresh ends
   * only once the new one is in the keyring (invariant 2): answering first
   * would leave a window in which a crash loses the only valid token. */
  if (attempt->response->refresh_token != NULL
      && self->refresh_token == attempt->sent_refresh_token)
    {
      keyhold_secret_unref (self->refresh_token);
      self->refresh_token = keyhold_secret_ref (attempt->response->refresh_token);
      write_refresh_token (self, task);
      return;
    }
  continue_refresh (task);
}

/* After a successful refresh (and the keyring write of a rotated token):
 * the ID token, if the provider sent one, then the new access token. */
static void
continue_refresh (GTask *task)
{
  KeyholdAccount *self = g_task_get_source_object (task);
  RefreshAttempt *attempt = g_task_get_task_data (task);

  if (attempt->response->id_token != NULL)
    {
      /* The subject is unknown when the stored identity could not be read
       * (no database, say): then there is no subject to compare, and the
       * refreshed ID token is still checked for issuer, audience and
       * signature. */
      keyhold_identity_validate_async (self->context->providers, attempt->metadata,
                                       attempt->response->id_token, self->config->client_id, NULL,
                                       *self->subject != '\0' ? self->subject : NULL,
                                       self->cancellable, on_refreshed_identity, task);
      return;
    }
  finish_refresh (self, task);
}

static void
send_refresh (GTask *task)
{
  KeyholdAccount *self = g_task_get_source_object (task);
  RefreshAttempt *attempt = g_task_get_task_data (task);

  g_clear_pointer (&attempt->sent_refresh_token, keyhold_secret_unref);
  attempt->sent_refresh_token = keyhold_secret_ref (self->refresh_token);
  keyhold_oauth_refresh_async (self->context->http, attempt->metadata->token_endpoint,
                               self->config->client_id, attempt->sent_refresh_token, attempt->scope,
                               attempt->audience, self->cancellable, on_refresh_response, task);
}

static void
on_refresh_metadata (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  KeyholdAccount *self = g_task_get_source_object (task);
  RefreshAttempt *attempt = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;

  attempt->metadata
      = keyhold_provider_cache_get_metadata_finish (self->context->providers, result, &error);
  if (drop_if_stale (self, task))
    return;
  if (attempt->metadata == NULL)
    {
      refresh_failed (self, task, error, -1);
      return;
    }
  send_refresh (task);
}

static void
start_refresh (KeyholdAccount *self,
               const char *key,
               const char *const *scopes,
               const char *audience)
{
  GTask *task = g_task_new (self, NULL, NULL, NULL);
  RefreshAttempt *attempt = g_new0 (RefreshAttempt, 1);

  /* Single flight (invariant 3): this flag stays set until the attempt
   * ends, and pump_waiters starts nothing while it is. */
  self->refreshing = TRUE;
  attempt->generation = self->generation;
  attempt->key = g_strdup (key);
  if (scopes != NULL && scopes[0] != NULL)
    attempt->scope = g_strjoinv (" ", (char **) scopes);
  if (audience != NULL && *audience != '\0')
    attempt->audience = g_strdup (audience);
  g_task_set_task_data (task, attempt, (GDestroyNotify) refresh_attempt_free);
  set_state (self, KEYHOLD_ACCOUNT_REFRESHING);
  g_clear_handle_id (&self->refresh_timer_id, g_source_remove);
  set_time_property (self, &self->next_refresh_s, 0, PROP_NEXT_REFRESH);

  keyhold_provider_cache_get_metadata_async (self->context->providers, self->config->issuer,
                                             self->cancellable, on_refresh_metadata, task);
}

void
keyhold_account_recheck (KeyholdAccount *self)
{
  gint64 now_s = keyhold_clock_now_s ();

  if (!self->restored || self->refreshing
      || (self->state != KEYHOLD_ACCOUNT_SIGNED_IN && self->state != KEYHOLD_ACCOUNT_OFFLINE))
    return;

  keyhold_token_cache_expire (self->tokens, keyhold_clock_now_us ());
  /* The event may be the very reason the provider was unreachable, so the
   * backoff starts over; a Retry-After the server sent still stands. */
  self->consecutive_failures = 0;
  self->retry_not_before_us = self->retry_after_until_us;
  if (self->retry_after_until_us > g_get_monotonic_time ())
    {
      schedule_refresh_in_ms (self, (self->retry_after_until_us - g_get_monotonic_time ()) / 1000);
      return;
    }
  if (self->state == KEYHOLD_ACCOUNT_SIGNED_IN && self->next_refresh_s > now_s)
    {
      /* Still ahead in wall-clock terms: only the timer may be off. */
      schedule_refresh_in_ms (self, (self->next_refresh_s - now_s) * 1000);
      return;
    }
  start_refresh (self, "", NULL, NULL);
}

void
keyhold_account_network_lost (KeyholdAccount *self)
{
  if (self->state == KEYHOLD_ACCOUNT_SIGNED_IN)
    set_state (self, KEYHOLD_ACCOUNT_OFFLINE);
}

/* ---- public API --------------------------------------------------------- */

void
keyhold_account_get_token_async (KeyholdAccount *self,
                                 const char *const *scopes,
                                 const char *audience,
                                 guint min_validity_s,
                                 GCancellable *cancellable,
                                 GAsyncReadyCallback callback,
                                 gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr (GError) error = NULL;
  TokenWaiter *waiter;

  if (!keyhold_token_request_validate (scopes, audience, min_validity_s, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  waiter = g_new0 (TokenWaiter, 1);
  waiter->account = self;
  waiter->task = g_steal_pointer (&task);
  waiter->key = keyhold_token_request_key (scopes, audience);
  if (scopes != NULL && scopes[0] != NULL)
    waiter->scopes = g_strdupv ((char **) scopes);
  waiter->audience = g_strdup (audience);
  waiter->min_validity_s = min_validity_s;
  g_queue_push_tail (&self->waiters, waiter);

  if (serve_from_cache (waiter))
    return;
  waiter->deadline_id = g_timeout_add_seconds (WAITER_DEADLINE_S, on_waiter_deadline, waiter);
  pump_waiters (self);
}

KeyholdSecret *
keyhold_account_get_token_finish (KeyholdAccount *self,
                                  GAsyncResult *result,
                                  gint64 *out_expires_at_s,
                                  GError **error)
{
  KeyholdSecret *token = g_task_propagate_pointer (G_TASK (result), error);

  if (token != NULL && out_expires_at_s != NULL)
    *out_expires_at_s = *(gint64 *) g_task_get_task_data (G_TASK (result));
  return token;
}

void
keyhold_account_invalidate_token (KeyholdAccount *self,
                                  const char *const *scopes,
                                  const char *audience,
                                  const KeyholdSecret *token)
{
  g_autofree char *key = keyhold_token_request_key (scopes, audience);

  keyhold_token_cache_remove (self->tokens, key, token);
}

const char *
keyhold_account_get_subject (KeyholdAccount *self)
{
  return self->subject;
}

JsonObject *
keyhold_account_get_identity (KeyholdAccount *self, GError **error)
{
  if (self->claims == NULL)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NOT_SIGNED_IN,
                   "Account %s has never been signed in", self->config->name);
      return NULL;
    }
  return json_object_ref (self->claims);
}

void
keyhold_account_set_token_listener (KeyholdAccount *self,
                                    const KeyholdTokenCacheListener *listener,
                                    gpointer user_data)
{
  keyhold_token_cache_set_listener (self->tokens, listener, user_data);
}

const KeyholdAccountConfig *
keyhold_account_get_config (KeyholdAccount *self)
{
  return self->config;
}

KeyholdAccountState
keyhold_account_get_state (KeyholdAccount *self)
{
  return self->state;
}

/* ---- restore ------------------------------------------------------------ */

static void
on_restored_refresh_token (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (KeyholdAccount) self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdSecret) refresh_token = keyhold_keyring_lookup_finish (result, &error);

  /* A sign-in or sign-out while the keyring was being read decided the
   * state already (generation 0 is the one the agent started with). */
  if (self->generation != 0)
    {
      self->restored = TRUE;
      pump_waiters (self);
      return;
    }
  self->refresh_token = g_steal_pointer (&refresh_token);
  if (error != NULL)
    report_failure (self, "could not read the refresh token", error);

  if (self->refresh_token != NULL)
    set_state (self, KEYHOLD_ACCOUNT_SIGNED_IN);
  else if (self->claims != NULL && error == NULL)
    set_state (self, KEYHOLD_ACCOUNT_NEEDS_LOGIN);
  else
    set_state (self, KEYHOLD_ACCOUNT_SIGNED_OUT);
  if (error != NULL)
    set_last_error (self, error);

  /* No refresh now: the first caller (or the outbox) asks for one. A
   * refresh that nobody needs yet only widens the window in which a crash
   * could lose a freshly rotated token. */
  self->restored = TRUE;
  pump_waiters (self);
}

static void
restore_identity (KeyholdAccount *self)
{
  g_autofree char *issuer = NULL, *subject = NULL, *claims_json = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) node = NULL;

  if (self->context->store == NULL
      || !keyhold_store_get_identity (self->context->store, self->config->name, &issuer, &subject,
                                      &claims_json, &error))
    {
      if (error != NULL)
        report_failure (self, "could not read the stored identity", error);
      return;
    }
  /* An identity from another issuer belongs to an account of the same name
   * that was removed and added again; it does not describe this one. */
  if (g_strcmp0 (issuer, self->config->issuer) != 0)
    return;
  /* Read from disk: held to the same bounds as what the provider sent. */
  node = keyhold_untrusted_json_parse_object (claims_json, strlen (claims_json), &error);
  if (node == NULL)
    {
      g_autoptr (GError) corrupt = g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE,
                                                "The stored identity is not a JSON object");
      report_failure (self, "could not read the stored identity", corrupt);
      return;
    }
  adopt_claims (self, json_node_get_object (node));
}

void
keyhold_account_restore (KeyholdAccount *self)
{
  restore_identity (self);
  keyhold_keyring_lookup_async (KEYHOLD_KEYRING_REFRESH_TOKEN, self->config->name,
                                self->config->issuer, self->cancellable, on_restored_refresh_token,
                                g_object_ref (self));
}

/* ---- sign-in ------------------------------------------------------------ */

typedef struct
{
  KeyholdTokenResponse *response;
  JsonObject *claims;
  guint generation;
} SignInData;

static void
sign_in_data_free (SignInData *data)
{
  keyhold_token_response_free (data->response);
  json_object_unref (data->claims);
  g_free (data);
}

static void
on_sign_in_token_stored (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  KeyholdAccount *self = g_task_get_source_object (task);
  SignInData *data = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  g_autofree char *claims_json = NULL;
  g_autoptr (JsonNode) claims_node = NULL;
  gboolean cached;

  if (!change_keyring_finish (result, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  /* Signed out while the token was being stored: the sign-out's delete
   * comes after the store, so nothing of this sign-in stays. */
  if (data->generation != self->generation)
    {
      g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_CANCELLED,
                               "Account %s was signed out during the sign-in", self->config->name);
      return;
    }

  /* A refresh of the previous sign-in may still be in flight; its answer
   * must not reach this one. */
  end_generation (self);
  self->refresh_token = keyhold_secret_ref (data->response->refresh_token);
  adopt_claims (self, data->claims);
  claims_node = json_node_init_object (json_node_alloc (), data->claims);
  claims_json = json_to_string (claims_node, FALSE);
  if (self->context->store != NULL
      && !keyhold_store_put_identity (self->context->store, self->config->name,
                                      self->config->issuer, self->subject, claims_json, &error))
    {
      /* The sign-in itself worked; only GetIdentity after a restart loses. */
      report_failure (self, "could not save the identity", error);
      g_clear_error (&error);
    }

  cached = keyhold_token_cache_insert (self->tokens, "", data->response->access_token,
                                       data->response->sent_at_us, data->response->expires_at_us);
  set_time_property (self, &self->access_token_expiry_s,
                     data->response->expires_at_us / G_USEC_PER_SEC, PROP_ACCESS_TOKEN_EXPIRY);
  schedule_proactive_refresh (self, data->response->sent_at_us, data->response->expires_at_us,
                              cached);
  self->consecutive_failures = 0;
  set_last_error (self, NULL);
  set_state (self, KEYHOLD_ACCOUNT_SIGNED_IN);
  g_task_return_boolean (task, TRUE);
  pump_waiters (self);
}

void
keyhold_account_sign_in_async (KeyholdAccount *self,
                               KeyholdTokenResponse *response,
                               JsonObject *claims,
                               GCancellable *cancellable,
                               GAsyncReadyCallback callback,
                               gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  SignInData *data;

  /* The removal's delete may already have run: a token stored now would
   * stay in the keyring for a later account of the same name and issuer. */
  if (self->removed)
    {
      keyhold_token_response_free (response);
      g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_NO_SUCH_ACCOUNT,
                               "Account %s was removed during the sign-in", self->config->name);
      return;
    }
  /* Without a refresh token keyhold could serve one access token and then
   * nothing; a clear failure tells the user what to configure instead. */
  if (response->refresh_token == NULL)
    {
      keyhold_token_response_free (response);
      g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_SIGN_IN_FAILED,
                               "The provider issued no refresh token; the account may need the "
                               "offline_access scope");
      return;
    }

  data = g_new0 (SignInData, 1);
  data->response = response;
  data->claims = json_object_ref (claims);
  data->generation = self->generation;
  g_task_set_task_data (task, data, (GDestroyNotify) sign_in_data_free);
  change_keyring_async (self, data->generation, response->refresh_token, cancellable,
                        on_sign_in_token_stored, g_steal_pointer (&task));
}

gboolean
keyhold_account_sign_in_finish (KeyholdAccount *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- sign-out ----------------------------------------------------------- */

typedef struct
{
  KeyholdSecret *refresh_token;
  KeyholdProviderMetadata *metadata;
  GCancellable *revoke_cancellable;
  guint revoke_deadline_id;
  gulong lifetime_handler_id;
  guint generation;
  /* The account is being removed: its keyring item goes whatever sign-in
   * came in between. */
  gboolean removal;
} SignOutData;

static void
sign_out_data_free (SignOutData *data)
{
  g_clear_handle_id (&data->revoke_deadline_id, g_source_remove);
  g_clear_object (&data->revoke_cancellable);
  g_clear_pointer (&data->refresh_token, keyhold_secret_unref);
  g_clear_pointer (&data->metadata, keyhold_provider_metadata_free);
  g_free (data);
}

static void
on_sign_out_deleted (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (GError) error = NULL;

  /* Not made because a sign-in came first: the item is that sign-in's now.
   * A removal's delete is made whatever the generation, so it never ends
   * so. */
  if (!change_keyring_finish (result, &error)
      && !g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_CANCELLED))
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_boolean (task, TRUE);
}

static void
delete_refresh_token (GTask *task)
{
  KeyholdAccount *self = g_task_get_source_object (task);
  SignOutData *data = g_task_get_task_data (task);
  KeyringChange *change = g_new0 (KeyringChange, 1);

  change->generation = data->generation;
  change->any_generation = data->removal;
  queue_keyring_change (self, change, NULL, on_sign_out_deleted, task);
}

/* The local half of a sign-out, done at once: nothing of the sign-in is
 * served or refreshed from here on, whatever is still in flight for it. */
static void
forget_sign_in (KeyholdAccount *self)
{
  g_autoptr (GError) error = NULL;

  end_generation (self);
  g_clear_pointer (&self->claims, json_object_unref);
  set_string_property (self, &self->subject, "", PROP_SUBJECT);
  set_string_property (self, &self->display_name, "", PROP_DISPLAY_NAME);
  set_last_error (self, NULL);
  set_state (self, KEYHOLD_ACCOUNT_SIGNED_OUT);
  if (self->context->store != NULL
      && !keyhold_store_delete_identity (self->context->store, self->config->name, &error))
    report_failure (self, "could not delete the stored identity", error);

  {
    g_autoptr (GError) signed_out = state_error (self);
    fail_all_waiters (self, signed_out);
  }
}

static gboolean
on_revoke_deadline (gpointer user_data)
{
  SignOutData *data = user_data;

  data->revoke_deadline_id = 0;
  g_cancellable_cancel (data->revoke_cancellable);
  return G_SOURCE_REMOVE;
}

static void
on_lifetime_ended (GCancellable *lifetime, GCancellable *revoke_cancellable)
{
  g_cancellable_cancel (revoke_cancellable);
}

static void
on_revoked (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  KeyholdAccount *self = g_task_get_source_object (task);
  g_autoptr (GError) error = NULL;

  /* Revocation is a courtesy to the provider; the local sign-out happens
   * whatever it answers (ARCHITECTURE.md, "Token lifetime"). */
  SignOutData *data = g_task_get_task_data (task);

  if (!keyhold_oauth_revoke_finish (result, &error))
    report_failure (self, "could not revoke the refresh token", error);
  g_clear_handle_id (&data->revoke_deadline_id, g_source_remove);
  g_cancellable_disconnect (self->lifetime, data->lifetime_handler_id);
  data->lifetime_handler_id = 0;
  delete_refresh_token (task);
}

static void
on_sign_out_metadata (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  KeyholdAccount *self = g_task_get_source_object (task);
  SignOutData *data = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;

  data->metadata
      = keyhold_provider_cache_get_metadata_finish (self->context->providers, result, &error);
  if (data->metadata == NULL || data->metadata->revocation_endpoint == NULL)
    {
      if (error != NULL)
        report_failure (self, "could not revoke the refresh token", error);
      delete_refresh_token (task);
      return;
    }
  data->revoke_cancellable = g_cancellable_new ();
  data->revoke_deadline_id = g_timeout_add_seconds (REVOKE_DEADLINE_S, on_revoke_deadline, data);
  /* Revocation uses the HTTP client, which the daemon frees soon after
   * disposing the account. Connecting to a cancelled @lifetime cancels at
   * once. */
  data->lifetime_handler_id
      = g_cancellable_connect (self->lifetime, G_CALLBACK (on_lifetime_ended),
                               g_object_ref (data->revoke_cancellable), g_object_unref);
  keyhold_oauth_revoke_async (self->context->http, data->metadata->revocation_endpoint,
                              self->config->client_id, data->refresh_token,
                              data->revoke_cancellable, on_revoked, task);
}

static void
sign_out (KeyholdAccount *self,
          gboolean removal,
          GCancellable *cancellable,
          GAsyncReadyCallback callback,
          gpointer user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  SignOutData *data = g_new0 (SignOutData, 1);

  g_task_set_task_data (task, data, (GDestroyNotify) sign_out_data_free);
  data->removal = removal;
  if (self->refresh_token != NULL)
    data->refresh_token = keyhold_secret_ref (self->refresh_token);
  forget_sign_in (self);
  data->generation = self->generation;
  if (data->refresh_token == NULL)
    {
      delete_refresh_token (task);
      return;
    }
  keyhold_provider_cache_get_metadata_async (self->context->providers, self->config->issuer,
                                             self->lifetime, on_sign_out_metadata, task);
}

void
keyhold_account_sign_out_async (KeyholdAccount *self,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data)
{
  sign_out (self, FALSE, cancellable, callback, user_data);
}

gboolean
keyhold_account_sign_out_finish (KeyholdAccount *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

void
keyhold_account_remove_async (KeyholdAccount *self,
                              GCancellable *cancellable,
                              GAsyncReadyCallback callback,
                              gpointer user_data)
{
  self->removed = TRUE;
  sign_out (self, TRUE, cancellable, callback, user_data);
}

gboolean
keyhold_account_remove_finish (KeyholdAccount *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

void
keyhold_account_removal_failed (KeyholdAccount *self)
{
  self->removed = FALSE;
}

gboolean
keyhold_account_is_removed (KeyholdAccount *self)
{
  return self->removed;
}

/* ---- GObject ------------------------------------------------------------ */

KeyholdAccount *
keyhold_account_new (KeyholdContext *context, const KeyholdAccountConfig *config)
{
  KeyholdAccount *self = g_object_new (KEYHOLD_TYPE_ACCOUNT, NULL);

  self->context = context;
  self->config = keyhold_account_config_copy (config);
  return self;
}

static void
keyhold_account_init (KeyholdAccount *self)
{
  self->cancellable = g_cancellable_new ();
  self->lifetime = g_cancellable_new ();
  self->tokens = keyhold_token_cache_new ();
  self->last_refreshed_us = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->subject = g_strdup ("");
  self->display_name = g_strdup ("");
  self->last_error = g_strdup ("");
  self->last_error_message = g_strdup ("");
  g_queue_init (&self->waiters);
  g_queue_init (&self->keyring_changes);
}

static void
keyhold_account_dispose (GObject *object)
{
  KeyholdAccount *self = KEYHOLD_ACCOUNT (object);
  g_autoptr (GError) error
      = g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_NO_SUCH_ACCOUNT, "The account was removed");

  end_generation (self);
  g_cancellable_cancel (self->lifetime);
  fail_all_waiters (self, error);
  g_clear_handle_id (&self->pump_timer_id, g_source_remove);
  /* The daemon frees the fast path after disposing its accounts; a late
   * finalize must not reach it. */
  keyhold_token_cache_set_listener (self->tokens, NULL, NULL);
  G_OBJECT_CLASS (keyhold_account_parent_class)->dispose (object);
}

static void
keyhold_account_finalize (GObject *object)
{
  KeyholdAccount *self = KEYHOLD_ACCOUNT (object);

  g_clear_object (&self->cancellable);
  g_clear_object (&self->lifetime);
  keyhold_token_cache_free (self->tokens);
  g_hash_table_unref (self->last_refreshed_us);
  keyhold_account_config_free (self->config);
  g_clear_pointer (&self->claims, json_object_unref);
  g_free (self->subject);
  g_free (self->display_name);
  g_free (self->last_error);
  g_free (self->last_error_message);
  G_OBJECT_CLASS (keyhold_account_parent_class)->finalize (object);
}

static void
keyhold_account_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  KeyholdAccount *self = KEYHOLD_ACCOUNT (object);

  switch (prop_id)
    {
    case PROP_STATE:
      g_value_set_string (value, state_to_string (self->state));
      break;
    case PROP_SUBJECT:
      g_value_set_string (value, self->subject);
      break;
    case PROP_DISPLAY_NAME:
      g_value_set_string (value, self->display_name);
      break;
    case PROP_ACCESS_TOKEN_EXPIRY:
      g_value_set_int64 (value, self->access_token_expiry_s);
      break;
    case PROP_NEXT_REFRESH:
      g_value_set_int64 (value, self->next_refresh_s);
      break;
    case PROP_LAST_ERROR:
      g_value_set_string (value, self->last_error);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
keyhold_account_class_init (KeyholdAccountClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;

  object_class->dispose = keyhold_account_dispose;
  object_class->finalize = keyhold_account_finalize;
  object_class->get_property = keyhold_account_get_property;

  properties[PROP_STATE] = g_param_spec_string ("state", NULL, NULL, "signed-out", flags);
  properties[PROP_SUBJECT] = g_param_spec_string ("subject", NULL, NULL, "", flags);
  properties[PROP_DISPLAY_NAME] = g_param_spec_string ("display-name", NULL, NULL, "", flags);
  properties[PROP_ACCESS_TOKEN_EXPIRY]
      = g_param_spec_int64 ("access-token-expiry", NULL, NULL, 0, G_MAXINT64, 0, flags);
  properties[PROP_NEXT_REFRESH]
      = g_param_spec_int64 ("next-refresh", NULL, NULL, 0, G_MAXINT64, 0, flags);
  properties[PROP_LAST_ERROR] = g_param_spec_string ("last-error", NULL, NULL, "", flags);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  signals[SIGNAL_FAILURE]
      = g_signal_new ("failure", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                      G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_ERROR);
}
