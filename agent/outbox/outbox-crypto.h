/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "base/secret.h"
#include "outbox/outbox-store.h"

G_BEGIN_DECLS

/* Encryption at rest of what applications queue in the outbox:
 * XChaCha20-Poly1305 (IETF) with one 256-bit key that lives only in the
 * keyring and, while the agent runs, in guarded memory. A sealed blob is
 * the random 192-bit nonce followed by the ciphertext and its tag. The
 * associated data binds each blob to the part of the item it holds and to
 * what the row keeps in the clear and never changes: id, owner, account,
 * queue, subject, method and Idempotency-Key; the request and the response
 * also to the sealed URL. So blobs cannot be swapped between rows or
 * columns, nor the clear columns between rows, without open () failing.
 *
 * That is format 2 of the associated data. Databases written before it
 * hold blobs of format 1 (item id and part only); open () still accepts
 * those, with the binding they were made with, so that an upgrade loses
 * no queued work. Every blob sealed from then on is format 2, and such
 * rows finish and are deleted in time (max_age, then the retention).
 *
 * Failures are KEYHOLD_ERROR_STORAGE (or KEYHOLD_ERROR_KEYRING from the
 * keyring); messages never contain key material or plaintext. */

#define KEYHOLD_OUTBOX_KEY_BYTES 32

typedef enum
{
  KEYHOLD_OUTBOX_PART_URL = 0,
  KEYHOLD_OUTBOX_PART_REQUEST = 1,
  KEYHOLD_OUTBOX_PART_RESPONSE = 2,
} KeyholdOutboxPart;

/* @item's id, owner, account, queue, subject, method and
 * idempotency_key are bound, and its sealed_url unless @part is the URL. */
GBytes *keyhold_outbox_crypto_seal (const KeyholdSecret *key,
                                    const KeyholdOutboxItem *item,
                                    KeyholdOutboxPart part,
                                    GBytes *plaintext);
/* Fails when @sealed was not made by seal () with the same key, part and
 * bound fields of @item, or was altered since. */
GBytes *keyhold_outbox_crypto_open (const KeyholdSecret *key,
                                    const KeyholdOutboxItem *item,
                                    KeyholdOutboxPart part,
                                    GBytes *sealed,
                                    GError **error);

/* A keyed hash that identifies @key without revealing it; the database
 * keeps it to tell a missing or a different key from damaged rows. */
GBytes *keyhold_outbox_crypto_fingerprint (const KeyholdSecret *key);

/* Looks the key up in the keyring. @expected_fingerprint is the one the
 * database holds, or NULL when it holds none and so no sealed data. Then,
 * and only then, a missing key is created and stored in the keyring before
 * it is returned: a new key would orphan every row sealed with the old
 * one. A missing or different key while data exists fails with
 * KEYHOLD_ERROR_STORAGE. */
void keyhold_outbox_crypto_load_key_async (GBytes *expected_fingerprint,
                                           GCancellable *cancellable,
                                           GAsyncReadyCallback callback,
                                           gpointer user_data);
KeyholdSecret *keyhold_outbox_crypto_load_key_finish (GAsyncResult *result, GError **error);

G_END_DECLS
