/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "keyhold/keyhold-account.h"

G_BEGIN_DECLS

/* An account object for the agent's object at @object_path, with the
 * org.keyhold.Account1 @properties (a{sv}) it announced. The object stays
 * bound to the path, not to one agent process, so it keeps working when
 * the agent restarts. */
KeyholdAccount *keyhold_account_new (GDBusConnection *connection,
                                     const char *object_path,
                                     GVariant *properties);
const char *keyhold_account_get_object_path (KeyholdAccount *self);
/* Takes the values of @properties (a{sv}) that differ from the known ones
 * and notifies those, once all are in. */
void keyhold_account_update (KeyholdAccount *self, GVariant *properties);

G_END_DECLS
