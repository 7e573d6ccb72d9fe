/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "keyhold-contract.h"

#include "accounts/token-request.h"
#include "base/clock.h"
#include "bus/token-fast-path.h"

typedef struct
{
  KeyholdSecret *token;
  gint64 issued_at_us;
  gint64 expires_at_us;
} PublishedToken;

/* Shared with the filter, which GDBus may still run for a moment after
 * the filter is removed; hence reference counted, and @access is cleared
 * under @lock before the access checker goes away. */
typedef struct
{
  GMutex lock;
  KeyholdAccess *access;
  /* "OBJECT-PATH\nKEY" -> PublishedToken */
  GHashTable *tokens;
} FastPathState;

struct _KeyholdTokenFastPath
{
  GDBusConnection *connection;
  guint filter_id;
  FastPathState *state;
};

static void
published_token_free (PublishedToken *published)
{
  keyhold_secret_unref (published->token);
  g_free (published);
}

static void
state_clear (FastPathState *state)
{
  g_hash_table_unref (state->tokens);
  g_mutex_clear (&state->lock);
}

static void
state_unref (gpointer state)
{
  g_atomic_rc_box_release_full (state, (GDestroyNotify) state_clear);
}

static char *
table_key (const char *object_path, const char *key)
{
  return g_strconcat (object_path, "\n", key, NULL);
}

/* A new reference to a token for @object_path and @key that stays valid
 * at least @min_validity_s more (0: the default for its lifetime, the same
 * rule as the account's), if the caller is allowed. */
static KeyholdSecret *
lookup (FastPathState *state,
        const char *sender,
        const char *object_path,
        const char *key,
        guint min_validity_s,
        gint64 *out_expires_at_us)
{
  g_autofree char *wanted = table_key (object_path, key);
  KeyholdSecret *token = NULL;
  PublishedToken *published;

  g_mutex_lock (&state->lock);
  published = g_hash_table_lookup (state->tokens, wanted);
  if (state->access != NULL && published != NULL
      && published->expires_at_us
             > keyhold_clock_now_us ()
                   + keyhold_token_request_min_validity_us (
                       min_validity_s, published->expires_at_us - published->issued_at_us)
      && keyhold_access_is_allowed (state->access, sender))
    {
      token = keyhold_secret_ref (published->token);
      *out_expires_at_us = published->expires_at_us;
    }
  g_mutex_unlock (&state->lock);
  return token;
}

static gboolean
is_get_access_token (GDBusMessage *message)
{
  return g_dbus_message_get_message_type (message) == G_DBUS_MESSAGE_TYPE_METHOD_CALL
         && !(g_dbus_message_get_flags (message) & G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED)
         && g_strcmp0 (g_dbus_message_get_interface (message), KEYHOLD_ACCOUNT1_INTERFACE) == 0
         && g_strcmp0 (g_dbus_message_get_member (message), "GetAccessToken") == 0
         && g_dbus_message_get_body (message) != NULL
         && g_variant_is_of_type (g_dbus_message_get_body (message), G_VARIANT_TYPE ("(assu)"));
}

static GDBusMessage *
on_message (GDBusConnection *connection,
            GDBusMessage *message,
            gboolean incoming,
            gpointer user_data)
{
  FastPathState *state = user_data;
  g_autofree const char **scopes = NULL;
  g_autofree char *key = NULL;
  g_autoptr (KeyholdSecret) token = NULL;
  g_autoptr (GDBusMessage) reply = NULL;
  const char *audience;
  guint32 min_validity;
  gint64 expires_at_us = 0;

  if (!incoming || !is_get_access_token (message))
    return message;

  g_variant_get (g_dbus_message_get_body (message), "(^a&s&su)", &scopes, &audience, &min_validity);
  if (!keyhold_token_request_validate (scopes, audience, min_validity, NULL))
    return message;
  key = keyhold_token_request_key (scopes, audience);
  token = lookup (state, g_dbus_message_get_sender (message), g_dbus_message_get_path (message),
                  key, min_validity, &expires_at_us);
  if (token == NULL)
    return message;

  /* The same reply the main loop would send; sending only queues it. */
  reply = g_dbus_message_new_method_reply (message);
  g_dbus_message_set_body (
      reply, g_variant_new ("(sx)", keyhold_secret_get (token), expires_at_us / G_USEC_PER_SEC));
  g_dbus_connection_send_message (connection, reply, G_DBUS_SEND_MESSAGE_FLAGS_NONE, NULL, NULL);
  g_object_unref (message);
  return NULL;
}

KeyholdTokenFastPath *
keyhold_token_fast_path_new (GDBusConnection *connection, KeyholdAccess *access)
{
  KeyholdTokenFastPath *fast_path = g_new0 (KeyholdTokenFastPath, 1);
  FastPathState *state = g_atomic_rc_box_new0 (FastPathState);

  g_mutex_init (&state->lock);
  state->access = access;
  state->tokens = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) published_token_free);
  fast_path->state = state;
  fast_path->connection = g_object_ref (connection);
  fast_path->filter_id = g_dbus_connection_add_filter (
      connection, on_message, g_atomic_rc_box_acquire (state), state_unref);
  return fast_path;
}

void
keyhold_token_fast_path_free (KeyholdTokenFastPath *fast_path)
{
  if (fast_path == NULL)
    return;
  g_mutex_lock (&fast_path->state->lock);
  fast_path->state->access = NULL;
  g_hash_table_remove_all (fast_path->state->tokens);
  g_mutex_unlock (&fast_path->state->lock);
  g_dbus_connection_remove_filter (fast_path->connection, fast_path->filter_id);
  g_object_unref (fast_path->connection);
  state_unref (fast_path->state);
  g_free (fast_path);
}

void
keyhold_token_fast_path_publish (KeyholdTokenFastPath *fast_path,
                                 const char *object_path,
                                 const char *key,
                                 KeyholdSecret *token,
                                 gint64 issued_at_us,
                                 gint64 expires_at_us)
{
  PublishedToken *published = g_new0 (PublishedToken, 1);

  published->token = keyhold_secret_ref (token);
  published->issued_at_us = issued_at_us;
  published->expires_at_us = expires_at_us;
  g_mutex_lock (&fast_path->state->lock);
  g_hash_table_replace (fast_path->state->tokens, table_key (object_path, key), published);
  g_mutex_unlock (&fast_path->state->lock);
}

void
keyhold_token_fast_path_withdraw (KeyholdTokenFastPath *fast_path,
                                  const char *object_path,
                                  const char *key)
{
  g_autofree char *wanted = table_key (object_path, key);

  g_mutex_lock (&fast_path->state->lock);
  g_hash_table_remove (fast_path->state->tokens, wanted);
  g_mutex_unlock (&fast_path->state->lock);
}

static gboolean
belongs_to_path (gpointer key, gpointer value, gpointer user_data)
{
  const char *prefix = user_data;

  return g_str_has_prefix (key, prefix);
}

void
keyhold_token_fast_path_withdraw_all (KeyholdTokenFastPath *fast_path, const char *object_path)
{
  g_autofree char *prefix = table_key (object_path, "");

  g_mutex_lock (&fast_path->state->lock);
  g_hash_table_foreach_remove (fast_path->state->tokens, belongs_to_path, prefix);
  g_mutex_unlock (&fast_path->state->lock);
}
