/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <keyhold/keyhold.h>

G_BEGIN_DECLS

#define KEYHOLD_CLI_ERROR (keyhold_cli_error_quark ())

typedef enum
{
  KEYHOLD_CLI_ERROR_USAGE = 0,
} KeyholdCliError;

enum
{
  KEYHOLD_CLI_EXIT_SUCCESS = 0,
  KEYHOLD_CLI_EXIT_FAILURE = 1,
  KEYHOLD_CLI_EXIT_USAGE = 2,
  /* 128 + SIGINT, what a shell reports for a process ended by Ctrl-C. */
  KEYHOLD_CLI_EXIT_INTERRUPTED = 130,
};

/*
 * A command receives its own argument vector: args[0] is the command's full
 * name ("keyhold account add"), which option parsing shows in --help. Option
 * parsing may rearrange and shrink @args; the caller frees it. The command
 * returns the process's exit status.
 */
typedef int (*KeyholdCliCommandFunc) (GStrv args);

typedef struct
{
  const char *name;
  const char *synopsis;
  const char *summary;
  KeyholdCliCommandFunc run;
} KeyholdCliCommand;

typedef enum
{
  KEYHOLD_CLI_GLYPH_ARROW,
  KEYHOLD_CLI_GLYPH_ELLIPSIS,
} KeyholdCliGlyph;

GQuark keyhold_cli_error_quark (void);

/* keyhold.c */
int keyhold_cli_dispatch (const KeyholdCliCommand *commands, GStrv args);
gboolean keyhold_cli_parse_options (GOptionContext *context,
                                    GStrv *args,
                                    guint n_positional,
                                    GError **error);
int keyhold_cli_report_error (const GError *error);
char *keyhold_cli_describe_error (const GError *error);
const char *keyhold_cli_glyph (KeyholdCliGlyph glyph);
char *keyhold_cli_printable (const char *text);
const char *keyhold_cli_state_name (KeyholdAccountState state);

/* NO_SUCH_ACCOUNT when @client has no account @name. */
KeyholdAccount *keyhold_cli_lookup_account (KeyholdClient *client,
                                            const char *name,
                                            GError **error);

/* Commands */
int keyhold_cli_account (GStrv args);
int keyhold_cli_login (GStrv args);
int keyhold_cli_logout (GStrv args);
int keyhold_cli_token (GStrv args);
int keyhold_cli_status (GStrv args);
int keyhold_cli_queue (GStrv args);

G_END_DECLS
