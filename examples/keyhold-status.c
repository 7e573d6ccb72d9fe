/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <signal.h>
#include <stdio.h>

#include <glib-unix.h>

#include "keyhold-cli.h"

/* One account followed by --watch, with the property values last shown, so
 * that only real changes are printed (a restarted agent re-sends them all). */
typedef struct
{
  KeyholdDBusAccount1 *account;
  char *name;
  GHashTable *values;
  gulong properties_changed_id;
} WatchedAccount;

typedef struct
{
  GMainLoop *loop;
  KeyholdDBusAgent1 *agent;
  GHashTable *accounts; /* object path → WatchedAccount */
  gboolean agent_running;
} StatusWatch;

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
format_property_value (const char *property, GVariant *value, GDateTime *now)
{
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
    return format_instant (g_variant_get_int64 (value), now, past_word_for_property (property));

  if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
    {
      const char *text = g_variant_get_string (value, NULL);

      return text[0] != '\0' ? keyhold_cli_printable (text) : g_strdup ("none");
    }

  if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING_ARRAY))
    {
      g_autofree const char **items = g_variant_get_strv (value, NULL);
      g_autofree char *joined = g_strjoinv (", ", (char **)items);

      return keyhold_cli_printable (joined);
    }

  return g_variant_print (value, FALSE);
}

static void
print_account_status (KeyholdDBusAccount1 *account, GDateTime *now)
{
  g_autofree char *name = keyhold_cli_printable (keyhold_dbus_account1_get_name (account));
  g_autofree char *state = keyhold_cli_printable (keyhold_dbus_account1_get_state (account));
  g_autofree char *display_name
      = keyhold_cli_printable (keyhold_dbus_account1_get_display_name (account));
  g_autofree char *subject = keyhold_cli_printable (keyhold_dbus_account1_get_subject (account));
  g_autofree char *last_error
      = keyhold_cli_printable (keyhold_dbus_account1_get_last_error (account));
  g_autofree char *expiry
      = format_instant (keyhold_dbus_account1_get_access_token_expiry (account), now, "expired");
  g_autofree char *next_refresh
      = format_instant (keyhold_dbus_account1_get_next_refresh (account), now, "due");

  g_print ("%s\n", name);
  g_print ("  State:         %s\n", state);
  if (subject[0] != '\0')
    g_print ("  Signed in as:  %s (%s)\n", display_name, subject);
  else
    g_print ("  Signed in as:  nobody\n");
  g_print ("  Token expires: %s\n", expiry);
  g_print ("  Next refresh:  %s\n", next_refresh);
  if (last_error[0] != '\0')
    g_print ("  Last error:    %s\n", last_error);
}

static void
print_status (GPtrArray *accounts)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();

  if (accounts->len == 0)
    g_print ("No accounts. Add one with \"keyhold account add\".\n");

  for (guint i = 0; i < accounts->len; i++)
    {
      if (i > 0)
        g_print ("\n");
      print_account_status (g_ptr_array_index (accounts, i), now);
    }
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

static void
on_properties_changed (GDBusProxy *proxy, GVariant *changed, GStrv invalidated, gpointer user_data)
{
  WatchedAccount *watched = user_data;
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();
  GVariantIter iter;
  const char *property;
  GVariant *value;

  g_variant_iter_init (&iter, changed);
  while (g_variant_iter_next (&iter, "{&sv}", &property, &value))
    {
      GVariant *shown = g_hash_table_lookup (watched->values, property);
      g_autofree char *text = NULL;

      if (shown != NULL && g_variant_equal (shown, value))
        {
          g_variant_unref (value);
          continue;
        }

      text = format_property_value (property, value, now);
      print_event (watched->name, "%s %s %s", property, keyhold_cli_glyph (KEYHOLD_CLI_GLYPH_ARROW),
                   text);
      g_hash_table_replace (watched->values, g_strdup (property), value);
    }
}

static WatchedAccount *
watched_account_new (KeyholdDBusAccount1 *account)
{
  WatchedAccount *watched = g_new0 (WatchedAccount, 1);
  GDBusProxy *proxy = G_DBUS_PROXY (account);
  g_auto (GStrv) properties = g_dbus_proxy_get_cached_property_names (proxy);

  watched->account = g_object_ref (account);
  watched->name = keyhold_cli_printable (keyhold_dbus_account1_get_name (account));
  watched->values
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_variant_unref);
  for (guint i = 0; properties != NULL && properties[i] != NULL; i++)
    g_hash_table_insert (watched->values, g_strdup (properties[i]),
                         g_dbus_proxy_get_cached_property (proxy, properties[i]));
  watched->properties_changed_id = g_signal_connect (account, "g-properties-changed",
                                                     G_CALLBACK (on_properties_changed), watched);

  return watched;
}

static void
watched_account_free (WatchedAccount *watched)
{
  g_signal_handler_disconnect (watched->account, watched->properties_changed_id);
  g_object_unref (watched->account);
  g_free (watched->name);
  g_hash_table_unref (watched->values);
  g_free (watched);
}

static void
watch_account (StatusWatch *watch, KeyholdDBusAccount1 *account)
{
  g_hash_table_insert (watch->accounts,
                       g_strdup (g_dbus_proxy_get_object_path (G_DBUS_PROXY (account))),
                       watched_account_new (account));
}

static gboolean
remove_if_gone (gpointer key, gpointer value, gpointer user_data)
{
  GHashTable *listed_paths = user_data;
  WatchedAccount *watched = value;

  if (g_hash_table_contains (listed_paths, key))
    return FALSE;

  print_event (watched->name, "removed");
  return TRUE;
}

static void
update_account_list (StatusWatch *watch)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) accounts = keyhold_cli_bus_list_accounts (watch->agent, &error);
  g_autoptr (GHashTable) listed_paths = NULL;

  if (accounts == NULL)
    {
      g_autofree char *description = keyhold_cli_describe_error (error);

      g_printerr ("keyhold: cannot list the accounts: %s\n", description);
      return;
    }

  listed_paths = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < accounts->len; i++)
    {
      KeyholdDBusAccount1 *account = g_ptr_array_index (accounts, i);
      const char *path = g_dbus_proxy_get_object_path (G_DBUS_PROXY (account));
      g_autofree char *name = NULL;
      g_autofree char *state = NULL;

      g_hash_table_add (listed_paths, (gpointer)path);
      if (g_hash_table_contains (watch->accounts, path))
        continue;

      name = keyhold_cli_printable (keyhold_dbus_account1_get_name (account));
      state = keyhold_cli_printable (keyhold_dbus_account1_get_state (account));
      print_event (name, "added (%s)", state);
      watch_account (watch, account);
    }

  g_hash_table_foreach_remove (watch->accounts, remove_if_gone, listed_paths);
}

static void
on_account_list_changed (gpointer user_data)
{
  StatusWatch *watch = user_data;
  gboolean running = keyhold_cli_bus_agent_is_running (watch->agent);

  if (running != watch->agent_running)
    print_event ("keyhold agent", "%s", running ? "started" : "stopped");
  watch->agent_running = running;

  /* Listing now would start the agent again. */
  if (running)
    update_account_list (watch);
}

static gboolean
on_interrupt (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_CONTINUE;
}

/* Follows the accounts until Ctrl-C, which is the normal way to stop. */
static int
watch_accounts (KeyholdDBusAgent1 *agent, GPtrArray *accounts)
{
  StatusWatch watch = { 0 };
  KeyholdCliAccountListWatch *list_watch;
  guint sigint_id;
  guint sigterm_id;

  watch.loop = g_main_loop_new (NULL, FALSE);
  watch.agent = agent;
  watch.accounts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify)watched_account_free);
  watch.agent_running = TRUE;
  for (guint i = 0; i < accounts->len; i++)
    watch_account (&watch, g_ptr_array_index (accounts, i));
  list_watch = keyhold_cli_bus_watch_account_list (agent, on_account_list_changed, &watch);
  sigint_id = g_unix_signal_add (SIGINT, on_interrupt, watch.loop);
  sigterm_id = g_unix_signal_add (SIGTERM, on_interrupt, watch.loop);

  fflush (stdout);
  g_main_loop_run (watch.loop);

  g_source_remove (sigint_id);
  g_source_remove (sigterm_id);
  keyhold_cli_bus_account_list_watch_free (list_watch);
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
  g_autoptr (KeyholdDBusAgent1) agent = NULL;
  g_autoptr (GPtrArray) accounts = NULL;
  g_autoptr (GError) error = NULL;

  g_option_context_set_summary (
      context, "Show each account's state, who is signed in, when the access token\n"
               "expires and is next refreshed, and the last error. Never a token.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!keyhold_cli_parse_options (context, &args, 0, &error))
    return keyhold_cli_report_error (error);

  agent = keyhold_cli_bus_get_agent (&error);
  if (agent == NULL)
    return keyhold_cli_report_error (error);
  accounts = keyhold_cli_bus_list_accounts (agent, &error);
  if (accounts == NULL)
    return keyhold_cli_report_error (error);

  print_status (accounts);
  if (!watch)
    return KEYHOLD_CLI_EXIT_SUCCESS;
  return watch_accounts (agent, accounts);
}
