/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold/keyhold.h"
#include "keyhold-account-private.h"
#include "keyhold-dbus-private.h"
#include "keyhold-sync-private.h"
#include "keyhold-token-private.h"

enum
{
  PROP_0,
  PROP_NAME,
  PROP_ISSUER,
  PROP_SCOPES,
  PROP_API_ORIGINS,
  PROP_SUBJECT,
  PROP_DISPLAY_NAME,
  PROP_STATE,
  PROP_ACCESS_TOKEN_EXPIRY,
  PROP_NEXT_REFRESH,
  PROP_LAST_ERROR,
  N_PROPS
};

/**
 * KeyholdAccount:
 *
 * One account of the keyhold agent: its settings and sign-in state as
 * properties, and the operations that use it (access tokens, the identity
 * of the signed-in user, signing out).
 *
 * Accounts come from a #KeyholdClient, which keeps their properties up to
 * date and emits #GObject::notify when one changes. An account is bound to
 * its name, not to one agent process: when the agent restarts, the same
 * object receives the new agent's values, and a call made while the agent
 * is not running starts it (when D-Bus activation is installed) or fails
 * with %KEYHOLD_ERROR_AGENT_UNAVAILABLE. While the agent is away the
 * properties keep their last known values.
 *
 * The strings that the property getters return belong to the account and
 * stay valid until that property changes.
 *
 * Since: 0.1
 */
struct _KeyholdAccount
{
  GObject parent_instance;

  GDBusConnection *connection;
  char *object_path;
  /* The org.keyhold.Account1 value of each property, by property id. */
  GVariant *values[N_PROPS];
  KeyholdAccountState state;
};

G_DEFINE_FINAL_TYPE (KeyholdAccount, keyhold_account, G_TYPE_OBJECT)

static GParamSpec *properties[N_PROPS];

/* The D-Bus property behind each GObject property, and its type. */
static const struct
{
  const char *name;
  const char *type;
} dbus_properties[N_PROPS] = {
  [PROP_NAME] = { "Name", "s" },
  [PROP_ISSUER] = { "Issuer", "s" },
  [PROP_SCOPES] = { "Scopes", "as" },
  [PROP_API_ORIGINS] = { "ApiOrigins", "as" },
  [PROP_SUBJECT] = { "Subject", "s" },
  [PROP_DISPLAY_NAME] = { "DisplayName", "s" },
  [PROP_STATE] = { "State", "s" },
  [PROP_ACCESS_TOKEN_EXPIRY] = { "AccessTokenExpiry", "x" },
  [PROP_NEXT_REFRESH] = { "NextRefresh", "x" },
  [PROP_LAST_ERROR] = { "LastError", "s" },
};

static GVariant *
default_value (const char *type)
{
  if (g_str_equal (type, "s"))
    return g_variant_ref_sink (g_variant_new_string (""));
  if (g_str_equal (type, "as"))
    return g_variant_ref_sink (g_variant_new_strv (NULL, 0));
  return g_variant_ref_sink (g_variant_new_int64 (0));
}

static KeyholdAccountState
state_from_string (const char *text)
{
  g_autoptr (GEnumClass) states = g_type_class_ref (KEYHOLD_TYPE_ACCOUNT_STATE);
  GEnumValue *state = g_enum_get_value_by_nick (states, text);

  return state != NULL ? (KeyholdAccountState) state->value : KEYHOLD_ACCOUNT_STATE_UNKNOWN;
}

static guint
property_for_dbus_name (const char *name)
{
  for (guint id = PROP_NAME; id < N_PROPS; id++)
    if (g_str_equal (dbus_properties[id].name, name))
      return id;
  return PROP_0;
}

/* The name is the account's identity, so it is never replaced. */
static gboolean
set_value (KeyholdAccount *self, guint id, GVariant *value)
{
  if (id == PROP_0 || (id == PROP_NAME && self->values[PROP_NAME] != NULL)
      || !g_variant_is_of_type (value, G_VARIANT_TYPE (dbus_properties[id].type))
      || (self->values[id] != NULL && g_variant_equal (self->values[id], value)))
    return FALSE;

  g_clear_pointer (&self->values[id], g_variant_unref);
  self->values[id] = g_variant_ref_sink (value);
  if (id == PROP_STATE)
    self->state = state_from_string (g_variant_get_string (value, NULL));
  return TRUE;
}

void
keyhold_account_update (KeyholdAccount *self, GVariant *properties_dict)
{
  GVariantIter iter;
  const char *name;
  GVariant *value;

  g_object_freeze_notify (G_OBJECT (self));
  g_variant_iter_init (&iter, properties_dict);
  while (g_variant_iter_next (&iter, "{&sv}", &name, &value))
    {
      guint id = property_for_dbus_name (name);

      if (set_value (self, id, value))
        g_object_notify_by_pspec (G_OBJECT (self), properties[id]);
      g_variant_unref (value);
    }
  g_object_thaw_notify (G_OBJECT (self));
}

KeyholdAccount *
keyhold_account_new (GDBusConnection *connection,
                     const char *object_path,
                     GVariant *properties_dict)
{
  KeyholdAccount *self = g_object_new (KEYHOLD_TYPE_ACCOUNT, NULL);

  self->connection = g_object_ref (connection);
  self->object_path = g_strdup (object_path);
  keyhold_account_update (self, properties_dict);
  for (guint id = PROP_NAME; id < N_PROPS; id++)
    if (self->values[id] == NULL)
      self->values[id] = default_value (dbus_properties[id].type);
  return self;
}

const char *
keyhold_account_get_object_path (KeyholdAccount *self)
{
  return self->object_path;
}

static const char *
get_string (KeyholdAccount *self, guint id)
{
  return g_variant_get_string (self->values[id], NULL);
}

static gint64
get_int64 (KeyholdAccount *self, guint id)
{
  return g_variant_get_int64 (self->values[id]);
}

/**
 * keyhold_account_get_name:
 * @self: a #KeyholdAccount
 *
 * Gets the account's local name.
 *
 * Returns: (transfer none): the account's local name, such as "work".
 *
 * Since: 0.1
 */
const char *
keyhold_account_get_name (KeyholdAccount *self)
{
  g_return_val_if_fail (KEYHOLD_IS_ACCOUNT (self), NULL);

  return get_string (self, PROP_NAME);
}

/**
 * keyhold_account_get_issuer:
 * @self: a #KeyholdAccount
 *
 * Gets the account's issuer.
 *
 * Returns: (transfer none): the provider's issuer URL.
 *
 * Since: 0.1
 */
const char *
keyhold_account_get_issuer (KeyholdAccount *self)
{
  g_return_val_if_fail (KEYHOLD_IS_ACCOUNT (self), NULL);

  return get_string (self, PROP_ISSUER);
}

/**
 * keyhold_account_dup_scopes:
 * @self: a #KeyholdAccount
 *
 * Gets the scopes the account requests at sign-in.
 *
 * Returns: (transfer full) (array zero-terminated=1): the scopes requested
 *   at sign-in.
 *
 * Since: 0.1
 */
char **
keyhold_account_dup_scopes (KeyholdAccount *self)
{
  g_return_val_if_fail (KEYHOLD_IS_ACCOUNT (self), NULL);

  return g_variant_dup_strv (self->values[PROP_SCOPES], NULL);
}

/**
 * keyhold_account_dup_api_origins:
 * @self: a #KeyholdAccount
 *
 * The origins (`https://host[:port]`) this account's tokens may be sent
 * to, and so the only origins its outbox requests may address.
 *
 * Returns: (transfer full) (array zero-terminated=1): the API origins.
 *
 * Since: 0.1
 */
char **
keyhold_account_dup_api_origins (KeyholdAccount *self)
{
  g_return_val_if_fail (KEYHOLD_IS_ACCOUNT (self), NULL);

  return g_variant_dup_strv (self->values[PROP_API_ORIGINS], NULL);
}

/**
 * keyhold_account_get_subject:
 * @self: a #KeyholdAccount
 *
 * Gets the signed-in user's subject identifier.
 *
 * Returns: (transfer none): the signed-in user's subject ("sub"), or ""
 *   before the first sign-in.
 *
 * Since: 0.1
 */
const char *
keyhold_account_get_subject (KeyholdAccount *self)
{
  g_return_val_if_fail (KEYHOLD_IS_ACCOUNT (self), NULL);

  return get_string (self, PROP_SUBJECT);
}

/**
 * keyhold_account_get_display_name:
 * @self: a #KeyholdAccount
 *
 * Gets a name to show for the signed-in user.
 *
 * Returns: (transfer none): the user's name, else e-mail address, else
 *   subject; "" before the first sign-in.
 *
 * Since: 0.1
 */
const char *
keyhold_account_get_display_name (KeyholdAccount *self)
{
  g_return_val_if_fail (KEYHOLD_IS_ACCOUNT (self), NULL);

  return get_string (self, PROP_DISPLAY_NAME);
}

/**
 * keyhold_account_get_state:
 * @self: a #KeyholdAccount
 *
 * Gets the account's sign-in state.
 *
 * Returns: the account's sign-in state.
 *
 * Since: 0.1
 */
KeyholdAccountState
keyhold_account_get_state (KeyholdAccount *self)
{
  g_return_val_if_fail (KEYHOLD_IS_ACCOUNT (self), KEYHOLD_ACCOUNT_STATE_UNKNOWN);

  return self->state;
}

/**
 * keyhold_account_get_access_token_expiry:
 * @self: a #KeyholdAccount
 *
 * Gets when the account's default access token expires.
 *
 * Returns: the Unix time (seconds) at which the default access token
 *   expires, or 0 when there is none.
 *
 * Since: 0.1
 */
gint64
keyhold_account_get_access_token_expiry (KeyholdAccount *self)
{
  g_return_val_if_fail (KEYHOLD_IS_ACCOUNT (self), 0);

  return get_int64 (self, PROP_ACCESS_TOKEN_EXPIRY);
}

/**
 * keyhold_account_get_next_refresh:
 * @self: a #KeyholdAccount
 *
 * Gets when the agent next plans to refresh the account's tokens.
 *
 * Returns: the Unix time (seconds) of the next planned refresh, or 0.
 *
 * Since: 0.1
 */
gint64
keyhold_account_get_next_refresh (KeyholdAccount *self)
{
  g_return_val_if_fail (KEYHOLD_IS_ACCOUNT (self), 0);

  return get_int64 (self, PROP_NEXT_REFRESH);
}

/**
 * keyhold_account_get_last_error:
 * @self: a #KeyholdAccount
 *
 * Gets the last error the agent had with the account's provider.
 *
 * Returns: (transfer none): "Name: message" of the last failure talking to
 *   the provider, or "" after a success.
 *
 * Since: 0.1
 */
const char *
keyhold_account_get_last_error (KeyholdAccount *self)
{
  g_return_val_if_fail (KEYHOLD_IS_ACCOUNT (self), NULL);

  return get_string (self, PROP_LAST_ERROR);
}

static void
call_account_method (KeyholdAccount *self,
                     const char *method,
                     GVariant *parameters,
                     const char *reply_type,
                     gpointer source_tag,
                     GCancellable *cancellable,
                     GAsyncReadyCallback callback,
                     gpointer user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  keyhold_dbus_call_for_task (self->connection, self->object_path, KEYHOLD_ACCOUNT1_INTERFACE,
                              method, parameters, reply_type, task);
}

static GVariant *
propagate_reply (KeyholdAccount *self, GAsyncResult *result, gpointer source_tag, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == source_tag, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * keyhold_account_get_token:
 * @self: a #KeyholdAccount
 * @scopes: (nullable) (array zero-terminated=1): the scopes the token must
 *   carry, or %NULL for the account's scopes
 * @audience: (nullable): the API the token is for (an RFC 8707 resource
 *   indicator), or %NULL
 * @min_validity: seconds the token must still be valid; 0 means 60, or half
 *   the token's lifetime if that is less
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the token is there
 * @user_data: (closure): data for @callback
 *
 * Asks the agent for an access token. The agent serves a cached one when
 * it is valid long enough, and otherwise refreshes it (one refresh per
 * account, however many callers wait).
 *
 * Since: 0.1
 */
void
keyhold_account_get_token (KeyholdAccount *self,
                           const char *const *scopes,
                           const char *audience,
                           guint min_validity,
                           GCancellable *cancellable,
                           GAsyncReadyCallback callback,
                           gpointer user_data)
{
  static const char *const no_scopes[] = { NULL };

  g_return_if_fail (KEYHOLD_IS_ACCOUNT (self));

  call_account_method (self, "GetAccessToken",
                       g_variant_new ("(^as&su)", scopes != NULL ? scopes : no_scopes,
                                      audience != NULL ? audience : "", min_validity),
                       "(sx)", keyhold_account_get_token, cancellable, callback, user_data);
}

/**
 * keyhold_account_get_token_finish:
 * @self: a #KeyholdAccount
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError, or %NULL
 *
 * Errors are %KEYHOLD_ERROR codes: %KEYHOLD_ERROR_NOT_SIGNED_IN,
 * %KEYHOLD_ERROR_NEEDS_LOGIN, %KEYHOLD_ERROR_OFFLINE,
 * %KEYHOLD_ERROR_PROVIDER_ERROR, %KEYHOLD_ERROR_INVALID_ARGUMENT,
 * %KEYHOLD_ERROR_AGENT_UNAVAILABLE, …
 *
 * Returns: (transfer full): the token, or %NULL with @error set.
 *
 * Since: 0.1
 */
KeyholdToken *
keyhold_account_get_token_finish (KeyholdAccount *self, GAsyncResult *result, GError **error)
{
  g_autoptr (GVariant) reply = propagate_reply (self, result, keyhold_account_get_token, error);
  const char *value;
  gint64 expires_at;

  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(&sx)", &value, &expires_at);
  return keyhold_token_new (value, expires_at, error);
}

/**
 * keyhold_account_get_token_sync:
 * @self: a #KeyholdAccount
 * @scopes: (nullable) (array zero-terminated=1): the scopes the token must
 *   carry, or %NULL for the account's scopes
 * @audience: (nullable): the API the token is for, or %NULL
 * @min_validity: seconds the token must still be valid; 0 means 60, or half
 *   the token's lifetime if that is less
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * The synchronous form of keyhold_account_get_token().
 *
 * Returns: (transfer full): the token, or %NULL with @error set.
 *
 * Since: 0.1
 */
KeyholdToken *
keyhold_account_get_token_sync (KeyholdAccount *self,
                                const char *const *scopes,
                                const char *audience,
                                guint min_validity,
                                GCancellable *cancellable,
                                GError **error)
{
  g_auto (KeyholdSync) sync = { 0 };

  g_return_val_if_fail (KEYHOLD_IS_ACCOUNT (self), NULL);

  keyhold_sync_begin (&sync);
  keyhold_account_get_token (self, scopes, audience, min_validity, cancellable, keyhold_sync_done,
                             &sync);
  return keyhold_account_get_token_finish (self, keyhold_sync_wait (&sync), error);
}

/**
 * keyhold_account_get_identity:
 * @self: a #KeyholdAccount
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the identity is there
 * @user_data: (closure): data for @callback
 *
 * Asks for the claims of the signed-in user's validated ID token ("sub",
 * "name", "email", …). They are available offline.
 *
 * Since: 0.1
 */
void
keyhold_account_get_identity (KeyholdAccount *self,
                              GCancellable *cancellable,
                              GAsyncReadyCallback callback,
                              gpointer user_data)
{
  g_return_if_fail (KEYHOLD_IS_ACCOUNT (self));

  call_account_method (self, "GetIdentity", NULL, "(a{sv})", keyhold_account_get_identity,
                       cancellable, callback, user_data);
}

/**
 * keyhold_account_get_identity_finish:
 * @self: a #KeyholdAccount
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError, or %NULL
 *
 * Finishes keyhold_account_get_identity().
 *
 * Returns: (transfer full): the claims, a dictionary of type `a{sv}`, or
 *   %NULL with @error set (%KEYHOLD_ERROR_NOT_SIGNED_IN before the first
 *   sign-in).
 *
 * Since: 0.1
 */
GVariant *
keyhold_account_get_identity_finish (KeyholdAccount *self, GAsyncResult *result, GError **error)
{
  g_autoptr (GVariant) reply = propagate_reply (self, result, keyhold_account_get_identity, error);

  if (reply == NULL)
    return NULL;
  return g_variant_get_child_value (reply, 0);
}

/**
 * keyhold_account_get_identity_sync:
 * @self: a #KeyholdAccount
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * The synchronous form of keyhold_account_get_identity().
 *
 * Returns: (transfer full): the claims (`a{sv}`), or %NULL with @error set.
 *
 * Since: 0.1
 */
GVariant *
keyhold_account_get_identity_sync (KeyholdAccount *self, GCancellable *cancellable, GError **error)
{
  g_auto (KeyholdSync) sync = { 0 };

  g_return_val_if_fail (KEYHOLD_IS_ACCOUNT (self), NULL);

  keyhold_sync_begin (&sync);
  keyhold_account_get_identity (self, cancellable, keyhold_sync_done, &sync);
  return keyhold_account_get_identity_finish (self, keyhold_sync_wait (&sync), error);
}

/**
 * keyhold_account_sign_out:
 * @self: a #KeyholdAccount
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the account is signed out
 * @user_data: (closure): data for @callback
 *
 * Signs the account out: the agent revokes the sign-in at the provider
 * (RFC 7009), deletes the refresh token from the keyring even when
 * revocation fails, and forgets the account's tokens. The account stays
 * configured.
 *
 * Since: 0.1
 */
void
keyhold_account_sign_out (KeyholdAccount *self,
                          GCancellable *cancellable,
                          GAsyncReadyCallback callback,
                          gpointer user_data)
{
  g_return_if_fail (KEYHOLD_IS_ACCOUNT (self));

  call_account_method (self, "SignOut", NULL, "()", keyhold_account_sign_out, cancellable, callback,
                       user_data);
}

/**
 * keyhold_account_sign_out_finish:
 * @self: a #KeyholdAccount
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError, or %NULL
 *
 * Finishes keyhold_account_sign_out().
 *
 * Returns: %TRUE once signed out, %FALSE with @error set.
 *
 * Since: 0.1
 */
gboolean
keyhold_account_sign_out_finish (KeyholdAccount *self, GAsyncResult *result, GError **error)
{
  g_autoptr (GVariant) reply = propagate_reply (self, result, keyhold_account_sign_out, error);

  return reply != NULL;
}

/**
 * keyhold_account_sign_out_sync:
 * @self: a #KeyholdAccount
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * The synchronous form of keyhold_account_sign_out().
 *
 * Returns: %TRUE once signed out, %FALSE with @error set.
 *
 * Since: 0.1
 */
gboolean
keyhold_account_sign_out_sync (KeyholdAccount *self, GCancellable *cancellable, GError **error)
{
  g_auto (KeyholdSync) sync = { 0 };

  g_return_val_if_fail (KEYHOLD_IS_ACCOUNT (self), FALSE);

  keyhold_sync_begin (&sync);
  keyhold_account_sign_out (self, cancellable, keyhold_sync_done, &sync);
  return keyhold_account_sign_out_finish (self, keyhold_sync_wait (&sync), error);
}

static void
keyhold_account_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  KeyholdAccount *self = KEYHOLD_ACCOUNT (object);

  switch (id)
    {
    case PROP_STATE:
      g_value_set_enum (value, self->state);
      break;
    case PROP_SCOPES:
    case PROP_API_ORIGINS:
      g_value_take_boxed (value, g_variant_dup_strv (self->values[id], NULL));
      break;
    case PROP_ACCESS_TOKEN_EXPIRY:
    case PROP_NEXT_REFRESH:
      g_value_set_int64 (value, get_int64 (self, id));
      break;
    case PROP_NAME:
    case PROP_ISSUER:
    case PROP_SUBJECT:
    case PROP_DISPLAY_NAME:
    case PROP_LAST_ERROR:
      g_value_set_string (value, get_string (self, id));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
    }
}

static void
keyhold_account_finalize (GObject *object)
{
  KeyholdAccount *self = KEYHOLD_ACCOUNT (object);

  for (guint id = 0; id < N_PROPS; id++)
    g_clear_pointer (&self->values[id], g_variant_unref);
  g_clear_object (&self->connection);
  g_clear_pointer (&self->object_path, g_free);
  G_OBJECT_CLASS (keyhold_account_parent_class)->finalize (object);
}

static void
keyhold_account_init (KeyholdAccount *self)
{
  self->state = KEYHOLD_ACCOUNT_STATE_UNKNOWN;
}

static GParamSpec *
string_property (const char *name, const char *blurb)
{
  return g_param_spec_string (name, NULL, blurb, "", G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
}

static GParamSpec *
time_property (const char *name, const char *blurb)
{
  return g_param_spec_int64 (name, NULL, blurb, 0, G_MAXINT64, 0,
                             G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
}

static GParamSpec *
strv_property (const char *name, const char *blurb)
{
  return g_param_spec_boxed (name, NULL, blurb, G_TYPE_STRV,
                             G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
}

static void
keyhold_account_class_init (KeyholdAccountClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = keyhold_account_get_property;
  object_class->finalize = keyhold_account_finalize;

  /**
   * KeyholdAccount:name:
   *
   * The account's local name. It never changes.
   *
   * Since: 0.1
   */
  properties[PROP_NAME] = string_property ("name", "The account's local name");
  /**
   * KeyholdAccount:issuer:
   *
   * The provider's issuer URL.
   *
   * Since: 0.1
   */
  properties[PROP_ISSUER] = string_property ("issuer", "The provider's issuer URL");
  /**
   * KeyholdAccount:scopes:
   *
   * The scopes requested at sign-in.
   *
   * Since: 0.1
   */
  properties[PROP_SCOPES] = strv_property ("scopes", "Scopes requested at sign-in");
  /**
   * KeyholdAccount:api-origins:
   *
   * The origins this account's tokens may be sent to.
   *
   * Since: 0.1
   */
  properties[PROP_API_ORIGINS] = strv_property ("api-origins", "Origins tokens may be sent to");
  /**
   * KeyholdAccount:subject:
   *
   * The signed-in user's subject ("sub"), "" before the first sign-in.
   *
   * Since: 0.1
   */
  properties[PROP_SUBJECT] = string_property ("subject", "The user's subject");
  /**
   * KeyholdAccount:display-name:
   *
   * The user's name, else e-mail address, else subject.
   *
   * Since: 0.1
   */
  properties[PROP_DISPLAY_NAME] = string_property ("display-name", "The user's name");
  /**
   * KeyholdAccount:state:
   *
   * The sign-in state.
   *
   * Since: 0.1
   */
  properties[PROP_STATE] = g_param_spec_enum (
      "state", NULL, "The sign-in state", KEYHOLD_TYPE_ACCOUNT_STATE, KEYHOLD_ACCOUNT_STATE_UNKNOWN,
      G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  /**
   * KeyholdAccount:access-token-expiry:
   *
   * Unix time (seconds) at which the default access token expires; 0 when
   * there is none.
   *
   * Since: 0.1
   */
  properties[PROP_ACCESS_TOKEN_EXPIRY]
      = time_property ("access-token-expiry", "When the access token expires");
  /**
   * KeyholdAccount:next-refresh:
   *
   * Unix time (seconds) of the next planned refresh; 0 when none.
   *
   * Since: 0.1
   */
  properties[PROP_NEXT_REFRESH] = time_property ("next-refresh", "When the next refresh is due");
  /**
   * KeyholdAccount:last-error:
   *
   * "Name: message" of the last failure talking to the provider, "" after a
   * success.
   *
   * Since: 0.1
   */
  properties[PROP_LAST_ERROR] = string_property ("last-error", "The last failure");

  g_object_class_install_properties (object_class, N_PROPS, properties);
}
