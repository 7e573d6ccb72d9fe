/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include <check.h>
#include <glib.h>

/* The keyhold CLI's command-line handling, which needs no bus: help, usage
 * errors (exit 2) and a missing session bus (exit 1). Everything that talks
 * to the agent is covered by tests/integration/test-cli.c. */

static const char *keyhold_path;

typedef struct
{
  int exit_status;
  char *out;
  char *err;
} KeyholdRun;

static void
keyhold_run_clear (KeyholdRun *run)
{
  g_clear_pointer (&run->out, g_free);
  g_clear_pointer (&run->err, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (KeyholdRun, keyhold_run_clear)

/* Runs keyhold with @args on a session bus address that leads nowhere, so no
 * test can reach a real agent by accident. */
static void
run_keyhold (const char *const *args, KeyholdRun *run)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_auto (GStrv) envp = g_environ_setenv (g_get_environ (), "DBUS_SESSION_BUS_ADDRESS",
                                          "unix:path=/nonexistent/keyhold-test-bus", TRUE);
  g_autoptr (GError) error = NULL;
  int wait_status;

  g_ptr_array_add (argv, (gpointer) keyhold_path);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  if (!g_spawn_sync (NULL, (char **) argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL, &run->out,
                     &run->err, &wait_status, &error))
    ck_abort_msg ("cannot run %s: %s", keyhold_path, error->message);

  if (g_spawn_check_wait_status (wait_status, &error))
    run->exit_status = 0;
  else if (error->domain == G_SPAWN_EXIT_ERROR)
    run->exit_status = error->code;
  else
    ck_abort_msg ("keyhold did not exit normally: %s", error->message);
}

START_TEST (test_help_lists_commands)
{
  const char *const args[] = { "--help", NULL };
  const char *const commands[] = { "account", "login", "logout", "token", "status" };
  g_auto (KeyholdRun) run = { 0 };

  run_keyhold (args, &run);

  ck_assert_int_eq (run.exit_status, 0);
  ck_assert_ptr_nonnull (strstr (run.out, "Usage:"));
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    ck_assert_msg (strstr (run.out, commands[i]) != NULL, "--help does not mention %s",
                   commands[i]);
  ck_assert_str_eq (run.err, "");
}
END_TEST

START_TEST (test_unknown_command_prints_usage_to_stderr)
{
  const char *const args[] = { "nonsense", NULL };
  g_auto (KeyholdRun) run = { 0 };

  run_keyhold (args, &run);

  ck_assert_int_eq (run.exit_status, 2);
  ck_assert_str_eq (run.out, "");
  ck_assert_ptr_nonnull (strstr (run.err, "nonsense"));
  ck_assert_ptr_nonnull (strstr (run.err, "Usage:"));
}
END_TEST

START_TEST (test_no_command_is_a_usage_error)
{
  const char *const args[] = { NULL };
  g_auto (KeyholdRun) run = { 0 };

  run_keyhold (args, &run);

  ck_assert_int_eq (run.exit_status, 2);
  ck_assert_ptr_nonnull (strstr (run.err, "Usage:"));
}
END_TEST

START_TEST (test_subcommand_help_shows_its_options)
{
  const char *const login_args[] = { "login", "--help", NULL };
  const char *const add_args[] = { "account", "add", "--help", NULL };
  g_auto (KeyholdRun) login = { 0 };
  g_auto (KeyholdRun) add = { 0 };

  run_keyhold (login_args, &login);
  run_keyhold (add_args, &add);

  ck_assert_int_eq (login.exit_status, 0);
  ck_assert_ptr_nonnull (strstr (login.out, "keyhold login"));
  ck_assert_ptr_nonnull (strstr (login.out, "--browser"));
  ck_assert_int_eq (add.exit_status, 0);
  ck_assert_ptr_nonnull (strstr (add.out, "--issuer"));
  ck_assert_ptr_nonnull (strstr (add.out, "--client-id"));
}
END_TEST

START_TEST (test_bad_arguments_are_usage_errors)
{
  const char *const *const cases[] = {
    (const char *const[]) { "token", NULL },
    (const char *const[]) { "token", "work", "extra", NULL },
    (const char *const[]) { "login", "--no-such-option", "work", NULL },
    (const char *const[]) { "account", "add", "work", "--client-id", "id", NULL },
    (const char *const[]) { "account", "frobnicate", NULL },
    (const char *const[]) { "token", "work", "--min-validity", "-5", NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto (KeyholdRun) run = { 0 };

      run_keyhold (cases[i], &run);

      ck_assert_msg (run.exit_status == 2, "case %u exited %d: %s", i, run.exit_status, run.err);
      ck_assert_str_eq (run.out, "");
      ck_assert_msg (g_str_has_prefix (run.err, "keyhold: "), "case %u: %s", i, run.err);
    }
}
END_TEST

START_TEST (test_missing_issuer_is_named)
{
  const char *const args[] = { "account", "add", "work", "--client-id", "id", NULL };
  g_auto (KeyholdRun) run = { 0 };

  run_keyhold (args, &run);

  ck_assert_int_eq (run.exit_status, 2);
  ck_assert_ptr_nonnull (strstr (run.err, "--issuer"));
}
END_TEST

START_TEST (test_no_session_bus_fails_cleanly)
{
  const char *const args[] = { "token", "work", NULL };
  g_auto (KeyholdRun) run = { 0 };

  run_keyhold (args, &run);

  ck_assert_int_eq (run.exit_status, 1);
  ck_assert_str_eq (run.out, "");
  ck_assert_msg (g_str_has_prefix (run.err, "keyhold: cannot connect to the session bus"), "%s",
                 run.err);
}
END_TEST

static Suite *
cli_usage_suite (void)
{
  Suite *suite = suite_create ("cli-usage");
  TCase *tcase = tcase_create ("usage");

  tcase_add_test (tcase, test_help_lists_commands);
  tcase_add_test (tcase, test_unknown_command_prints_usage_to_stderr);
  tcase_add_test (tcase, test_no_command_is_a_usage_error);
  tcase_add_test (tcase, test_subcommand_help_shows_its_options);
  tcase_add_test (tcase, test_bad_arguments_are_usage_errors);
  tcase_add_test (tcase, test_missing_issuer_is_named);
  tcase_add_test (tcase, test_no_session_bus_fails_cleanly);
  suite_add_tcase (suite, tcase);
  return suite;
}

int
main (int argc, char **argv)
{
  SRunner *runner;
  int failed;

  if (argc != 2)
    {
      g_printerr ("usage: %s PATH-TO-KEYHOLD\n", argv[0]);
      return 2;
    }
  keyhold_path = argv[1];

  runner = srunner_create (cli_usage_suite ());
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
