/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "outbox/outbox.h"

G_BEGIN_DECLS

/* What the parts of the outbox share: its state, and the helpers every
 * part uses (outbox-private.c). The parts depend on each other in one
 * direction only: outbox.c and outbox-queries.c use outbox-sender.c and
 * outbox-key.c, outbox-sender.c uses outbox-key.c, and all use this. */

/* After a failed database write or key lookup, try again this much later. */
#define STORAGE_RETRY_S 60
/* A sealed response: headers, the body's first bytes, whether it was cut. */
#define RESPONSE_TYPE "(a(ss)ayb)"

/* Lets callbacks that outlive the outbox (group commits finish when the
 * store closes) see that it is gone. */
typedef struct
{
  KeyholdOutbox *outbox;
} OutboxHandle;

struct _KeyholdOutbox
{
  GObject parent_instance;

  KeyholdContext *context;
  KeyholdAccounts *accounts;
  KeyholdOutboxStore *store;
  OutboxHandle *handle;
  GCancellable *cancellable;

  KeyholdSecret *key;
  gboolean key_loading;
  guint key_retry_id;
  /* KeyWaiter: calls that wait for the key */
  GQueue key_waiters;
  gsize key_waiting_bytes;
  /* Runs each time the key is loaded, after the calls that waited for it:
   * replay (outbox-sender.c), which the key's part does not know. */
  void (*key_ready) (KeyholdOutbox *self);
  gboolean replaying;

  /* "account\nqueue" -> OutboxQueue */
  GHashTable *queues;
  /* head item id -> OutboxQueue, to find the queue of an item */
  GHashTable *heads;
  GQueue ready;
  guint in_flight;
  /* account name -> AccountWatch */
  GHashTable *watches;
  guint sweep_id;

  char *open_error;
  char *key_error;
  char *write_error;
  char *storage_error;
};

/* Wall-clock milliseconds (base/clock.h), as the store keeps times. */
gint64 keyhold_outbox_now_ms (void);

OutboxHandle *keyhold_outbox_handle_ref (OutboxHandle *handle);
void keyhold_outbox_handle_unref (OutboxHandle *handle);

/* "storage-error" is the first of: the context's storage error, the
 * outbox's open_error, key_error, write_error. */
void keyhold_outbox_update_storage_error (KeyholdOutbox *self);
/* Sets @field, one of the error fields of @self, to @error's message (NULL
 * clears it) and updates "storage-error". */
void keyhold_outbox_set_error_field (KeyholdOutbox *self, char **field, const GError *error);
/* Whether the database can be used at all; the key may still be missing. */
gboolean keyhold_outbox_check_store (KeyholdOutbox *self, GError **error);
void keyhold_outbox_emit_item_changed (KeyholdOutbox *self,
                                       const char *id,
                                       KeyholdOutboxState state,
                                       int status);

/* From class_init: "storage-error", its getter, and "item-changed". */
void keyhold_outbox_install_notifications (GObjectClass *object_class);

G_END_DECLS
