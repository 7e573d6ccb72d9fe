/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "accounts/account.h"
#include "bus/access.h"
#include "bus/token-fast-path.h"

G_BEGIN_DECLS

/* org.keyhold.Account1 for one account: a D-Bus object at
 * keyhold_contract_account_path () whose properties mirror the account's
 * and whose methods call into it. While the object lives, the account's
 * cached tokens are mirrored into @fast_path, which must outlive it. */
GDBusObjectSkeleton *keyhold_service_account_new (KeyholdAccount *account,
                                                  KeyholdAccess *access,
                                                  KeyholdTokenFastPath *fast_path);

G_END_DECLS
