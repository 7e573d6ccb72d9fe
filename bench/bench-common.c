/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench-common.h"

void
bench_die (const char *format, ...)
{
  va_list args;

  va_start (args, format);
  fprintf (stderr, "%s: ", program_invocation_short_name);
  vfprintf (stderr, format, args);
  fprintf (stderr, "\n");
  va_end (args);
  exit (1);
}

double
bench_now_us (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

static int
compare_doubles (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

double
bench_percentile (GArray *samples, guint percent)
{
  gsize rank;

  g_array_sort (samples, compare_doubles);
  rank = (percent * samples->len + 99) / 100;
  return g_array_index (samples, double, MAX (rank, 1) - 1);
}

double
bench_ratio (double value, double baseline)
{
  return baseline > 0 ? value / baseline : 0;
}

void
bench_print_section (const char *title)
{
  printf ("\n== %s ==\n", title);
  fflush (stdout);
}

static void
close_connection (gpointer data)
{
  GDBusConnection *connection = data;

  g_dbus_connection_close_sync (connection, NULL, NULL);
  g_object_unref (connection);
}

GPtrArray *
bench_open_connections (guint count)
{
  GPtrArray *connections = g_ptr_array_new_with_free_func (close_connection);

  for (guint i = 0; i < count; i++)
    {
      g_autoptr (GError) error = NULL;
      GDBusConnection *connection = g_dbus_connection_new_for_address_sync (
          g_getenv ("DBUS_SESSION_BUS_ADDRESS"),
          G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
              | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
          NULL, NULL, &error);

      if (connection == NULL)
        bench_die ("cannot connect to the private bus: %s", error->message);
      g_ptr_array_add (connections, connection);
    }
  return connections;
}

void
bench_default_environment (void)
{
  g_setenv ("KEYHOLD_SOURCE_DIR", KEYHOLD_BENCH_SOURCE_DIR, FALSE);
  g_setenv ("KEYHOLD_BUILD_DIR", KEYHOLD_BENCH_BUILD_DIR, FALSE);
}
