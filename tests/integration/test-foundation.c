/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <libsecret/secret.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* The foundation every other integration test stands on: the mock speaks
 * OAuth over plain HTTP, the keyring is the private gnome-keyring-daemon,
 * and the agent behaves as a session service should. */

#define CLIENT_ID "keyhold-foundation-test"
#define DEVICE_GRANT "urn:ietf:params:oauth:grant-type:device_code"
#define AGENT_NAME "org.keyhold.Agent"
#define AGENT_PATH "/org/keyhold/Agent"
#define TIMEOUT_MS 20000

static KeyholdTestEnv *env;

static gboolean
under_valgrind (void)
{
  return g_strcmp0 (g_getenv ("KEYHOLD_TEST_UNDER_VALGRIND"), "1") == 0;
}

static int
timeout_ms (void)
{
  return TIMEOUT_MS * (under_valgrind () ? 10 : 1);
}

static void
stop_env (void)
{
  keyhold_test_env_stop (env);
}

/* ---- the mock over plain HTTP ---- */

static void
start_env_with_mock (void)
{
  env = keyhold_test_env_start (KEYHOLD_TEST_ENV_MOCK);
}

static void
reset_mock (void)
{
  g_autoptr (JsonNode) answer = keyhold_test_env_mock (env, "POST", "/reset", NULL);
}

static JsonObject *
parse_object (const char *body)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) node = json_from_string (body, &error);

  ck_assert_msg (node != NULL && JSON_NODE_HOLDS_OBJECT (node), "not a JSON object: %s", body);
  return json_object_ref (json_node_get_object (node));
}

static JsonObject *
get_discovery (void)
{
  g_autofree char *body = NULL;
  guint status = keyhold_test_env_http (env, "GET", "/.well-known/openid-configuration", NULL, NULL,
                                        &body, NULL);

  ck_assert_uint_eq (status, 200);
  return parse_object (body);
}

static char *
form_encode (const char *const *pairs)
{
  GString *form = g_string_new (NULL);

  for (gsize i = 0; pairs[i] != NULL; i += 2)
    {
      if (i > 0)
        g_string_append_c (form, '&');
      g_string_append_uri_escaped (form, pairs[i], NULL, FALSE);
      g_string_append_c (form, '=');
      g_string_append_uri_escaped (form, pairs[i + 1], NULL, FALSE);
    }
  return g_string_free (form, FALSE);
}

static JsonObject *
post_form (const char *url, const char *const *pairs, guint expected_status)
{
  g_autofree char *form = form_encode (pairs);
  g_autofree char *body = NULL;
  guint status = keyhold_test_env_http (env, "POST", url, NULL, form, &body, NULL);

  ck_assert_msg (status == expected_status, "POST %s gave %u, not %u: %s", url, status,
                 expected_status, body);
  return parse_object (body);
}

START_TEST (test_discovery_names_the_issuer)
{
  g_autoptr (JsonObject) discovery = get_discovery ();

  ck_assert_str_eq (json_object_get_string_member (discovery, "issuer"),
                    keyhold_test_env_get_issuer (env));
  ck_assert (g_str_has_prefix (json_object_get_string_member (discovery, "token_endpoint"),
                               keyhold_test_env_get_issuer (env)));
  ck_assert (json_object_has_member (discovery, "device_authorization_endpoint"));
}
END_TEST

static JsonObject *
poll_token (const char *token_endpoint, const char *device_code, guint expected_status)
{
  const char *form[]
      = { "grant_type", DEVICE_GRANT, "device_code", device_code, "client_id", CLIENT_ID, NULL };

  return post_form (token_endpoint, form, expected_status);
}

static void
approve_as_the_user (const char *verification_uri, const char *user_code)
{
  const char *form[] = { "user_code", user_code, "action", "approve", NULL };
  g_autofree char *encoded = form_encode (form);
  guint status = keyhold_test_env_http (env, "POST", verification_uri, NULL, encoded, NULL, NULL);

  ck_assert_uint_eq (status, 200);
}

START_TEST (test_device_flow_by_plain_http)
{
  const char *authorize_form[] = { "client_id", CLIENT_ID, "scope", "openid offline_access", NULL };
  g_autoptr (JsonNode) settings = NULL;
  g_autoptr (JsonObject) discovery = get_discovery ();
  g_autoptr (JsonObject) device = NULL;
  g_autoptr (JsonObject) pending = NULL;
  g_autoptr (JsonObject) tokens = NULL;
  g_autoptr (JsonObject) hello = NULL;
  const char *token_endpoint = json_object_get_string_member (discovery, "token_endpoint");
  const char *device_code;
  g_autofree char *authorization = NULL;
  g_autofree char *body = NULL;
  const char *headers[2] = { NULL, NULL };

  /* The user approves only when this test says so, and the test need not
   * wait the default five seconds between polls. */
  settings = keyhold_test_env_mock (env, "POST", "/settings",
                                    "{\"auto_approve\": false, \"device_interval\": 1}");

  device = post_form (json_object_get_string_member (discovery, "device_authorization_endpoint"),
                      authorize_form, 200);
  device_code = json_object_get_string_member (device, "device_code");
  ck_assert_int_eq (json_object_get_int_member (device, "interval"), 1);

  pending = poll_token (token_endpoint, device_code, 400);
  ck_assert_str_eq (json_object_get_string_member (pending, "error"), "authorization_pending");

  approve_as_the_user (json_object_get_string_member (device, "verification_uri"),
                       json_object_get_string_member (device, "user_code"));
  g_usleep (G_USEC_PER_SEC * 11 / 10);
  tokens = poll_token (token_endpoint, device_code, 200);
  ck_assert_str_eq (json_object_get_string_member (tokens, "token_type"), "Bearer");
  ck_assert (json_object_has_member (tokens, "refresh_token"));

  ck_assert_uint_eq (keyhold_test_env_http (env, "GET", "/api/hello", NULL, NULL, NULL, NULL), 401);
  authorization = g_strconcat ("Authorization: Bearer ",
                               json_object_get_string_member (tokens, "access_token"), NULL);
  headers[0] = authorization;
  ck_assert_uint_eq (keyhold_test_env_http (env, "GET", "/api/hello", headers, NULL, &body, NULL),
                     200);
  hello = parse_object (body);
  ck_assert (json_object_get_boolean_member (hello, "ok"));
  ck_assert_str_eq (json_object_get_string_member (hello, "sub"), "user-alice-0001");
}
END_TEST

/* ---- the keyring ---- */

static const SecretSchema test_schema = {
  "org.keyhold.FoundationTest",
  SECRET_SCHEMA_NONE,
  {
      { "name", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { NULL, 0 },
  },
};

static void
start_env_with_keyring (void)
{
  env = keyhold_test_env_start (KEYHOLD_TEST_ENV_KEYRING);
}

static void
on_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **slot = user_data;

  *slot = g_object_ref (result);
}

/* libsecret's async call: its sync wrappers leak under valgrind. */
static void
store_test_secret (const char *name, const char *secret)
{
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (GError) error = NULL;

  secret_password_store (&test_schema, SECRET_COLLECTION_DEFAULT, "keyhold foundation test", secret,
                         NULL, on_done, &result, "name", name, NULL);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  ck_assert_msg (secret_password_store_finish (result, &error), "store failed: %s",
                 error ? error->message : "");
}

static GPid
name_owner_pid (const char *name)
{
  g_autoptr (GVariant) reply = NULL;
  guint32 pid;

  reply = g_dbus_connection_call_sync (
      keyhold_test_env_get_bus (env), "org.freedesktop.DBus", "/org/freedesktop/DBus",
      "org.freedesktop.DBus", "GetConnectionUnixProcessID", g_variant_new ("(s)", name),
      G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, timeout_ms (), NULL, NULL);
  if (reply == NULL)
    return 0;
  g_variant_get (reply, "(u)", &pid);
  return (GPid) pid;
}

static char *
read_proc_file (GPid pid, const char *name)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/%s", pid, name);
  char *contents = NULL;
  gsize length;

  ck_assert_msg (g_file_get_contents (path, &contents, &length, NULL), "cannot read %s", path);
  /* cmdline and environ separate their entries with NULs. */
  for (gsize i = 0; i + 1 < length; i++)
    if (contents[i] == '\0')
      contents[i] = '\n';
  return contents;
}

START_TEST (test_secret_lives_in_the_private_keyring)
{
  const char *argv[] = { "secret-tool", "lookup", "xdg:schema", "org.keyhold.FoundationTest",
                         "name",        "probe",  NULL };
  g_autofree char *read_back = NULL;
  g_autofree char *errors = NULL;
  const char *home = keyhold_test_env_get_tmpdir (env);
  g_autofree char *keyring_file
      = g_build_filename (home, "keyring-data", "keyrings", "login.keyring", NULL);
  g_autofree char *agent_keyrings = g_build_filename (home, "data", "keyrings", NULL);
  g_autofree char *keyring_contents = NULL;
  g_autofree char *keyring_data_var = NULL;
  g_autofree char *cmdline = NULL;
  g_autofree char *environ_text = NULL;
  GPid keyring_pid;

  store_test_secret ("probe", "foundation-secret-42");

  ck_assert_int_eq (keyhold_test_env_run (env, argv, &read_back, &errors), 0);
  ck_assert_str_eq (read_back, "foundation-secret-42");

  /* On disk only in the keyring's own, separate data directory, and
   * encrypted there. */
  ck_assert_msg (g_file_get_contents (keyring_file, &keyring_contents, NULL, NULL), "%s is missing",
                 keyring_file);
  ck_assert_ptr_null (strstr (keyring_contents, "foundation-secret-42"));
  ck_assert (!g_file_test (agent_keyrings, G_FILE_TEST_EXISTS));

  /* The service answering is the harness's gnome-keyring-daemon, started
   * by this test program, not one from the machine's session. */
  keyring_pid = name_owner_pid ("org.freedesktop.secrets");
  ck_assert_int_ne (keyring_pid, 0);
  cmdline = read_proc_file (keyring_pid, "cmdline");
  ck_assert_msg (strstr (cmdline, "gnome-keyring-daemon") != NULL, "owner is %s", cmdline);
  environ_text = read_proc_file (keyring_pid, "environ");
  keyring_data_var = g_strconcat ("XDG_DATA_HOME=", home, "/keyring-data\n", NULL);
  ck_assert_ptr_nonnull (strstr (environ_text, keyring_data_var));
}
END_TEST

/* ---- the agent ---- */

static char *
agent_program (void)
{
  return g_build_filename (g_getenv ("KEYHOLD_BUILD_DIR"), "agent", "keyhold-agent", NULL);
}

static void
start_agent (void)
{
  keyhold_test_env_start_agent (env, NULL);
}

/* A test that ended the agent itself has checked how it ended. */
static void
stop_agent_cleanly (void)
{
  if (keyhold_test_env_get_agent_pid (env) != 0)
    ck_assert_int_eq (keyhold_test_env_stop_agent (env), 0);
}

static GVariant *
call_agent (const char *interface, const char *method, GVariant *parameters, const char *reply_type)
{
  g_autoptr (GError) error = NULL;
  GVariant *reply = g_dbus_connection_call_sync (
      keyhold_test_env_get_bus (env), AGENT_NAME, AGENT_PATH, interface, method, parameters,
      G_VARIANT_TYPE (reply_type), G_DBUS_CALL_FLAGS_NO_AUTO_START, timeout_ms (), NULL, &error);

  ck_assert_msg (reply != NULL, "%s.%s failed: %s", interface, method, error ? error->message : "");
  return reply;
}

static void
assert_agent_answers (void)
{
  g_autoptr (GVariant) pong = call_agent ("org.freedesktop.DBus.Peer", "Ping", NULL, "()");
}

static void
wait_for_owner (const char *name, GPid pid)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms () * 1000;

  while (name_owner_pid (name) != pid)
    {
      ck_assert_msg (g_get_monotonic_time () < deadline, "%s did not move to pid %d", name, pid);
      g_usleep (G_USEC_PER_SEC / 50);
    }
}

START_TEST (test_agent_answers_on_the_bus)
{
  g_autoptr (GVariant) xml = NULL;
  g_autoptr (GVariant) version = NULL;
  g_autoptr (GVariant) value = NULL;
  const char *introspection;

  assert_agent_answers ();

  xml = call_agent ("org.freedesktop.DBus.Introspectable", "Introspect", NULL, "(s)");
  g_variant_get (xml, "(&s)", &introspection);
  ck_assert_ptr_nonnull (strstr (introspection, "org.keyhold.Agent1"));

  version = call_agent ("org.freedesktop.DBus.Properties", "Get",
                        g_variant_new ("(ss)", "org.keyhold.Agent1", "Version"), "(v)");
  g_variant_get (version, "(v)", &value);
  ck_assert (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32));
  ck_assert_uint_eq (g_variant_get_uint32 (value), 1);
}
END_TEST

START_TEST (test_second_instance_exits_with_status_1)
{
  g_autofree char *program = agent_program ();
  const char *argv[] = { program, NULL };
  g_autofree char *output = NULL;
  g_autofree char *errors = NULL;

  ck_assert_int_eq (keyhold_test_env_run (env, argv, &output, &errors), 1);

  ck_assert_msg (strstr (errors, "already") != NULL, "stderr: %s", errors);
  ck_assert_int_eq (name_owner_pid (AGENT_NAME), keyhold_test_env_get_agent_pid (env));
  assert_agent_answers ();
}
END_TEST

START_TEST (test_replace_takes_over)
{
  g_autofree char *program = agent_program ();
  const char *argv[] = { program, "--replace", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) successor = NULL;
  GPid successor_pid;

  successor = keyhold_test_env_spawn (env, argv, G_SUBPROCESS_FLAGS_NONE, &error);
  ck_assert_msg (successor != NULL, "cannot start: %s", error ? error->message : "");
  successor_pid = (GPid) g_ascii_strtoll (g_subprocess_get_identifier (successor), NULL, 10);

  wait_for_owner (AGENT_NAME, successor_pid);
  ck_assert_int_eq (keyhold_test_env_wait_agent (env), 0);
  assert_agent_answers ();

  g_subprocess_send_signal (successor, SIGTERM);
  ck_assert (g_subprocess_wait (successor, NULL, NULL));
  ck_assert (g_subprocess_get_if_exited (successor));
  ck_assert_int_eq (g_subprocess_get_exit_status (successor), 0);
}
END_TEST

static void
assert_signal_ends_agent_cleanly (int signal_number)
{
  ck_assert_int_eq (kill (keyhold_test_env_get_agent_pid (env), signal_number), 0);

  ck_assert_int_eq (keyhold_test_env_wait_agent (env), 0);
  wait_for_owner (AGENT_NAME, 0);
}

START_TEST (test_sigterm_exits_0)
{
  assert_signal_ends_agent_cleanly (SIGTERM);
}
END_TEST

START_TEST (test_sigint_exits_0)
{
  assert_signal_ends_agent_cleanly (SIGINT);
}
END_TEST

static Suite *
foundation_suite (void)
{
  Suite *suite = suite_create ("foundation");
  TCase *mock = tcase_create ("mock");
  TCase *keyring = tcase_create ("keyring");
  TCase *agent = tcase_create ("agent");

  tcase_add_unchecked_fixture (mock, start_env_with_mock, stop_env);
  tcase_add_checked_fixture (mock, reset_mock, NULL);
  tcase_add_test (mock, test_discovery_names_the_issuer);
  tcase_add_test (mock, test_device_flow_by_plain_http);
  suite_add_tcase (suite, mock);

  tcase_add_unchecked_fixture (keyring, start_env_with_keyring, stop_env);
  tcase_add_test (keyring, test_secret_lives_in_the_private_keyring);
  suite_add_tcase (suite, keyring);

  tcase_add_unchecked_fixture (agent, start_env_with_keyring, stop_env);
  tcase_add_checked_fixture (agent, start_agent, stop_agent_cleanly);
  tcase_add_test (agent, test_agent_answers_on_the_bus);
  tcase_add_test (agent, test_second_instance_exits_with_status_1);
  tcase_add_test (agent, test_replace_takes_over);
  tcase_add_test (agent, test_sigterm_exits_0);
  tcase_add_test (agent, test_sigint_exits_0);
  suite_add_tcase (suite, agent);
  return suite;
}

int
main (void)
{
  SRunner *runner = srunner_create (foundation_suite ());
  int failed;

  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
