/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <glib-unix.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "system/system-events.h"

#define LOGIND_BUS_NAME "org.freedesktop.login1"

struct _KeyholdSystemEvents
{
  KeyholdSystemEventFunc func;
  gpointer user_data;
  GDBusConnection *logind_bus;
  guint prepare_for_sleep_id;
  guint logind_watch_id;
  /* The unique name that owns org.freedesktop.login1 now, or NULL. */
  char *logind_owner;
  /* Monotonic time of the last re-check reported, and the one coalesced
   * behind it, if any. */
  gint64 last_recheck_us;
  guint pending_recheck_id;
  KeyholdSystemEvent pending_event;
  int clock_fd;
  guint clock_source_id;
  GNetworkMonitor *network_monitor;
  gulong network_changed_id;
  gulong connectivity_notify_id;
  gboolean online;
};

static gboolean
on_pending_recheck (gpointer user_data)
{
  KeyholdSystemEvents *events = user_data;

  events->pending_recheck_id = 0;
  events->last_recheck_us = g_get_monotonic_time ();
  events->func (events->pending_event, events->user_data);
  return G_SOURCE_REMOVE;
}

/* Each re-check may start a refresh for every account and ends their
 * backoff, so however fast the events come (a flapping network, a burst
 * of resumes), at most one is reported per
 * KEYHOLD_SYSTEM_EVENTS_MIN_RECHECK_INTERVAL_S. The first after a quiet
 * spell goes out at once; later ones are coalesced into one at the end of
 * the interval, so the last event is never lost. */
static void
report_recheck (KeyholdSystemEvents *events, KeyholdSystemEvent event)
{
  gint64 interval_us = KEYHOLD_SYSTEM_EVENTS_MIN_RECHECK_INTERVAL_S * G_USEC_PER_SEC;
  gint64 since_us = g_get_monotonic_time () - events->last_recheck_us;

  events->pending_event = event;
  if (events->pending_recheck_id != 0)
    return;
  if (events->last_recheck_us == 0 || since_us >= interval_us)
    {
      on_pending_recheck (events);
      return;
    }
  events->pending_recheck_id
      = g_timeout_add ((guint) ((interval_us - since_us + 999) / 1000), on_pending_recheck, events);
}

static void
on_logind_appeared (GDBusConnection *connection,
                    const char *name,
                    const char *owner,
                    gpointer user_data)
{
  KeyholdSystemEvents *events = user_data;

  g_free (events->logind_owner);
  events->logind_owner = g_strdup (owner);
}

static void
on_logind_vanished (GDBusConnection *connection, const char *name, gpointer user_data)
{
  KeyholdSystemEvents *events = user_data;

  g_clear_pointer (&events->logind_owner, g_free);
}

static void
on_prepare_for_sleep (GDBusConnection *connection,
                      const char *sender,
                      const char *path,
                      const char *interface,
                      const char *signal,
                      GVariant *parameters,
                      gpointer user_data)
{
  KeyholdSystemEvents *events = user_data;
  gboolean going_to_sleep;

  /* Any connection on the system bus can emit a signal with this name, or
   * send one to us directly, past any match rule. Only logind's counts. */
  if (events->logind_owner == NULL || g_strcmp0 (sender, events->logind_owner) != 0)
    return;
  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(b)")))
    return;
  g_variant_get (parameters, "(b)", &going_to_sleep);
  if (!going_to_sleep)
    report_recheck (events, KEYHOLD_SYSTEM_EVENT_RESUMED);
}

/* A timer on CLOCK_REALTIME that never expires but is cancelled (read fails
 * with ECANCELED) whenever the wall clock is set: the kernel's own way to
 * report clock jumps, with no polling. */
static gboolean
arm_clock_watch (KeyholdSystemEvents *events)
{
  struct itimerspec far_future = { .it_value = { .tv_sec = G_MAXINT32 } };

  return timerfd_settime (events->clock_fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET,
                          &far_future, NULL)
         == 0;
}

static gboolean
on_clock_fd (int fd, GIOCondition condition, gpointer user_data)
{
  KeyholdSystemEvents *events = user_data;
  guint64 expirations;

  if (read (fd, &expirations, sizeof expirations) < 0 && errno == ECANCELED)
    {
      arm_clock_watch (events);
      report_recheck (events, KEYHOLD_SYSTEM_EVENT_CLOCK_JUMPED);
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
has_full_connectivity (GNetworkMonitor *monitor)
{
  return g_network_monitor_get_network_available (monitor)
         && g_network_monitor_get_connectivity (monitor) == G_NETWORK_CONNECTIVITY_FULL;
}

static void
update_online (KeyholdSystemEvents *events)
{
  gboolean online = has_full_connectivity (events->network_monitor);

  if (online == events->online)
    return;
  events->online = online;
  if (online)
    report_recheck (events, KEYHOLD_SYSTEM_EVENT_ONLINE);
  else
    {
      /* A re-check held back by the rate limit would only refresh into a
       * dead network; coming back online re-checks anyway. */
      g_clear_handle_id (&events->pending_recheck_id, g_source_remove);
      events->func (KEYHOLD_SYSTEM_EVENT_OFFLINE, events->user_data);
    }
}

static void
on_network_changed (GNetworkMonitor *monitor, gboolean available, gpointer user_data)
{
  update_online (user_data);
}

/* The NetworkManager-backed monitor reports connectivity changes only as
 * property notifications, without "network-changed". */
static void
on_connectivity_notify (GObject *monitor, GParamSpec *pspec, gpointer user_data)
{
  update_online (user_data);
}

KeyholdSystemEvents *
keyhold_system_events_new (GDBusConnection *logind_bus,
                           KeyholdSystemEventFunc func,
                           gpointer user_data)
{
  KeyholdSystemEvents *events = g_new0 (KeyholdSystemEvents, 1);

  events->func = func;
  events->user_data = user_data;

  if (logind_bus != NULL)
    {
      events->logind_bus = g_object_ref (logind_bus);
      /* The sender in the match rule keeps other connections' broadcasts
       * from being routed to us; the owner check in the handler is what
       * counts, since a signal sent to us directly needs no match rule. */
      events->logind_watch_id = g_bus_watch_name_on_connection (
          logind_bus, LOGIND_BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE, on_logind_appeared,
          on_logind_vanished, events, NULL);
      events->prepare_for_sleep_id = g_dbus_connection_signal_subscribe (
          logind_bus, LOGIND_BUS_NAME, "org.freedesktop.login1.Manager", "PrepareForSleep",
          "/org/freedesktop/login1", NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_prepare_for_sleep, events,
          NULL);
    }

  events->clock_fd = timerfd_create (CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
  if (events->clock_fd >= 0 && arm_clock_watch (events))
    events->clock_source_id = g_unix_fd_add (events->clock_fd, G_IO_IN, on_clock_fd, events);

  events->network_monitor = g_object_ref (g_network_monitor_get_default ());
  events->online = has_full_connectivity (events->network_monitor);
  events->network_changed_id = g_signal_connect (events->network_monitor, "network-changed",
                                                 G_CALLBACK (on_network_changed), events);
  events->connectivity_notify_id = g_signal_connect (
      events->network_monitor, "notify::connectivity", G_CALLBACK (on_connectivity_notify), events);
  return events;
}

void
keyhold_system_events_free (KeyholdSystemEvents *events)
{
  if (events == NULL)
    return;
  g_clear_signal_handler (&events->network_changed_id, events->network_monitor);
  g_clear_signal_handler (&events->connectivity_notify_id, events->network_monitor);
  g_clear_object (&events->network_monitor);
  g_clear_handle_id (&events->clock_source_id, g_source_remove);
  g_clear_handle_id (&events->pending_recheck_id, g_source_remove);
  if (events->clock_fd >= 0)
    close (events->clock_fd);
  if (events->logind_bus != NULL)
    {
      g_dbus_connection_signal_unsubscribe (events->logind_bus, events->prepare_for_sleep_id);
      g_bus_unwatch_name (events->logind_watch_id);
      g_object_unref (events->logind_bus);
    }
  g_free (events->logind_owner);
  g_free (events);
}
