/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus/access.h"
#include "accounts/accounts.h"
#include "accounts/sign-in.h"

G_BEGIN_DECLS

/* org.keyhold.Agent1: the manager object at KEYHOLD_AGENT_PATH. */
GDBusInterfaceSkeleton *keyhold_service_agent_new (KeyholdAccounts *accounts,
                                                   KeyholdSignIns *sign_ins,
                                                   KeyholdAccess *access);

/* Sends SignInProgress and SignInFinished, unicast: the user code and the
 * authorization URL concern only the process that started the sign-in.
 * The daemon forwards its KeyholdSignInsListener calls here. */
void keyhold_service_agent_sign_in_progress (GDBusInterfaceSkeleton *agent,
                                             const char *handle,
                                             const char *caller,
                                             GVariant *info);
void keyhold_service_agent_sign_in_finished (GDBusInterfaceSkeleton *agent,
                                             const char *handle,
                                             const char *caller,
                                             const GError *error);

G_END_DECLS
