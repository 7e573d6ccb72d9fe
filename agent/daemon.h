/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* The agent as a whole: owns org.keyhold.Agent on the session bus, the
 * shared services (HTTP, store, provider cache), the accounts and the D-Bus
 * objects. Emits "stopped" (int exit_status) when it can no longer run:
 * the name is taken by another agent, or was never obtained. */
#define KEYHOLD_TYPE_DAEMON (keyhold_daemon_get_type ())
G_DECLARE_FINAL_TYPE (KeyholdDaemon, keyhold_daemon, KEYHOLD, DAEMON, GObject)

KeyholdDaemon *keyhold_daemon_new (gboolean replace);
/* Before start: exit after @seconds idle (see idle-exit.h); 0 never does. */
void keyhold_daemon_set_idle_timeout (KeyholdDaemon *self, guint seconds);
void keyhold_daemon_start (KeyholdDaemon *self);
/* Stops serving and releases everything, in the reverse order of start. */
void keyhold_daemon_shutdown (KeyholdDaemon *self);

G_END_DECLS
