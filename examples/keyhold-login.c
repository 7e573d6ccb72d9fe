/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <signal.h>
#include <stdio.h>

#include <glib-unix.h>

#include "keyhold-cli.h"

typedef enum
{
  SIGN_IN_WAITING,
  SIGN_IN_FINISHED,
  SIGN_IN_INTERRUPTED,
  SIGN_IN_AGENT_VANISHED,
} SignInOutcome;

typedef struct
{
  GMainLoop *loop;
  char *handle;
  SignInOutcome outcome;
  char *error_name;
  char *error_message;
} SignIn;

static void
sign_in_clear (SignIn *sign_in)
{
  g_clear_pointer (&sign_in->loop, g_main_loop_unref);
  g_clear_pointer (&sign_in->handle, g_free);
  g_clear_pointer (&sign_in->error_name, g_free);
  g_clear_pointer (&sign_in->error_message, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (SignIn, sign_in_clear)

static void
sign_in_end (SignIn *sign_in, SignInOutcome outcome)
{
  if (sign_in->outcome != SIGN_IN_WAITING)
    return;
  sign_in->outcome = outcome;
  g_main_loop_quit (sign_in->loop);
}

static gboolean
is_web_url (const char *url)
{
  const char *scheme = g_uri_peek_scheme (url);

  return g_strcmp0 (scheme, "https") == 0 || g_strcmp0 (scheme, "http") == 0;
}

/* The agent may run as a service outside the graphical session, so opening
 * the page is the caller's job. Only web URLs are opened: the URL comes from
 * the provider, and another scheme could start any local handler. */
static void
show_authorization_url (const char *raw_url)
{
  g_autofree char *url = keyhold_cli_printable (raw_url);
  g_autoptr (GError) error = NULL;
  gboolean have_display = g_getenv ("DISPLAY") != NULL || g_getenv ("WAYLAND_DISPLAY") != NULL;

  if (have_display && is_web_url (raw_url))
    {
      g_print ("Opening %s in your browser%s\n", url,
               keyhold_cli_glyph (KEYHOLD_CLI_GLYPH_ELLIPSIS));
      fflush (stdout);
      if (!g_app_info_launch_default_for_uri (raw_url, NULL, &error))
        {
          g_printerr ("keyhold: cannot open a browser: %s\n", error->message);
          g_print ("Open this URL in your browser: %s\n", url);
        }
    }
  else
    {
      g_print ("Open this URL in your browser: %s\n", url);
    }
  g_print ("URL: %s\n", url);
}

static void
show_device_code (GVariant *info)
{
  const char *raw_uri;
  const char *raw_code;
  const char *raw_complete_uri = NULL;
  g_autofree char *uri = NULL;
  g_autofree char *code = NULL;
  g_autofree char *complete_uri = NULL;

  if (!g_variant_lookup (info, "verification_uri", "&s", &raw_uri)
      || !g_variant_lookup (info, "user_code", "&s", &raw_code))
    return;
  g_variant_lookup (info, "verification_uri_complete", "&s", &raw_complete_uri);

  uri = keyhold_cli_printable (raw_uri);
  code = keyhold_cli_printable (raw_code);
  g_print ("To sign in, open %s and enter the code %s\n", uri, code);
  if (raw_complete_uri != NULL)
    {
      complete_uri = keyhold_cli_printable (raw_complete_uri);
      g_print ("or open %s, which enters the code for you.\n", complete_uri);
    }
  g_print ("URL: %s\n", complete_uri != NULL ? complete_uri : uri);
}

static void
on_sign_in_progress (KeyholdDBusAgent1 *agent, const char *handle, GVariant *info,
                     gpointer user_data)
{
  SignIn *sign_in = user_data;
  const char *authorization_url;

  if (g_strcmp0 (handle, sign_in->handle) != 0)
    return;

  if (g_variant_lookup (info, "authorization_url", "&s", &authorization_url))
    show_authorization_url (authorization_url);
  else
    show_device_code (info);
  fflush (stdout);
}

static void
on_sign_in_finished (KeyholdDBusAgent1 *agent, const char *handle, const char *error_name,
                     const char *error_message, gpointer user_data)
{
  SignIn *sign_in = user_data;

  if (g_strcmp0 (handle, sign_in->handle) != 0)
    return;

  sign_in->error_name = g_strdup (error_name);
  sign_in->error_message = g_strdup (error_message);
  sign_in_end (sign_in, SIGN_IN_FINISHED);
}

static void
on_agent_name_owner_changed (GObject *agent, GParamSpec *pspec, gpointer user_data)
{
  if (!keyhold_cli_bus_agent_is_running (KEYHOLD_DBUS_AGENT1 (agent)))
    sign_in_end (user_data, SIGN_IN_AGENT_VANISHED);
}

static gboolean
on_interrupt (gpointer user_data)
{
  sign_in_end (user_data, SIGN_IN_INTERRUPTED);
  return G_SOURCE_CONTINUE;
}

/* Runs the sign-in flow to its end. StartSignIn is called synchronously on
 * purpose: signals that arrive before its reply (and so before the handle is
 * known) wait in the main context and are dispatched once the loop runs. */
static gboolean
run_sign_in (KeyholdDBusAgent1 *agent, const char *name, const char *method, SignIn *sign_in,
             GError **error)
{
  guint sigint_id;
  guint sigterm_id;
  gboolean started;

  sign_in->loop = g_main_loop_new (NULL, FALSE);
  g_signal_connect (agent, "sign-in-progress", G_CALLBACK (on_sign_in_progress), sign_in);
  g_signal_connect (agent, "sign-in-finished", G_CALLBACK (on_sign_in_finished), sign_in);
  g_signal_connect (agent, "notify::g-name-owner", G_CALLBACK (on_agent_name_owner_changed),
                    sign_in);
  sigint_id = g_unix_signal_add (SIGINT, on_interrupt, sign_in);
  sigterm_id = g_unix_signal_add (SIGTERM, on_interrupt, sign_in);

  started = keyhold_dbus_agent1_call_start_sign_in_sync (
      agent, name, method, g_variant_new ("a{sv}", NULL), &sign_in->handle, NULL, error);
  if (started)
    g_main_loop_run (sign_in->loop);

  g_source_remove (sigint_id);
  g_source_remove (sigterm_id);
  g_signal_handlers_disconnect_by_data (agent, sign_in);
  return started;
}

static int
cancel_sign_in (KeyholdDBusAgent1 *agent, const char *handle)
{
  g_autoptr (GError) error = NULL;

  if (!keyhold_dbus_agent1_call_cancel_sign_in_sync (agent, handle, NULL, &error))
    keyhold_cli_report_error (error);
  g_printerr ("keyhold: sign-in cancelled\n");
  return KEYHOLD_CLI_EXIT_INTERRUPTED;
}

static int
report_sign_in_failure (const SignIn *sign_in)
{
  g_autofree char *message = keyhold_cli_printable (sign_in->error_message);
  g_autofree char *error_name = keyhold_cli_printable (sign_in->error_name);

  g_printerr ("keyhold: sign-in failed: %s (%s)\n", message, error_name);
  return KEYHOLD_CLI_EXIT_FAILURE;
}

static int
report_signed_in (KeyholdDBusAgent1 *agent, const char *name)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdDBusAccount1) account = keyhold_cli_bus_find_account (agent, name, &error);
  g_autofree char *display_name = NULL;
  g_autofree char *subject = NULL;

  /* The sign-in did succeed; only the greeting is lost. */
  if (account == NULL)
    {
      g_print ("Signed in to %s.\n", name);
      return KEYHOLD_CLI_EXIT_SUCCESS;
    }

  display_name = keyhold_cli_printable (keyhold_dbus_account1_get_display_name (account));
  subject = keyhold_cli_printable (keyhold_dbus_account1_get_subject (account));
  g_print ("Signed in as %s (%s).\n", display_name, subject);
  return KEYHOLD_CLI_EXIT_SUCCESS;
}

int
keyhold_cli_login (GStrv args)
{
  gboolean browser = FALSE;
  const GOptionEntry entries[] = {
    { "browser", 0, 0, G_OPTION_ARG_NONE, &browser,
      "Sign in with a web browser on this computer instead of a code", NULL },
    G_OPTION_ENTRY_NULL,
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("NAME");
  g_autoptr (KeyholdDBusAgent1) agent = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (SignIn) sign_in = { 0 };
  const char *name;

  g_option_context_set_summary (
      context, "Sign in to the account NAME. By default keyhold shows a web address\n"
               "and a code to enter there, on this or any other device; with\n"
               "--browser it opens the provider's sign-in page in a browser here.\n"
               "keyhold never sees the tokens: the agent keeps them.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!keyhold_cli_parse_options (context, &args, 1, &error))
    return keyhold_cli_report_error (error);
  name = args[1];

  agent = keyhold_cli_bus_get_agent (&error);
  if (agent == NULL || !run_sign_in (agent, name, browser ? "browser" : "device", &sign_in, &error))
    return keyhold_cli_report_error (error);

  switch (sign_in.outcome)
    {
      case SIGN_IN_INTERRUPTED:
        return cancel_sign_in (agent, sign_in.handle);
      case SIGN_IN_AGENT_VANISHED:
        g_printerr ("keyhold: the keyhold agent stopped during the sign-in\n");
        return KEYHOLD_CLI_EXIT_FAILURE;
      case SIGN_IN_FINISHED:
        if (sign_in.error_name[0] != '\0')
          return report_sign_in_failure (&sign_in);
        return report_signed_in (agent, name);
      case SIGN_IN_WAITING:
      default:
        g_assert_not_reached ();
    }
}

int
keyhold_cli_logout (GStrv args)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("NAME");
  g_autoptr (KeyholdDBusAccount1) account = NULL;
  g_autoptr (GError) error = NULL;

  g_option_context_set_summary (
      context, "Sign out of the account NAME: the agent revokes the sign-in at the\n"
               "provider and forgets the account's tokens. The account stays configured.");
  if (!keyhold_cli_parse_options (context, &args, 1, &error))
    return keyhold_cli_report_error (error);

  account = keyhold_cli_bus_lookup_account (args[1], &error);
  if (account == NULL || !keyhold_dbus_account1_call_sign_out_sync (account, NULL, &error))
    return keyhold_cli_report_error (error);

  g_print ("Signed out of %s.\n", args[1]);
  return KEYHOLD_CLI_EXIT_SUCCESS;
}
