/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "outbox/outbox-private.h"

G_BEGIN_DECLS

/* Sending: one queue per (account, queue name) with an unfinished item,
 * each sending its oldest item (the head) at a time; at most a fixed
 * number of sends in flight; retries with backoff; heads that wait for a
 * sign-in; replay of what the database holds at start, and the sweeps that
 * expire overdue items and delete old finished ones. */

typedef struct _OutboxQueue OutboxQueue;
typedef struct _AccountWatch AccountWatch;

/* Destroy functions of self->queues and self->watches. */
void keyhold_outbox_queue_free (OutboxQueue *queue);
void keyhold_outbox_account_watch_free (AccountWatch *watch);

/* Item @id of (@account, @queue_name) is on disk: emits "item-changed"
 * and starts its queue if it is idle. */
void keyhold_outbox_item_inserted (KeyholdOutbox *self,
                                   const char *account,
                                   const char *queue_name,
                                   const char *id);

/* Once, after the key is loaded: kicks every queue that has items, and
 * starts the sweeps. */
void keyhold_outbox_start_replay (KeyholdOutbox *self);

/* Whether item @id is a head whose attempt runs now. */
gboolean keyhold_outbox_is_being_sent (KeyholdOutbox *self, const char *id);

/* Ends the unfinished @item as @state without sending it again, aborting
 * its attempt if one runs. Takes @task (may be NULL), which returns TRUE
 * once the change is on disk. */
void keyhold_outbox_finish_unsent (KeyholdOutbox *self,
                                   const KeyholdOutboxItem *item,
                                   KeyholdOutboxState state,
                                   const char *reason,
                                   GTask *task);

G_END_DECLS
