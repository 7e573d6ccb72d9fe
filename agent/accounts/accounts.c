/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold-contract.h"

#include "accounts/accounts.h"

struct _KeyholdAccounts
{
  KeyholdContext *context;
  KeyholdConfig *config;
  GHashTable *accounts; /* name -> KeyholdAccount */
  const KeyholdAccountsListener *listener;
  gpointer listener_data;
  /* Cancelled when freed: a removal still running then must not come back
   * to this structure. */
  GCancellable *cancellable;
};

static KeyholdAccount *
add_account (KeyholdAccounts *self, const KeyholdAccountConfig *config)
{
  KeyholdAccount *account = keyhold_account_new (self->context, config);

  g_hash_table_insert (self->accounts, g_strdup (config->name), account);
  return account;
}

KeyholdAccounts *
keyhold_accounts_new (KeyholdContext *context, const char *config_path, GError **error)
{
  g_autoptr (KeyholdConfig) config = keyhold_config_load (config_path, error);
  g_autoptr (GPtrArray) configs = NULL;
  KeyholdAccounts *self;

  if (config == NULL)
    return NULL;

  self = g_new0 (KeyholdAccounts, 1);
  self->context = context;
  self->config = g_steal_pointer (&config);
  self->accounts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  self->cancellable = g_cancellable_new ();

  configs = keyhold_config_list (self->config);
  for (guint i = 0; i < configs->len; i++)
    add_account (self, configs->pdata[i]);
  return self;
}

void
keyhold_accounts_start (KeyholdAccounts *self,
                        const KeyholdAccountsListener *listener,
                        gpointer user_data)
{
  GHashTableIter iter;
  KeyholdAccount *account;

  self->listener = listener;
  self->listener_data = user_data;
  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &account))
    listener->added (account, user_data);
  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &account))
    keyhold_account_restore (account);
}

void
keyhold_accounts_free (KeyholdAccounts *self)
{
  GHashTableIter iter;
  GObject *account;

  if (self == NULL)
    return;
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  /* Operations in flight hold references. Disposing ends the sign-in
   * generation and the account's lifetime, which cancels what it started
   * (refreshes, a sign-out's revocation) so that nothing still uses the
   * agent's services after they are freed; the sign-outs themselves still
   * complete, through the main loop. */
  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &account))
    g_object_run_dispose (account);
  g_hash_table_unref (self->accounts);
  keyhold_config_free (self->config);
  g_free (self);
}

KeyholdAccount *
keyhold_accounts_lookup (KeyholdAccounts *self, const char *name, GError **error)
{
  KeyholdAccount *account = g_hash_table_lookup (self->accounts, name);

  if (account == NULL)
    g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NO_SUCH_ACCOUNT, "There is no account “%s”",
                 name);
  return account;
}

GPtrArray *
keyhold_accounts_list_names (KeyholdAccounts *self)
{
  g_autoptr (GPtrArray) configs = keyhold_config_list (self->config);
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < configs->len; i++)
    {
      const KeyholdAccountConfig *config = configs->pdata[i];
      g_ptr_array_add (names, g_strdup (config->name));
    }
  return names;
}

gboolean
keyhold_accounts_any_signed_in (KeyholdAccounts *self)
{
  GHashTableIter iter;
  KeyholdAccount *account;

  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &account))
    switch (keyhold_account_get_state (account))
      {
      case KEYHOLD_ACCOUNT_SIGNED_IN:
      case KEYHOLD_ACCOUNT_REFRESHING:
      case KEYHOLD_ACCOUNT_OFFLINE:
        return TRUE;
      case KEYHOLD_ACCOUNT_SIGNED_OUT:
      case KEYHOLD_ACCOUNT_NEEDS_LOGIN:
        break;
      }
  return FALSE;
}

void
keyhold_accounts_recheck (KeyholdAccounts *self)
{
  GHashTableIter iter;
  KeyholdAccount *account;

  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &account))
    keyhold_account_recheck (account);
}

void
keyhold_accounts_network_lost (KeyholdAccounts *self)
{
  GHashTableIter iter;
  KeyholdAccount *account;

  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &account))
    keyhold_account_network_lost (account);
}

static gboolean
lookup_string_setting (GVariant *settings,
                       const char *key,
                       const char **out_value,
                       gboolean required,
                       GError **error)
{
  g_autoptr (GVariant) value = g_variant_lookup_value (settings, key, NULL);

  if (value == NULL && !required)
    return TRUE;
  if (value == NULL || !g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "The setting “%s” must be given as a string", key);
      return FALSE;
    }
  /* The string lives as long as @settings, which the caller holds. */
  *out_value = g_variant_get_string (value, NULL);
  return TRUE;
}

static gboolean
lookup_strv_setting (GVariant *settings,
                     const char *key,
                     const char *const **out_value,
                     GError **error)
{
  g_autoptr (GVariant) value = g_variant_lookup_value (settings, key, NULL);

  if (value == NULL)
    return TRUE;
  if (!g_variant_is_of_type (value, G_VARIANT_TYPE_STRING_ARRAY))
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "The setting “%s” must be given as a list of strings", key);
      return FALSE;
    }
  *out_value = g_variant_get_strv (value, NULL);
  return TRUE;
}

static gboolean
check_known_settings (GVariant *settings, GError **error)
{
  static const char *const known[] = { "issuer", "client_id", "scopes", "api_origins", NULL };
  GVariantIter iter;
  const char *key;

  g_variant_iter_init (&iter, settings);
  while (g_variant_iter_next (&iter, "{&sv}", &key, NULL))
    if (!g_strv_contains (known, key))
      {
        g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                     "Unknown account setting “%s”", key);
        return FALSE;
      }
  return TRUE;
}

KeyholdAccount *
keyhold_accounts_add (KeyholdAccounts *self, const char *name, GVariant *settings, GError **error)
{
  const char *issuer = NULL, *client_id = NULL;
  g_autofree const char **scopes = NULL, **api_origins = NULL;
  g_autoptr (KeyholdAccountConfig) config = NULL;
  KeyholdAccount *account;

  if (!check_known_settings (settings, error)
      || !lookup_string_setting (settings, "issuer", &issuer, TRUE, error)
      || !lookup_string_setting (settings, "client_id", &client_id, TRUE, error)
      || !lookup_strv_setting (settings, "scopes", (const char *const **) &scopes, error)
      || !lookup_strv_setting (settings, "api_origins", (const char *const **) &api_origins, error))
    return NULL;

  config = keyhold_account_config_new (name, issuer, client_id, scopes, api_origins, error);
  if (config == NULL || !keyhold_config_add (self->config, g_steal_pointer (&config), error))
    return NULL;
  if (!keyhold_config_save (self->config, error))
    {
      g_autoptr (GError) ignored = NULL;
      keyhold_config_remove (self->config, name, &ignored);
      return NULL;
    }

  account = add_account (self, keyhold_config_lookup (self->config, name));
  if (self->listener != NULL)
    self->listener->added (account, self->listener_data);
  keyhold_account_restore (account);
  return account;
}

static void
on_removed_account_signed_out (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  KeyholdAccounts *self;
  KeyholdAccount *account = KEYHOLD_ACCOUNT (source);
  const char *name = keyhold_account_get_config (account)->name;
  g_autoptr (GError) error = NULL;

  /* The agent shut down while the account signed out: @self is gone. */
  if (g_cancellable_is_cancelled (g_task_get_cancellable (G_TASK (result))))
    {
      g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_CANCELLED,
                               "The agent stopped before account %s was removed", name);
      return;
    }
  self = g_task_get_task_data (task);
  /* A keyring failure here must stop the removal: the account would vanish
   * while its refresh token stayed behind in the keyring. */
  if (!keyhold_account_remove_finish (account, result, &error)
      || !keyhold_config_remove (self->config, name, &error)
      || !keyhold_config_save (self->config, &error))
    {
      keyhold_account_removal_failed (account);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (self->listener != NULL)
    self->listener->removed (account, self->listener_data);
  g_hash_table_remove (self->accounts, name);
  g_task_return_boolean (task, TRUE);
}

void
keyhold_accounts_remove_async (KeyholdAccounts *self,
                               const char *name,
                               GCancellable *cancellable,
                               GAsyncReadyCallback callback,
                               gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  GError *error = NULL;
  KeyholdAccount *account = keyhold_accounts_lookup (self, name, &error);

  if (account == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  g_task_set_task_data (task, self, NULL);
  keyhold_account_remove_async (account, self->cancellable, on_removed_account_signed_out,
                                g_steal_pointer (&task));
}

gboolean
keyhold_accounts_remove_finish (KeyholdAccounts *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}
