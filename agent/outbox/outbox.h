/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "accounts/accounts.h"
#include "context.h"
#include "outbox/outbox-request.h"
#include "outbox/outbox-store.h"

G_BEGIN_DECLS

/* The offline outbox: HTTP requests that applications queue for an
 * account's API, kept durably (outbox-store.c) and encrypted
 * (outbox-crypto.c), replayed in order per (account, queue) with the
 * account's current access token, and their outcomes kept for the owner
 * (ARCHITECTURE.md, "The life of an outbox item", invariants 7 and 8).
 *
 * Owners are caller identities from access.c, never bus names. Errors are
 * KEYHOLD_ERROR codes, ready for D-Bus.
 *
 * Signals: "item-changed" (const char *id, const char *state, int status),
 * once a state change is on disk ("sending" is not stored and is emitted
 * as the attempt starts). Property "storage-error" (string, "" when all is
 * well): why the database or the key cannot be used.
 *
 * Requests, item infos and the per-item limits are in outbox-request.h.
 * The implementation is in parts that share outbox-private.h: outbox.c
 * (enqueue, life cycle), outbox-key.c (the key, sealing), outbox-sender.c
 * (queues, attempts, replay, sweeps) and outbox-queries.c (get, list,
 * cancel). */
#define KEYHOLD_TYPE_OUTBOX (keyhold_outbox_get_type ())
G_DECLARE_FINAL_TYPE (KeyholdOutbox, keyhold_outbox, KEYHOLD, OUTBOX, GObject)

/* The first bytes of a response body kept for the owner. */
#define KEYHOLD_OUTBOX_MAX_KEPT_RESPONSE_BYTES (64 * 1024)

/* Per owner, over its unfinished items. */
#define KEYHOLD_OUTBOX_MAX_ITEMS_PER_OWNER 200000
#define KEYHOLD_OUTBOX_MAX_BYTES_PER_OWNER ((guint64) 100 * 1024 * 1024)
/* Over all owners together. */
#define KEYHOLD_OUTBOX_MAX_ITEMS ((guint) 400000)
#define KEYHOLD_OUTBOX_MAX_BYTES ((guint64) 1024 * 1024 * 1024)

/* How long finished items and their results stay readable. */
#define KEYHOLD_OUTBOX_RETENTION_S (7 * 24 * 60 * 60)
#define KEYHOLD_OUTBOX_MAX_LIST 1000

/* Starts replaying what the database holds once the outbox key is loaded
 * from the keyring. Without a usable store every call fails with
 * KEYHOLD_ERROR_STORAGE. */
KeyholdOutbox *keyhold_outbox_new (KeyholdContext *context, KeyholdAccounts *accounts);

/* Validates @request (not taken), seals it and commits it as a new item of
 * @owner; returns its id only once it is on disk. */
void keyhold_outbox_enqueue_async (KeyholdOutbox *self,
                                   const char *owner,
                                   const char *account,
                                   const char *queue,
                                   const KeyholdOutboxRequest *request,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data);
char *keyhold_outbox_enqueue_finish (KeyholdOutbox *self, GAsyncResult *result, GError **error);

/* Reading needs the key, so these wait for it after a start.
 * KEYHOLD_ERROR_NOT_FOUND for items of other owners as for missing ones. */
void keyhold_outbox_get_async (KeyholdOutbox *self,
                               const char *owner,
                               const char *id,
                               GAsyncReadyCallback callback,
                               gpointer user_data);
KeyholdOutboxItemInfo *keyhold_outbox_get_finish (KeyholdOutbox *self,
                                                  GAsyncResult *result,
                                                  GError **error);

/* @account and @queue NULL for all; @state_mask a set of
 * (1 << KeyholdOutboxState), 0 for all; @after_id NULL for the start;
 * @limit 1 to KEYHOLD_OUTBOX_MAX_LIST. Returns KeyholdOutboxItemInfos,
 * oldest first. */
void keyhold_outbox_list_async (KeyholdOutbox *self,
                                const char *owner,
                                const char *account,
                                const char *queue,
                                guint state_mask,
                                const char *after_id,
                                guint limit,
                                GAsyncReadyCallback callback,
                                gpointer user_data);
GPtrArray *keyhold_outbox_list_finish (KeyholdOutbox *self, GAsyncResult *result, GError **error);

/* Ends an unfinished item of @owner as cancelled, aborting its transfer if
 * it is being sent. */
void keyhold_outbox_cancel_async (KeyholdOutbox *self,
                                  const char *owner,
                                  const char *id,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data);
gboolean keyhold_outbox_cancel_finish (KeyholdOutbox *self, GAsyncResult *result, GError **error);

/* After resume, a clock jump or the network coming back: timers on the
 * monotonic clock may be off, and retries that waited for the network can
 * go now. */
void keyhold_outbox_recheck (KeyholdOutbox *self);

/* An account was added, possibly under the name of one that was removed
 * while items of that name waited for a sign-in. */
void keyhold_outbox_account_added (KeyholdOutbox *self, KeyholdAccount *account);

const char *keyhold_outbox_get_storage_error (KeyholdOutbox *self);

/* Whether any item is still to be sent: the agent must not exit on idle
 * while it is. */
gboolean keyhold_outbox_has_unfinished_items (KeyholdOutbox *self);

G_END_DECLS
