/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "base/secret.h"

G_BEGIN_DECLS

/* The Secret Service keyring: the only place refresh tokens and the outbox
 * key are ever stored. Items use the schema "org.keyhold.Secret" with the
 * attributes kind, account and issuer, and live in the default collection.
 * Failures are KEYHOLD_ERROR_KEYRING (KEYHOLD_ERROR_CANCELLED when
 * cancelled), carrying libsecret's message and never secret data. */
typedef enum
{
  KEYHOLD_KEYRING_REFRESH_TOKEN = 0,
  KEYHOLD_KEYRING_OUTBOX_KEY = 1,
} KeyholdKeyringKind;

/* For KEYHOLD_KEYRING_OUTBOX_KEY, @account and @issuer are "". Storing
 * replaces an item with the same kind, account and issuer. */
void keyhold_keyring_store_async (KeyholdKeyringKind kind,
                                  const char *account,
                                  const char *issuer,
                                  KeyholdSecret *secret,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data);
gboolean keyhold_keyring_store_finish (GAsyncResult *result, GError **error);

void keyhold_keyring_lookup_async (KeyholdKeyringKind kind,
                                   const char *account,
                                   const char *issuer,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data);
/* Returns NULL without an error when there is no such item. */
KeyholdSecret *keyhold_keyring_lookup_finish (GAsyncResult *result, GError **error);

void keyhold_keyring_delete_async (KeyholdKeyringKind kind,
                                   const char *account,
                                   const char *issuer,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data);
/* Returns TRUE also when there was nothing to delete. */
gboolean keyhold_keyring_delete_finish (GAsyncResult *result, GError **error);

G_END_DECLS
