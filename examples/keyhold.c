/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <locale.h>
#include <string.h>

#include <keyhold/keyhold.h>

#include "keyhold-cli.h"

GQuark
keyhold_cli_error_quark (void)
{
  return g_quark_from_static_string ("keyhold-cli-error-quark");
}

static const KeyholdCliCommand keyhold_commands[] = {
  { "account", "account add|list|remove", "Add, list or remove accounts", keyhold_cli_account },
  { "login", "login [--browser] NAME", "Sign in to an account", keyhold_cli_login },
  { "logout", "logout NAME", "Sign out of an account", keyhold_cli_logout },
  { "token", "token NAME", "Print an access token for an account", keyhold_cli_token },
  { "status", "status [--watch]", "Show the state of every account", keyhold_cli_status },
  { "queue", "queue add|list|show|cancel", "Queue API requests to send when online",
    keyhold_cli_queue },
  { NULL },
};

static char *
format_usage (const KeyholdCliCommand *commands, const char *prefix)
{
  GString *usage = g_string_new (NULL);
  int width = 0;

  for (const KeyholdCliCommand *command = commands; command->name != NULL; command++)
    width = MAX (width, (int) strlen (command->synopsis));

  g_string_append_printf (usage, "Usage:\n  %s COMMAND [OPTION%s] [ARGUMENT%s]\n\nCommands:\n",
                          prefix, keyhold_cli_glyph (KEYHOLD_CLI_GLYPH_ELLIPSIS),
                          keyhold_cli_glyph (KEYHOLD_CLI_GLYPH_ELLIPSIS));
  for (const KeyholdCliCommand *command = commands; command->name != NULL; command++)
    g_string_append_printf (usage, "  %-*s  %s\n", width, command->synopsis, command->summary);
  g_string_append_printf (usage, "\nRun \"%s COMMAND --help\" to see a command's options.\n",
                          prefix);

  return g_string_free (usage, FALSE);
}

static const KeyholdCliCommand *
find_command (const KeyholdCliCommand *commands, const char *name)
{
  for (const KeyholdCliCommand *command = commands; command->name != NULL; command++)
    {
      if (g_str_equal (command->name, name))
        return command;
    }
  return NULL;
}

/* args[0] is the name the commands are reached by ("keyhold", "keyhold account"). */
int
keyhold_cli_dispatch (const KeyholdCliCommand *commands, GStrv args)
{
  const char *prefix = args[0];
  const char *name = args[1];
  const KeyholdCliCommand *command;
  g_autofree char *usage = format_usage (commands, prefix);
  g_auto (GStrv) command_args = NULL;

  if (name != NULL && (g_str_equal (name, "--help") || g_str_equal (name, "-h")))
    {
      g_print ("%s", usage);
      return KEYHOLD_CLI_EXIT_SUCCESS;
    }

  command = name != NULL ? find_command (commands, name) : NULL;
  if (command == NULL)
    {
      if (name != NULL)
        g_printerr ("keyhold: unknown command \"%s\"\n\n", name);
      g_printerr ("%s", usage);
      return KEYHOLD_CLI_EXIT_USAGE;
    }

  command_args = g_new0 (char *, g_strv_length (args));
  command_args[0] = g_strdup_printf ("%s %s", prefix, name);
  for (guint i = 2; args[i] != NULL; i++)
    command_args[i - 1] = g_strdup (args[i]);

  return command->run (command_args);
}

/* Parses options, then insists on exactly @n_positional arguments. */
gboolean
keyhold_cli_parse_options (GOptionContext *context, GStrv *args, guint n_positional, GError **error)
{
  guint n_args;

  if (!g_option_context_parse_strv (context, args, error))
    return FALSE;

  n_args = g_strv_length (*args) - 1;
  if (n_args < n_positional)
    {
      g_set_error_literal (error, KEYHOLD_CLI_ERROR, KEYHOLD_CLI_ERROR_USAGE, "missing argument");
      return FALSE;
    }
  if (n_args > n_positional)
    {
      g_set_error (error, KEYHOLD_CLI_ERROR, KEYHOLD_CLI_ERROR_USAGE, "unexpected argument \"%s\"",
                   (*args)[n_positional + 1]);
      return FALSE;
    }
  return TRUE;
}

/* "MESSAGE (org.keyhold.Error.NAME)", or just "MESSAGE" for errors that have
 * no D-Bus name, such as a missing session bus. */
char *
keyhold_cli_describe_error (const GError *error)
{
  g_autoptr (GError) stripped = g_error_copy (error);
  g_autofree char *dbus_name = g_dbus_error_get_remote_error (error);

  g_dbus_error_strip_remote_error (stripped);
  if (dbus_name == NULL && error->domain == KEYHOLD_ERROR)
    dbus_name = g_dbus_error_encode_gerror (error);

  if (dbus_name == NULL)
    return g_strdup (stripped->message);
  return g_strdup_printf ("%s (%s)", stripped->message, dbus_name);
}

/* Prints @error for the user and returns the exit status it calls for. */
int
keyhold_cli_report_error (const GError *error)
{
  g_autofree char *description = NULL;
  g_autofree char *printable = NULL;

  if (error->domain == G_OPTION_ERROR
      || g_error_matches (error, KEYHOLD_CLI_ERROR, KEYHOLD_CLI_ERROR_USAGE))
    {
      /* Option parsing has set the program name to the command's full name. */
      g_printerr ("keyhold: %s\nRun \"%s --help\" to see how to use it.\n", error->message,
                  g_get_prgname ());
      return KEYHOLD_CLI_EXIT_USAGE;
    }

  /* libkeyhold's message says what happened to the agent; the error's
   * name, which the agent never sends, would add nothing. */
  if (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_AGENT_UNAVAILABLE))
    description = g_strdup (error->message);
  else
    description = keyhold_cli_describe_error (error);
  printable = keyhold_cli_printable (description);
  g_printerr ("keyhold: %s\n", printable);
  return KEYHOLD_CLI_EXIT_FAILURE;
}

KeyholdAccount *
keyhold_cli_lookup_account (KeyholdClient *client, const char *name, GError **error)
{
  KeyholdAccount *account = keyhold_client_lookup_account (client, name);

  if (account == NULL)
    g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NO_SUCH_ACCOUNT, "no account named \"%s\"",
                 name);
  return account;
}

/* The state as the agent names it ("signed-in"), which is its enum nick. */
const char *
keyhold_cli_state_name (KeyholdAccountState state)
{
  g_autoptr (GEnumClass) states = g_type_class_ref (KEYHOLD_TYPE_ACCOUNT_STATE);

  return g_enum_get_value (states, state)->value_nick;
}

/* Falls back to ASCII where the locale cannot show the glyph, rather than
 * letting g_print() turn it into "?". */
const char *
keyhold_cli_glyph (KeyholdCliGlyph glyph)
{
  gboolean utf8 = g_get_charset (NULL);

  switch (glyph)
    {
    case KEYHOLD_CLI_GLYPH_ARROW:
      return utf8 ? "→" : "->";
    case KEYHOLD_CLI_GLYPH_ELLIPSIS:
      return utf8 ? "…" : "...";
    default:
      g_assert_not_reached ();
    }
}

/* Text from the agent comes from the provider in the end; control and
 * formatting characters in it must not steer the user's terminal. NULL, a
 * property the agent did not send, prints as nothing. */
char *
keyhold_cli_printable (const char *text)
{
  GString *printable = g_string_new (NULL);

  if (text == NULL)
    return g_string_free (printable, FALSE);

  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (g_unichar_iscntrl (c) || g_unichar_type (c) == G_UNICODE_FORMAT)
        g_string_append_c (printable, '?');
      else
        g_string_append_unichar (printable, c);
    }

  return g_string_free (printable, FALSE);
}

int
main (int argc, char **argv)
{
  g_auto (GStrv) args = NULL;

  setlocale (LC_ALL, "");

  if (argc == 2 && g_str_equal (argv[1], "--version"))
    {
      g_print ("keyhold %s\n", PACKAGE_VERSION);
      return KEYHOLD_CLI_EXIT_SUCCESS;
    }

  args = g_new0 (char *, MAX (argc, 1) + 1);
  args[0] = g_strdup ("keyhold");
  for (int i = 1; i < argc; i++)
    args[i] = g_strdup (argv[i]);
  return keyhold_cli_dispatch (keyhold_commands, args);
}
