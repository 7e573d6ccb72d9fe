/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Ends the agent after it has been idle for a while: main.c's
 * --idle-timeout, which D-Bus activation and the systemd unit set. Started
 * by hand, without the option, the agent never exits for idleness.
 *
 * Idle means, for the whole timeout:
 *  - no D-Bus method call reached the agent. A client that calls keeps it
 *    alive; a client that only listens to signals does not, because D-Bus
 *    does not tell a service who listens. libkeyhold's objects survive the
 *    agent going away, and their next call starts it again;
 *  - no busy check says otherwise. The daemon adds one for signed-in
 *    accounts and one for outbox work (see keyhold-agent(8) for why those
 *    keep it alive).
 *
 * Busy checks are polled when the timeout runs out, so a busy spell that
 * begins and ends between two polls goes unseen; only calls are seen at
 * once. */
typedef struct _KeyholdIdleExit KeyholdIdleExit;

typedef gboolean (*KeyholdIdleExitBusyFunc) (gpointer user_data);
typedef void (*KeyholdIdleExitFunc) (gpointer user_data);

/* Calls @on_idle once the agent has been idle for @timeout_s seconds. */
KeyholdIdleExit *keyhold_idle_exit_new (GDBusConnection *connection,
                                        guint timeout_s,
                                        KeyholdIdleExitFunc on_idle,
                                        gpointer user_data);
void keyhold_idle_exit_add_busy_check (KeyholdIdleExit *self,
                                       KeyholdIdleExitBusyFunc is_busy,
                                       gpointer user_data);
void keyhold_idle_exit_free (KeyholdIdleExit *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdIdleExit, keyhold_idle_exit_free)

G_END_DECLS
