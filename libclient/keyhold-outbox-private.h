/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "keyhold/keyhold-outbox.h"

G_BEGIN_DECLS

/* The request as the "request" argument of Outbox1.Enqueue (a{sv}, floating). */
GVariant *keyhold_outbox_request_to_variant (KeyholdOutboxRequest *self);

/* An item from the a{sv} dictionary of Outbox1.Get or List; takes @item. */
KeyholdOutboxItem *keyhold_outbox_item_new (GVariant *item);

/* The state's name on the wire (its enum nick), and back. */
const char *keyhold_outbox_state_to_string (KeyholdOutboxState state);
KeyholdOutboxState keyhold_outbox_state_from_string (const char *text);

G_END_DECLS
