/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(KEYHOLD_INSIDE) && !defined(KEYHOLD_COMPILATION)
#error "Only <keyhold/keyhold.h> can be included directly."
#endif

#include <gio/gio.h>

#include <keyhold/keyhold-visibility.h>

G_BEGIN_DECLS

/**
 * KeyholdOutboxState:
 * @KEYHOLD_OUTBOX_STATE_UNKNOWN: The agent reported a state this version of
 *   the library does not know.
 * @KEYHOLD_OUTBOX_STATE_PENDING: Waiting to be sent, or to be retried.
 * @KEYHOLD_OUTBOX_STATE_SENDING: Being sent now.
 * @KEYHOLD_OUTBOX_STATE_WAITING: Waiting for the account to be signed in again.
 * @KEYHOLD_OUTBOX_STATE_DONE: The server answered with a 2xx status.
 * @KEYHOLD_OUTBOX_STATE_FAILED: The server refused it; see the status, the
 *   reason and the response.
 * @KEYHOLD_OUTBOX_STATE_CANCELLED: Its owner cancelled it.
 * @KEYHOLD_OUTBOX_STATE_EXPIRED: It did not finish before its maximum age.
 *
 * The state of an outbox item, as `org.keyhold.Outbox1` reports it. The
 * nick of each value is the string the agent sends. The last four are final.
 *
 * Since: 0.1
 */
typedef enum
{
  KEYHOLD_OUTBOX_STATE_UNKNOWN = 0,
  KEYHOLD_OUTBOX_STATE_PENDING = 1,
  KEYHOLD_OUTBOX_STATE_SENDING = 2,
  KEYHOLD_OUTBOX_STATE_WAITING = 3,
  KEYHOLD_OUTBOX_STATE_DONE = 4,
  KEYHOLD_OUTBOX_STATE_FAILED = 5,
  KEYHOLD_OUTBOX_STATE_CANCELLED = 6,
  KEYHOLD_OUTBOX_STATE_EXPIRED = 7,
} KeyholdOutboxState;

KEYHOLD_PUBLIC
gboolean keyhold_outbox_state_is_final (KeyholdOutboxState state);

#define KEYHOLD_TYPE_OUTBOX_REQUEST (keyhold_outbox_request_get_type ())
KEYHOLD_PUBLIC
G_DECLARE_FINAL_TYPE (KeyholdOutboxRequest,
                      keyhold_outbox_request,
                      KEYHOLD,
                      OUTBOX_REQUEST,
                      GObject)

KEYHOLD_PUBLIC
KeyholdOutboxRequest *keyhold_outbox_request_new (const char *method, const char *url);
KEYHOLD_PUBLIC
void keyhold_outbox_request_add_header (KeyholdOutboxRequest *self,
                                        const char *name,
                                        const char *value);
KEYHOLD_PUBLIC
void keyhold_outbox_request_set_body (KeyholdOutboxRequest *self, GBytes *body);
KEYHOLD_PUBLIC
void keyhold_outbox_request_set_max_age (KeyholdOutboxRequest *self, guint seconds);

#define KEYHOLD_TYPE_OUTBOX_ITEM (keyhold_outbox_item_get_type ())
KEYHOLD_PUBLIC
G_DECLARE_FINAL_TYPE (KeyholdOutboxItem, keyhold_outbox_item, KEYHOLD, OUTBOX_ITEM, GObject)

KEYHOLD_PUBLIC
const char *keyhold_outbox_item_get_id (KeyholdOutboxItem *self);
KEYHOLD_PUBLIC
const char *keyhold_outbox_item_get_account (KeyholdOutboxItem *self);
KEYHOLD_PUBLIC
const char *keyhold_outbox_item_get_queue (KeyholdOutboxItem *self);
KEYHOLD_PUBLIC
const char *keyhold_outbox_item_get_method (KeyholdOutboxItem *self);
KEYHOLD_PUBLIC
const char *keyhold_outbox_item_get_url (KeyholdOutboxItem *self);
KEYHOLD_PUBLIC
const char *keyhold_outbox_item_get_idempotency_key (KeyholdOutboxItem *self);
KEYHOLD_PUBLIC
KeyholdOutboxState keyhold_outbox_item_get_state (KeyholdOutboxItem *self);
KEYHOLD_PUBLIC
guint keyhold_outbox_item_get_attempts (KeyholdOutboxItem *self);
KEYHOLD_PUBLIC
gint64 keyhold_outbox_item_get_created (KeyholdOutboxItem *self);
KEYHOLD_PUBLIC
gint64 keyhold_outbox_item_get_expires (KeyholdOutboxItem *self);
KEYHOLD_PUBLIC
gint64 keyhold_outbox_item_get_next_attempt (KeyholdOutboxItem *self);
KEYHOLD_PUBLIC
gint64 keyhold_outbox_item_get_finished (KeyholdOutboxItem *self);
KEYHOLD_PUBLIC
int keyhold_outbox_item_get_status (KeyholdOutboxItem *self);
KEYHOLD_PUBLIC
const char *keyhold_outbox_item_get_reason (KeyholdOutboxItem *self);
KEYHOLD_PUBLIC
const char *keyhold_outbox_item_lookup_response_header (KeyholdOutboxItem *self, const char *name);
KEYHOLD_PUBLIC
GVariant *keyhold_outbox_item_get_response_headers (KeyholdOutboxItem *self);
KEYHOLD_PUBLIC
GBytes *keyhold_outbox_item_get_response_body (KeyholdOutboxItem *self);
KEYHOLD_PUBLIC
gboolean keyhold_outbox_item_get_response_truncated (KeyholdOutboxItem *self);

G_END_DECLS
