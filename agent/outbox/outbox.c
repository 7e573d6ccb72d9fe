/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold-contract.h"

#include "outbox/outbox-key.h"
#include "outbox/outbox-request.h"
#include "outbox/outbox-sender.h"

#define DEFAULT_QUEUE "default"

G_DEFINE_FINAL_TYPE (KeyholdOutbox, keyhold_outbox, G_TYPE_OBJECT)

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

static void
enqueue_data_free (EnqueueData *data)
{
  keyhold_outbox_handle_unref (data->handle);
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
  guint max_age_s = request->max_age_s > 0 ? request->max_age_s : KEYHOLD_OUTBOX_DEFAULT_MAX_AGE_S;

  item->id = g_uuid_string_random ();
  item->owner = g_strdup (owner);
  item->account = g_strdup (keyhold_account_get_config (account)->name);
  item->queue = g_strdup (queue);
  item->subject = g_strdup (keyhold_account_get_subject (account));
  item->method = g_strdup (request->method);
  item->request_size = request_size;
  item->idempotency_key = g_uuid_string_random ();
  item->state = KEYHOLD_OUTBOX_STATE_PENDING;
  item->created_ms = keyhold_outbox_now_ms ();
  item->expires_ms = item->created_ms + (gint64) max_age_s * 1000;
  item->reason = g_strdup ("");
  return item;
}

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
    keyhold_outbox_item_inserted (self, data->account, data->queue, data->id);
  g_task_return_pointer (task, g_strdup (data->id), g_free);
}

static void
seal_and_insert (KeyholdOutbox *self, GTask *task)
{
  EnqueueData *data = g_task_get_task_data (task);
  KeyholdOutboxItem *item = data->item;

  item->sealed_url = keyhold_outbox_seal_string (self, item, KEYHOLD_OUTBOX_PART_URL, data->url);
  item->sealed_request
      = keyhold_outbox_seal_variant (self, item, KEYHOLD_OUTBOX_PART_REQUEST, data->request);
  keyhold_outbox_store_insert_async (self->store, g_steal_pointer (&data->item), NULL, on_inserted,
                                     task);
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
  g_autofree char *url = NULL;

  g_return_if_fail (KEYHOLD_IS_OUTBOX (self));
  g_return_if_fail (owner != NULL && account_name != NULL && queue != NULL && request != NULL);

  task = g_task_new (NULL, NULL, callback, user_data);
  g_task_set_source_tag (task, keyhold_outbox_enqueue_async);
  if (*queue == '\0')
    queue = DEFAULT_QUEUE;

  if (!keyhold_outbox_check_store (self, &error)
      || !keyhold_outbox_validate_queue_name (queue, &error)
      || (account = keyhold_accounts_lookup (self->accounts, account_name, &error)) == NULL
      || !keyhold_outbox_request_validate (request, keyhold_account_get_config (account),
                                           &request_size, &url, &error))
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
  data->handle = keyhold_outbox_handle_ref (self->handle);
  data->item = new_item (owner, account, queue, request, request_size);
  data->id = g_strdup (data->item->id);
  data->account = g_strdup (data->item->account);
  data->queue = g_strdup (data->item->queue);
  data->url = g_steal_pointer (&url);
  data->request = keyhold_outbox_request_to_variant (request);
  g_task_set_task_data (task, data, (GDestroyNotify) enqueue_data_free);

  keyhold_outbox_when_key_ready (self, g_steal_pointer (&task), request_size, seal_and_insert);
}

char *
keyhold_outbox_enqueue_finish (KeyholdOutbox *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_async_result_is_tagged (result, keyhold_outbox_enqueue_async), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
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
    KEYHOLD_OUTBOX_MAX_ITEMS,
    KEYHOLD_OUTBOX_MAX_BYTES,
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
  keyhold_outbox_update_storage_error (self);

  /* The key is made on first use; if the database records one, there is
   * data to replay and the key is needed now. */
  if (fingerprint != NULL)
    keyhold_outbox_load_key (self);
  return self;
}

static void
keyhold_outbox_init (KeyholdOutbox *self)
{
  self->handle = g_rc_box_new0 (OutboxHandle);
  self->handle->outbox = self;
  self->cancellable = g_cancellable_new ();
  self->queues = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) keyhold_outbox_queue_free);
  self->heads = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->watches = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) keyhold_outbox_account_watch_free);
  g_queue_init (&self->key_waiters);
  g_queue_init (&self->ready);
  self->storage_error = g_strdup ("");
  self->key_ready = keyhold_outbox_start_replay;
}

static void
keyhold_outbox_dispose (GObject *object)
{
  KeyholdOutbox *self = KEYHOLD_OUTBOX (object);
  g_autoptr (GError) error
      = g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_CANCELLED, "The agent is shutting down");

  /* From here on, callbacks that come back find no outbox. */
  if (self->handle != NULL)
    {
      self->handle->outbox = NULL;
      g_clear_pointer (&self->handle, keyhold_outbox_handle_unref);
    }
  g_cancellable_cancel (self->cancellable);
  keyhold_outbox_fail_key_waiters (self, error);
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
keyhold_outbox_class_init (KeyholdOutboxClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = keyhold_outbox_dispose;
  object_class->finalize = keyhold_outbox_finalize;
  keyhold_outbox_install_notifications (object_class);
}

gboolean
keyhold_outbox_has_unfinished_items (KeyholdOutbox *self)
{
  /* A queue exists exactly while it holds unfinished items. */
  return g_hash_table_size (self->queues) > 0;
}
