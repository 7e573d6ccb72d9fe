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

static GVariant *
build_account_settings (const char *issuer, const char *client_id, GStrv scopes, GStrv api_origins)
{
  g_auto (GVariantBuilder) settings = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  const char *const no_origins[] = { NULL };

  g_variant_builder_add (&settings, "{sv}", "issuer", g_variant_new_string (issuer));
  g_variant_builder_add (&settings, "{sv}", "client_id", g_variant_new_string (client_id));
  /* Without --scope the agent's default applies. */
  if (scopes != NULL)
    g_variant_builder_add (&settings, "{sv}", "scopes",
                           g_variant_new_strv ((const char *const *)scopes, -1));
  g_variant_builder_add (
      &settings, "{sv}", "api_origins",
      g_variant_new_strv (api_origins != NULL ? (const char *const *)api_origins : no_origins, -1));

  return g_variant_builder_end (&settings);
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
  g_autoptr (KeyholdDBusAgent1) agent = NULL;
  g_autofree char *object_path = NULL;
  g_autoptr (GError) error = NULL;

  g_option_context_set_summary (
      context, "Add the account NAME (letters, digits, \".\", \"_\" and \"-\") for an\n"
               "OpenID Connect or OAuth 2.0 provider, then sign in with \"keyhold login NAME\".");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!keyhold_cli_parse_options (context, &args, 1, &error)
      || !require_option (issuer, "--issuer", &error)
      || !require_option (client_id, "--client-id", &error))
    return keyhold_cli_report_error (error);

  agent = keyhold_cli_bus_get_agent (&error);
  if (agent == NULL
      || !keyhold_dbus_agent1_call_add_account_sync (
          agent, args[1], build_account_settings (issuer, client_id, scopes, api_origins),
          &object_path, NULL, &error))
    return keyhold_cli_report_error (error);

  g_print ("Added account %s.\n", args[1]);
  return KEYHOLD_CLI_EXIT_SUCCESS;
}

static int
account_list (GStrv args)
{
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_autoptr (KeyholdDBusAgent1) agent = NULL;
  g_autoptr (GPtrArray) accounts = NULL;
  g_autoptr (GPtrArray) names = NULL;
  g_autoptr (GPtrArray) issuers = NULL;
  g_autoptr (GError) error = NULL;
  int name_width = 0;
  int issuer_width = 0;

  g_option_context_set_summary (context, "List the accounts, one a line: NAME  ISSUER  STATE");
  if (!keyhold_cli_parse_options (context, &args, 0, &error))
    return keyhold_cli_report_error (error);

  agent = keyhold_cli_bus_get_agent (&error);
  if (agent == NULL)
    return keyhold_cli_report_error (error);
  accounts = keyhold_cli_bus_list_accounts (agent, &error);
  if (accounts == NULL)
    return keyhold_cli_report_error (error);

  names = g_ptr_array_new_with_free_func (g_free);
  issuers = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < accounts->len; i++)
    {
      KeyholdDBusAccount1 *account = g_ptr_array_index (accounts, i);

      g_ptr_array_add (names, keyhold_cli_printable (keyhold_dbus_account1_get_name (account)));
      g_ptr_array_add (issuers, keyhold_cli_printable (keyhold_dbus_account1_get_issuer (account)));
      name_width = MAX (name_width, (int)strlen (g_ptr_array_index (names, i)));
      issuer_width = MAX (issuer_width, (int)strlen (g_ptr_array_index (issuers, i)));
    }

  for (guint i = 0; i < accounts->len; i++)
    {
      KeyholdDBusAccount1 *account = g_ptr_array_index (accounts, i);
      g_autofree char *state = keyhold_cli_printable (keyhold_dbus_account1_get_state (account));

      g_print ("%-*s  %-*s  %s\n", name_width, (char *)g_ptr_array_index (names, i), issuer_width,
               (char *)g_ptr_array_index (issuers, i), state);
    }

  return KEYHOLD_CLI_EXIT_SUCCESS;
}

static int
account_remove (GStrv args)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("NAME");
  g_autoptr (KeyholdDBusAgent1) agent = NULL;
  g_autoptr (GError) error = NULL;

  g_option_context_set_summary (
      context, "Remove the account NAME: sign it out (revoking its sign-in at the\n"
               "provider when possible) and forget its settings.");
  if (!keyhold_cli_parse_options (context, &args, 1, &error))
    return keyhold_cli_report_error (error);

  agent = keyhold_cli_bus_get_agent (&error);
  if (agent == NULL || !keyhold_dbus_agent1_call_remove_account_sync (agent, args[1], NULL, &error))
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
