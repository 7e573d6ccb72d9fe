/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <signal.h>
#include <string.h>

#include "agent-client.h"

/* Sign-in, keyring-held refresh tokens and access tokens served over D-Bus,
 * on the real stack: a private dbus-daemon, gnome-keyring-daemon, the mock
 * provider and the built agent and CLI. The tests run in order in one
 * environment; each uses its own account. */

static KeyholdTestEnv *env;

static void
mock_post (const char *path, const char *json)
{
  keyhold_test_mock_post (env, path, json);
}

static void
mock_settings (const char *json)
{
  mock_post ("/settings", json);
}

static gboolean
mock_token_is_valid (const char *token)
{
  return keyhold_test_mock_token_is_valid (env, token);
}

static char *
run_cli (int expected_status, const char *first, ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *err = NULL;
  char *out = NULL;
  va_list args;
  int status;

  g_ptr_array_add (argv,
                   g_build_filename (g_getenv ("KEYHOLD_BUILD_DIR"), "examples", "keyhold", NULL));
  va_start (args, first);
  for (const char *arg = first; arg != NULL; arg = va_arg (args, const char *))
    g_ptr_array_add (argv, g_strdup (arg));
  va_end (args);
  g_ptr_array_add (argv, NULL);

  status = keyhold_test_env_run (env, (const char *const *) argv->pdata, &out, &err);
  ck_assert_msg (status == expected_status, "keyhold %s exited %d, not %d: %s", first, status,
                 expected_status, err);
  return out;
}

static void
sign_in (const char *name)
{
  keyhold_test_add_account (env, name);
  keyhold_test_login (env, name);
}

START_TEST (test_device_sign_in_serves_cached_token)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *first = NULL, *second = NULL, *state = NULL, *status = NULL;
  g_autoptr (GVariant) subject = NULL;
  guint grants_before;
  gint64 expires_at = 0;

  sign_in ("cached");
  state = keyhold_test_account_state (env, "cached");
  ck_assert_str_eq (state, "signed-in");
  subject = keyhold_test_account_property (env, "cached", "Subject");
  ck_assert_str_eq (g_variant_get_string (subject, NULL), "user-alice-0001");

  grants_before = keyhold_test_count_token_requests (env, "refresh_token");
  first = keyhold_test_get_token (env, "cached", NULL, NULL, 0, &expires_at, &error);
  ck_assert_msg (first != NULL, "GetAccessToken: %s", error ? error->message : "");
  ck_assert (mock_token_is_valid (first));
  ck_assert_int_gt (expires_at, g_get_real_time () / G_USEC_PER_SEC + 3000);

  second = keyhold_test_get_token (env, "cached", NULL, NULL, 0, NULL, &error);
  ck_assert_str_eq (first, second);
  ck_assert_uint_eq (keyhold_test_count_token_requests (env, "refresh_token"), grants_before);

  /* The status shows who is signed in, and never a token. */
  status = run_cli (0, "status", NULL);
  ck_assert_ptr_nonnull (strstr (status, "cached"));
  ck_assert_ptr_nonnull (strstr (status, "signed-in"));
  ck_assert_ptr_nonnull (strstr (status, "user-alice-0001"));
  ck_assert_ptr_null (strstr (status, first));
}
END_TEST

START_TEST (test_cli_token_prints_only_the_token)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *printed = NULL, *expected = NULL, *line = NULL;

  sign_in ("cli-token");
  expected = keyhold_test_get_token (env, "cli-token", NULL, NULL, 0, NULL, &error);
  ck_assert_ptr_nonnull (expected);
  printed = run_cli (0, "token", "cli-token", "--min-validity", "120", NULL);
  line = g_strconcat (expected, "\n", NULL);
  ck_assert_str_eq (printed, line);
}
END_TEST

START_TEST (test_identity_claims)
{
  g_autofree char *path = keyhold_test_account_path ("identity");
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) claims = NULL;
  g_autoptr (GError) error = NULL;
  const char *value;

  sign_in ("identity");
  reply = g_dbus_connection_call_sync (
      keyhold_test_env_get_bus (env), "org.keyhold.Agent", path, "org.keyhold.Account1",
      "GetIdentity", NULL, G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, 20000, NULL, &error);
  ck_assert_msg (reply != NULL, "GetIdentity: %s", error ? error->message : "");
  claims = g_variant_get_child_value (reply, 0);
  ck_assert (g_variant_lookup (claims, "sub", "&s", &value));
  ck_assert_str_eq (value, "user-alice-0001");
  ck_assert (g_variant_lookup (claims, "email", "&s", &value));
  ck_assert_str_eq (value, "alice@example.test");

  /* Offline, the identity is still there. */
  g_clear_pointer (&reply, g_variant_unref);
  mock_post ("/offline", NULL);
  reply = g_dbus_connection_call_sync (
      keyhold_test_env_get_bus (env), "org.keyhold.Agent", path, "org.keyhold.Account1",
      "GetIdentity", NULL, G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, 20000, NULL, &error);
  mock_post ("/online", NULL);
  ck_assert_ptr_nonnull (reply);
}
END_TEST

/* Short-lived tokens make every call after a pause need a refresh. */
static char *
token_after_expiry (const char *name)
{
  g_autoptr (GError) error = NULL;
  char *token;

  g_usleep (2200 * 1000);
  token = keyhold_test_get_token (env, name, NULL, NULL, 1, NULL, &error);
  ck_assert_msg (token != NULL, "GetAccessToken: %s", error ? error->message : "");
  return token;
}

START_TEST (test_rotation_never_resends_a_rotated_token)
{
  g_autoptr (JsonNode) log = NULL;
  g_autoptr (GHashTable) sent = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (JsonNode) grants = NULL;
  g_autofree char *latest_issued = NULL, *in_keyring = NULL;
  JsonArray *entries;
  guint refreshes = 0;

  mock_settings ("{\"token_lifetime\": 2, \"rotate_refresh\": true, \"rotation_grace\": 0}");
  sign_in ("rotate");
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *token = token_after_expiry ("rotate");
      ck_assert (mock_token_is_valid (token));
    }
  mock_settings ("{\"token_lifetime\": 3600}");

  /* Every refresh token went out once: a resent rotated token would have
   * made the mock revoke the whole grant. */
  log = keyhold_test_env_mock (env, "GET", "/log?target=token", NULL);
  entries = json_object_get_array_member (json_node_get_object (log), "entries");
  for (guint i = 0; i < json_array_get_length (entries); i++)
    {
      JsonObject *entry = json_array_get_object_element (entries, i);
      JsonObject *form = json_object_get_object_member (entry, "form");
      const char *response = json_object_get_string_member_with_default (entry, "response", "");
      g_autoptr (JsonNode) answer = json_from_string (response, NULL);

      if (form == NULL
          || g_strcmp0 (json_object_get_string_member_with_default (form, "grant_type", ""),
                        "refresh_token")
                 != 0)
        continue;
      ck_assert_msg (
          g_hash_table_add (sent, g_strdup (json_object_get_string_member (form, "refresh_token"))),
          "a refresh token was sent twice");
      refreshes++;
      if (answer != NULL && JSON_NODE_HOLDS_OBJECT (answer))
        {
          g_free (latest_issued);
          latest_issued = g_strdup (json_object_get_string_member_with_default (
              json_node_get_object (answer), "refresh_token", ""));
        }
    }
  ck_assert_uint_ge (refreshes, 3);

  grants = keyhold_test_env_mock (env, "GET", "/grants", NULL);
  {
    JsonArray *list = json_object_get_array_member (json_node_get_object (grants), "grants");
    for (guint i = 0; i < json_array_get_length (list); i++)
      ck_assert (
          !json_object_get_boolean_member (json_array_get_object_element (list, i), "revoked"));
  }

  /* The keyring holds the newest refresh token, not a rotated one. */
  in_keyring = keyhold_test_keyring_refresh_token (env, "rotate");
  ck_assert_ptr_nonnull (in_keyring);
  ck_assert_str_eq (in_keyring, latest_issued);
}
END_TEST

typedef struct
{
  guint pending;
  guint failures;
  GHashTable *tokens;
  GMainLoop *loop;
} Flight;

static void
on_concurrent_token (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Flight *flight = user_data;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GError) error = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    flight->failures++;
  else
    {
      char *token;
      g_variant_get (reply, "(sx)", &token, NULL);
      g_hash_table_add (flight->tokens, token);
    }
  if (--flight->pending == 0)
    g_main_loop_quit (flight->loop);
}

START_TEST (test_single_flight_under_200_callers)
{
  g_autofree char *path = keyhold_test_account_path ("flight");
  g_autoptr (GPtrArray) connections = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr (GHashTable) tokens = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  Flight flight = { .pending = 200, .tokens = tokens, .loop = loop };
  g_autofree char *address = NULL;
  guint before;

  /* The cached token (10 min) is too short for callers asking for 1000 s,
   * so every caller needs the one refresh; the next token lives an hour. */
  mock_settings ("{\"token_lifetime\": 600}");
  sign_in ("flight");
  mock_settings ("{\"token_lifetime\": 3600, \"rotate_refresh\": true}");

  /* Eight connections, as from eight applications, 25 callers each. */
  address = g_dbus_address_get_for_bus_sync (G_BUS_TYPE_SESSION, NULL, NULL);
  for (int i = 0; i < 8; i++)
    g_ptr_array_add (connections, g_dbus_connection_new_for_address_sync (
                                      address,
                                      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
                                          | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                      NULL, NULL, NULL));
  before = keyhold_test_count_token_requests (env, "refresh_token");
  for (int i = 0; i < 200; i++)
    g_dbus_connection_call (
        connections->pdata[i % 8], "org.keyhold.Agent", path, "org.keyhold.Account1",
        "GetAccessToken", g_variant_new ("(^as&su)", (const char *const[]) { NULL }, "", 1000),
        G_VARIANT_TYPE ("(sx)"), G_DBUS_CALL_FLAGS_NONE, 60000, NULL, on_concurrent_token, &flight);
  g_main_loop_run (loop);

  ck_assert_uint_eq (flight.failures, 0);
  ck_assert_uint_eq (g_hash_table_size (tokens), 1);
  ck_assert_uint_eq (keyhold_test_count_token_requests (env, "refresh_token") - before, 1);
}
END_TEST

/* Watches an account's signals from outside, as any client would, with
 * `gdbus monitor`; the test process itself subscribes to nothing. */
static GSubprocess *
monitor_account (const char *path)
{
  const char *argv[] = { "gdbus",         "monitor", "--session", "--dest", "org.keyhold.Agent",
                         "--object-path", path,      NULL };
  g_autoptr (GError) error = NULL;
  GSubprocess *monitor = keyhold_test_env_spawn (env, argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);

  ck_assert_msg (monitor != NULL, "%s", error ? error->message : "");
  /* gdbus monitor prints a first line once its match rules are in place. */
  {
    g_autoptr (GDataInputStream) lines
        = g_data_input_stream_new (g_subprocess_get_stdout_pipe (monitor));
    g_autofree char *first = g_data_input_stream_read_line (lines, NULL, NULL, NULL);

    ck_assert_ptr_nonnull (first);
    g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (lines), FALSE);
  }
  return monitor;
}

static char *
stop_monitor (GSubprocess *monitor)
{
  g_autoptr (GError) error = NULL;
  char *output = NULL;

  g_subprocess_send_signal (monitor, SIGTERM);
  ck_assert (g_subprocess_communicate_utf8 (monitor, NULL, NULL, &output, NULL, &error));
  return output;
}

START_TEST (test_invalid_grant_needs_login)
{
  g_autofree char *path = keyhold_test_account_path ("revoked");
  g_autoptr (GError) error = NULL;
  g_autofree char *token = NULL, *state = NULL, *in_keyring = NULL, *signals = NULL;
  g_autoptr (GSubprocess) monitor = NULL;

  mock_settings ("{\"token_lifetime\": 2}");
  sign_in ("revoked");
  mock_settings ("{\"token_lifetime\": 3600}");
  monitor = monitor_account (path);

  /* The provider revokes the grant, as an administrator would. */
  mock_post ("/revoke-grants", "{}");
  g_usleep (2200 * 1000);
  token = keyhold_test_get_token (env, "revoked", NULL, NULL, 1, NULL, &error);
  ck_assert_ptr_null (token);
  ck_assert_str_eq (keyhold_test_error_name (error), "org.keyhold.Error.NeedsLogin");

  state = keyhold_test_account_state (env, "revoked");
  ck_assert_str_eq (state, "needs-login");
  /* PropertiesChanged goes out from an idle callback; give it a moment. */
  g_usleep (500 * 1000);
  signals = stop_monitor (monitor);
  ck_assert_msg (strstr (signals, "PropertiesChanged") != NULL
                     && strstr (signals, "'needs-login'") != NULL,
                 "no PropertiesChanged to needs-login seen: %s", signals);

  in_keyring = keyhold_test_keyring_refresh_token (env, "revoked");
  ck_assert_ptr_null (in_keyring);

  /* Signing in again brings the account back. */
  keyhold_test_login (env, "revoked");
  g_clear_pointer (&state, g_free);
  state = keyhold_test_account_state (env, "revoked");
  ck_assert_str_eq (state, "signed-in");
}
END_TEST

START_TEST (test_restart_restores_tokens_from_keyring)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *before = NULL, *after = NULL, *after_crash = NULL;
  guint logins;

  sign_in ("restart");
  before = keyhold_test_get_token (env, "restart", NULL, NULL, 0, NULL, &error);
  ck_assert_ptr_nonnull (before);
  logins = keyhold_test_count_token_requests (env, "urn:ietf:params:oauth:grant-type:device_code");

  ck_assert_int_eq (keyhold_test_env_stop_agent (env), 0);
  keyhold_test_env_start_agent (env, NULL);
  after = keyhold_test_get_token (env, "restart", NULL, NULL, 0, NULL, &error);
  ck_assert_msg (after != NULL, "after restart: %s", error ? error->message : "");
  ck_assert (mock_token_is_valid (after));

  /* A crash loses nothing either: the refresh token is in the keyring. */
  keyhold_test_env_kill_agent (env);
  keyhold_test_env_start_agent (env, NULL);
  after_crash = keyhold_test_get_token (env, "restart", NULL, NULL, 0, NULL, &error);
  ck_assert_msg (after_crash != NULL, "after crash: %s", error ? error->message : "");
  ck_assert (mock_token_is_valid (after_crash));
  ck_assert_uint_eq (
      keyhold_test_count_token_requests (env, "urn:ietf:params:oauth:grant-type:device_code"),
      logins);
}
END_TEST

static guint
count_revocations (void)
{
  g_autoptr (JsonNode) reply = keyhold_test_env_mock (env, "GET", "/revocations", NULL);

  return json_array_get_length (
      json_object_get_array_member (json_node_get_object (reply), "revocations"));
}

START_TEST (test_sign_out_revokes_and_forgets)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *token = NULL, *in_keyring = NULL, *out = NULL, *state = NULL;
  guint revocations = count_revocations ();

  sign_in ("leaving");
  token = keyhold_test_get_token (env, "leaving", NULL, NULL, 0, NULL, &error);
  ck_assert_ptr_nonnull (token);
  out = run_cli (0, "logout", "leaving", NULL);

  ck_assert_uint_eq (count_revocations (), revocations + 1);
  ck_assert (!mock_token_is_valid (token));
  in_keyring = keyhold_test_keyring_refresh_token (env, "leaving");
  ck_assert_ptr_null (in_keyring);
  state = keyhold_test_account_state (env, "leaving");
  ck_assert_str_eq (state, "signed-out");
  g_clear_pointer (&token, g_free);
  token = keyhold_test_get_token (env, "leaving", NULL, NULL, 0, NULL, &error);
  ck_assert_ptr_null (token);
  ck_assert_str_eq (keyhold_test_error_name (error), "org.keyhold.Error.NotSignedIn");
}
END_TEST

START_TEST (test_sign_out_while_provider_down_still_deletes)
{
  g_autofree char *in_keyring = NULL, *out = NULL;

  sign_in ("leaving-offline");
  mock_post ("/offline", NULL);
  out = run_cli (0, "logout", "leaving-offline", NULL);
  mock_post ("/online", NULL);
  in_keyring = keyhold_test_keyring_refresh_token (env, "leaving-offline");
  ck_assert_ptr_null (in_keyring);
}
END_TEST

START_TEST (test_bad_arguments_get_stable_errors)
{
  const char *const bad_scope[] = { "has space", NULL };
  g_autoptr (GError) error = NULL;
  g_autofree char *token = NULL;

  sign_in ("args");
  token = keyhold_test_get_token (env, "args", bad_scope, NULL, 0, NULL, &error);
  ck_assert_ptr_null (token);
  ck_assert_str_eq (keyhold_test_error_name (error), "org.keyhold.Error.InvalidArgument");
  g_clear_error (&error);
  token = keyhold_test_get_token (env, "args", NULL, "not a uri", 0, NULL, &error);
  ck_assert_str_eq (keyhold_test_error_name (error), "org.keyhold.Error.InvalidArgument");
  g_clear_error (&error);
  token = keyhold_test_get_token (env, "args", NULL, NULL, 10 * 24 * 3600, NULL, &error);
  ck_assert_str_eq (keyhold_test_error_name (error), "org.keyhold.Error.InvalidArgument");
  g_clear_error (&error);
  token = keyhold_test_get_token (env, "no-such-account", NULL, NULL, 0, NULL, &error);
  ck_assert_ptr_null (token);
}
END_TEST

/* Invariant 9: a process of another Unix user reaches the bus, but the
 * agent refuses it, for the manager and for an account alike. */
START_TEST (test_other_unix_user_is_refused)
{
  g_autofree char *path = keyhold_test_account_path ("private");
  g_autofree char *address = g_strconcat (
      "DBUS_SESSION_BUS_ADDRESS=", keyhold_test_env_get_other_user_address (env), NULL);
  const char *get_token[] = { "setpriv",
                              "--reuid=65534",
                              "--regid=65534",
                              "--clear-groups",
                              "env",
                              address,
                              "gdbus",
                              "call",
                              "--session",
                              "--dest",
                              "org.keyhold.Agent",
                              "--object-path",
                              path,
                              "--method",
                              "org.keyhold.Account1.GetAccessToken",
                              "[]",
                              "''",
                              "0",
                              NULL };
  const char *list[] = { "setpriv",
                         "--reuid=65534",
                         "--regid=65534",
                         "--clear-groups",
                         "env",
                         address,
                         "gdbus",
                         "call",
                         "--session",
                         "--dest",
                         "org.keyhold.Agent",
                         "--object-path",
                         "/org/keyhold/Agent",
                         "--method",
                         "org.keyhold.Agent1.ListAccounts",
                         NULL };
  g_autofree char *out = NULL, *err = NULL, *list_out = NULL, *list_err = NULL;

  sign_in ("private");
  ck_assert_int_ne (keyhold_test_env_run (env, get_token, &out, &err), 0);
  ck_assert_msg (strstr (err, "org.keyhold.Error.AccessDenied") != NULL, "%s", err);
  ck_assert_ptr_null (strstr (out, "at-"));
  ck_assert_int_ne (keyhold_test_env_run (env, list, &list_out, &list_err), 0);
  ck_assert_msg (strstr (list_err, "org.keyhold.Error.AccessDenied") != NULL, "%s", list_err);
}
END_TEST

START_TEST (test_agent_is_not_dumpable)
{
  g_autofree char *agent
      = g_build_filename (g_getenv ("KEYHOLD_BUILD_DIR"), "agent", "keyhold-agent", NULL);
  g_autofree char *trace
      = g_build_filename (keyhold_test_env_get_tmpdir (env), "prctl.trace", NULL);
  g_autofree char *contents = NULL;
  /* LeakSanitizer cannot run under ptrace; every other test checks leaks. */
  const char *argv[] = { "env",    "ASAN_OPTIONS=detect_leaks=0",
                         "strace", "-f",
                         "-e",     "trace=prctl",
                         "-o",     trace,
                         agent,    "--version",
                         NULL };

  /* Some sandboxes accept the prctl and ignore it, so the test watches the
   * request itself rather than the process's resulting state. */
  ck_assert_int_eq (keyhold_test_env_run (env, argv, NULL, NULL), 0);
  ck_assert (g_file_get_contents (trace, &contents, NULL, NULL));
  ck_assert_ptr_nonnull (strstr (contents, "PR_SET_DUMPABLE, SUID_DUMP_DISABLE) = 0"));
}
END_TEST

/* Collects every token the mock handed out: access, refresh and ID tokens
 * appear in the token endpoint's responses in its log. */
static GPtrArray *
tokens_issued_by_mock (void)
{
  g_autoptr (JsonNode) log = keyhold_test_env_mock (env, "GET", "/log?target=token", NULL);
  JsonArray *entries = json_object_get_array_member (json_node_get_object (log), "entries");
  GPtrArray *tokens = g_ptr_array_new_with_free_func (g_free);
  static const char *const kinds[] = { "access_token", "refresh_token", "id_token" };

  for (guint i = 0; i < json_array_get_length (entries); i++)
    {
      JsonObject *entry = json_array_get_object_element (entries, i);
      const char *response = json_object_get_string_member_with_default (entry, "response", "");
      g_autoptr (JsonNode) answer = json_from_string (response, NULL);

      if (answer == NULL || !JSON_NODE_HOLDS_OBJECT (answer))
        continue;
      for (guint k = 0; k < G_N_ELEMENTS (kinds); k++)
        if (json_object_has_member (json_node_get_object (answer), kinds[k]))
          g_ptr_array_add (tokens, g_strdup (json_object_get_string_member (
                                       json_node_get_object (answer), kinds[k])));
    }
  return tokens;
}

static void
assert_no_token_in_tree (const char *dir, const char *skip_dir, GPtrArray *tokens)
{
  g_autoptr (GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;

  if (listing == NULL)
    return;
  while ((name = g_dir_read_name (listing)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *contents = NULL;
      gsize length;

      if (g_strcmp0 (path, skip_dir) == 0)
        continue;
      if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
        {
          assert_no_token_in_tree (path, skip_dir, tokens);
          continue;
        }
      if (!g_file_test (path, G_FILE_TEST_IS_REGULAR)
          || !g_file_get_contents (path, &contents, &length, NULL))
        continue;
      for (guint i = 0; i < tokens->len; i++)
        ck_assert_msg (memmem (contents, length, tokens->pdata[i], strlen (tokens->pdata[i]))
                           == NULL,
                       "a token was found in %s", path);
    }
}

/* Runs last: after sign-ins, refreshes, rotations, restarts and sign-outs. */
START_TEST (test_no_token_reaches_disk_or_logs)
{
  g_autoptr (GPtrArray) tokens = tokens_issued_by_mock ();
  g_autofree char *keyring_dir
      = g_build_filename (keyhold_test_env_get_tmpdir (env), "keyring-data", NULL);
  g_autofree char *agent_log = keyhold_test_env_read_agent_log (env);

  ck_assert_uint_gt (tokens->len, 10);
  /* The agent's log is a file in the tree as well, but check it by name so
   * that a failure says what leaked where. */
  for (guint i = 0; i < tokens->len; i++)
    ck_assert_msg (strstr (agent_log, tokens->pdata[i]) == NULL, "a token is in the agent's log");
  assert_no_token_in_tree (keyhold_test_env_get_tmpdir (env), keyring_dir, tokens);
}
END_TEST

int
main (void)
{
  SRunner *runner;
  Suite *suite = suite_create ("tokens");
  TCase *tcase = tcase_create ("tokens");
  int failed;

  tcase_set_timeout (tcase, 300);
  tcase_add_test (tcase, test_device_sign_in_serves_cached_token);
  tcase_add_test (tcase, test_cli_token_prints_only_the_token);
  tcase_add_test (tcase, test_identity_claims);
  tcase_add_test (tcase, test_rotation_never_resends_a_rotated_token);
  tcase_add_test (tcase, test_single_flight_under_200_callers);
  tcase_add_test (tcase, test_invalid_grant_needs_login);
  tcase_add_test (tcase, test_restart_restores_tokens_from_keyring);
  tcase_add_test (tcase, test_sign_out_revokes_and_forgets);
  tcase_add_test (tcase, test_sign_out_while_provider_down_still_deletes);
  tcase_add_test (tcase, test_bad_arguments_get_stable_errors);
  tcase_add_test (tcase, test_other_unix_user_is_refused);
  tcase_add_test (tcase, test_agent_is_not_dumpable);
  tcase_add_test (tcase, test_no_token_reaches_disk_or_logs);
  suite_add_tcase (suite, tcase);

  env = keyhold_test_env_start (KEYHOLD_TEST_ENV_KEYRING | KEYHOLD_TEST_ENV_MOCK
                                | KEYHOLD_TEST_ENV_AGENT);
  mock_settings ("{\"device_interval\": 1}");
  runner = srunner_create (suite);
  /* One environment for all tests: they run in this process, in order. */
  srunner_set_fork_status (runner, CK_NOFORK);
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  /* The agent must also end cleanly (under valgrind: without errors). */
  if (keyhold_test_env_stop_agent (env) != 0)
    failed++;
  keyhold_test_env_stop (env);
  return failed == 0 ? 0 : 1;
}
