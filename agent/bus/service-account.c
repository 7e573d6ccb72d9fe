/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold-contract.h"

#include "bus/keyhold-dbus-generated.h"
#include "bus/service-account.h"

typedef struct
{
  KeyholdAccount *account;
  KeyholdAccess *access;
  KeyholdTokenFastPath *fast_path;
  char *object_path;
} AccountService;

static void
on_token_published (const char *key,
                    KeyholdSecret *token,
                    gint64 issued_at_us,
                    gint64 expires_at_us,
                    gpointer user_data)
{
  AccountService *service = user_data;

  keyhold_token_fast_path_publish (service->fast_path, service->object_path, key, token,
                                   issued_at_us, expires_at_us);
}

static void
on_token_withdrawn (const char *key, gpointer user_data)
{
  AccountService *service = user_data;

  if (key == NULL)
    keyhold_token_fast_path_withdraw_all (service->fast_path, service->object_path);
  else
    keyhold_token_fast_path_withdraw (service->fast_path, service->object_path, key);
}

static const KeyholdTokenCacheListener fast_path_mirror = {
  .published = on_token_published,
  .withdrawn = on_token_withdrawn,
};

static void
account_service_free (gpointer data)
{
  AccountService *service = data;

  keyhold_account_set_token_listener (service->account, NULL, NULL);
  keyhold_token_fast_path_withdraw_all (service->fast_path, service->object_path);
  g_object_unref (service->account);
  g_free (service->object_path);
  g_free (service);
}

static void
on_token (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GDBusMethodInvocation *invocation = user_data;
  g_autoptr (KeyholdSecret) token = NULL;
  GError *error = NULL;
  gint64 expires_at_s = 0;

  token
      = keyhold_account_get_token_finish (KEYHOLD_ACCOUNT (source), result, &expires_at_s, &error);
  if (token == NULL)
    {
      g_dbus_method_invocation_take_error (invocation, error);
      return;
    }
  /* GDBus copies the string into the reply message; that copy is freed once
   * the message is sent and is the one unguarded copy the API requires. */
  g_dbus_method_invocation_return_value (
      invocation, g_variant_new ("(sx)", keyhold_secret_get (token), expires_at_s));
}

static gboolean
handle_get_access_token (KeyholdDBusAccount1 *skeleton,
                         GDBusMethodInvocation *invocation,
                         const char *const *scopes,
                         const char *audience,
                         guint min_validity,
                         AccountService *service)
{
  if (!keyhold_access_check (service->access, G_DBUS_INTERFACE_SKELETON (skeleton), invocation))
    return G_DBUS_METHOD_INVOCATION_HANDLED;

  keyhold_account_get_token_async (service->account, scopes, audience, min_validity, NULL, on_token,
                                   invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_get_identity (KeyholdDBusAccount1 *skeleton,
                     GDBusMethodInvocation *invocation,
                     AccountService *service)
{
  g_autoptr (JsonObject) claims = NULL;
  g_autoptr (JsonNode) node = NULL;
  GError *error = NULL;
  GVariant *dict;

  if (!keyhold_access_check (service->access, G_DBUS_INTERFACE_SKELETON (skeleton), invocation))
    return G_DBUS_METHOD_INVOCATION_HANDLED;

  claims = keyhold_account_get_identity (service->account, &error);
  if (claims == NULL)
    {
      g_dbus_method_invocation_take_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  node = json_node_init_object (json_node_alloc (), claims);
  dict = json_gvariant_deserialize (node, "a{sv}", &error);
  if (dict == NULL)
    {
      g_dbus_method_invocation_take_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  keyhold_dbus_account1_complete_get_identity (skeleton, invocation, dict);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
on_signed_out (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GDBusMethodInvocation *invocation = user_data;
  GError *error = NULL;

  if (!keyhold_account_sign_out_finish (KEYHOLD_ACCOUNT (source), result, &error))
    g_dbus_method_invocation_take_error (invocation, error);
  else
    g_dbus_method_invocation_return_value (invocation, NULL);
}

static gboolean
handle_sign_out (KeyholdDBusAccount1 *skeleton,
                 GDBusMethodInvocation *invocation,
                 AccountService *service)
{
  if (!keyhold_access_check (service->access, G_DBUS_INTERFACE_SKELETON (skeleton), invocation))
    return G_DBUS_METHOD_INVOCATION_HANDLED;

  keyhold_account_sign_out_async (service->account, NULL, on_signed_out, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

GDBusObjectSkeleton *
keyhold_service_account_new (KeyholdAccount *account,
                             KeyholdAccess *access,
                             KeyholdTokenFastPath *fast_path)
{
  const KeyholdAccountConfig *config = keyhold_account_get_config (account);
  g_autofree char *path = keyhold_contract_account_path (config->name);
  g_autoptr (GDBusObjectSkeleton) object = g_dbus_object_skeleton_new (path);
  g_autoptr (KeyholdDBusAccount1) skeleton = keyhold_dbus_account1_skeleton_new ();
  AccountService *service = g_new0 (AccountService, 1);
  static const char *const mirrored[] = {
    "state", "subject", "display-name", "access-token-expiry", "next-refresh", "last-error",
  };

  service->account = g_object_ref (account);
  service->access = access;
  service->fast_path = fast_path;
  service->object_path = g_strdup (path);
  g_object_set_data_full (G_OBJECT (skeleton), "keyhold-account-service", service,
                          account_service_free);

  g_object_set (skeleton, "version", 1, "name", config->name, "issuer", config->issuer, "client-id",
                config->client_id, "scopes", config->scopes, "api-origins", config->api_origins,
                NULL);
  for (guint i = 0; i < G_N_ELEMENTS (mirrored); i++)
    g_object_bind_property (account, mirrored[i], skeleton, mirrored[i], G_BINDING_SYNC_CREATE);

  g_signal_connect (skeleton, "handle-get-access-token", G_CALLBACK (handle_get_access_token),
                    service);
  g_signal_connect (skeleton, "handle-get-identity", G_CALLBACK (handle_get_identity), service);
  g_signal_connect (skeleton, "handle-sign-out", G_CALLBACK (handle_sign_out), service);

  g_dbus_object_skeleton_add_interface (object, G_DBUS_INTERFACE_SKELETON (skeleton));
  keyhold_account_set_token_listener (account, &fast_path_mirror, service);
  return g_steal_pointer (&object);
}
