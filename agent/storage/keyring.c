/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold-contract.h"
#include <libsecret/secret.h>

#include "storage/keyring.h"

static const SecretSchema keyhold_schema = {
  "org.keyhold.Secret",
  SECRET_SCHEMA_NONE,
  {
      { "kind", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { "account", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { "issuer", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { NULL, 0 },
  },
};

static const char *
kind_name (KeyholdKeyringKind kind)
{
  return kind == KEYHOLD_KEYRING_OUTBOX_KEY ? "outbox-key" : "refresh-token";
}

/* The table borrows every string: libsecret copies what it keeps. */
static GHashTable *
build_attributes (KeyholdKeyringKind kind, const char *account, const char *issuer)
{
  GHashTable *attributes = g_hash_table_new (g_str_hash, g_str_equal);

  g_hash_table_insert (attributes, (char *) "kind", (char *) kind_name (kind));
  g_hash_table_insert (attributes, (char *) "account", (char *) account);
  g_hash_table_insert (attributes, (char *) "issuer", (char *) issuer);
  return attributes;
}

/* The label is what a keyring manager (Seahorse) shows the user. */
static char *
item_label (KeyholdKeyringKind kind, const char *account)
{
  if (kind == KEYHOLD_KEYRING_OUTBOX_KEY)
    return g_strdup ("keyhold outbox key");
  return g_strdup_printf ("keyhold refresh token for %s", account);
}

static void
return_keyring_error (GTask *task, const GError *error)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_CANCELLED,
                             "The keyring operation was cancelled");
  else
    g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_KEYRING, "The keyring failed: %s",
                             error->message);
}

static gboolean
valid_key (KeyholdKeyringKind kind, const char *account, const char *issuer)
{
  return (kind == KEYHOLD_KEYRING_REFRESH_TOKEN || kind == KEYHOLD_KEYRING_OUTBOX_KEY)
         && account != NULL && issuer != NULL;
}

static GTask *
new_task (gpointer source_tag,
          GCancellable *cancellable,
          GAsyncReadyCallback callback,
          gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  /* Otherwise GTask would answer a late cancellation with a G_IO_ERROR of
   * its own instead of our KEYHOLD_ERROR, and a completed store would look
   * as if it had not happened. */
  g_task_set_check_cancellable (task, FALSE);
  return task;
}

static void
on_stored (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (GError) error = NULL;

  if (!secret_password_store_finish (result, &error))
    return_keyring_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

void
keyhold_keyring_store_async (KeyholdKeyringKind kind,
                             const char *account,
                             const char *issuer,
                             KeyholdSecret *secret,
                             GCancellable *cancellable,
                             GAsyncReadyCallback callback,
                             gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  g_autoptr (GHashTable) attributes = NULL;
  g_autoptr (SecretValue) value = NULL;
  g_autofree char *label = NULL;

  g_return_if_fail (valid_key (kind, account, issuer));
  g_return_if_fail (secret != NULL);

  task = new_task (keyhold_keyring_store_async, cancellable, callback, user_data);
  attributes = build_attributes (kind, account, issuer);
  label = item_label (kind, account);
  /* secret_value_new () copies into libsecret's own locked memory. */
  value = secret_value_new (
      keyhold_secret_get (secret), (gssize) keyhold_secret_get_length (secret),
      kind == KEYHOLD_KEYRING_OUTBOX_KEY ? "application/octet-stream" : "text/plain");
  secret_password_storev_binary (&keyhold_schema, attributes, SECRET_COLLECTION_DEFAULT, label,
                                 value, cancellable, on_stored, g_steal_pointer (&task));
}

gboolean
keyhold_keyring_store_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  g_return_val_if_fail (g_async_result_is_tagged (result, keyhold_keyring_store_async), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
return_secret_value (GTask *task, SecretValue *value)
{
  const char *bytes;
  gsize length;

  if (value == NULL)
    {
      g_task_return_pointer (task, NULL, NULL);
      return;
    }
  bytes = secret_value_get (value, &length);
  g_task_return_pointer (task, keyhold_secret_new (bytes, length),
                         (GDestroyNotify) keyhold_secret_unref);
}

static void
on_secret_retrieved (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (SecretValue) value = NULL;

  value = secret_retrievable_retrieve_secret_finish (SECRET_RETRIEVABLE (source), result, &error);
  if (error != NULL)
    return_keyring_error (task, error);
  else
    return_secret_value (task, value);
}

static void
on_item_found (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (GError) error = NULL;
  GCancellable *cancellable = g_task_get_cancellable (task);
  GList *items = secret_password_search_finish (result, &error);

  if (error != NULL)
    return_keyring_error (task, error);
  else if (items == NULL)
    g_task_return_pointer (task, NULL, NULL);
  else
    secret_retrievable_retrieve_secret (items->data, cancellable, on_secret_retrieved,
                                        g_steal_pointer (&task));
  g_list_free_full (items, g_object_unref);
}

void
keyhold_keyring_lookup_async (KeyholdKeyringKind kind,
                              const char *account,
                              const char *issuer,
                              GCancellable *cancellable,
                              GAsyncReadyCallback callback,
                              gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  g_autoptr (GHashTable) attributes = NULL;

  g_return_if_fail (valid_key (kind, account, issuer));

  task = new_task (keyhold_keyring_lookup_async, cancellable, callback, user_data);
  attributes = build_attributes (kind, account, issuer);
  /* Not secret_password_lookupv (): libsecret 0.20 leaks the D-Bus reply
   * of every lookup that finds a secret, a kilobyte per call for as long
   * as the agent runs. Searching, then retrieving, makes the same calls to
   * the service without the leak. SECRET_SEARCH_UNLOCK asks the user to
   * unlock a locked keyring, as a lookup would. */
  secret_password_searchv (&keyhold_schema, attributes, SECRET_SEARCH_UNLOCK, cancellable,
                           on_item_found, g_steal_pointer (&task));
}

KeyholdSecret *
keyhold_keyring_lookup_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_async_result_is_tagged (result, keyhold_keyring_lookup_async), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
on_deleted (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (GError) error = NULL;

  /* FALSE without an error means there was nothing to delete: the caller
   * wanted the item gone, and it is. */
  secret_password_clear_finish (result, &error);
  if (error != NULL)
    return_keyring_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

void
keyhold_keyring_delete_async (KeyholdKeyringKind kind,
                              const char *account,
                              const char *issuer,
                              GCancellable *cancellable,
                              GAsyncReadyCallback callback,
                              gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  g_autoptr (GHashTable) attributes = NULL;

  g_return_if_fail (valid_key (kind, account, issuer));

  task = new_task (keyhold_keyring_delete_async, cancellable, callback, user_data);
  attributes = build_attributes (kind, account, issuer);
  secret_password_clearv (&keyhold_schema, attributes, cancellable, on_deleted,
                          g_steal_pointer (&task));
}

gboolean
keyhold_keyring_delete_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  g_return_val_if_fail (g_async_result_is_tagged (result, keyhold_keyring_delete_async), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
