/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "bus/idle-exit.h"

#define CLOCK_KEY "keyhold-idle-exit-clock"

/* When the last method call arrived, in monotonic seconds. The filter that
 * writes it runs in GDBus's worker thread and may still be running just
 * after g_dbus_connection_remove_filter () returns, so the clock belongs to
 * the connection, which outlives its filters. */
typedef struct
{
  int last_call_s;
} CallClock;

typedef struct
{
  KeyholdIdleExitBusyFunc is_busy;
  gpointer user_data;
} BusyCheck;

struct _KeyholdIdleExit
{
  GDBusConnection *connection;
  guint filter_id;
  CallClock *clock;
  guint timeout_s;
  /* The last moment anything kept the agent busy, monotonic seconds. */
  int last_busy_s;
  GArray *busy_checks;
  guint timer_id;
  KeyholdIdleExitFunc on_idle;
  gpointer user_data;
};

static int
now_s (void)
{
  return (int) (g_get_monotonic_time () / G_USEC_PER_SEC);
}

static GDBusMessage *
on_message (GDBusConnection *connection,
            GDBusMessage *message,
            gboolean incoming,
            gpointer user_data)
{
  CallClock *clock = user_data;

  if (incoming && g_dbus_message_get_message_type (message) == G_DBUS_MESSAGE_TYPE_METHOD_CALL)
    g_atomic_int_set (&clock->last_call_s, now_s ());
  return message;
}

static gboolean
any_busy (KeyholdIdleExit *self)
{
  for (guint i = 0; i < self->busy_checks->len; i++)
    {
      BusyCheck *check = &g_array_index (self->busy_checks, BusyCheck, i);

      if (check->is_busy (check->user_data))
        return TRUE;
    }
  return FALSE;
}

static gboolean on_timer (gpointer user_data);

static void
arm (KeyholdIdleExit *self, guint seconds)
{
  self->timer_id = g_timeout_add_seconds (MAX (seconds, 1), on_timer, self);
}

static gboolean
on_timer (gpointer user_data)
{
  KeyholdIdleExit *self = user_data;
  int now = now_s ();
  int last_active = MAX (g_atomic_int_get (&self->clock->last_call_s), self->last_busy_s);
  int idle_for = now - last_active;

  self->timer_id = 0;
  if (idle_for < (int) self->timeout_s)
    arm (self, self->timeout_s - idle_for);
  else if (any_busy (self))
    {
      self->last_busy_s = now;
      arm (self, self->timeout_s);
    }
  else
    self->on_idle (self->user_data);
  return G_SOURCE_REMOVE;
}

KeyholdIdleExit *
keyhold_idle_exit_new (GDBusConnection *connection,
                       guint timeout_s,
                       KeyholdIdleExitFunc on_idle,
                       gpointer user_data)
{
  KeyholdIdleExit *self = g_new0 (KeyholdIdleExit, 1);

  self->connection = g_object_ref (connection);
  self->clock = g_new0 (CallClock, 1);
  self->clock->last_call_s = now_s ();
  g_object_set_data_full (G_OBJECT (connection), CLOCK_KEY, self->clock, g_free);
  self->filter_id = g_dbus_connection_add_filter (connection, on_message, self->clock, NULL);
  self->timeout_s = timeout_s;
  self->last_busy_s = now_s ();
  self->busy_checks = g_array_new (FALSE, FALSE, sizeof (BusyCheck));
  self->on_idle = on_idle;
  self->user_data = user_data;
  arm (self, timeout_s);
  return self;
}

void
keyhold_idle_exit_add_busy_check (KeyholdIdleExit *self,
                                  KeyholdIdleExitBusyFunc is_busy,
                                  gpointer user_data)
{
  BusyCheck check = { is_busy, user_data };

  g_array_append_val (self->busy_checks, check);
}

void
keyhold_idle_exit_free (KeyholdIdleExit *self)
{
  if (self == NULL)
    return;

  g_clear_handle_id (&self->timer_id, g_source_remove);
  g_dbus_connection_remove_filter (self->connection, self->filter_id);
  g_object_unref (self->connection);
  g_array_unref (self->busy_checks);
  g_free (self);
}
