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
  g_autoptr (GOptionContext) context = g_option_context_new ("NAME");
  g_autoptr (KeyholdClient) client = NULL;
  g_autoptr (KeyholdAccount) account = NULL;
  g_autoptr (KeyholdToken) token = NULL;
  g_autoptr (GError) error = NULL;

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

  client = keyhold_client_new_sync (NULL, &error);
  if (client != NULL)
    account = keyhold_cli_lookup_account (client, args[1], &error);
  if (account != NULL)
    token = keyhold_account_get_token_sync (account, (const char *const *) scopes, audience,
                                            (guint) min_validity, NULL, &error);
  if (token == NULL || !write_token_line (keyhold_token_get_value (token), &error))
    return keyhold_cli_report_error (error);
  return KEYHOLD_CLI_EXIT_SUCCESS;
}
