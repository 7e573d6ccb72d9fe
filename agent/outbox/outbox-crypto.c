/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <sodium.h>
#include <string.h>

#include "keyhold-contract.h"

#include "storage/keyring.h"
#include "outbox/outbox-crypto.h"

#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define FINGERPRINT_BYTES crypto_generichash_BYTES

G_STATIC_ASSERT (KEYHOLD_OUTBOX_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);

static const char *
part_name (KeyholdOutboxPart part)
{
  switch (part)
    {
    case KEYHOLD_OUTBOX_PART_URL:
      return "url";
    case KEYHOLD_OUTBOX_PART_REQUEST:
      return "request";
    case KEYHOLD_OUTBOX_PART_RESPONSE:
      return "response";
    default:
      g_assert_not_reached ();
    }
}

/* Format 1, in databases written before format 2: "ITEM-ID\0PART". The
 * NUL keeps ("ab", "c…") and ("a", "bc…") apart. */
static GByteArray *
legacy_associated_data (const KeyholdOutboxItem *item, KeyholdOutboxPart part)
{
  GByteArray *data = g_byte_array_new ();
  const char *name = part_name (part);

  g_byte_array_append (data, (const guint8 *) item->id, strlen (item->id) + 1);
  g_byte_array_append (data, (const guint8 *) name, strlen (name));
  return data;
}

static void
append_field (GByteArray *data, const void *field, gsize length)
{
  guint32 length_be = GUINT32_TO_BE ((guint32) length);

  g_byte_array_append (data, (const guint8 *) &length_be, sizeof length_be);
  g_byte_array_append (data, field, (guint) length);
}

static void
append_string (GByteArray *data, const char *string)
{
  append_field (data, string, strlen (string));
}

/* Format 2: a tag, then every field as a 32-bit big-endian length and its
 * bytes. The sealed URL binds the other parts to the row's URL. */
static GByteArray *
associated_data (const KeyholdOutboxItem *item, KeyholdOutboxPart part)
{
  static const char tag[] = "keyhold outbox item 2";
  GByteArray *data = g_byte_array_new ();
  gsize url_length = 0;
  const void *url = NULL;

  if (part != KEYHOLD_OUTBOX_PART_URL)
    url = g_bytes_get_data (item->sealed_url, &url_length);
  g_byte_array_append (data, (const guint8 *) tag, sizeof tag);
  append_string (data, part_name (part));
  append_string (data, item->id);
  append_string (data, item->owner);
  append_string (data, item->account);
  append_string (data, item->queue);
  append_string (data, item->subject);
  append_string (data, item->method);
  append_string (data, item->idempotency_key);
  append_field (data, url != NULL ? url : "", url_length);
  return data;
}

static gboolean
item_bindable (const KeyholdOutboxItem *item, KeyholdOutboxPart part)
{
  return item != NULL && item->id != NULL && item->owner != NULL && item->account != NULL
         && item->queue != NULL && item->subject != NULL && item->method != NULL
         && item->idempotency_key != NULL
         && (part == KEYHOLD_OUTBOX_PART_URL || item->sealed_url != NULL);
}

static gboolean
key_usable (const KeyholdSecret *key)
{
  return key != NULL && keyhold_secret_get_length (key) == KEYHOLD_OUTBOX_KEY_BYTES;
}

GBytes *
keyhold_outbox_crypto_seal (const KeyholdSecret *key,
                            const KeyholdOutboxItem *item,
                            KeyholdOutboxPart part,
                            GBytes *plaintext)
{
  g_autoptr (GByteArray) ad = NULL;
  const guint8 *message;
  gsize message_length;
  guint8 *sealed;
  unsigned long long ciphertext_length;

  g_return_val_if_fail (key_usable (key), NULL);
  g_return_val_if_fail (item_bindable (item, part), NULL);
  g_return_val_if_fail (plaintext != NULL, NULL);

  message = g_bytes_get_data (plaintext, &message_length);
  ad = associated_data (item, part);
  sealed = g_malloc (NONCE_BYTES + message_length + TAG_BYTES);
  randombytes_buf (sealed, NONCE_BYTES);
  crypto_aead_xchacha20poly1305_ietf_encrypt (sealed + NONCE_BYTES, &ciphertext_length, message,
                                              message_length, ad->data, ad->len, NULL, sealed,
                                              (const guint8 *) keyhold_secret_get (key));
  return g_bytes_new_take (sealed, NONCE_BYTES + ciphertext_length);
}

static gboolean
open_with (const KeyholdSecret *key,
           GByteArray *ad,
           const guint8 *data,
           gsize length,
           guint8 *plaintext,
           unsigned long long *out_length)
{
  g_autoptr (GByteArray) owned_ad = ad;

  return crypto_aead_xchacha20poly1305_ietf_decrypt (
             plaintext, out_length, NULL, data + NONCE_BYTES, length - NONCE_BYTES, ad->data,
             ad->len, data, (const guint8 *) keyhold_secret_get (key))
         == 0;
}

GBytes *
keyhold_outbox_crypto_open (const KeyholdSecret *key,
                            const KeyholdOutboxItem *item,
                            KeyholdOutboxPart part,
                            GBytes *sealed,
                            GError **error)
{
  g_autofree guint8 *plaintext = NULL;
  const guint8 *data;
  gsize length;
  unsigned long long plaintext_length;

  g_return_val_if_fail (key_usable (key), NULL);
  g_return_val_if_fail (item_bindable (item, part), NULL);
  g_return_val_if_fail (sealed != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  data = g_bytes_get_data (sealed, &length);
  if (length < NONCE_BYTES + TAG_BYTES)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE,
                   "The stored %s of item %s is truncated", part_name (part), item->id);
      return NULL;
    }

  /* One spare byte: g_malloc (0) would return NULL for an empty message.
   * Blobs of format 1 still open (see the header), and only with the
   * weaker binding they were sealed with: neither format's associated
   * data can pass for the other's. */
  plaintext = g_malloc (length - NONCE_BYTES - TAG_BYTES + 1);
  if (!open_with (key, associated_data (item, part), data, length, plaintext, &plaintext_length)
      && !open_with (key, legacy_associated_data (item, part), data, length, plaintext,
                     &plaintext_length))
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE,
                   "The stored %s of item %s is damaged or belongs elsewhere", part_name (part),
                   item->id);
      return NULL;
    }
  return g_bytes_new_take (g_steal_pointer (&plaintext), plaintext_length);
}

GBytes *
keyhold_outbox_crypto_fingerprint (const KeyholdSecret *key)
{
  static const char context[] = "keyhold outbox key fingerprint 1";
  guint8 *fingerprint;

  g_return_val_if_fail (key_usable (key), NULL);

  fingerprint = g_malloc (FINGERPRINT_BYTES);
  crypto_generichash (fingerprint, FINGERPRINT_BYTES, (const guint8 *) context, sizeof context - 1,
                      (const guint8 *) keyhold_secret_get (key), keyhold_secret_get_length (key));
  return g_bytes_new_take (fingerprint, FINGERPRINT_BYTES);
}

/* ---- the key in the keyring ---------------------------------------------- */

typedef struct
{
  GBytes *expected_fingerprint;
  KeyholdSecret *new_key;
} LoadKeyData;

static void
load_key_data_free (LoadKeyData *data)
{
  g_clear_pointer (&data->expected_fingerprint, g_bytes_unref);
  g_clear_pointer (&data->new_key, keyhold_secret_unref);
  g_free (data);
}

static void
on_key_stored (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  LoadKeyData *data = g_task_get_task_data (task);
  GError *error = NULL;

  if (!keyhold_keyring_store_finish (result, &error))
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, keyhold_secret_ref (data->new_key),
                           (GDestroyNotify) keyhold_secret_unref);
}

static void
create_key (GTask *task)
{
  LoadKeyData *data = g_task_get_task_data (task);

  data->new_key = keyhold_secret_new_random (KEYHOLD_OUTBOX_KEY_BYTES);
  keyhold_keyring_store_async (KEYHOLD_KEYRING_OUTBOX_KEY, "", "", data->new_key,
                               g_task_get_cancellable (task), on_key_stored, task);
}

static GError *
check_found_key (const KeyholdSecret *key, GBytes *expected_fingerprint)
{
  g_autoptr (GBytes) fingerprint = NULL;

  if (!key_usable (key))
    return g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE,
                        "The outbox key in the keyring has the wrong size; the queued items "
                        "were kept, but cannot be read");
  if (expected_fingerprint == NULL)
    return NULL;
  fingerprint = keyhold_outbox_crypto_fingerprint (key);
  if (!g_bytes_equal (fingerprint, expected_fingerprint))
    return g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE,
                        "The outbox key in the keyring is not the one the queued items were "
                        "encrypted with; they were kept, but cannot be read");
  return NULL;
}

static void
on_key_looked_up (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  LoadKeyData *data = g_task_get_task_data (task);
  g_autoptr (KeyholdSecret) key = NULL;
  GError *error = NULL;

  key = keyhold_keyring_lookup_finish (result, &error);
  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (key == NULL && data->expected_fingerprint == NULL)
    {
      create_key (g_steal_pointer (&task));
      return;
    }
  if (key == NULL)
    error = g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE,
                         "The outbox key is missing from the keyring; the queued items were "
                         "kept, but cannot be read or sent until it is restored");
  else
    error = check_found_key (key, data->expected_fingerprint);

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_steal_pointer (&key), (GDestroyNotify) keyhold_secret_unref);
}

void
keyhold_outbox_crypto_load_key_async (GBytes *expected_fingerprint,
                                      GCancellable *cancellable,
                                      GAsyncReadyCallback callback,
                                      gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  LoadKeyData *data = g_new0 (LoadKeyData, 1);

  g_task_set_source_tag (task, keyhold_outbox_crypto_load_key_async);
  if (expected_fingerprint != NULL)
    data->expected_fingerprint = g_bytes_ref (expected_fingerprint);
  g_task_set_task_data (task, data, (GDestroyNotify) load_key_data_free);
  keyhold_keyring_lookup_async (KEYHOLD_KEYRING_OUTBOX_KEY, "", "", cancellable, on_key_looked_up,
                                task);
}

KeyholdSecret *
keyhold_outbox_crypto_load_key_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_async_result_is_tagged (result, keyhold_outbox_crypto_load_key_async),
                        NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
