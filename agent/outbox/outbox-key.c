/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "keyhold-contract.h"

#include "outbox/outbox-crypto.h"
#include "outbox/outbox-key.h"

typedef struct
{
  GTask *task;
  KeyholdOutboxKeyReadyFunc func;
} KeyWaiter;

/* ---- sealing ---------------------------------------------------------------------- */

GBytes *
keyhold_outbox_seal_string (KeyholdOutbox *self,
                            const char *id,
                            KeyholdOutboxPart part,
                            const char *text)
{
  g_autoptr (GBytes) plaintext = g_bytes_new_static (text, strlen (text));

  return keyhold_outbox_crypto_seal (self->key, id, part, plaintext);
}

/* Takes @value if it is floating. */
GBytes *
keyhold_outbox_seal_variant (KeyholdOutbox *self,
                             const char *id,
                             KeyholdOutboxPart part,
                             GVariant *value)
{
  g_autoptr (GVariant) owned = g_variant_ref_sink (value);
  g_autoptr (GBytes) plaintext = g_variant_get_data_as_bytes (owned);

  return keyhold_outbox_crypto_seal (self->key, id, part, plaintext);
}

char *
keyhold_outbox_open_string (KeyholdOutbox *self, const char *id, GBytes *sealed, GError **error)
{
  g_autoptr (GBytes) plaintext
      = keyhold_outbox_crypto_open (self->key, id, KEYHOLD_OUTBOX_PART_URL, sealed, error);
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
                             const char *id,
                             KeyholdOutboxPart part,
                             const char *type,
                             GBytes *sealed,
                             GError **error)
{
  g_autoptr (GBytes) plaintext = keyhold_outbox_crypto_open (self->key, id, part, sealed, error);

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

void
keyhold_outbox_fail_key_waiters (KeyholdOutbox *self, const GError *error)
{
  KeyWaiter *waiter;

  while ((waiter = g_queue_pop_head (&self->key_waiters)) != NULL)
    {
      g_task_return_error (waiter->task, g_error_copy (error));
      g_object_unref (waiter->task);
      g_free (waiter);
    }
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
  while ((waiter = g_queue_pop_head (&self->key_waiters)) != NULL)
    {
      waiter->func (self, waiter->task);
      g_free (waiter);
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
keyhold_outbox_when_key_ready (KeyholdOutbox *self, GTask *task, KeyholdOutboxKeyReadyFunc func)
{
  KeyWaiter *waiter;

  if (self->key != NULL)
    {
      func (self, task);
      return;
    }
  waiter = g_new0 (KeyWaiter, 1);
  waiter->task = task;
  waiter->func = func;
  g_queue_push_tail (&self->key_waiters, waiter);
  keyhold_outbox_load_key (self);
}
