/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "keyhold-contract.h"

#include "outbox/outbox-crypto.h"
#include "outbox/outbox-key.h"

/* Calls wait for the key while the keyring may be showing an unlock
 * prompt, which nobody may ever answer. Each holds its request (up to a
 * megabyte) meanwhile, so the wait has a deadline, about as long as a
 * D-Bus caller waits for its answer by default, and the waiting calls a
 * cap in number and bytes (ARCHITECTURE.md, invariant 10). */
#define KEY_WAIT_TIMEOUT_S 25
#define KEY_WAIT_MAX_CALLS 256
#define KEY_WAIT_MAX_BYTES ((gsize) 16 * 1024 * 1024)

typedef struct
{
  KeyholdOutbox *outbox;
  GTask *task;
  KeyholdOutboxKeyReadyFunc func;
  gsize bytes;
  guint timeout_id;
} KeyWaiter;

/* ---- sealing ---------------------------------------------------------------------- */

GBytes *
keyhold_outbox_seal_string (KeyholdOutbox *self,
                            const KeyholdOutboxItem *item,
                            KeyholdOutboxPart part,
                            const char *text)
{
  g_autoptr (GBytes) plaintext = g_bytes_new_static (text, strlen (text));

  return keyhold_outbox_crypto_seal (self->key, item, part, plaintext);
}

/* Takes @value if it is floating. */
GBytes *
keyhold_outbox_seal_variant (KeyholdOutbox *self,
                             const KeyholdOutboxItem *item,
                             KeyholdOutboxPart part,
                             GVariant *value)
{
  g_autoptr (GVariant) owned = g_variant_ref_sink (value);
  g_autoptr (GBytes) plaintext = g_variant_get_data_as_bytes (owned);

  return keyhold_outbox_crypto_seal (self->key, item, part, plaintext);
}

char *
keyhold_outbox_open_url (KeyholdOutbox *self, const KeyholdOutboxItem *item, GError **error)
{
  g_autoptr (GBytes) plaintext = keyhold_outbox_crypto_open (
      self->key, item, KEYHOLD_OUTBOX_PART_URL, item->sealed_url, error);
  gsize length;
  const char *data;

  if (plaintext == NULL)
    return NULL;
  data = g_bytes_get_data (plaintext, &length);
  return g_strndup (data != NULL ? data : "", length);
}

/* Sealed data is authenticated, so it is what this agent wrote; still, it
 * is read as untrusted (GVariant checks it) in case a bug wrote nonsense. */
GVariant *
keyhold_outbox_open_variant (KeyholdOutbox *self,
                             const KeyholdOutboxItem *item,
                             KeyholdOutboxPart part,
                             const char *type,
                             GBytes *sealed,
                             GError **error)
{
  g_autoptr (GBytes) plaintext = keyhold_outbox_crypto_open (self->key, item, part, sealed, error);

  if (plaintext == NULL)
    return NULL;
  return g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type), plaintext, FALSE));
}

/* ---- the key ------------------------------------------------------------------------ */

static gboolean
on_key_retry (gpointer user_data)
{
  KeyholdOutbox *self = user_data;

  self->key_retry_id = 0;
  keyhold_outbox_load_key (self);
  return G_SOURCE_REMOVE;
}

/* Takes @waiter out of the queue; the caller completes its task. */
static GTask *
key_waiter_remove (KeyWaiter *waiter)
{
  KeyholdOutbox *self = waiter->outbox;
  GTask *task = waiter->task;

  g_queue_remove (&self->key_waiters, waiter);
  self->key_waiting_bytes -= waiter->bytes;
  g_clear_handle_id (&waiter->timeout_id, g_source_remove);
  g_free (waiter);
  return task;
}

void
keyhold_outbox_fail_key_waiters (KeyholdOutbox *self, const GError *error)
{
  KeyWaiter *waiter;

  while ((waiter = g_queue_peek_head (&self->key_waiters)) != NULL)
    {
      GTask *task = key_waiter_remove (waiter);

      g_task_return_error (task, g_error_copy (error));
      g_object_unref (task);
    }
}

static gboolean
on_key_wait_timeout (gpointer user_data)
{
  KeyWaiter *waiter = user_data;
  GTask *task;

  waiter->timeout_id = 0;
  task = key_waiter_remove (waiter);
  g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_KEYRING,
                           "The outbox key could not be read from the keyring within %u s; "
                           "if the keyring asks to be unlocked, unlock it and try again",
                           KEY_WAIT_TIMEOUT_S);
  g_object_unref (task);
  return G_SOURCE_REMOVE;
}

/* The fingerprint goes to the database before anything is sealed with
 * the key: from then on, a missing key is an error, never a reason to make
 * a new one. */
static gboolean
adopt_key (KeyholdOutbox *self, KeyholdSecret *key, GError **error)
{
  g_autoptr (GBytes) fingerprint = keyhold_outbox_crypto_fingerprint (key);
  g_autoptr (GBytes) stored = NULL;
  GError *local_error = NULL;

  stored = keyhold_outbox_store_get_key_fingerprint (self->store, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return FALSE;
    }
  if (stored == NULL && !keyhold_outbox_store_set_key_fingerprint (self->store, fingerprint, error))
    return FALSE;
  self->key = keyhold_secret_ref (key);
  return TRUE;
}

static void
key_failed (KeyholdOutbox *self, const GError *error)
{
  keyhold_outbox_set_error_field (self, &self->key_error, error);
  keyhold_outbox_fail_key_waiters (self, error);
  if (self->key_retry_id == 0)
    self->key_retry_id = g_timeout_add_seconds (STORAGE_RETRY_S, on_key_retry, self);
}

static void
on_key_loaded (GObject *source, GAsyncResult *result, gpointer user_data)
{
  OutboxHandle *handle = user_data;
  KeyholdOutbox *self = handle->outbox;
  g_autoptr (KeyholdSecret) key = NULL;
  g_autoptr (GError) error = NULL;
  KeyWaiter *waiter;

  key = keyhold_outbox_crypto_load_key_finish (result, &error);
  keyhold_outbox_handle_unref (handle);
  if (self == NULL || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
      || g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_CANCELLED))
    return;
  self->key_loading = FALSE;

  if (key == NULL || !adopt_key (self, key, &error))
    {
      key_failed (self, error);
      return;
    }
  keyhold_outbox_set_error_field (self, &self->key_error, NULL);
  while ((waiter = g_queue_peek_head (&self->key_waiters)) != NULL)
    {
      KeyholdOutboxKeyReadyFunc func = waiter->func;

      func (self, key_waiter_remove (waiter));
    }
  self->key_ready (self);
}

void
keyhold_outbox_load_key (KeyholdOutbox *self)
{
  g_autoptr (GBytes) fingerprint = NULL;
  g_autoptr (GError) error = NULL;

  if (self->key != NULL || self->key_loading || self->store == NULL)
    return;
  g_clear_handle_id (&self->key_retry_id, g_source_remove);
  fingerprint = keyhold_outbox_store_get_key_fingerprint (self->store, &error);
  if (error != NULL)
    {
      key_failed (self, error);
      return;
    }
  self->key_loading = TRUE;
  keyhold_outbox_crypto_load_key_async (fingerprint, self->cancellable, on_key_loaded,
                                        keyhold_outbox_handle_ref (self->handle));
}

/* Takes @task. The store must be usable. */
void
keyhold_outbox_when_key_ready (KeyholdOutbox *self,
                               GTask *task,
                               gsize bytes,
                               KeyholdOutboxKeyReadyFunc func)
{
  KeyWaiter *waiter;

  if (self->key != NULL)
    {
      func (self, task);
      return;
    }
  bytes += KEYHOLD_OUTBOX_ITEM_OVERHEAD_BYTES;
  if (g_queue_get_length (&self->key_waiters) >= KEY_WAIT_MAX_CALLS
      || bytes > KEY_WAIT_MAX_BYTES - self->key_waiting_bytes)
    {
      g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_QUOTA_EXCEEDED,
                               "Too many calls are waiting for the outbox key (at most %u, "
                               "%" G_GSIZE_FORMAT " MiB); is the keyring waiting to be unlocked?",
                               KEY_WAIT_MAX_CALLS, KEY_WAIT_MAX_BYTES / (1024 * 1024));
      g_object_unref (task);
      return;
    }
  waiter = g_new0 (KeyWaiter, 1);
  waiter->outbox = self;
  waiter->task = task;
  waiter->func = func;
  waiter->bytes = bytes;
  waiter->timeout_id = g_timeout_add_seconds (KEY_WAIT_TIMEOUT_S, on_key_wait_timeout, waiter);
  self->key_waiting_bytes += bytes;
  g_queue_push_tail (&self->key_waiters, waiter);
  keyhold_outbox_load_key (self);
}
