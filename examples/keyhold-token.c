/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <gio/gunixoutputstream.h>

#include "keyhold-cli.h"

/* Writes straight to the file descriptor: through stdio, a copy of the
 * token would stay behind in the stream's buffer. */
static gboolean
write_token_line (const char *token, GError **error)
{
  g_autoptr (GOutputStream) out = g_unix_output_stream_new (STDOUT_FILENO, FALSE);

  return g_output_stream_write_all (out, token, strlen (token), NULL, NULL, error)
         && g_output_stream_write_all (out, "\n", 1, NULL, NULL, error);
}

static void
wipe_string (char *text)
{
  if (text == NULL)
    return;
  explicit_bzero (text, strlen (text));
  g_free (text);
}

int
keyhold_cli_token (GStrv args)
{
  int min_validity = 0;
  g_auto (GStrv) scopes = NULL;
  g_autofree char *audience = NULL;
  const GOptionEntry entries[] = {
    { "min-validity", 0, 0, G_OPTION_ARG_INT, &min_validity,
      "Seconds the token must still be valid (default: 60)", "SECONDS" },
    { "scope", 0, 0, G_OPTION_ARG_STRING_ARRAY, &scopes,
      "A scope the token must carry; repeat for more (default: the account's scopes)", "SCOPE" },
    { "audience", 0, 0, G_OPTION_ARG_STRING, &audience,
      "The API the token is for (an RFC 8707 resource indicator)", "URI" },
    G_OPTION_ENTRY_NULL,
  };
  const char *const no_scopes[] = { NULL };
  g_autoptr (GOptionContext) context = g_option_context_new ("NAME");
  g_autoptr (KeyholdDBusAccount1) account = NULL;
  g_autoptr (GError) error = NULL;
  char *token = NULL;
  gint64 expires_at;
  gboolean written;

  g_option_context_set_summary (context,
                                "Print an access token for the account NAME, and nothing else, on\n"
                                "standard output, for example:\n"
                                "  curl -H \"Authorization: Bearer $(keyhold token NAME)\" URL");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!keyhold_cli_parse_options (context, &args, 1, &error))
    return keyhold_cli_report_error (error);
  if (min_validity < 0)
    {
      g_set_error_literal (&error, KEYHOLD_CLI_ERROR, KEYHOLD_CLI_ERROR_USAGE,
                           "--min-validity must not be negative");
      return keyhold_cli_report_error (error);
    }

  account = keyhold_cli_bus_lookup_account (args[1], &error);
  if (account == NULL
      || !keyhold_dbus_account1_call_get_access_token_sync (
          account, scopes != NULL ? (const char *const *)scopes : no_scopes,
          audience != NULL ? audience : "", (guint)min_validity, &token, &expires_at, NULL, &error))
    return keyhold_cli_report_error (error);

  written = write_token_line (token, &error);
  wipe_string (token);
  if (!written)
    return keyhold_cli_report_error (error);
  return KEYHOLD_CLI_EXIT_SUCCESS;
}
