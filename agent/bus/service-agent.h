/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus/access.h"
#include "accounts/accounts.h"
#include "accounts/sign-in.h"

G_BEGIN_DECLS

/* org.keyhold.Agent1: the manager object at /org/keyhold/Agent. */
GDBusInterfaceSkeleton *keyhold_service_agent_new (KeyholdAccounts *accounts,
                                                   KeyholdSignIns *sign_ins,
                                                   KeyholdAccess *access);

G_END_DECLS
