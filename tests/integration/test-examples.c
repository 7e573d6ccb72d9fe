/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "agent-client.h"

/* The examples, the CLI's sign-in greeting and the README snippets, run as
 * a user would run them against the real stack, with the account "work"
 * signed in. C programs run under valgrind when the test does. The tests
 * run in order in one environment. */

#define ACCOUNT "work"

static KeyholdTestEnv *env;

static char *
build_path (const char *relative)
{
  return g_build_filename (g_getenv ("KEYHOLD_BUILD_DIR"), relative, NULL);
}

static char *
source_path (const char *relative)
{
  return g_build_filename (g_getenv ("KEYHOLD_SOURCE_DIR"), relative, NULL);
}

static char *
api_url (const char *path)
{
  return g_strconcat (keyhold_test_env_get_issuer (env), path, NULL);
}

static gboolean
have_typelib (void)
{
  g_autofree char *typelib = build_path ("libclient/Keyhold-1.typelib");

  return g_file_test (typelib, G_FILE_TEST_EXISTS);
}

/* Runs @argv; C programs (@under_valgrind) in valgrind when the test is. */
static int
run (const char *const *argv, gboolean under_valgrind, char **out_stdout)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  g_auto (GStrv) full_argv = NULL;
  g_autofree char *err = NULL;
  int status;

  if (under_valgrind && g_strcmp0 (g_getenv ("KEYHOLD_TEST_UNDER_VALGRIND"), "1") == 0)
    {
      g_autofree char *suppressions = source_path ("tests/valgrind.supp");
      g_autofree char *suppressions_arg = g_strconcat ("--suppressions=", suppressions, NULL);

      g_strv_builder_add_many (builder, "valgrind", "--error-exitcode=99", "--leak-check=full",
                               "--errors-for-leak-kinds=definite", suppressions_arg, NULL);
    }
  g_strv_builder_addv (builder, (const char **) argv);
  full_argv = g_strv_builder_end (builder);

  status = keyhold_test_env_run (env, (const char *const *) full_argv, out_stdout, &err);
  if (status != 0)
    fprintf (stderr, "%s exited with %d:\n%s\n", argv[0], status, err);
  return status;
}

static char *
run_notes_sync (const char *first, ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  char *out = NULL;
  va_list args;

  g_ptr_array_add (argv, build_path ("examples/notes-sync/notes-sync"));
  g_ptr_array_add (argv, g_strdup ("--account=" ACCOUNT));
  va_start (args, first);
  for (const char *arg = first; arg != NULL; arg = va_arg (args, const char *))
    g_ptr_array_add (argv, g_strdup (arg));
  va_end (args);
  g_ptr_array_add (argv, NULL);

  ck_assert_int_eq (run ((const char *const *) argv->pdata, TRUE, &out), 0);
  return out;
}

/* Runs `notes-sync list` until a run reports what finished while it was
 * closed, and returns that run's output. */
static char *
list_until_reported (const char *report)
{
  for (int attempt = 0; attempt < 100; attempt++)
    {
      char *out = run_notes_sync ("list", NULL);

      if (strstr (out, "While you were away") != NULL)
        {
          ck_assert_msg (strstr (out, report) != NULL, "expected \"%s\" in:\n%s", report, out);
          return out;
        }
      g_free (out);
      g_usleep (200 * 1000);
    }
  ck_abort_msg ("notes-sync never reported \"%s\"", report);
  return NULL;
}

static void
mock_post (const char *path, const char *json)
{
  g_autoptr (JsonNode) reply = keyhold_test_env_mock (env, "POST", path, json);
}

/* The mock's record of the successful PUT of @path, or NULL. */
static JsonObject *
delivery_of (const char *path)
{
  g_autoptr (JsonNode) reply = keyhold_test_env_mock (env, "GET", "/api-deliveries", NULL);
  JsonArray *deliveries = json_object_get_array_member (json_node_get_object (reply), "deliveries");

  for (guint i = 0; i < json_array_get_length (deliveries); i++)
    {
      JsonObject *delivery = json_array_get_object_element (deliveries, i);

      if (g_strcmp0 (json_object_get_string_member (delivery, "path"), path) == 0)
        return json_object_ref (delivery);
    }
  return NULL;
}

/* ---- notes-sync ---- */

START_TEST (test_notes_sync_reports_results_from_while_away)
{
  g_autofree char *saved = run_notes_sync ("set", "n1", "Buy milk", NULL);
  g_autofree char *reported = NULL;
  g_autofree char *again = NULL;
  g_autoptr (JsonObject) delivery = NULL;

  ck_assert_ptr_nonnull (strstr (saved, "Saved note n1"));

  reported = list_until_reported ("While you were away: note n1 synced (HTTP 200)");
  ck_assert_ptr_nonnull (strstr (reported, "note n1: synced (HTTP 200)"));

  /* Reported once; afterwards it is the note's state. */
  again = run_notes_sync ("list", NULL);
  ck_assert_ptr_null (strstr (again, "While you were away"));
  ck_assert_ptr_nonnull (strstr (again, "note n1: synced (HTTP 200)"));
  ck_assert_ptr_nonnull (strstr (again, "Buy milk"));

  delivery = delivery_of ("/api/notes/n1");
  ck_assert_ptr_nonnull (delivery);
  ck_assert_str_eq (json_object_get_string_member (delivery, "method"), "PUT");
  ck_assert_ptr_nonnull (strstr (json_object_get_string_member (delivery, "body"), "Buy milk"));
  ck_assert_str_eq (json_object_get_string_member (delivery, "sub"), "user-alice-0001");
}
END_TEST

START_TEST (test_notes_sync_reports_failures)
{
  g_autofree char *saved = NULL;
  g_autofree char *reported = NULL;

  mock_post ("/api-script", "{\"statuses\": [409]}");
  saved = run_notes_sync ("set", "n2", "Conflicting edit", NULL);
  ck_assert_ptr_nonnull (strstr (saved, "Saved note n2"));
  reported = list_until_reported ("While you were away: note n2 failed (HTTP 409)");
  ck_assert_ptr_nonnull (strstr (reported, "note n1: synced (HTTP 200)"));
}
END_TEST

START_TEST (test_notes_sync_waits_for_a_retried_change)
{
  g_autofree char *saved = NULL;
  g_autofree char *waited = NULL;
  g_autofree char *listed = NULL;

  mock_post ("/api-script", "{\"statuses\": [{\"status\": 503, \"retry_after\": 1}]}");
  saved = run_notes_sync ("set", "n3", "Retried", NULL);
  ck_assert_ptr_nonnull (strstr (saved, "Saved note n3"));
  waited = run_notes_sync ("wait", NULL);
  ck_assert_msg (strstr (waited, "note n3 synced (HTTP 200)") != NULL
                     || strstr (waited, "While you were away: note n3 synced (HTTP 200)") != NULL,
                 "%s", waited);
  listed = run_notes_sync ("list", NULL);
  ck_assert_ptr_nonnull (strstr (listed, "note n3: synced (HTTP 200)"));
}
END_TEST

/* ---- the keyhold CLI ---- */

START_TEST (test_cli_login_greets_the_user)
{
  g_autofree char *keyhold = build_path ("examples/keyhold");
  const char *login_argv[] = { keyhold, "login", "greeting", NULL };
  g_autofree char *out = NULL;

  keyhold_test_add_account (env, "greeting");
  ck_assert_int_eq (run (login_argv, TRUE, &out), 0);
  ck_assert_msg (strstr (out, "Signed in as Alice Example (user-alice-0001).\n") != NULL, "%s",
                 out);
}
END_TEST

/* ---- the Python example and the README snippets ---- */

START_TEST (test_python_example_calls_the_api)
{
  g_autofree char *script = source_path ("examples/python/get-token.py");
  g_autofree char *url = api_url ("/api/notes");
  const char *python = g_getenv ("KEYHOLD_PYTHON");
  const char *argv[] = { python, script, ACCOUNT, url, NULL };
  const char *unknown_argv[] = { python, script, "nobody", url, NULL };
  g_autofree char *out = NULL;
  g_autofree char *unknown_out = NULL;

  if (!have_typelib ())
    return;
  ck_assert_int_eq (run (argv, FALSE, &out), 0);
  ck_assert_msg (g_str_has_prefix (out, "HTTP 200\n"), "%s", out);
  ck_assert_int_eq (run (unknown_argv, FALSE, &unknown_out), 1);
}
END_TEST

START_TEST (test_c_snippet_gets_a_token)
{
  g_autofree char *program = build_path ("examples/snippets/get-token");
  const char *argv[] = { program, NULL };
  g_autofree char *out = NULL;
  gint64 expires_at = 0;

  ck_assert_int_eq (run (argv, TRUE, &out), 0);
  ck_assert_msg (sscanf (out, "Got a token that expires at %" G_GINT64_FORMAT ".", &expires_at)
                     == 1,
                 "%s", out);
  ck_assert_int_gt (expires_at, g_get_real_time () / G_USEC_PER_SEC);
}
END_TEST

START_TEST (test_python_snippet_calls_the_api)
{
  g_autofree char *script = source_path ("examples/snippets/get-token.py");
  g_autofree char *url = api_url ("/api/notes");
  const char *argv[] = { g_getenv ("KEYHOLD_PYTHON"), script, url, NULL };
  g_autofree char *out = NULL;

  if (!have_typelib ())
    return;
  ck_assert_int_eq (run (argv, FALSE, &out), 0);
  ck_assert_str_eq (out, "200\n");
}
END_TEST

/* README.md shows the snippets as they are, without their licence line. */
static void
assert_readme_shows (const char *snippet)
{
  g_autofree char *readme_path = source_path ("README.md");
  g_autofree char *snippet_path = source_path (snippet);
  g_autofree char *readme = NULL;
  g_autofree char *code = NULL;
  const char *body;

  ck_assert (g_file_get_contents (readme_path, &readme, NULL, NULL));
  ck_assert (g_file_get_contents (snippet_path, &code, NULL, NULL));
  body = strchr (code, '\n');
  ck_assert_ptr_nonnull (body);
  ck_assert_msg (strstr (readme, body + 1) != NULL, "README.md does not show %s as it is", snippet);
}

START_TEST (test_readme_shows_the_snippets)
{
  assert_readme_shows ("examples/snippets/get-token.c");
  assert_readme_shows ("examples/snippets/get-token.py");
}
END_TEST

int
main (void)
{
  g_autofree char *libclient = build_path ("libclient");
  SRunner *runner;
  Suite *suite = suite_create ("examples");
  TCase *tcase = tcase_create ("examples");
  int failed;

  tcase_set_timeout (tcase, 600);
  tcase_add_test (tcase, test_readme_shows_the_snippets);
  tcase_add_test (tcase, test_cli_login_greets_the_user);
  tcase_add_test (tcase, test_c_snippet_gets_a_token);
  tcase_add_test (tcase, test_python_snippet_calls_the_api);
  tcase_add_test (tcase, test_python_example_calls_the_api);
  tcase_add_test (tcase, test_notes_sync_reports_results_from_while_away);
  tcase_add_test (tcase, test_notes_sync_reports_failures);
  tcase_add_test (tcase, test_notes_sync_waits_for_a_retried_change);
  suite_add_tcase (suite, tcase);

  /* The Python programs find the built library and typelib here. */
  g_setenv ("GI_TYPELIB_PATH", libclient, TRUE);
  g_setenv ("LD_LIBRARY_PATH", libclient, TRUE);
  env = keyhold_test_env_start (KEYHOLD_TEST_ENV_KEYRING | KEYHOLD_TEST_ENV_MOCK
                                | KEYHOLD_TEST_ENV_AGENT);
  mock_post ("/settings", "{\"device_interval\": 1}");
  keyhold_test_add_account (env, ACCOUNT);
  keyhold_test_login (env, ACCOUNT);

  runner = srunner_create (suite);
  srunner_set_fork_status (runner, CK_NOFORK);
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  if (keyhold_test_env_stop_agent (env) != 0)
    failed++;
  keyhold_test_env_stop (env);
  return failed == 0 ? 0 : 1;
}
