/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold/keyhold.h"
#include "keyhold-account-private.h"
#include "keyhold-client-private.h"
#include "keyhold-dbus-private.h"
#include "keyhold-sync-private.h"

/* The client's accounts: the table of KeyholdAccount objects, kept by what
 * keyhold-client-agent.c hears from the agent, and the operations that
 * list, add and remove accounts. */

/* ---- the account table ---- */

KeyholdAccount *
keyhold_client_put_account (KeyholdClient *self, const char *object_path, GVariant *properties_dict)
{
  KeyholdAccount *account = g_hash_table_lookup (self->accounts, object_path);

  if (account != NULL)
    {
      keyhold_account_update (account, properties_dict);
      return account;
    }

  account = keyhold_account_new (self->connection, object_path, properties_dict);
  g_hash_table_insert (self->accounts, g_strdup (object_path), account);
  keyhold_client_emit_account_added (self, account);
  return account;
}

void
keyhold_client_update_account (KeyholdClient *self, const char *object_path, GVariant *changed)
{
  KeyholdAccount *account = g_hash_table_lookup (self->accounts, object_path);

  if (account != NULL)
    keyhold_account_update (account, changed);
}

void
keyhold_client_drop_account (KeyholdClient *self, const char *object_path)
{
  g_autofree char *key = NULL;
  g_autoptr (KeyholdAccount) account = NULL;

  if (!g_hash_table_steal_extended (self->accounts, object_path, (gpointer *) &key,
                                    (gpointer *) &account))
    return;
  keyhold_client_emit_account_removed (self, account);
}

void
keyhold_client_apply_managed_objects (KeyholdClient *self, GVariant *objects)
{
  g_autoptr (GHashTable) listed = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GPtrArray) gone = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  GVariantIter objects_iter;
  const char *object_path;
  GVariant *interfaces;
  gpointer key;

  g_variant_iter_init (&objects_iter, objects);
  while (g_variant_iter_next (&objects_iter, "{&o@a{sa{sv}}}", &object_path, &interfaces))
    {
      g_autoptr (GVariant) account_properties
          = g_variant_lookup_value (interfaces, KEYHOLD_ACCOUNT1_INTERFACE, G_VARIANT_TYPE_VARDICT);

      if (account_properties != NULL)
        {
          keyhold_client_put_account (self, object_path, account_properties);
          g_hash_table_add (listed, (gpointer) object_path);
        }
      g_variant_unref (interfaces);
    }

  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_hash_table_contains (listed, key))
      g_ptr_array_add (gone, g_strdup (key));
  for (guint i = 0; i < gone->len; i++)
    keyhold_client_drop_account (self, g_ptr_array_index (gone, i));
}

/* ---- listing ---- */

static int
compare_account_names (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (keyhold_account_get_name ((KeyholdAccount *) a),
                    keyhold_account_get_name ((KeyholdAccount *) b));
}

static gpointer
copy_object (gconstpointer object, gpointer user_data)
{
  return g_object_ref ((gpointer) object);
}

/**
 * keyhold_client_get_accounts:
 * @self: a #KeyholdClient
 *
 * Lists the agent's accounts, as last heard from the agent.
 *
 * Returns: (transfer full) (element-type KeyholdAccount): the accounts, in
 *   name order.
 *
 * Since: 0.1
 */
GList *
keyhold_client_get_accounts (KeyholdClient *self)
{
  g_autoptr (GList) accounts = NULL;

  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), NULL);

  accounts = g_list_sort (g_hash_table_get_values (self->accounts), compare_account_names);
  return g_list_copy_deep (accounts, copy_object, NULL);
}

/**
 * keyhold_client_lookup_account:
 * @self: a #KeyholdClient
 * @name: an account's local name
 *
 * Finds an account by its local name.
 *
 * Returns: (transfer full) (nullable): the account named @name, or %NULL
 *   if there is none.
 *
 * Since: 0.1
 */
KeyholdAccount *
keyhold_client_lookup_account (KeyholdClient *self, const char *name)
{
  GHashTableIter iter;
  gpointer account;

  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);

  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, NULL, &account))
    if (g_strcmp0 (keyhold_account_get_name (account), name) == 0)
      return g_object_ref (account);
  return NULL;
}

/* ---- adding and removing ---- */

static GVariant *
account_settings (const char *issuer,
                  const char *client_id,
                  const char *const *scopes,
                  const char *const *api_origins)
{
  g_auto (GVariantBuilder) settings = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&settings, "{sv}", "issuer", g_variant_new_string (issuer));
  g_variant_builder_add (&settings, "{sv}", "client_id", g_variant_new_string (client_id));
  /* Without scopes the agent's default applies. */
  if (scopes != NULL)
    g_variant_builder_add (&settings, "{sv}", "scopes", g_variant_new_strv (scopes, -1));
  g_variant_builder_add (&settings, "{sv}", "api_origins",
                         g_variant_new_strv (api_origins, api_origins != NULL ? -1 : 0));
  return g_variant_builder_end (&settings);
}

static void
on_account_properties (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  KeyholdClient *self = g_task_get_source_object (task);
  const char *object_path = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr (GVariant) reply
      = keyhold_dbus_call_finish (G_DBUS_CONNECTION (source), result, &error);
  g_autoptr (GVariant) properties_dict = NULL;
  KeyholdAccount *account;

  if (reply == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  properties_dict = g_variant_get_child_value (reply, 0);
  account = keyhold_client_put_account (self, object_path, properties_dict);
  keyhold_client_ignore_older_signals (self);
  g_task_return_pointer (task, g_object_ref (account), g_object_unref);
}

/* Reads the account's properties now and returns the account through
 * @task (taken). The agent announces property changes (and new objects)
 * from an idle callback, after the reply or signal of the operation that
 * made them, and a _sync call does not dispatch them at all: an operation
 * that changes an account reads it back before it reports success. */
static void
read_account (KeyholdClient *self, const char *object_path, GTask *task)
{
  g_task_set_task_data (task, g_strdup (object_path), g_free);
  keyhold_dbus_call (self->connection, object_path, "org.freedesktop.DBus.Properties", "GetAll",
                     g_variant_new ("(s)", KEYHOLD_ACCOUNT1_INTERFACE), "(a{sv})",
                     g_task_get_cancellable (task), on_account_properties, task);
}

void
keyhold_client_read_account (KeyholdClient *self,
                             const char *name,
                             GCancellable *cancellable,
                             GAsyncReadyCallback callback,
                             gpointer user_data)
{
  g_autoptr (KeyholdAccount) account = keyhold_client_lookup_account (self, name);
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  if (account == NULL)
    {
      g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_NO_SUCH_ACCOUNT,
                               "no account named \"%s\"", name);
      g_object_unref (task);
      return;
    }
  read_account (self, keyhold_account_get_object_path (account), task);
}

KeyholdAccount *
keyhold_client_read_account_finish (KeyholdClient *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
on_account_added (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  KeyholdClient *self = g_task_get_source_object (task);
  GError *error = NULL;
  g_autoptr (GVariant) reply
      = keyhold_dbus_call_finish (G_DBUS_CONNECTION (source), result, &error);
  const char *object_path;

  if (reply == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  g_variant_get (reply, "(&o)", &object_path);
  read_account (self, object_path, g_steal_pointer (&task));
}

/**
 * keyhold_client_add_account:
 * @self: a #KeyholdClient
 * @name: a short local name: 1 to 64 of `A-Z a-z 0-9 . _ -`
 * @issuer: the provider's issuer URL (https, or http on a loopback host)
 * @client_id: the client_id registered with the provider for keyhold
 * @scopes: (nullable) (array zero-terminated=1): the scopes to request at
 *   sign-in, or %NULL for the agent's default ("openid")
 * @api_origins: (nullable) (array zero-terminated=1): the only origins
 *   this account's tokens may ever be sent to
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the account exists
 * @user_data: (closure): data for @callback
 *
 * Adds an account to the agent's configuration. Sign in to it next with
 * keyhold_client_sign_in().
 *
 * Since: 0.1
 */
void
keyhold_client_add_account (KeyholdClient *self,
                            const char *name,
                            const char *issuer,
                            const char *client_id,
                            const char *const *scopes,
                            const char *const *api_origins,
                            GCancellable *cancellable,
                            GAsyncReadyCallback callback,
                            gpointer user_data)
{
  GTask *task;

  g_return_if_fail (KEYHOLD_IS_CLIENT (self));
  g_return_if_fail (name != NULL && issuer != NULL && client_id != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, keyhold_client_add_account);
  keyhold_dbus_call (
      self->connection, KEYHOLD_AGENT_PATH, KEYHOLD_AGENT1_INTERFACE, "AddAccount",
      g_variant_new ("(s@a{sv})", name, account_settings (issuer, client_id, scopes, api_origins)),
      "(o)", cancellable, on_account_added, task);
}

/**
 * keyhold_client_add_account_finish:
 * @self: a #KeyholdClient
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError, or %NULL
 *
 * Finishes keyhold_client_add_account().
 *
 * Returns: (transfer full): the new account, or %NULL with @error set
 *   (%KEYHOLD_ERROR_INVALID_ARGUMENT, %KEYHOLD_ERROR_ALREADY_EXISTS,
 *   %KEYHOLD_ERROR_QUOTA_EXCEEDED, …).
 *
 * Since: 0.1
 */
KeyholdAccount *
keyhold_client_add_account_finish (KeyholdClient *self, GAsyncResult *result, GError **error)
{
  return keyhold_client_propagate (self, result, keyhold_client_add_account, error);
}

/**
 * keyhold_client_add_account_sync:
 * @self: a #KeyholdClient
 * @name: a short local name
 * @issuer: the provider's issuer URL
 * @client_id: the client_id registered with the provider for keyhold
 * @scopes: (nullable) (array zero-terminated=1): the scopes to request at
 *   sign-in, or %NULL for the agent's default
 * @api_origins: (nullable) (array zero-terminated=1): the only origins
 *   this account's tokens may ever be sent to
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * The synchronous form of keyhold_client_add_account().
 *
 * Returns: (transfer full): the new account, or %NULL with @error set.
 *
 * Since: 0.1
 */
KeyholdAccount *
keyhold_client_add_account_sync (KeyholdClient *self,
                                 const char *name,
                                 const char *issuer,
                                 const char *client_id,
                                 const char *const *scopes,
                                 const char *const *api_origins,
                                 GCancellable *cancellable,
                                 GError **error)
{
  g_auto (KeyholdSync) sync = { 0 };

  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), NULL);

  keyhold_sync_begin (&sync);
  keyhold_client_add_account (self, name, issuer, client_id, scopes, api_origins, cancellable,
                              keyhold_sync_done, &sync);
  return keyhold_client_add_account_finish (self, keyhold_sync_wait (&sync), error);
}

/**
 * keyhold_client_remove_account:
 * @self: a #KeyholdClient
 * @name: the account's local name
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the account is gone
 * @user_data: (closure): data for @callback
 *
 * Signs the account out (revoking at the provider when possible), deletes
 * its keyring item and removes it from the agent's configuration.
 *
 * Since: 0.1
 */
void
keyhold_client_remove_account (KeyholdClient *self,
                               const char *name,
                               GCancellable *cancellable,
                               GAsyncReadyCallback callback,
                               gpointer user_data)
{
  GTask *task;

  g_return_if_fail (KEYHOLD_IS_CLIENT (self));
  g_return_if_fail (name != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, keyhold_client_remove_account);
  keyhold_dbus_call_for_task (self->connection, KEYHOLD_AGENT_PATH, KEYHOLD_AGENT1_INTERFACE,
                              "RemoveAccount", g_variant_new ("(s)", name), "()", task);
}

/**
 * keyhold_client_remove_account_finish:
 * @self: a #KeyholdClient
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError, or %NULL
 *
 * Finishes keyhold_client_remove_account().
 *
 * Returns: %TRUE once removed, %FALSE with @error set
 *   (%KEYHOLD_ERROR_NO_SUCH_ACCOUNT, …).
 *
 * Since: 0.1
 */
gboolean
keyhold_client_remove_account_finish (KeyholdClient *self, GAsyncResult *result, GError **error)
{
  g_autoptr (GVariant) reply
      = keyhold_client_propagate (self, result, keyhold_client_remove_account, error);

  return reply != NULL;
}

/**
 * keyhold_client_remove_account_sync:
 * @self: a #KeyholdClient
 * @name: the account's local name
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * The synchronous form of keyhold_client_remove_account().
 *
 * Returns: %TRUE once removed, %FALSE with @error set.
 *
 * Since: 0.1
 */
gboolean
keyhold_client_remove_account_sync (KeyholdClient *self,
                                    const char *name,
                                    GCancellable *cancellable,
                                    GError **error)
{
  g_auto (KeyholdSync) sync = { 0 };

  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), FALSE);

  keyhold_sync_begin (&sync);
  keyhold_client_remove_account (self, name, cancellable, keyhold_sync_done, &sync);
  return keyhold_client_remove_account_finish (self, keyhold_sync_wait (&sync), error);
}
