/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus/access.h"
#include "outbox/outbox.h"

G_BEGIN_DECLS

/* org.keyhold.Outbox1 at /org/keyhold/Agent: thin handlers over @outbox,
 * which must outlive the skeleton. Items are filed under the caller's
 * identity from @access. */
GDBusInterfaceSkeleton *keyhold_service_outbox_new (KeyholdOutbox *outbox, KeyholdAccess *access);

G_END_DECLS
