/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <signal.h>
#include <stdio.h>

#include <glib-unix.h>

#include "keyhold-cli.h"

typedef struct
{
  GMainLoop *loop;
  KeyholdClient *client;
  /* KeyholdAccount → its "notify" handler id. */
  GHashTable *accounts;
  gboolean agent_running;
} StatusWatch;

/* Events name properties as the D-Bus API does, which is what the rest of
 * keyhold's documentation speaks of. */
static const struct
{
  const char *property;
  const char *dbus_name;
} watched_properties[] = {
  { "state", "State" },
  { "subject", "Subject" },
  { "display-name", "DisplayName" },
  { "access-token-expiry", "AccessTokenExpiry" },
  { "next-refresh", "NextRefresh" },
  { "last-error", "LastError" },
  { "issuer", "Issuer" },
  { "scopes", "Scopes" },
  { "api-origins", "ApiOrigins" },
};

static char *
format_duration (gint64 seconds)
{
  if (seconds < 60)
    return g_strdup_printf ("%" G_GINT64_FORMAT " s", seconds);
  if (seconds < 60 * 60)
    return g_strdup_printf ("%" G_GINT64_FORMAT " min", seconds / 60);
  if (seconds < 24 * 60 * 60)
    return g_strdup_printf ("%" G_GINT64_FORMAT " h %" G_GINT64_FORMAT " min", seconds / 3600,
                            seconds % 3600 / 60);
  return g_strdup_printf ("%" G_GINT64_FORMAT " days", seconds / (24 * 60 * 60));
}

/* "14:32:10 (in 12 min)", with the date when it is not today; @past_word
 * replaces "in …" once the moment has passed. 0 means "none". */
static char *
format_instant (gint64 unix_time, GDateTime *now, const char *past_word)
{
  g_autoptr (GDateTime) when = NULL;
  g_autofree char *clock = NULL;
  g_autofree char *duration = NULL;
  gint64 seconds_left;

  if (unix_time == 0)
    return g_strdup ("none");

  when = g_date_time_new_from_unix_local (unix_time);
  if (when == NULL)
    return g_strdup_printf ("%" G_GINT64_FORMAT, unix_time);

  if (g_date_time_get_year (when) == g_date_time_get_year (now)
      && g_date_time_get_day_of_year (when) == g_date_time_get_day_of_year (now))
    clock = g_date_time_format (when, "%H:%M:%S");
  else
    clock = g_date_time_format (when, "%Y-%m-%d %H:%M:%S");

  seconds_left = unix_time - g_date_time_to_unix (now);
  if (seconds_left <= 0)
    return g_strdup_printf ("%s (%s)", clock, past_word);

  duration = format_duration (seconds_left);
  return g_strdup_printf ("%s (in %s)", clock, duration);
}

/* Both time properties are instants; which word fits a past one differs. */
static const char *
past_word_for_property (const char *property)
{
  return g_str_equal (property, "AccessTokenExpiry") ? "expired" : "due";
}

static char *
format_property_value (const char *dbus_name, const GValue *value, GDateTime *now)
{
  if (G_VALUE_HOLDS_INT64 (value))
    return format_instant (g_value_get_int64 (value), now, past_word_for_property (dbus_name));

  if (G_VALUE_HOLDS_ENUM (value))
    return g_strdup (keyhold_cli_state_name (g_value_get_enum (value)));

  if (G_VALUE_HOLDS_STRING (value))
    {
      const char *text = g_value_get_string (value);

      return text != NULL && text[0] != '\0' ? keyhold_cli_printable (text) : g_strdup ("none");
    }

  if (G_VALUE_HOLDS (value, G_TYPE_STRV))
    {
      g_autofree char *joined = g_strjoinv (", ", g_value_get_boxed (value));

      return keyhold_cli_printable (joined);
    }

  return g_strdup_value_contents (value);
}

static void
print_account_status (KeyholdAccount *account, GDateTime *now)
{
  g_autofree char *name = keyhold_cli_printable (keyhold_account_get_name (account));
  g_autofree char *display_name
      = keyhold_cli_printable (keyhold_account_get_display_name (account));
  g_autofree char *subject = keyhold_cli_printable (keyhold_account_get_subject (account));
  g_autofree char *last_error = keyhold_cli_printable (keyhold_account_get_last_error (account));
  g_autofree char *expiry
      = format_instant (keyhold_account_get_access_token_expiry (account), now, "expired");
  g_autofree char *next_refresh
      = format_instant (keyhold_account_get_next_refresh (account), now, "due");

  g_print ("%s\n", name);
  g_print ("  State:         %s\n", keyhold_cli_state_name (keyhold_account_get_state (account)));
  if (subject[0] != '\0')
    g_print ("  Signed in as:  %s (%s)\n", display_name, subject);
  else
    g_print ("  Signed in as:  nobody\n");
  g_print ("  Token expires: %s\n", expiry);
  g_print ("  Next refresh:  %s\n", next_refresh);
  if (last_error[0] != '\0')
    g_print ("  Last error:    %s\n", last_error);
}

/* A database or outbox key the agent cannot use. */
static void
print_storage_error (KeyholdClient *client)
{
  g_autofree char *message = keyhold_cli_printable (keyhold_client_get_storage_error (client));

  if (message[0] != '\0')
    g_print ("\nStorage problem: %s\n", message);
}

static void
print_status (KeyholdClient *client)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();
  g_autolist (KeyholdAccount) accounts = keyhold_client_get_accounts (client);

  if (accounts == NULL)
    g_print ("No accounts. Add one with \"keyhold account add\".\n");

  for (GList *l = accounts; l != NULL; l = l->next)
    {
      if (l != accounts)
        g_print ("\n");
      print_account_status (l->data, now);
    }
  print_storage_error (client);
}

static void G_GNUC_PRINTF (2, 3) print_event (const char *subject, const char *format, ...)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *clock = g_date_time_format (now, "%H:%M:%S");
  g_autofree char *event = NULL;
  va_list args;

  va_start (args, format);
  event = g_strdup_vprintf (format, args);
  va_end (args);

  g_print ("%s %s: %s\n", clock, subject, event);
  fflush (stdout);
}

static const char *
dbus_name_of (const char *property)
{
  for (gsize i = 0; i < G_N_ELEMENTS (watched_properties); i++)
    if (g_str_equal (watched_properties[i].property, property))
      return watched_properties[i].dbus_name;
  return NULL;
}

/* libkeyhold notifies only real changes, so a restarted agent that sends
 * every value again prints nothing. */
static void
on_account_notify (GObject *account, GParamSpec *pspec, gpointer user_data)
{
  const char *dbus_name = dbus_name_of (pspec->name);
  g_auto (GValue) value = G_VALUE_INIT;
  g_autoptr (GDateTime) now = NULL;
  g_autofree char *name = NULL;
  g_autofree char *text = NULL;

  if (dbus_name == NULL)
    return;

  g_value_init (&value, pspec->value_type);
  g_object_get_property (account, pspec->name, &value);
  now = g_date_time_new_now_local ();
  name = keyhold_cli_printable (keyhold_account_get_name (KEYHOLD_ACCOUNT (account)));
  text = format_property_value (dbus_name, &value, now);
  print_event (name, "%s %s %s", dbus_name, keyhold_cli_glyph (KEYHOLD_CLI_GLYPH_ARROW), text);
}

static void
watch_account (StatusWatch *watch, KeyholdAccount *account)
{
  gulong handler_id = g_signal_connect (account, "notify", G_CALLBACK (on_account_notify), NULL);

  g_hash_table_insert (watch->accounts, g_object_ref (account), GSIZE_TO_POINTER (handler_id));
}

static void
unwatch_account (gpointer account, gpointer handler_id, gpointer user_data)
{
  g_signal_handler_disconnect (account, GPOINTER_TO_SIZE (handler_id));
  g_object_unref (account);
}

static void
on_account_added (KeyholdClient *client, KeyholdAccount *account, gpointer user_data)
{
  StatusWatch *watch = user_data;
  g_autofree char *name = keyhold_cli_printable (keyhold_account_get_name (account));

  print_event (name, "added (%s)", keyhold_cli_state_name (keyhold_account_get_state (account)));
  watch_account (watch, account);
}

static void
on_account_removed (KeyholdClient *client, KeyholdAccount *account, gpointer user_data)
{
  StatusWatch *watch = user_data;
  g_autofree char *name = keyhold_cli_printable (keyhold_account_get_name (account));
  gpointer handler_id;

  if (!g_hash_table_steal_extended (watch->accounts, account, NULL, &handler_id))
    return;
  print_event (name, "removed");
  unwatch_account (account, handler_id, NULL);
}

static void
on_agent_running_changed (GObject *client, GParamSpec *pspec, gpointer user_data)
{
  StatusWatch *watch = user_data;
  gboolean running = keyhold_client_get_agent_running (KEYHOLD_CLIENT (client));

  if (running != watch->agent_running)
    print_event ("keyhold agent", "%s", running ? "started" : "stopped");
  watch->agent_running = running;
}

static gboolean
on_interrupt (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_CONTINUE;
}

/* Follows the accounts until Ctrl-C, which is the normal way to stop. */
static int
watch_accounts (KeyholdClient *client)
{
  StatusWatch watch = { 0 };
  g_autolist (KeyholdAccount) accounts = keyhold_client_get_accounts (client);
  guint sigint_id;
  guint sigterm_id;

  watch.loop = g_main_loop_new (NULL, FALSE);
  watch.client = client;
  watch.accounts = g_hash_table_new (NULL, NULL);
  watch.agent_running = TRUE;
  for (GList *l = accounts; l != NULL; l = l->next)
    watch_account (&watch, l->data);
  g_signal_connect (client, "account-added", G_CALLBACK (on_account_added), &watch);
  g_signal_connect (client, "account-removed", G_CALLBACK (on_account_removed), &watch);
  g_signal_connect (client, "notify::agent-running", G_CALLBACK (on_agent_running_changed), &watch);
  sigint_id = g_unix_signal_add (SIGINT, on_interrupt, watch.loop);
  sigterm_id = g_unix_signal_add (SIGTERM, on_interrupt, watch.loop);

  fflush (stdout);
  g_main_loop_run (watch.loop);

  g_source_remove (sigint_id);
  g_source_remove (sigterm_id);
  g_signal_handlers_disconnect_by_data (client, &watch);
  g_hash_table_foreach (watch.accounts, unwatch_account, NULL);
  g_hash_table_unref (watch.accounts);
  g_main_loop_unref (watch.loop);
  return KEYHOLD_CLI_EXIT_SUCCESS;
}

int
keyhold_cli_status (GStrv args)
{
  gboolean watch = FALSE;
  const GOptionEntry entries[] = {
    { "watch", 'w', 0, G_OPTION_ARG_NONE, &watch,
      "Keep running and print a line for every change, until Ctrl-C", NULL },
    G_OPTION_ENTRY_NULL,
  };
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_autoptr (KeyholdClient) client = NULL;
  g_autoptr (GError) error = NULL;

  g_option_context_set_summary (
      context, "Show each account's state, who is signed in, when the access token\n"
               "expires and is next refreshed, and the last error. Never a token.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!keyhold_cli_parse_options (context, &args, 0, &error))
    return keyhold_cli_report_error (error);

  client = keyhold_client_new_sync (NULL, &error);
  if (client == NULL)
    return keyhold_cli_report_error (error);

  print_status (client);
  if (!watch)
    return KEYHOLD_CLI_EXIT_SUCCESS;
  return watch_accounts (client);
}
