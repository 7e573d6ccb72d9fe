/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <string.h>

#include "agent-client.h"

/* A refresh that is still in flight when the sign-in it belongs to ends:
 * sign-out, a sign-in as someone else; and a provider that stalls for
 * longer than a caller may wait (ARCHITECTURE.md, "Token lifetime"). On the
 * real stack; the mock's `delay` fault holds a refresh at the provider. The
 * tests run in order in one environment; each uses its own account. */

#define ALICE "user-alice-0001"
#define BOB "user-bob-0002"

static KeyholdTestEnv *env;

static void
mock_post (const char *path, const char *json)
{
  keyhold_test_mock_post (env, path, json);
}

/* Under valgrind the agent needs far longer for a sign-in. */
static guint
slow_factor (void)
{
  return g_getenv ("KEYHOLD_TEST_UNDER_VALGRIND") != NULL ? 4 : 1;
}

static void
hold_next_refresh (guint seconds)
{
  g_autofree char *fault
      = g_strdup_printf ("{\"target\": \"token\", \"kind\": \"delay\", \"seconds\": %u, "
                         "\"grant_type\": \"refresh_token\"}",
                         seconds);

  mock_post ("/faults", fault);
}

static void
sign_in (const char *name)
{
  keyhold_test_add_account (env, name);
  keyhold_test_login (env, name);
}

static void
run_cli (const char *command, const char *name)
{
  g_autofree char *cli
      = g_build_filename (g_getenv ("KEYHOLD_BUILD_DIR"), "examples", "keyhold", NULL);
  const char *argv[] = { cli, command, name, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = keyhold_test_env_run (env, argv, &out, &err);

  ck_assert_msg (status == 0, "keyhold %s %s exited %d: %s", command, name, status, err);
}

/* The refresh-token requests the mock has seen, oldest first. */
static GPtrArray *
refresh_requests (void)
{
  g_autoptr (JsonNode) log = keyhold_test_env_mock (env, "GET", "/log?target=token", NULL);
  JsonArray *entries = json_object_get_array_member (json_node_get_object (log), "entries");
  GPtrArray *found = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);

  for (guint i = 0; i < json_array_get_length (entries); i++)
    {
      JsonObject *entry = json_array_get_object_element (entries, i);
      JsonObject *form = json_object_get_object_member (entry, "form");

      if (form != NULL
          && g_strcmp0 (json_object_get_string_member_with_default (form, "grant_type", ""),
                        "refresh_token")
                 == 0)
        g_ptr_array_add (found, json_object_ref (entry));
    }
  return found;
}

/* Waits until the mock has received @count refresh requests in all, and
 * answered (or dropped) every one of them when @answered. */
static void
wait_for_refreshes (guint count, gboolean answered, guint timeout_s)
{
  gint64 deadline = g_get_monotonic_time () + timeout_s * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline)
    {
      g_autoptr (GPtrArray) requests = refresh_requests ();
      gboolean all_done = TRUE;

      for (guint i = 0; i < requests->len; i++)
        all_done = all_done && json_object_get_boolean_member (requests->pdata[i], "complete");
      if (requests->len >= count && (!answered || all_done))
        return;
      g_usleep (100 * 1000);
    }
  ck_abort_msg ("the mock did not see %u refresh requests%s within %u s", count,
                answered ? " and answer them" : "", timeout_s);
}

static guint
count_refreshes (void)
{
  g_autoptr (GPtrArray) requests = refresh_requests ();

  return requests->len;
}

/* The subject the mock issued @access_token to. */
static char *
token_subject (const char *access_token)
{
  g_autofree char *body = g_strdup_printf ("{\"access_token\": \"%s\"}", access_token);
  g_autoptr (JsonNode) reply = keyhold_test_env_mock (env, "POST", "/check-token", body);
  JsonObject *answer = json_node_get_object (reply);

  ck_assert_msg (json_object_get_boolean_member (answer, "valid"), "the mock rejects the token");
  return g_strdup (json_object_get_string_member (answer, "sub"));
}

static char *
refresh_token_subject (const char *refresh_token)
{
  g_autofree char *body = g_strdup_printf ("{\"refresh_token\": \"%s\"}", refresh_token);
  g_autoptr (JsonNode) reply = keyhold_test_env_mock (env, "POST", "/check-token", body);

  return g_strdup (
      json_object_get_string_member_with_default (json_node_get_object (reply), "sub", ""));
}

static guint
count_revocations (void)
{
  g_autoptr (JsonNode) reply = keyhold_test_env_mock (env, "GET", "/revocations", NULL);

  return json_array_get_length (
      json_object_get_array_member (json_node_get_object (reply), "revocations"));
}

/* Whether the mock still honours @refresh_token: not rotated, and its
 * grant not revoked. */
static void
assert_refresh_token_active (const char *refresh_token)
{
  g_autofree char *body = g_strdup_printf ("{\"refresh_token\": \"%s\"}", refresh_token);
  g_autoptr (JsonNode) reply = keyhold_test_env_mock (env, "POST", "/check-token", body);
  JsonObject *answer = json_node_get_object (reply);

  ck_assert_str_eq (json_object_get_string_member (answer, "state"), "active");
  ck_assert_msg (!json_object_get_boolean_member (answer, "grant_revoked"),
                 "the mock revoked the grant");
}

static void
assert_not_signed_in (const char *name, const char *const *scopes)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *token = keyhold_test_get_token (env, name, scopes, NULL, 0, NULL, &error);

  ck_assert_msg (token == NULL, "a token was served after sign-out");
  ck_assert_str_eq (keyhold_test_error_name (error), "org.keyhold.Error.NotSignedIn");
}

static void
assert_state (const char *name, const char *expected)
{
  g_autofree char *state = keyhold_test_account_state (env, name);

  ck_assert_str_eq (state, expected);
}

/* ---- GetAccessToken calls left running while the test acts ------------- */

typedef struct
{
  gboolean done;
  char *token;
  GError *error;
} PendingCall;

static void
on_pending_reply (GObject *source, GAsyncResult *result, gpointer user_data)
{
  PendingCall *call = user_data;
  g_autoptr (GVariant) reply
      = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &call->error);

  if (reply != NULL)
    g_variant_get (reply, "(sx)", &call->token, NULL);
  call->done = TRUE;
}

/* D-Bus's own call timeout is longer than the agent's bound on a caller's
 * wait, so the answer the test sees is the agent's. */
static PendingCall *
start_token_call (const char *name, const char *scope)
{
  g_autofree char *path = keyhold_test_account_path (name);
  const char *scopes[] = { scope, NULL };
  PendingCall *call = g_new0 (PendingCall, 1);

  g_dbus_connection_call (keyhold_test_env_get_bus (env), KEYHOLD_AGENT_BUS_NAME, path,
                          KEYHOLD_ACCOUNT1_INTERFACE, "GetAccessToken",
                          g_variant_new ("(^as&su)", scopes, "", 0), G_VARIANT_TYPE ("(sx)"),
                          G_DBUS_CALL_FLAGS_NONE, 90000, NULL, on_pending_reply, call);
  return call;
}

static void
finish_token_call (PendingCall *call)
{
  while (!call->done)
    g_main_context_iteration (NULL, TRUE);
}

static void
pending_call_free (PendingCall *call)
{
  g_free (call->token);
  g_clear_error (&call->error);
  g_free (call);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PendingCall, pending_call_free)

/* ---- a refresh that outlives its sign-in -------------------------------- */

/* Sign-out while a refresh for a scope nobody has a token for is held at
 * the provider, which does not revoke (so the held refresh succeeds). The
 * late answer must not sign the account back in, nor leave a token to
 * serve, nor make the next request use the forgotten refresh token. */
START_TEST (test_sign_out_during_refresh_changes_nothing_later)
{
  const char *const openid[] = { "openid", NULL };
  const char *const profile[] = { "profile", NULL };
  g_autoptr (PendingCall) call = NULL;
  g_autofree char *in_keyring = NULL;
  guint before;

  sign_in ("leaving-late");
  before = count_refreshes ();
  mock_post ("/faults", "{\"target\": \"revoke\", \"kind\": \"status\", \"status\": 503}");
  hold_next_refresh (4 * slow_factor ());
  call = start_token_call ("leaving-late", "openid");
  wait_for_refreshes (before + 1, FALSE, 10 * slow_factor ());

  run_cli ("logout", "leaving-late");
  finish_token_call (call);
  ck_assert_ptr_null (call->token);
  ck_assert_str_eq (keyhold_test_error_name (call->error), "org.keyhold.Error.NotSignedIn");

  /* The held refresh is answered; give the agent a moment to hear it. */
  wait_for_refreshes (before + 1, TRUE, 20 * slow_factor ());
  g_usleep (G_USEC_PER_SEC);
  assert_state ("leaving-late", "signed-out");
  assert_not_signed_in ("leaving-late", openid);
  assert_not_signed_in ("leaving-late", NULL);
  /* A scope with no cached token would need a refresh, and there is no
   * refresh token any more. */
  assert_not_signed_in ("leaving-late", profile);
  assert_state ("leaving-late", "signed-out");
  in_keyring = keyhold_test_keyring_refresh_token (env, "leaving-late");
  ck_assert_ptr_null (in_keyring);
  mock_post ("/faults/clear", NULL);
}
END_TEST

/* The "done when": sign-out while the provider stalls a refresh
 * for longer than the old 30 s request limit (which used to end in a
 * backoff timer refreshing with the forgotten token). The agent lives,
 * serves no token afterwards, the keyring is empty and the refresh token
 * was revoked. */
START_TEST (test_sign_out_during_stalled_refresh)
{
  const char *const openid[] = { "openid", NULL };
  g_autoptr (PendingCall) call = NULL;
  g_autofree char *in_keyring = NULL;
  guint before, revocations;

  sign_in ("leaving-stalled");
  before = count_refreshes ();
  revocations = count_revocations ();
  hold_next_refresh (36);
  call = start_token_call ("leaving-stalled", "openid");
  wait_for_refreshes (before + 1, FALSE, 10 * slow_factor ());

  run_cli ("logout", "leaving-stalled");
  finish_token_call (call);
  ck_assert_str_eq (keyhold_test_error_name (call->error), "org.keyhold.Error.NotSignedIn");
  ck_assert_uint_eq (count_revocations (), revocations + 1);

  wait_for_refreshes (before + 1, TRUE, 60);
  g_usleep (2 * G_USEC_PER_SEC);
  assert_state ("leaving-stalled", "signed-out");
  assert_not_signed_in ("leaving-stalled", NULL);
  assert_not_signed_in ("leaving-stalled", openid);
  in_keyring = keyhold_test_keyring_refresh_token (env, "leaving-stalled");
  ck_assert_ptr_null (in_keyring);
  /* Nothing went out after the sign-out. */
  ck_assert_uint_eq (count_refreshes (), before + 1);
}
END_TEST

/* Alice's refresh is held at the provider while Bob signs in to the same
 * account. Whatever Alice's late answer carries must not touch Bob's
 * sign-in: not end it (an ID token for another subject), and not put
 * Alice's token in Bob's cache (no ID token at all). */
static void
check_sign_in_as_other_user_during_refresh (const char *name)
{
  const char *const openid[] = { "openid", NULL };
  g_autoptr (PendingCall) call = NULL;
  g_autoptr (GVariant) subject = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *token = NULL, *token_sub = NULL, *in_keyring = NULL, *keyring_sub = NULL;
  g_autofree char *call_sub = NULL;
  guint before;

  mock_post ("/settings", "{\"user\": {\"sub\": \"" ALICE "\", \"name\": \"Alice Example\"}}");
  sign_in (name);
  before = count_refreshes ();
  hold_next_refresh (5 * slow_factor ());
  call = start_token_call (name, "openid");
  wait_for_refreshes (before + 1, FALSE, 10 * slow_factor ());

  mock_post ("/settings", "{\"user\": {\"sub\": \"" BOB "\", \"name\": \"Bob Example\"}}");
  keyhold_test_login (env, name);
  {
    g_autoptr (GPtrArray) requests = refresh_requests ();

    ck_assert_msg (!json_object_get_boolean_member (requests->pdata[before], "complete"),
                   "Bob's sign-in took longer than Alice's refresh was held");
  }
  wait_for_refreshes (before + 1, TRUE, 20 * slow_factor ());
  finish_token_call (call);
  g_usleep (G_USEC_PER_SEC);

  assert_state (name, "signed-in");
  subject = keyhold_test_account_property (env, name, "Subject");
  ck_assert_str_eq (g_variant_get_string (subject, NULL), BOB);
  in_keyring = keyhold_test_keyring_refresh_token (env, name);
  ck_assert_ptr_nonnull (in_keyring);
  keyring_sub = refresh_token_subject (in_keyring);
  ck_assert_str_eq (keyring_sub, BOB);

  /* The caller who asked during Alice's refresh is served, as Bob. */
  ck_assert_msg (call->token != NULL, "%s", call->error ? call->error->message : "");
  call_sub = token_subject (call->token);
  ck_assert_str_eq (call_sub, BOB);
  token = keyhold_test_get_token (env, name, openid, NULL, 0, NULL, &error);
  ck_assert_msg (token != NULL, "%s", error ? error->message : "");
  token_sub = token_subject (token);
  ck_assert_str_eq (token_sub, BOB);
  mock_post ("/faults/clear", NULL);
  mock_post ("/settings", "{\"user\": {\"sub\": \"" ALICE "\", \"name\": \"Alice Example\"}}");
}

START_TEST (test_sign_in_as_other_user_during_refresh)
{
  mock_post ("/settings", "{\"id_token_on_refresh\": true}");
  check_sign_in_as_other_user_during_refresh ("swap-with-id-token");
}
END_TEST

START_TEST (test_sign_in_as_other_user_during_refresh_without_id_token)
{
  mock_post ("/settings", "{\"id_token_on_refresh\": false}");
  check_sign_in_as_other_user_during_refresh ("swap-without-id-token");
  mock_post ("/settings", "{\"id_token_on_refresh\": true}");
}
END_TEST

/* ---- a stalled provider ------------------------------------------------- */

/* The provider holds a refresh for 40 s, then rotates the refresh token
 * and answers; a reused rotated token would revoke the whole grant. The
 * caller's wait stays bounded, the cached token is served meanwhile, and
 * the late answer is heard: the user stays signed in and the old refresh
 * token went out once. */
START_TEST (test_stalled_provider_keeps_the_sign_in)
{
  const char *const openid[] = { "openid", NULL };
  g_autoptr (PendingCall) call = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) requests = NULL;
  g_autoptr (GHashTable) sent = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree char *cached = NULL, *during = NULL, *after = NULL, *in_keyring = NULL;
  const char *latest_issued = NULL;
  const char *name;
  guint before;

  mock_post ("/settings", "{\"rotate_refresh\": true, \"rotation_grace\": 0}");
  sign_in ("stalled");
  cached = keyhold_test_get_token (env, "stalled", NULL, NULL, 0, NULL, &error);
  ck_assert_ptr_nonnull (cached);
  before = count_refreshes ();
  hold_next_refresh (40);
  call = start_token_call ("stalled", "openid");
  wait_for_refreshes (before + 1, FALSE, 10 * slow_factor ());

  /* Meanwhile: the cached token for those who have one... */
  during = keyhold_test_get_token (env, "stalled", NULL, NULL, 0, NULL, &error);
  ck_assert_msg (during != NULL, "%s", error ? error->message : "");
  ck_assert_str_eq (during, cached);
  /* ... and a bounded wait for the caller who needs the refresh. */
  finish_token_call (call);
  ck_assert_ptr_null (call->token);
  name = keyhold_test_error_name (call->error);
  ck_assert_msg (g_str_equal (name, "org.keyhold.Error.TimedOut")
                     || g_str_equal (name, "org.keyhold.Error.Offline"),
                 "the waiting caller got %s", name);

  wait_for_refreshes (before + 1, TRUE, 60);
  g_usleep (G_USEC_PER_SEC);
  after = keyhold_test_get_token (env, "stalled", openid, NULL, 0, NULL, &error);
  ck_assert_msg (after != NULL, "%s", error ? error->message : "");
  ck_assert (keyhold_test_mock_token_is_valid (env, after));
  assert_state ("stalled", "signed-in");

  /* Every refresh token went out once, and the keyring holds the newest. */
  requests = refresh_requests ();
  for (guint i = 0; i < requests->len; i++)
    {
      JsonObject *form = json_object_get_object_member (requests->pdata[i], "form");
      const char *response
          = json_object_get_string_member_with_default (requests->pdata[i], "response", "");
      g_autoptr (JsonNode) answer = json_from_string (response, NULL);

      ck_assert_msg (
          g_hash_table_add (sent, (gpointer) json_object_get_string_member (form, "refresh_token")),
          "a refresh token was sent twice");
      if (answer != NULL && JSON_NODE_HOLDS_OBJECT (answer))
        latest_issued = json_object_get_string_member_with_default (json_node_get_object (answer),
                                                                    "refresh_token", latest_issued);
      if (latest_issued != NULL)
        latest_issued = g_intern_string (latest_issued);
    }
  in_keyring = keyhold_test_keyring_refresh_token (env, "stalled");
  ck_assert_ptr_nonnull (in_keyring);
  ck_assert_str_eq (in_keyring, latest_issued);
  assert_refresh_token_active (in_keyring);
}
END_TEST

/* ---- removal and shutdown while something runs for the account --------- */

typedef struct
{
  gboolean started;
  gboolean finished;
  char *error_name;
} SignInWatch;

static void
on_sign_in_signal (GDBusConnection *connection,
                   const char *sender,
                   const char *path,
                   const char *interface,
                   const char *signal,
                   GVariant *parameters,
                   gpointer user_data)
{
  SignInWatch *watch = user_data;

  if (g_strcmp0 (signal, "SignInProgress") == 0)
    watch->started = TRUE;
  else if (g_strcmp0 (signal, "SignInFinished") == 0 && !watch->finished)
    {
      g_variant_get (parameters, "(&ss&s)", NULL, &watch->error_name, NULL);
      watch->finished = TRUE;
    }
}

static void
wait_until (const gboolean *flag, guint timeout_s, const char *what)
{
  gint64 deadline = g_get_monotonic_time () + timeout_s * G_USEC_PER_SEC;

  while (!*flag && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (10 * 1000);
  ck_assert_msg (*flag, "%s did not happen within %u s", what, timeout_s);
}

static void
call_agent (const char *method,
            GVariant *parameters,
            const GVariantType *reply_type,
            GVariant **out_reply)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      keyhold_test_env_get_bus (env), KEYHOLD_AGENT_BUS_NAME, KEYHOLD_AGENT_PATH,
      KEYHOLD_AGENT1_INTERFACE, method, parameters, reply_type, G_DBUS_CALL_FLAGS_NONE, 60000, NULL,
      &error);

  ck_assert_msg (reply != NULL, "%s failed: %s", method, error != NULL ? error->message : "");
  if (out_reply != NULL)
    *out_reply = g_steal_pointer (&reply);
}

/* The account is removed while its device sign-in waits for the user, who
 * then approves: the sign-in must end in an error and leave no refresh
 * token behind, which a new account of the same name and issuer would
 * otherwise pick up, signed in as whoever approved. */
START_TEST (test_remove_account_during_sign_in)
{
  const char *name = "removed-mid-sign-in";
  SignInWatch watch = { 0 };
  GDBusConnection *bus = keyhold_test_env_get_bus (env);
  g_autofree char *in_keyring = NULL;
  guint subscription;

  keyhold_test_add_account (env, name);
  mock_post ("/settings", "{\"auto_approve\": false}");
  subscription = g_dbus_connection_signal_subscribe (
      bus, NULL, KEYHOLD_AGENT1_INTERFACE, NULL, KEYHOLD_AGENT_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
      on_sign_in_signal, &watch, NULL);
  call_agent ("StartSignIn",
              g_variant_new ("(ss@a{sv})", name, "device",
                             g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0)),
              G_VARIANT_TYPE ("(s)"), NULL);
  wait_until (&watch.started, 20 * slow_factor (), "the device code");

  call_agent ("RemoveAccount", g_variant_new ("(s)", name), NULL, NULL);
  mock_post ("/device/approve", "{}");
  wait_until (&watch.finished, 20 * slow_factor (), "the end of the sign-in");
  /* Long enough for polls at the 1 s interval to pick up the approval. */
  g_usleep (3 * G_USEC_PER_SEC * slow_factor ());

  in_keyring = keyhold_test_keyring_refresh_token (env, name);
  ck_assert_msg (in_keyring == NULL, "the removed account's refresh token is in the keyring");
  ck_assert_str_eq (watch.error_name, "org.keyhold.Error.NoSuchAccount");
  g_dbus_connection_signal_unsubscribe (bus, subscription);
  g_free (watch.error_name);
  mock_post ("/settings", "{\"auto_approve\": true}");
}
END_TEST

/* The revocation requests the mock has received, answered or not. */
static guint
count_revocation_requests (void)
{
  g_autoptr (JsonNode) log = keyhold_test_env_mock (env, "GET", "/log?target=revoke", NULL);

  return json_array_get_length (
      json_object_get_array_member (json_node_get_object (log), "entries"));
}

/* The agent is told to stop while a SignOut or RemoveAccount waits for a
 * revocation held at the provider: it must end cleanly (under valgrind and
 * ASan: without errors), not reach the HTTP client or the account list it
 * has freed. */
static void
check_stop_during_revocation (const char *name, gboolean remove)
{
  g_autofree char *path = keyhold_test_account_path (name);
  gint64 deadline;
  guint before;

  sign_in (name);
  before = count_revocation_requests ();
  mock_post ("/faults", "{\"target\": \"revoke\", \"kind\": \"delay\", \"seconds\": 30}");
  if (remove)
    g_dbus_connection_call (keyhold_test_env_get_bus (env), KEYHOLD_AGENT_BUS_NAME,
                            KEYHOLD_AGENT_PATH, KEYHOLD_AGENT1_INTERFACE, "RemoveAccount",
                            g_variant_new ("(s)", name), NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                            NULL, NULL);
  else
    g_dbus_connection_call (keyhold_test_env_get_bus (env), KEYHOLD_AGENT_BUS_NAME, path,
                            KEYHOLD_ACCOUNT1_INTERFACE, "SignOut", NULL, NULL,
                            G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL, NULL);
  deadline = g_get_monotonic_time () + 20 * slow_factor () * G_USEC_PER_SEC;
  while (count_revocation_requests () == before && g_get_monotonic_time () < deadline)
    g_usleep (100 * 1000);
  ck_assert_msg (count_revocation_requests () > before, "the agent sent no revocation");

  ck_assert_int_eq (keyhold_test_env_stop_agent (env), 0);
  mock_post ("/faults/clear", NULL);
  keyhold_test_env_start_agent (env, NULL);
}

START_TEST (test_stop_during_sign_out)
{
  check_stop_during_revocation ("stopped-signing-out", FALSE);
}
END_TEST

START_TEST (test_stop_during_removal)
{
  check_stop_during_revocation ("stopped-removing", TRUE);
}
END_TEST

static void
add_case (Suite *suite, const char *name, const TTest *test)
{
  TCase *tcase = tcase_create (name);

  tcase_set_timeout (tcase, 300);
  tcase_add_test (tcase, test);
  suite_add_tcase (suite, tcase);
}

int
main (void)
{
  SRunner *runner;
  Suite *suite = suite_create ("lifecycle");
  int failed;

  /* One case per test, so that CK_RUN_CASE=NAME runs one of them. */
  add_case (suite, "sign-out-during-refresh", test_sign_out_during_refresh_changes_nothing_later);
  add_case (suite, "sign-in-as-other-user", test_sign_in_as_other_user_during_refresh);
  add_case (suite, "sign-in-as-other-user-without-id-token",
            test_sign_in_as_other_user_during_refresh_without_id_token);
  add_case (suite, "sign-out-during-stalled-refresh", test_sign_out_during_stalled_refresh);
  add_case (suite, "stalled-provider", test_stalled_provider_keeps_the_sign_in);
  add_case (suite, "remove-during-sign-in", test_remove_account_during_sign_in);
  add_case (suite, "stop-during-sign-out", test_stop_during_sign_out);
  add_case (suite, "stop-during-removal", test_stop_during_removal);

  env = keyhold_test_env_start (KEYHOLD_TEST_ENV_KEYRING | KEYHOLD_TEST_ENV_MOCK
                                | KEYHOLD_TEST_ENV_AGENT);
  mock_post ("/settings", "{\"device_interval\": 1}");
  runner = srunner_create (suite);
  /* One environment for all tests: they run in this process, in order. */
  srunner_set_fork_status (runner, CK_NOFORK);
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  /* The agent must have lived through it all and end cleanly (under
   * valgrind: without errors). */
  if (keyhold_test_env_stop_agent (env) != 0)
    failed++;
  keyhold_test_env_stop (env);
  return failed == 0 ? 0 : 1;
}
