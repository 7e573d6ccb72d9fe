/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold/keyhold.h"
#include "keyhold-client-private.h"
#include "keyhold-dbus-private.h"
#include "keyhold-outbox-private.h"
#include "keyhold-sync-private.h"

static void
call_outbox (KeyholdClient *self,
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
  keyhold_dbus_call_for_task (keyhold_client_get_connection (self), KEYHOLD_AGENT_PATH,
                              KEYHOLD_OUTBOX1_INTERFACE, method, parameters, reply_type, task);
}

/**
 * keyhold_client_outbox_enqueue:
 * @self: a #KeyholdClient
 * @account: the name of the account whose access token authorises the
 *   request; it must have been signed in at least once
 * @queue: (nullable): the queue, 1 to 64 of `A-Z a-z 0-9 . _ : -`, or %NULL
 *   for "default". Items of one (account, queue) are sent in order.
 * @request: the request
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the item is on disk
 * @user_data: (closure): data for @callback
 *
 * Hands @request to the agent's outbox, which keeps it on disk and sends it
 * (with a fresh access token) when it can, retrying as needed. The item
 * belongs to this application: only it can read or cancel it, including
 * after a restart.
 *
 * Since: 0.1
 */
void
keyhold_client_outbox_enqueue (KeyholdClient *self,
                               const char *account,
                               const char *queue,
                               KeyholdOutboxRequest *request,
                               GCancellable *cancellable,
                               GAsyncReadyCallback callback,
                               gpointer user_data)
{
  g_return_if_fail (KEYHOLD_IS_CLIENT (self));
  g_return_if_fail (account != NULL);
  g_return_if_fail (KEYHOLD_IS_OUTBOX_REQUEST (request));

  call_outbox (self, "Enqueue",
               g_variant_new ("(ss@a{sv})", account, queue != NULL ? queue : "",
                              keyhold_outbox_request_to_variant (request)),
               "(s)", keyhold_client_outbox_enqueue, cancellable, callback, user_data);
}

/**
 * keyhold_client_outbox_enqueue_finish:
 * @self: a #KeyholdClient
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError, or %NULL
 *
 * Finishes keyhold_client_outbox_enqueue().
 *
 * Returns: (transfer full): the new item's id, once the item is committed
 *   to disk, or %NULL with @error set (%KEYHOLD_ERROR_INVALID_ARGUMENT for
 *   a malformed request or a URL off the account's API origins,
 *   %KEYHOLD_ERROR_NO_SUCH_ACCOUNT, %KEYHOLD_ERROR_NOT_SIGNED_IN,
 *   %KEYHOLD_ERROR_QUOTA_EXCEEDED, %KEYHOLD_ERROR_STORAGE, …).
 *
 * Since: 0.1
 */
char *
keyhold_client_outbox_enqueue_finish (KeyholdClient *self, GAsyncResult *result, GError **error)
{
  g_autoptr (GVariant) reply
      = keyhold_client_propagate (self, result, keyhold_client_outbox_enqueue, error);
  char *id;

  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(s)", &id);
  return id;
}

/**
 * keyhold_client_outbox_enqueue_sync:
 * @self: a #KeyholdClient
 * @account: the name of the account whose access token authorises the request
 * @queue: (nullable): the queue, or %NULL for "default"
 * @request: the request
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * The synchronous form of keyhold_client_outbox_enqueue().
 *
 * Returns: (transfer full): the new item's id, or %NULL with @error set.
 *
 * Since: 0.1
 */
char *
keyhold_client_outbox_enqueue_sync (KeyholdClient *self,
                                    const char *account,
                                    const char *queue,
                                    KeyholdOutboxRequest *request,
                                    GCancellable *cancellable,
                                    GError **error)
{
  g_auto (KeyholdSync) sync = { 0 };

  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), NULL);

  keyhold_sync_begin (&sync);
  keyhold_client_outbox_enqueue (self, account, queue, request, cancellable, keyhold_sync_done,
                                 &sync);
  return keyhold_client_outbox_enqueue_finish (self, keyhold_sync_wait (&sync), error);
}

/**
 * keyhold_client_outbox_get:
 * @self: a #KeyholdClient
 * @id: an item id that keyhold_client_outbox_enqueue() returned to this
 *   application
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the item
 * @user_data: (closure): data for @callback
 *
 * Reads one item, with the last response the server gave (status,
 * headers and body).
 *
 * Since: 0.1
 */
void
keyhold_client_outbox_get (KeyholdClient *self,
                           const char *id,
                           GCancellable *cancellable,
                           GAsyncReadyCallback callback,
                           gpointer user_data)
{
  g_return_if_fail (KEYHOLD_IS_CLIENT (self));
  g_return_if_fail (id != NULL);

  call_outbox (self, "Get", g_variant_new ("(s)", id), "(a{sv})", keyhold_client_outbox_get,
               cancellable, callback, user_data);
}

/**
 * keyhold_client_outbox_get_finish:
 * @self: a #KeyholdClient
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError, or %NULL
 *
 * Finishes keyhold_client_outbox_get().
 *
 * Returns: (transfer full): the item, or %NULL with @error set
 *   (%KEYHOLD_ERROR_NOT_FOUND for an unknown id or another application's
 *   item, %KEYHOLD_ERROR_STORAGE).
 *
 * Since: 0.1
 */
KeyholdOutboxItem *
keyhold_client_outbox_get_finish (KeyholdClient *self, GAsyncResult *result, GError **error)
{
  g_autoptr (GVariant) reply
      = keyhold_client_propagate (self, result, keyhold_client_outbox_get, error);

  if (reply == NULL)
    return NULL;
  return keyhold_outbox_item_new (g_variant_get_child_value (reply, 0));
}

/**
 * keyhold_client_outbox_get_sync:
 * @self: a #KeyholdClient
 * @id: an item id
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * The synchronous form of keyhold_client_outbox_get().
 *
 * Returns: (transfer full): the item, or %NULL with @error set.
 *
 * Since: 0.1
 */
KeyholdOutboxItem *
keyhold_client_outbox_get_sync (KeyholdClient *self,
                                const char *id,
                                GCancellable *cancellable,
                                GError **error)
{
  g_auto (KeyholdSync) sync = { 0 };

  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), NULL);

  keyhold_sync_begin (&sync);
  keyhold_client_outbox_get (self, id, cancellable, keyhold_sync_done, &sync);
  return keyhold_client_outbox_get_finish (self, keyhold_sync_wait (&sync), error);
}

static GVariant *
list_options (const char *after, guint limit)
{
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  if (after != NULL)
    g_variant_builder_add (&options, "{sv}", "after", g_variant_new_string (after));
  if (limit != 0)
    g_variant_builder_add (&options, "{sv}", "limit", g_variant_new_uint32 (limit));
  return g_variant_builder_end (&options);
}

static GVariant *
state_names (const KeyholdOutboxState *states, gsize n_states)
{
  g_auto (GVariantBuilder) names = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_STRING_ARRAY);

  for (gsize i = 0; i < n_states; i++)
    g_variant_builder_add (&names, "s", keyhold_outbox_state_to_string (states[i]));
  return g_variant_builder_end (&names);
}

/**
 * keyhold_client_outbox_list:
 * @self: a #KeyholdClient
 * @account: (nullable): only this account's items, or %NULL for all
 * @queue: (nullable): only this queue's items, or %NULL for all
 * @states: (nullable) (array length=n_states): only items in these states
 * @n_states: the length of @states; 0 for items in any state
 * @after: (nullable): an item id: only items enqueued after it, to read the
 *   next page; %NULL to start at the oldest
 * @limit: at most this many items (1 to 1000); 0 for 1000
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the items
 * @user_data: (closure): data for @callback
 *
 * Lists this application's items, oldest first, without their responses
 * (read those with keyhold_client_outbox_get()). An application that was
 * not running while its items finished learns their outcome here.
 *
 * Since: 0.1
 */
void
keyhold_client_outbox_list (KeyholdClient *self,
                            const char *account,
                            const char *queue,
                            const KeyholdOutboxState *states,
                            gsize n_states,
                            const char *after,
                            guint limit,
                            GCancellable *cancellable,
                            GAsyncReadyCallback callback,
                            gpointer user_data)
{
  g_return_if_fail (KEYHOLD_IS_CLIENT (self));
  g_return_if_fail (states != NULL || n_states == 0);

  call_outbox (self, "List",
               g_variant_new ("(ss@as@a{sv})", account != NULL ? account : "",
                              queue != NULL ? queue : "", state_names (states, n_states),
                              list_options (after, limit)),
               "(aa{sv})", keyhold_client_outbox_list, cancellable, callback, user_data);
}

/**
 * keyhold_client_outbox_list_finish:
 * @self: a #KeyholdClient
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError, or %NULL
 *
 * Finishes keyhold_client_outbox_list().
 *
 * Returns: (transfer full) (element-type KeyholdOutboxItem): the items,
 *   oldest first (%NULL for none), or %NULL with @error set
 *   (%KEYHOLD_ERROR_NOT_FOUND when @after does not exist,
 *   %KEYHOLD_ERROR_INVALID_ARGUMENT, %KEYHOLD_ERROR_STORAGE).
 *
 * Since: 0.1
 */
GList *
keyhold_client_outbox_list_finish (KeyholdClient *self, GAsyncResult *result, GError **error)
{
  g_autoptr (GVariant) reply
      = keyhold_client_propagate (self, result, keyhold_client_outbox_list, error);
  g_autoptr (GVariant) items = NULL;
  GList *list = NULL;
  GVariantIter iter;
  GVariant *item;

  if (reply == NULL)
    return NULL;

  items = g_variant_get_child_value (reply, 0);
  g_variant_iter_init (&iter, items);
  while ((item = g_variant_iter_next_value (&iter)) != NULL)
    list = g_list_prepend (list, keyhold_outbox_item_new (item));
  return g_list_reverse (list);
}

/**
 * keyhold_client_outbox_list_sync:
 * @self: a #KeyholdClient
 * @account: (nullable): only this account's items, or %NULL for all
 * @queue: (nullable): only this queue's items, or %NULL for all
 * @states: (nullable) (array length=n_states): only items in these states
 * @n_states: the length of @states; 0 for items in any state
 * @after: (nullable): an item id to continue after, or %NULL
 * @limit: at most this many items; 0 for 1000
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * The synchronous form of keyhold_client_outbox_list().
 *
 * Returns: (transfer full) (element-type KeyholdOutboxItem): the items, or
 *   %NULL with @error set.
 *
 * Since: 0.1
 */
GList *
keyhold_client_outbox_list_sync (KeyholdClient *self,
                                 const char *account,
                                 const char *queue,
                                 const KeyholdOutboxState *states,
                                 gsize n_states,
                                 const char *after,
                                 guint limit,
                                 GCancellable *cancellable,
                                 GError **error)
{
  g_auto (KeyholdSync) sync = { 0 };

  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), NULL);

  keyhold_sync_begin (&sync);
  keyhold_client_outbox_list (self, account, queue, states, n_states, after, limit, cancellable,
                              keyhold_sync_done, &sync);
  return keyhold_client_outbox_list_finish (self, keyhold_sync_wait (&sync), error);
}

/**
 * keyhold_client_outbox_cancel:
 * @self: a #KeyholdClient
 * @id: an unfinished item of this application
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the item is cancelled
 * @user_data: (closure): data for @callback
 *
 * Ends the item as cancelled; it is not sent again. An item that was being
 * sent at that moment may still have reached the server.
 *
 * Since: 0.1
 */
void
keyhold_client_outbox_cancel (KeyholdClient *self,
                              const char *id,
                              GCancellable *cancellable,
                              GAsyncReadyCallback callback,
                              gpointer user_data)
{
  g_return_if_fail (KEYHOLD_IS_CLIENT (self));
  g_return_if_fail (id != NULL);

  call_outbox (self, "Cancel", g_variant_new ("(s)", id), "()", keyhold_client_outbox_cancel,
               cancellable, callback, user_data);
}

/**
 * keyhold_client_outbox_cancel_finish:
 * @self: a #KeyholdClient
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError, or %NULL
 *
 * Finishes keyhold_client_outbox_cancel().
 *
 * Returns: %TRUE once cancelled, %FALSE with @error set
 *   (%KEYHOLD_ERROR_NOT_FOUND, %KEYHOLD_ERROR_INVALID_ARGUMENT when the
 *   item has finished already, %KEYHOLD_ERROR_STORAGE).
 *
 * Since: 0.1
 */
gboolean
keyhold_client_outbox_cancel_finish (KeyholdClient *self, GAsyncResult *result, GError **error)
{
  g_autoptr (GVariant) reply
      = keyhold_client_propagate (self, result, keyhold_client_outbox_cancel, error);

  return reply != NULL;
}

/**
 * keyhold_client_outbox_cancel_sync:
 * @self: a #KeyholdClient
 * @id: an unfinished item of this application
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * The synchronous form of keyhold_client_outbox_cancel().
 *
 * Returns: %TRUE once cancelled, %FALSE with @error set.
 *
 * Since: 0.1
 */
gboolean
keyhold_client_outbox_cancel_sync (KeyholdClient *self,
                                   const char *id,
                                   GCancellable *cancellable,
                                   GError **error)
{
  g_auto (KeyholdSync) sync = { 0 };

  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), FALSE);

  keyhold_sync_begin (&sync);
  keyhold_client_outbox_cancel (self, id, cancellable, keyhold_sync_done, &sync);
  return keyhold_client_outbox_cancel_finish (self, keyhold_sync_wait (&sync), error);
}
