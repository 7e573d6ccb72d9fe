/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <string.h>

#include <keyhold/keyhold.h>

#include "harness.h"

/* D-Bus activation and idle exit, on the private bus. Nobody starts the
 * agent here: the bus does, from the activation file built from
 * dbus/org.keyhold.Agent.service.in that points at the built agent with an
 * idle timeout of IDLE_TIMEOUT_S (tests/integration/meson.build). The tests
 * run in order in one environment. */

#define AGENT_NAME "org.keyhold.Agent"
#define IDLE_TIMEOUT_S 2

static KeyholdTestEnv *env;

static guint
wait_timeout_s (void)
{
  return g_strcmp0 (g_getenv ("KEYHOLD_TEST_UNDER_VALGRIND"), "1") == 0 ? 300 : 30;
}

/* The pid of the agent process, or 0; asks the bus, which starts nothing. */
static guint32
agent_pid (void)
{
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      keyhold_test_env_get_bus (env), "org.freedesktop.DBus", "/org/freedesktop/DBus",
      "org.freedesktop.DBus", "GetConnectionUnixProcessID", g_variant_new ("(s)", AGENT_NAME),
      G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
  guint32 pid = 0;

  if (reply != NULL)
    g_variant_get (reply, "(u)", &pid);
  return pid;
}

static void
wait_for_agent_exit (void)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) wait_timeout_s () * G_USEC_PER_SEC;

  while (agent_pid () != 0)
    {
      ck_assert_msg (g_get_monotonic_time () < deadline, "the idle agent did not exit");
      g_usleep (100 * 1000);
    }
}

static void
install_activation_file (void)
{
  g_autofree char *built = g_build_filename (g_getenv ("KEYHOLD_BUILD_DIR"), "tests", "integration",
                                             "org.keyhold.Agent.service", NULL);
  g_autofree char *installed = g_build_filename (keyhold_test_env_get_tmpdir (env), "services",
                                                 "org.keyhold.Agent.service", NULL);
  g_autofree char *contents = NULL;
  g_autoptr (GError) error = NULL;

  if (!g_file_get_contents (built, &contents, NULL, &error)
      || !g_file_set_contents (installed, contents, -1, &error))
    g_error ("cannot install the activation file: %s", error->message);
}

static KeyholdClient *
new_client (void)
{
  g_autoptr (GError) error = NULL;
  KeyholdClient *client = keyhold_client_new_sync (NULL, &error);

  ck_assert_msg (client != NULL, "keyhold_client_new_sync: %s", error ? error->message : "");
  return client;
}

START_TEST (test_first_call_starts_the_agent)
{
  g_autoptr (KeyholdClient) client = NULL;
  g_autofree char *exe_link = NULL;
  g_autofree char *exe = NULL;
  g_autofree char *built_agent
      = g_build_filename (g_getenv ("KEYHOLD_BUILD_DIR"), "agent", "keyhold-agent", NULL);
  guint32 pid;

  ck_assert_uint_eq (agent_pid (), 0);
  client = new_client ();
  ck_assert (keyhold_client_get_agent_running (client));

  pid = agent_pid ();
  ck_assert_uint_ne (pid, 0);
  exe_link = g_strdup_printf ("/proc/%u/exe", pid);
  exe = g_file_read_link (exe_link, NULL);
  ck_assert_str_eq (exe, built_agent);
}
END_TEST

START_TEST (test_idle_agent_exits_and_comes_back)
{
  g_autoptr (KeyholdClient) client = new_client ();
  g_autoptr (KeyholdAccount) account = NULL;
  g_autoptr (GVariant) claims = NULL;
  g_autoptr (GError) error = NULL;
  const char *issuer = keyhold_test_env_get_issuer (env);
  const char *const origins[] = { issuer, NULL };

  /* Nobody is signed in and nothing is queued. */
  wait_for_agent_exit ();

  /* The next call starts it again, and the client follows. */
  account = keyhold_client_add_account_sync (client, "idle", issuer, "test-client", NULL, origins,
                                             NULL, &error);
  ck_assert_msg (account != NULL, "%s", error ? error->message : "");
  ck_assert_uint_ne (agent_pid (), 0);

  /* An account object outlives the agent too: its next call starts one. */
  wait_for_agent_exit ();
  claims = keyhold_account_get_identity_sync (account, NULL, &error);
  ck_assert_ptr_null (claims);
  ck_assert_msg (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NOT_SIGNED_IN), "%s",
                 error->message);
  ck_assert_uint_ne (agent_pid (), 0);
}
END_TEST

/* Calls count as use. */
START_TEST (test_calls_keep_the_agent)
{
  g_autoptr (KeyholdClient) client = new_client ();
  g_autoptr (KeyholdAccount) account = keyhold_client_lookup_account (client, "idle");
  guint32 pid = agent_pid ();

  ck_assert_ptr_nonnull (account);
  for (int i = 0; i < 4 * IDLE_TIMEOUT_S; i++)
    {
      g_autoptr (GVariant) claims = keyhold_account_get_identity_sync (account, NULL, NULL);

      g_usleep (G_USEC_PER_SEC / 2);
    }
  ck_assert_uint_eq (agent_pid (), pid);
  wait_for_agent_exit ();
}
END_TEST

/* A signed-in account keeps its cached token, so the agent stays; once it
 * is signed out, the agent goes. */
START_TEST (test_signed_in_account_keeps_the_agent)
{
  g_autoptr (KeyholdClient) client = new_client ();
  g_autoptr (KeyholdAccount) account = keyhold_client_lookup_account (client, "idle");
  g_autoptr (GError) error = NULL;
  guint32 pid;

  ck_assert_msg (
      keyhold_client_sign_in_sync (client, "idle", KEYHOLD_SIGN_IN_METHOD_DEVICE, NULL, &error),
      "sign-in: %s", error ? error->message : "");
  pid = agent_pid ();
  g_usleep (3 * IDLE_TIMEOUT_S * G_USEC_PER_SEC);
  ck_assert_uint_eq (agent_pid (), pid);

  ck_assert (keyhold_account_sign_out_sync (account, NULL, &error));
  wait_for_agent_exit ();
}
END_TEST

int
main (void)
{
  SRunner *runner;
  Suite *suite = suite_create ("activation");
  TCase *tcase = tcase_create ("activation");
  g_autoptr (JsonNode) reply = NULL;
  int failed;

  tcase_set_timeout (tcase, 300);
  tcase_add_test (tcase, test_first_call_starts_the_agent);
  tcase_add_test (tcase, test_idle_agent_exits_and_comes_back);
  tcase_add_test (tcase, test_calls_keep_the_agent);
  tcase_add_test (tcase, test_signed_in_account_keeps_the_agent);
  suite_add_tcase (suite, tcase);

  env = keyhold_test_env_start (KEYHOLD_TEST_ENV_KEYRING | KEYHOLD_TEST_ENV_MOCK);
  reply = keyhold_test_env_mock (env, "POST", "/settings", "{\"device_interval\": 1}");
  install_activation_file ();

  runner = srunner_create (suite);
  srunner_set_fork_status (runner, CK_NOFORK);
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  keyhold_test_env_stop (env);
  return failed == 0 ? 0 : 1;
}
