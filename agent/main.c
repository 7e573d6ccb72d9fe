/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <glib-unix.h>
#include <locale.h>
#include <sys/prctl.h>

#include "daemon.h"

typedef struct
{
  GMainLoop *loop;
  int exit_status;
} AgentRun;

static gboolean
on_terminate_signal (gpointer user_data)
{
  AgentRun *run = user_data;

  g_main_loop_quit (run->loop);
  return G_SOURCE_CONTINUE;
}

static void
on_daemon_stopped (KeyholdDaemon *daemon, int exit_status, gpointer user_data)
{
  AgentRun *run = user_data;

  run->exit_status = exit_status;
  g_main_loop_quit (run->loop);
}

int
main (int argc, char **argv)
{
  gboolean replace = FALSE;
  gboolean version = FALSE;
  int idle_timeout_s = 0;
  const GOptionEntry entries[] = {
    { "replace", 'r', 0, G_OPTION_ARG_NONE, &replace,
      "Replace the agent that owns org.keyhold.Agent", NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { "idle-timeout", 0, 0, G_OPTION_ARG_INT, &idle_timeout_s,
      "Exit after SECONDS without work (default 0: never)", "SECONDS" },
    { NULL },
  };
  g_autoptr (GOptionContext) options = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdDaemon) daemon = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  AgentRun run = { 0 };
  guint sigterm_id, sigint_id;

  /* Token pages must never end up in a core file, and other processes of
   * this user must not be able to ptrace the agent to read them. */
  if (prctl (PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || prctl (PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
    g_warning ("The kernel did not make the agent non-dumpable; tokens could reach a core file");

  setlocale (LC_ALL, "");
  g_set_prgname ("keyhold-agent");

  options = g_option_context_new ("- keyhold authentication agent");
  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      g_printerr ("keyhold-agent: %s\n", error->message);
      return 2;
    }
  if (idle_timeout_s < 0)
    {
      g_printerr ("keyhold-agent: --idle-timeout must not be negative\n");
      return 2;
    }
  if (version)
    {
      g_print ("keyhold-agent %s\n", PACKAGE_VERSION);
      return 0;
    }

  loop = g_main_loop_new (NULL, FALSE);
  run.loop = loop;
  sigterm_id = g_unix_signal_add (SIGTERM, on_terminate_signal, &run);
  sigint_id = g_unix_signal_add (SIGINT, on_terminate_signal, &run);

  daemon = keyhold_daemon_new (replace);
  keyhold_daemon_set_idle_timeout (daemon, (guint) idle_timeout_s);
  g_signal_connect (daemon, "stopped", G_CALLBACK (on_daemon_stopped), &run);
  keyhold_daemon_start (daemon);

  g_main_loop_run (loop);

  keyhold_daemon_shutdown (daemon);
  g_source_remove (sigint_id);
  g_source_remove (sigterm_id);
  return run.exit_status;
}
