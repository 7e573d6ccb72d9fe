/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <signal.h>
#include <stdio.h>

#include <glib-unix.h>

#include "keyhold-cli.h"

typedef struct
{
  GMainLoop *loop;
  GCancellable *cancellable;
  GAsyncResult *result;
} SignIn;

static void
sign_in_clear (SignIn *sign_in)
{
  g_clear_pointer (&sign_in->loop, g_main_loop_unref);
  g_clear_object (&sign_in->cancellable);
  g_clear_object (&sign_in->result);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (SignIn, sign_in_clear)

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
on_sign_in_progress (KeyholdClient *client, const char *name, GVariant *info, gpointer user_data)
{
  const char *authorization_url;

  if (g_variant_lookup (info, "authorization_url", "&s", &authorization_url))
    show_authorization_url (authorization_url);
  else
    show_device_code (info);
  fflush (stdout);
}

static void
on_sign_in_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  SignIn *sign_in = user_data;

  sign_in->result = g_object_ref (result);
  g_main_loop_quit (sign_in->loop);
}

/* The agent keeps running the flow until it is told to stop, so Ctrl-C
 * cancels it there before keyhold exits. */
static gboolean
on_interrupt (gpointer user_data)
{
  SignIn *sign_in = user_data;

  g_cancellable_cancel (sign_in->cancellable);
  return G_SOURCE_CONTINUE;
}

/* Runs the sign-in flow to its end. */
static gboolean
run_sign_in (KeyholdClient *client, const char *name, KeyholdSignInMethod method, GError **error)
{
  g_auto (SignIn) sign_in = { 0 };
  guint sigint_id;
  guint sigterm_id;
  gulong progress_id;

  sign_in.loop = g_main_loop_new (NULL, FALSE);
  sign_in.cancellable = g_cancellable_new ();
  progress_id
      = g_signal_connect (client, "sign-in-progress", G_CALLBACK (on_sign_in_progress), NULL);
  sigint_id = g_unix_signal_add (SIGINT, on_interrupt, &sign_in);
  sigterm_id = g_unix_signal_add (SIGTERM, on_interrupt, &sign_in);

  keyhold_client_sign_in (client, name, method, sign_in.cancellable, on_sign_in_done, &sign_in);
  g_main_loop_run (sign_in.loop);

  g_source_remove (sigint_id);
  g_source_remove (sigterm_id);
  g_signal_handler_disconnect (client, progress_id);
  return keyhold_client_sign_in_finish (client, sign_in.result, error);
}

static int
report_signed_in (KeyholdClient *client, const char *name)
{
  g_autoptr (KeyholdAccount) account = keyhold_client_lookup_account (client, name);
  g_autofree char *display_name = NULL;
  g_autofree char *subject = NULL;

  /* The sign-in did succeed; only the greeting is lost. */
  if (account == NULL)
    {
      g_print ("Signed in to %s.\n", name);
      return KEYHOLD_CLI_EXIT_SUCCESS;
    }

  display_name = keyhold_cli_printable (keyhold_account_get_display_name (account));
  subject = keyhold_cli_printable (keyhold_account_get_subject (account));
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
  g_autoptr (KeyholdClient) client = NULL;
  g_autoptr (GError) error = NULL;
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

  client = keyhold_client_new_sync (NULL, &error);
  if (client == NULL)
    return keyhold_cli_report_error (error);
  if (run_sign_in (client, name,
                   browser ? KEYHOLD_SIGN_IN_METHOD_BROWSER : KEYHOLD_SIGN_IN_METHOD_DEVICE,
                   &error))
    return report_signed_in (client, name);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_printerr ("keyhold: sign-in cancelled\n");
      return KEYHOLD_CLI_EXIT_INTERRUPTED;
    }
  return keyhold_cli_report_error (error);
}

int
keyhold_cli_logout (GStrv args)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("NAME");
  g_autoptr (KeyholdClient) client = NULL;
  g_autoptr (KeyholdAccount) account = NULL;
  g_autoptr (GError) error = NULL;

  g_option_context_set_summary (
      context, "Sign out of the account NAME: the agent revokes the sign-in at the\n"
               "provider and forgets the account's tokens. The account stays configured.");
  if (!keyhold_cli_parse_options (context, &args, 1, &error))
    return keyhold_cli_report_error (error);

  client = keyhold_client_new_sync (NULL, &error);
  if (client != NULL)
    account = keyhold_cli_lookup_account (client, args[1], &error);
  if (account == NULL || !keyhold_account_sign_out_sync (account, NULL, &error))
    return keyhold_cli_report_error (error);

  g_print ("Signed out of %s.\n", args[1]);
  return KEYHOLD_CLI_EXIT_SUCCESS;
}
