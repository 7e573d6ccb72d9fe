/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Events after which timers on the monotonic clock can no longer be
 * trusted, or after which the provider may be reachable again: resume from
 * suspend (logind PrepareForSleep(false), from the current owner of
 * org.freedesktop.login1 only), a jump of the wall clock, and the network
 * coming back with full connectivity (a captive portal or limited
 * connectivity is not online). Each of these asks for a re-check; at most
 * one is reported per KEYHOLD_SYSTEM_EVENTS_MIN_RECHECK_INTERVAL_S, and
 * those that come sooner are coalesced into one reported at the end of the
 * interval. OFFLINE is reported at once. */
#define KEYHOLD_SYSTEM_EVENTS_MIN_RECHECK_INTERVAL_S 2

typedef enum
{
  KEYHOLD_SYSTEM_EVENT_RESUMED,
  KEYHOLD_SYSTEM_EVENT_CLOCK_JUMPED,
  KEYHOLD_SYSTEM_EVENT_ONLINE,
  KEYHOLD_SYSTEM_EVENT_OFFLINE,
} KeyholdSystemEvent;

typedef void (*KeyholdSystemEventFunc) (KeyholdSystemEvent event, gpointer user_data);

typedef struct _KeyholdSystemEvents KeyholdSystemEvents;

/* @logind_bus is the connection on which org.freedesktop.login1 lives (the
 * system bus; tests pass their private bus with a stand-in logind), or NULL
 * to watch no suspends. */
KeyholdSystemEvents *keyhold_system_events_new (GDBusConnection *logind_bus,
                                                KeyholdSystemEventFunc func,
                                                gpointer user_data);
void keyhold_system_events_free (KeyholdSystemEvents *events);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdSystemEvents, keyhold_system_events_free)

G_END_DECLS
