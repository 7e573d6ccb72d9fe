/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "storage/store.h"

G_BEGIN_DECLS

/* Every SQL statement of the outbox, on the tables that migration 2 in
 * store.c creates. Items hold only sealed (encrypted) URLs, requests and
 * responses; this module never sees plaintext.
 *
 * Writes are group-committed: the writes asked for during one main-loop
 * iteration are committed together in one transaction at the next, and
 * each completes only once that transaction is on disk (the connection
 * runs with synchronous=FULL). Reads see what has been committed.
 *
 * The store also keeps, in memory, how much each owner and all of them
 * together have queued, and refuses inserts beyond the quota. Failures are KEYHOLD_ERROR codes:
 * STORAGE with SQLite's message, NOT_FOUND, INVALID_ARGUMENT (the item has
 * finished already), QUOTA_EXCEEDED. */
typedef struct _KeyholdOutboxStore KeyholdOutboxStore;

typedef enum
{
  KEYHOLD_OUTBOX_STATE_PENDING = 0,
  /* Never stored: an item being sent is pending on disk, which is also
   * what at-least-once delivery needs after a crash. */
  KEYHOLD_OUTBOX_STATE_SENDING = 1,
  KEYHOLD_OUTBOX_STATE_WAITING = 2,
  KEYHOLD_OUTBOX_STATE_DONE = 3,
  KEYHOLD_OUTBOX_STATE_FAILED = 4,
  KEYHOLD_OUTBOX_STATE_CANCELLED = 5,
  KEYHOLD_OUTBOX_STATE_EXPIRED = 6,
} KeyholdOutboxState;

#define KEYHOLD_OUTBOX_N_STATES 7

const char *keyhold_outbox_state_to_string (KeyholdOutboxState state);
gboolean keyhold_outbox_state_from_string (const char *string, KeyholdOutboxState *out_state);
gboolean keyhold_outbox_state_is_finished (KeyholdOutboxState state);

/* One row. Times are Unix milliseconds; 0 means none. */
typedef struct
{
  char *id;
  char *owner;
  char *account;
  char *queue;
  char *subject;
  char *method;
  GBytes *sealed_url;
  GBytes *sealed_request;
  /* Plaintext bytes of URL, headers and body: what the quota counts. */
  gsize request_size;
  char *idempotency_key;
  KeyholdOutboxState state;
  guint attempts;
  gint64 created_ms;
  gint64 expires_ms;
  gint64 next_attempt_ms;
  int status;
  /* NULL until there is a response. */
  GBytes *sealed_response;
  char *reason;
  gint64 finished_ms;
} KeyholdOutboxItem;

void keyhold_outbox_item_free (KeyholdOutboxItem *item);

/* What a write changes in an item: everything that changes after it was
 * enqueued. A finished state also sets finished_ms to now and drops the
 * sealed request, which is never needed again. */
typedef struct
{
  KeyholdOutboxState state;
  guint attempts;
  gint64 next_attempt_ms;
  int status;
  /* NULL keeps the stored response. */
  GBytes *sealed_response;
  const char *reason;
} KeyholdOutboxChange;

/* Per owner, and over all owners together: so many owners cannot fill
 * the disk, or the memory that counts their items, between them. */
typedef struct
{
  guint max_items;
  guint64 max_bytes;
  guint max_total_items;
  guint64 max_total_bytes;
} KeyholdOutboxQuota;

/* Every unfinished item is charged its request_size plus this, so that
 * many tiny items cannot escape the byte quota. */
#define KEYHOLD_OUTBOX_ITEM_OVERHEAD_BYTES 512

/* Prepares the statements and counts what every owner has queued. */
KeyholdOutboxStore *keyhold_outbox_store_new (KeyholdStore *store,
                                              const KeyholdOutboxQuota *quota,
                                              GError **error);
/* Commits the writes still waiting, then completes them (with
 * G_IO_ERROR_CANCELLED if their cancellable was cancelled). */
void keyhold_outbox_store_free (KeyholdOutboxStore *store);

/* The fingerprint of the key the items are sealed with; NULL without an
 * error while none was recorded. */
GBytes *keyhold_outbox_store_get_key_fingerprint (KeyholdOutboxStore *store, GError **error);
gboolean keyhold_outbox_store_set_key_fingerprint (KeyholdOutboxStore *store,
                                                   GBytes *fingerprint,
                                                   GError **error);

/* Adds @item (taken) in state pending. Fails at once, before anything is
 * written, with QUOTA_EXCEEDED when its owner would go over the quota. */
void keyhold_outbox_store_insert_async (KeyholdOutboxStore *store,
                                        KeyholdOutboxItem *item,
                                        GCancellable *cancellable,
                                        GAsyncReadyCallback callback,
                                        gpointer user_data);
/* Does not touch the store, so it may be called after it was freed. */
gboolean keyhold_outbox_store_insert_finish (GAsyncResult *result, GError **error);

/* Applies @change (copied) to the unfinished item @id; fails with
 * INVALID_ARGUMENT when the item has finished already (a cancel and an
 * outcome crossed), NOT_FOUND when there is no such item. */
void keyhold_outbox_store_change_async (KeyholdOutboxStore *store,
                                        const char *id,
                                        const KeyholdOutboxChange *change,
                                        GCancellable *cancellable,
                                        GAsyncReadyCallback callback,
                                        gpointer user_data);
gboolean keyhold_outbox_store_change_finish (GAsyncResult *result, GError **error);

/* NOT_FOUND when there is no such item. Leaves out the sealed request. */
KeyholdOutboxItem *keyhold_outbox_store_get (KeyholdOutboxStore *store,
                                             const char *id,
                                             GError **error);

/* The owner's items, oldest first, without their sealed request and
 * response: only those of @account and @queue unless they are NULL, only
 * those in a state of @state_mask (bits 1 << KeyholdOutboxState) unless it
 * is 0, only those enqueued after @after_id unless it is NULL (NOT_FOUND
 * if @after_id is not the owner's), at most @limit. */
GPtrArray *keyhold_outbox_store_list (KeyholdOutboxStore *store,
                                      const char *owner,
                                      const char *account,
                                      const char *queue,
                                      guint state_mask,
                                      const char *after_id,
                                      guint limit,
                                      GError **error);

/* The oldest unfinished item of (@account, @queue), without its sealed
 * request and response, so that a queue costs little memory while it
 * waits; NULL without an error when there is none. */
KeyholdOutboxItem *keyhold_outbox_store_get_head (KeyholdOutboxStore *store,
                                                  const char *account,
                                                  const char *queue,
                                                  GError **error);
/* The sealed request of the unfinished item @id, read when it is about to
 * be sent; NOT_FOUND when there is no such unfinished item. */
GBytes *keyhold_outbox_store_get_request (KeyholdOutboxStore *store,
                                          const char *id,
                                          GError **error);

/* The (account, queue) pairs that have unfinished items, as a flat array
 * account, queue, account, queue, ... */
GPtrArray *keyhold_outbox_store_list_queues (KeyholdOutboxStore *store, GError **error);

/* Ids of at most @limit unfinished items whose expiry is at or before
 * @now_ms. */
GPtrArray *keyhold_outbox_store_list_overdue (KeyholdOutboxStore *store,
                                              gint64 now_ms,
                                              guint limit,
                                              GError **error);

/* Deletes at most @limit items that finished before @before_ms: the end of
 * their retention. The only way an item ever leaves the database. */
gboolean keyhold_outbox_store_delete_finished (KeyholdOutboxStore *store,
                                               gint64 before_ms,
                                               guint limit,
                                               guint *out_deleted,
                                               GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdOutboxItem, keyhold_outbox_item_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdOutboxStore, keyhold_outbox_store_free)

G_END_DECLS
