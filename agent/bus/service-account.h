/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus/access.h"
#include "accounts/account.h"

G_BEGIN_DECLS

/* org.keyhold.Account1 for one account: a D-Bus object whose properties
 * mirror the account's and whose methods call into it. */
GDBusObjectSkeleton *keyhold_service_account_new (KeyholdAccount *account, KeyholdAccess *access);

char *keyhold_service_account_path (const char *account_name);

G_END_DECLS
