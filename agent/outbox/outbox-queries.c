/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold-contract.h"

#include "outbox/outbox-key.h"
#include "outbox/outbox-sender.h"

/* ---- get, list, cancel -------------------------------------------------------------- */

static KeyholdOutboxItem *
get_owned_item (KeyholdOutbox *self, const char *owner, const char *id, GError **error)
{
  g_autoptr (KeyholdOutboxItem) item = NULL;
  g_autoptr (GError) local_error = NULL;

  if (!keyhold_outbox_check_store (self, error))
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

  info->url = keyhold_outbox_open_url (self, item, error);
  if (info->url == NULL)
    return NULL;
  info->id = g_strdup (item->id);
  info->account = g_strdup (item->account);
  info->queue = g_strdup (item->queue);
  info->method = g_strdup (item->method);
  info->idempotency_key = g_strdup (item->idempotency_key);
  info->state
      = keyhold_outbox_is_being_sent (self, item->id) ? KEYHOLD_OUTBOX_STATE_SENDING : item->state;
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
              const KeyholdOutboxItem *item,
              GError **error)
{
  g_autoptr (GVariant) response = NULL;
  g_autoptr (GVariant) headers = NULL;
  g_autoptr (GVariant) body = NULL;
  GVariantIter iter;
  const char *name, *value;

  response = keyhold_outbox_open_variant (self, item, KEYHOLD_OUTBOX_PART_RESPONSE, RESPONSE_TYPE,
                                          item->sealed_response, error);
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
  if (item->sealed_response != NULL && !add_response (self, info, item, error))
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
  if (!keyhold_outbox_check_store (self, &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  keyhold_outbox_when_key_ready (self, task, 0, finish_get);
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
                                         stored_state_mask (state_mask), after, limit - infos->len,
                                         error);
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
  if (!keyhold_outbox_check_store (self, &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  keyhold_outbox_when_key_ready (self, task, 0, finish_list);
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
  keyhold_outbox_finish_unsent (self, item, KEYHOLD_OUTBOX_STATE_CANCELLED,
                                "Cancelled by its owner", g_steal_pointer (&task));
}

gboolean
keyhold_outbox_cancel_finish (KeyholdOutbox *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_async_result_is_tagged (result, keyhold_outbox_cancel_async), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
