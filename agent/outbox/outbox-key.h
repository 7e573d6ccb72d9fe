/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "outbox/outbox-crypto.h"
#include "outbox/outbox-private.h"

G_BEGIN_DECLS

/* The outbox key, loaded from the keyring (outbox-crypto.c) on first use
 * and bound to the database by its fingerprint, and the sealing of item
 * parts with it. The seal and open functions need the key loaded. */

/* A call that needs the key, continued by @func once the key is loaded,
 * or failed with the reason it cannot be. */
typedef void (*KeyholdOutboxKeyReadyFunc) (KeyholdOutbox *self, GTask *task);

/* Starts loading the key unless it is loaded or loading, or there is no
 * store. A failure sets key_error and tries again later. */
void keyhold_outbox_load_key (KeyholdOutbox *self);
/* Takes @task. The store must be usable. @bytes is what the call holds
 * while it waits (its request). A call waits a bounded time, then fails
 * with KEYHOLD_ERROR_KEYRING; beyond a cap on the waiting calls and their
 * bytes it fails at once with KEYHOLD_ERROR_QUOTA_EXCEEDED. */
void keyhold_outbox_when_key_ready (KeyholdOutbox *self,
                                    GTask *task,
                                    gsize bytes,
                                    KeyholdOutboxKeyReadyFunc func);
/* Fails every call waiting for the key with @error. */
void keyhold_outbox_fail_key_waiters (KeyholdOutbox *self, const GError *error);

/* Sealing binds the part to @item (outbox-crypto.h): the URL first, then
 * the other parts, which need @item's sealed_url. */
GBytes *keyhold_outbox_seal_string (KeyholdOutbox *self,
                                    const KeyholdOutboxItem *item,
                                    KeyholdOutboxPart part,
                                    const char *text);
/* Takes @value if it is floating. */
GBytes *keyhold_outbox_seal_variant (KeyholdOutbox *self,
                                     const KeyholdOutboxItem *item,
                                     KeyholdOutboxPart part,
                                     GVariant *value);
/* Opens @item's sealed URL. */
char *keyhold_outbox_open_url (KeyholdOutbox *self, const KeyholdOutboxItem *item, GError **error);
/* Returns a full reference to a value of @type. */
GVariant *keyhold_outbox_open_variant (KeyholdOutbox *self,
                                       const KeyholdOutboxItem *item,
                                       KeyholdOutboxPart part,
                                       const char *type,
                                       GBytes *sealed,
                                       GError **error);

G_END_DECLS
