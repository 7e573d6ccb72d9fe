/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "keyhold-cli.h"

static gboolean
require_option (const char *value, const char *option, GError **error)
{
  if (value != NULL)
    return TRUE;

  g_set_error (error, KEYHOLD_CLI_ERROR, KEYHOLD_CLI_ERROR_USAGE, "%s is required", option);
  return FALSE;
}

static int
account_add (GStrv args)
{
  g_autofree char *issuer = NULL;
  g_autofree char *client_id = NULL;
  g_auto (GStrv) scopes = NULL;
  g_auto (GStrv) api_origins = NULL;
  const GOptionEntry entries[] = {
    { "issuer", 0, 0, G_OPTION_ARG_STRING, &issuer, "The provider's issuer URL (required)", "URL" },
    { "client-id", 0, 0, G_OPTION_ARG_STRING, &client_id,
      "The client_id registered with the provider for keyhold (required)", "ID" },
    { "scope", 0, 0, G_OPTION_ARG_STRING_ARRAY, &scopes,
      "A scope to request at sign-in; repeat for more (default: openid)", "SCOPE" },
    { "api-origin", 0, 0, G_OPTION_ARG_STRING_ARRAY, &api_origins,
      "An origin (https://host[:port]) this account's tokens may be sent to; repeat for more",
      "URL" },
    G_OPTION_ENTRY_NULL,
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("NAME");
  g_autoptr (KeyholdClient) client = NULL;
  g_autoptr (KeyholdAccount) account = NULL;
  g_autoptr (GError) error = NULL;

  g_option_context_set_summary (
      context, "Add the account NAME (letters, digits, \".\", \"_\" and \"-\") for an\n"
               "OpenID Connect or OAuth 2.0 provider, then sign in with \"keyhold login NAME\".");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!keyhold_cli_parse_options (context, &args, 1, &error)
      || !require_option (issuer, "--issuer", &error)
      || !require_option (client_id, "--client-id", &error))
    return keyhold_cli_report_error (error);

  client = keyhold_client_new_sync (NULL, &error);
  if (client != NULL)
    account = keyhold_client_add_account_sync (client, args[1], issuer, client_id,
                                               (const char *const *) scopes,
                                               (const char *const *) api_origins, NULL, &error);
  if (account == NULL)
    return keyhold_cli_report_error (error);

  g_print ("Added account %s.\n", args[1]);
  return KEYHOLD_CLI_EXIT_SUCCESS;
}

static int
account_list (GStrv args)
{
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_autoptr (KeyholdClient) client = NULL;
  g_autolist (KeyholdAccount) accounts = NULL;
  g_autoptr (GPtrArray) names = NULL;
  g_autoptr (GPtrArray) issuers = NULL;
  g_autoptr (GError) error = NULL;
  int name_width = 0;
  int issuer_width = 0;
  guint i;

  g_option_context_set_summary (context, "List the accounts, one a line: NAME  ISSUER  STATE");
  if (!keyhold_cli_parse_options (context, &args, 0, &error))
    return keyhold_cli_report_error (error);

  client = keyhold_client_new_sync (NULL, &error);
  if (client == NULL)
    return keyhold_cli_report_error (error);
  accounts = keyhold_client_get_accounts (client);

  names = g_ptr_array_new_with_free_func (g_free);
  issuers = g_ptr_array_new_with_free_func (g_free);
  for (GList *l = accounts; l != NULL; l = l->next)
    {
      g_ptr_array_add (names, keyhold_cli_printable (keyhold_account_get_name (l->data)));
      g_ptr_array_add (issuers, keyhold_cli_printable (keyhold_account_get_issuer (l->data)));
      name_width = MAX (name_width, (int) strlen (g_ptr_array_index (names, names->len - 1)));
      issuer_width
          = MAX (issuer_width, (int) strlen (g_ptr_array_index (issuers, issuers->len - 1)));
    }

  i = 0;
  for (GList *l = accounts; l != NULL; l = l->next, i++)
    {
      g_print ("%-*s  %-*s  %s\n", name_width, (char *) g_ptr_array_index (names, i), issuer_width,
               (char *) g_ptr_array_index (issuers, i),
               keyhold_cli_state_name (keyhold_account_get_state (l->data)));
    }

  return KEYHOLD_CLI_EXIT_SUCCESS;
}

static int
account_remove (GStrv args)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("NAME");
  g_autoptr (KeyholdClient) client = NULL;
  g_autoptr (GError) error = NULL;

  g_option_context_set_summary (
      context, "Remove the account NAME: sign it out (revoking its sign-in at the\n"
               "provider when possible) and forget its settings.");
  if (!keyhold_cli_parse_options (context, &args, 1, &error))
    return keyhold_cli_report_error (error);

  client = keyhold_client_new_sync (NULL, &error);
  if (client == NULL || !keyhold_client_remove_account_sync (client, args[1], NULL, &error))
    return keyhold_cli_report_error (error);

  g_print ("Removed account %s.\n", args[1]);
  return KEYHOLD_CLI_EXIT_SUCCESS;
}

static const KeyholdCliCommand account_commands[] = {
  { "add", "add NAME --issuer URL --client-id ID", "Add an account", account_add },
  { "list", "list", "List the accounts", account_list },
  { "remove", "remove NAME", "Sign an account out and remove it", account_remove },
  { NULL },
};

int
keyhold_cli_account (GStrv args)
{
  return keyhold_cli_dispatch (account_commands, args);
}
