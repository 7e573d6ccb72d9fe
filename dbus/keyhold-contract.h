/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The D-Bus contract in C, for the agent and libkeyhold alike: the error
 * domain whose codes travel as org.keyhold.Error.* names, and the names
 * and paths the XML in this folder is served under. The only place that
 * spells them. Not installed; apps get the error domain from
 * <keyhold/keyhold.h>. */

#include <gio/gio.h>

#define KEYHOLD_INSIDE
#include "keyhold/keyhold-error.h"
#undef KEYHOLD_INSIDE

G_BEGIN_DECLS

#define KEYHOLD_AGENT_BUS_NAME "org.keyhold.Agent"
#define KEYHOLD_AGENT_PATH "/org/keyhold/Agent"
#define KEYHOLD_AGENT1_INTERFACE "org.keyhold.Agent1"
#define KEYHOLD_ACCOUNT1_INTERFACE "org.keyhold.Account1"
#define KEYHOLD_OUTBOX1_INTERFACE "org.keyhold.Outbox1"
#define KEYHOLD_OBJECT_MANAGER_INTERFACE "org.freedesktop.DBus.ObjectManager"

/* "org.keyhold.Error.NAME" for a KEYHOLD_ERROR @code, as GDBus sends it;
 * that of KEYHOLD_ERROR_FAILED for a code outside the table. For text that
 * names an error without going through GDBus (an account's LastError). */
const char *keyhold_contract_error_name (int code);

/* The object path of the account named @account_name:
 * KEYHOLD_AGENT_PATH "/account/" and the name escaped with
 * g_dbus_escape_object_path (), so any name maps to a valid path. */
char *keyhold_contract_account_path (const char *account_name);

G_END_DECLS
