/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <string.h>

#include "agent-client.h"

/* What the agent makes of a refresh's answer, on the real stack (issue 11,
 * points 3 to 6): ID-token trouble that is not the end of a sign-in,
 * refusals without an OAuth error body, short-lived tokens and
 * expires_in 0. */

#define AGENT_NAME "org.keyhold.Agent"
#define AGENT_PATH "/org/keyhold/Agent"
#define OUTBOX_INTERFACE "org.keyhold.Outbox1"
#define CALL_TIMEOUT_MS 120000

static KeyholdTestEnv *env;

static gboolean
under_valgrind (void)
{
  return g_strcmp0 (g_getenv ("KEYHOLD_TEST_UNDER_VALGRIND"), "1") == 0;
}

static guint
patience_s (guint seconds)
{
  return under_valgrind () ? seconds * 10 : seconds;
}

static void
mock_post (const char *path, const char *json)
{
  keyhold_test_mock_post (env, path, json);
}

static void
sign_in (const char *name)
{
  keyhold_test_add_account (env, name);
  keyhold_test_login (env, name);
}

/* The mock back to its defaults, even after a test that failed half-way. */
static void
reset_mock (void)
{
  mock_post ("/faults/clear", NULL);
  mock_post ("/settings", "{\"token_lifetime\": 3600, \"clock_offset\": 0, "
                          "\"bad_id_token\": null}");
}

/* Removing the account stops its background refreshes, which would
 * otherwise take faults meant for the next test. */
static void
forget (const char *name)
{
  reset_mock ();
  ck_assert_int_eq (keyhold_test_run_cli (env, NULL, NULL, "account", "remove", name, NULL), 0);
}

static guint
refreshes (void)
{
  return keyhold_test_count_token_requests (env, "refresh_token");
}

/* Scopes other than the account's own: a key with no cached token, so
 * the call makes the agent refresh now. The mock adds an ID token, since
 * "openid" is among them. */
static const char *const fresh_scopes[] = { "openid", NULL };

static char *
refresh_now (const char *name, GError **error)
{
  return keyhold_test_get_token (env, name, fresh_scopes, NULL, 0, NULL, error);
}

/* The state of a refresh token the mock issued: active, rotated, revoked
 * or unknown. */
static char *
refresh_token_state (const char *refresh_token)
{
  g_autofree char *body = g_strdup_printf ("{\"refresh_token\": \"%s\"}", refresh_token);
  g_autoptr (JsonNode) answer = keyhold_test_env_mock (env, "POST", "/check-token", body);

  return g_strdup (json_object_get_string_member (json_node_get_object (answer), "state"));
}

static void
assert_keyring_holds_active_token (const char *name)
{
  g_autofree char *in_keyring = keyhold_test_keyring_refresh_token (env, name);
  g_autofree char *state = NULL;

  ck_assert_msg (in_keyring != NULL, "the keyring lost the refresh token");
  state = refresh_token_state (in_keyring);
  ck_assert_str_eq (state, "active");
}

/* Calls until a token comes (the agent backs off after a transient
 * failure, and callers meanwhile get Offline); fails after @timeout_s. */
static char *
token_within (const char *name, guint timeout_s)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) patience_s (timeout_s) * G_USEC_PER_SEC;

  for (;;)
    {
      g_autoptr (GError) error = NULL;
      char *token = refresh_now (name, &error);

      if (token != NULL)
        return token;
      ck_assert_msg (g_get_monotonic_time () < deadline, "no token within %u s: %s", timeout_s,
                     error->message);
      ck_assert_str_ne (keyhold_test_error_name (error), "org.keyhold.Error.NeedsLogin");
      g_usleep (500 * 1000);
    }
}

/* ---- point 3: ID-token trouble on refresh --------------------------------------- */

/* The provider rotates its signing key, and its key set answers 503 just
 * then. The refresh token it issued is kept, the account stays signed in,
 * the access token of that answer is not used, and the next try works. */
START_TEST (test_key_set_outage_is_transient)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *token = NULL, *state = NULL, *before = NULL, *after = NULL;

  sign_in ("keys");
  before = keyhold_test_keyring_refresh_token (env, "keys");
  mock_post ("/rotate-key", "{}");
  mock_post ("/faults", "{\"target\": \"jwks\", \"kind\": \"status\", \"status\": 503, "
                        "\"count\": -1}");

  token = refresh_now ("keys", &error);
  ck_assert_ptr_null (token);
  ck_assert_str_eq (keyhold_test_error_name (error), "org.keyhold.Error.Offline");
  state = keyhold_test_account_state (env, "keys");
  ck_assert_str_eq (state, "offline");
  /* The refresh rotated the token; the new one is the one kept. */
  after = keyhold_test_keyring_refresh_token (env, "keys");
  ck_assert_ptr_nonnull (after);
  ck_assert_str_ne (after, before);
  assert_keyring_holds_active_token ("keys");

  mock_post ("/faults/clear", NULL);
  token = token_within ("keys", 20);
  ck_assert (keyhold_test_mock_token_is_valid (env, token));
  g_free (state);
  state = keyhold_test_account_state (env, "keys");
  ck_assert_str_eq (state, "signed-in");
  assert_keyring_holds_active_token ("keys");
  forget ("keys");
}
END_TEST

/* The provider's clock is five minutes ahead: its ID tokens are issued "in
 * the future", within the documented skew. */
START_TEST (test_provider_clock_ahead_within_skew)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *token = NULL, *state = NULL;

  sign_in ("ahead");
  mock_post ("/settings", "{\"clock_offset\": 300}");
  token = refresh_now ("ahead", &error);
  ck_assert_msg (token != NULL, "%s", error ? error->message : "");
  state = keyhold_test_account_state (env, "ahead");
  ck_assert_str_eq (state, "signed-in");
  assert_keyring_holds_active_token ("ahead");
  forget ("ahead");
}
END_TEST

/* A genuine change of subject still ends the sign-in. */
START_TEST (test_other_subject_ends_sign_in)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *token = NULL, *state = NULL, *in_keyring = NULL;

  sign_in ("swapped");
  mock_post ("/settings", "{\"bad_id_token\": \"wrong_sub\"}");
  token = refresh_now ("swapped", &error);
  ck_assert_ptr_null (token);
  ck_assert_str_eq (keyhold_test_error_name (error), "org.keyhold.Error.NeedsLogin");
  state = keyhold_test_account_state (env, "swapped");
  ck_assert_str_eq (state, "needs-login");
  in_keyring = keyhold_test_keyring_refresh_token (env, "swapped");
  ck_assert_ptr_null (in_keyring);
  forget ("swapped");
}
END_TEST

/* ---- point 4: refusals without an OAuth error body ------------------------------- */

static void
fail_refreshes_with (guint status)
{
  g_autofree char *fault = g_strdup_printf (
      "{\"target\": \"token\", \"kind\": \"status\", \"status\": %u, \"body\": \"\", "
      "\"content_type\": \"text/plain\", \"grant_type\": \"refresh_token\", \"count\": -1}",
      status);

  mock_post ("/faults", fault);
}

/* Glewlwyd answers a revoked or reused refresh token with a bare 400; 401
 * and 403 without a body mean as much. One confirming retry, then the
 * sign-in is over, as with invalid_grant. */
START_TEST (test_bare_refusal_ends_sign_in)
{
  static const guint statuses[] = { 400, 401, 403 };

  for (guint i = 0; i < G_N_ELEMENTS (statuses); i++)
    {
      g_autofree char *name = g_strdup_printf ("bare-%u", statuses[i]);
      g_autoptr (GError) error = NULL;
      g_autofree char *token = NULL, *state = NULL, *in_keyring = NULL;
      guint before;

      sign_in (name);
      fail_refreshes_with (statuses[i]);
      before = refreshes ();
      token = refresh_now (name, &error);
      ck_assert_ptr_null (token);
      ck_assert_msg (g_strcmp0 (keyhold_test_error_name (error), "org.keyhold.Error.NeedsLogin")
                         == 0,
                     "HTTP %u: %s", statuses[i], error->message);
      state = keyhold_test_account_state (env, name);
      ck_assert_str_eq (state, "needs-login");
      ck_assert_uint_eq (refreshes () - before, 2);
      in_keyring = keyhold_test_keyring_refresh_token (env, name);
      ck_assert_ptr_null (in_keyring);
      forget (name);
    }
}
END_TEST

/* 408 and 425 say "try later": the account stays signed in. */
START_TEST (test_408_and_425_stay_transient)
{
  static const guint statuses[] = { 408, 425 };

  for (guint i = 0; i < G_N_ELEMENTS (statuses); i++)
    {
      g_autofree char *name = g_strdup_printf ("later-%u", statuses[i]);
      g_autoptr (GError) error = NULL;
      g_autofree char *token = NULL, *state = NULL;

      sign_in (name);
      fail_refreshes_with (statuses[i]);
      token = refresh_now (name, &error);
      ck_assert_ptr_null (token);
      ck_assert_msg (g_strcmp0 (keyhold_test_error_name (error), "org.keyhold.Error.Offline") == 0,
                     "HTTP %u: %s", statuses[i], error->message);
      state = keyhold_test_account_state (env, name);
      ck_assert_str_eq (state, "offline");
      assert_keyring_holds_active_token (name);
      forget (name);
    }
}
END_TEST

/* ---- point 5: short-lived tokens -------------------------------------------------- */

static GVariant *
outbox_call (const char *method, GVariant *parameters, const char *reply_type)
{
  g_autoptr (GError) error = NULL;
  GVariant *reply = g_dbus_connection_call_sync (
      keyhold_test_env_get_bus (env), AGENT_NAME, AGENT_PATH, OUTBOX_INTERFACE, method, parameters,
      G_VARIANT_TYPE (reply_type), G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, &error);

  ck_assert_msg (reply != NULL, "%s: %s", method, error ? error->message : "");
  return reply;
}

static char *
enqueue (const char *account, const char *path)
{
  g_autofree char *url = g_strconcat (keyhold_test_env_get_issuer (env), path, NULL);
  GVariantBuilder request;
  g_autoptr (GVariant) reply = NULL;
  char *id = NULL;

  g_variant_builder_init (&request, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&request, "{sv}", "method", g_variant_new_string ("POST"));
  g_variant_builder_add (&request, "{sv}", "url", g_variant_new_string (url));
  reply = outbox_call ("Enqueue", g_variant_new ("(ssa{sv})", account, "q", &request), "(s)");
  g_variant_get (reply, "(s)", &id);
  return id;
}

static char *
item_field (const char *id, const char *field)
{
  g_autoptr (GVariant) reply = outbox_call ("Get", g_variant_new ("(s)", id), "(a{sv})");
  g_autoptr (GVariant) item = g_variant_get_child_value (reply, 0);
  const char *value = NULL;

  ck_assert (g_variant_lookup (item, field, "&s", &value));
  return g_strdup (value);
}

static void
wait_for_item_state (const char *id, const char *expected, guint timeout_s)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) patience_s (timeout_s) * G_USEC_PER_SEC;

  for (;;)
    {
      g_autofree char *state = item_field (id, "state");
      g_autofree char *reason = NULL;

      if (g_strcmp0 (state, expected) == 0)
        return;
      reason = item_field (id, "reason");
      ck_assert_msg (g_get_monotonic_time () < deadline, "item %s is %s, not %s (reason: %s)", id,
                     state, expected, reason);
      g_usleep (100 * 1000);
    }
}

/* A provider whose tokens live 20 s: the default min_validity is half
 * that, so `keyhold token` works and the outbox drains; an explicit
 * min_validity beyond the lifetime is still an error. */
START_TEST (test_twenty_second_tokens)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *token = NULL;
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);

  mock_post ("/settings", "{\"token_lifetime\": 20}");
  sign_in ("short");
  ck_assert_msg (keyhold_test_run_cli (env, &out, &err, "token", "short", NULL) == 0,
                 "keyhold token: %s", err);
  ck_assert (strstr (out, "at-") != NULL);

  for (guint i = 0; i < 3; i++)
    g_ptr_array_add (ids, enqueue ("short", "/api/notes"));
  for (guint i = 0; i < ids->len; i++)
    wait_for_item_state (ids->pdata[i], "done", 30);

  token = keyhold_test_get_token (env, "short", NULL, NULL, 30, NULL, &error);
  ck_assert_ptr_null (token);
  ck_assert_str_eq (keyhold_test_error_name (error), "org.keyhold.Error.ProviderError");
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  ck_assert_int_ne (
      keyhold_test_run_cli (env, &out, &err, "token", "short", "--min-validity", "30", NULL), 0);
  forget ("short");
}
END_TEST

/* `keyhold queue show ID` as its owner, the CLI, sees it. */
static char *
show_item (const char *id)
{
  g_autofree char *out = NULL, *err = NULL;

  ck_assert_msg (keyhold_test_run_cli (env, &out, &err, "queue", "show", id, NULL) == 0,
                 "queue show: %s", err);
  return g_steal_pointer (&out);
}

static char *
wait_for_shown (const char *id, const char *text, guint timeout_s)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) patience_s (timeout_s) * G_USEC_PER_SEC;

  for (;;)
    {
      char *shown = show_item (id);

      if (strstr (shown, text) != NULL)
        return shown;
      ck_assert_msg (g_get_monotonic_time () < deadline, "no \"%s\" in time:\n%s", text, shown);
      g_free (shown);
      g_usleep (200 * 1000);
    }
}

/* An item that waits for a token says why, in `keyhold queue show` (the
 * reason of Get and List, as its owner reads them). */
START_TEST (test_token_problem_is_shown_on_the_item)
{
  g_autofree char *out = NULL, *shown = NULL, *url = NULL;

  mock_post ("/settings", "{\"token_lifetime\": 4}");
  sign_in ("blocked");
  mock_post ("/faults", "{\"target\": \"token\", \"kind\": \"status\", \"status\": 503, "
                        "\"count\": -1}");
  /* The token expires; its refresh fails. */
  g_usleep (4500 * 1000);
  url = g_strconcat (keyhold_test_env_get_issuer (env), "/api/notes", NULL);
  ck_assert_int_eq (
      keyhold_test_run_cli (env, &out, NULL, "queue", "add", "blocked", "POST", url, NULL), 0);
  g_strstrip (out);
  shown = wait_for_shown (out, "Reason:", 20);
  ck_assert_msg (strstr (shown, "State:           pending") != NULL, "%s", shown);
  ck_assert_msg (strstr (shown, "access token") != NULL, "%s", shown);
  g_free (shown);
  mock_post ("/faults/clear", NULL);
  shown = wait_for_shown (out, "State:           done", 60);
  forget ("blocked");
}
END_TEST

/* ---- point 6: expires_in 0 and 2 -------------------------------------------------- */

/* A client asks for tokens in a loop for 6 s while the provider answers
 * expires_in 0 (then 2). Each call that makes the agent fetch gets that
 * token, but the agent neither caches it nor renews it on its own: the
 * requests stay few, and none follow once the client stops. */
START_TEST (test_expires_in_zero_is_no_storm)
{
  static const char *const lifetimes[] = { "0", "2" };

  for (guint i = 0; i < G_N_ELEMENTS (lifetimes); i++)
    {
      g_autofree char *name = g_strdup_printf ("instant-%s", lifetimes[i]);
      g_autofree char *settings = g_strdup_printf ("{\"token_lifetime\": %s}", lifetimes[i]);
      guint start, during, calls = 0, tokens = 0;
      gint64 end;

      mock_post ("/settings", settings);
      sign_in (name);
      start = refreshes ();
      end = g_get_monotonic_time () + 6 * G_USEC_PER_SEC;
      while (g_get_monotonic_time () < end)
        {
          g_autoptr (GError) error = NULL;
          g_autofree char *token = keyhold_test_get_token (env, name, NULL, NULL, 0, NULL, &error);

          calls++;
          if (token != NULL)
            tokens++;
          g_usleep (50 * 1000);
        }
      during = refreshes () - start;
      g_print ("expires_in %s: %u calls, %u tokens, %u refreshes in 6 s\n", lifetimes[i], calls,
               tokens, during);
      ck_assert_uint_ge (tokens, 1);
      /* At most one refresh per 2 s floor, plus the one at the start. */
      ck_assert_uint_le (during, 5);

      /* Nobody asks: nothing is sent. */
      start = refreshes ();
      g_usleep (3 * G_USEC_PER_SEC);
      ck_assert_uint_le (refreshes () - start, 1);
      forget (name);
    }
}
END_TEST

int
main (void)
{
  SRunner *runner;
  Suite *suite = suite_create ("refresh-results");
  TCase *tcase = tcase_create ("refresh-results");
  int failed;

  tcase_set_timeout (tcase, under_valgrind () ? 3000 : 300);
  tcase_add_checked_fixture (tcase, reset_mock, NULL);
  tcase_add_test (tcase, test_key_set_outage_is_transient);
  tcase_add_test (tcase, test_provider_clock_ahead_within_skew);
  tcase_add_test (tcase, test_other_subject_ends_sign_in);
  tcase_add_test (tcase, test_bare_refusal_ends_sign_in);
  tcase_add_test (tcase, test_408_and_425_stay_transient);
  tcase_add_test (tcase, test_twenty_second_tokens);
  tcase_add_test (tcase, test_token_problem_is_shown_on_the_item);
  tcase_add_test (tcase, test_expires_in_zero_is_no_storm);
  suite_add_tcase (suite, tcase);

  env = keyhold_test_env_start (KEYHOLD_TEST_ENV_KEYRING | KEYHOLD_TEST_ENV_MOCK
                                | KEYHOLD_TEST_ENV_AGENT);
  mock_post ("/settings", "{\"device_interval\": 1}");
  runner = srunner_create (suite);
  /* One environment for all tests: they run in this process, in order. */
  srunner_set_fork_status (runner, CK_NOFORK);
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  if (keyhold_test_env_stop_agent (env) != 0)
    failed++;
  keyhold_test_env_stop (env);
  return failed == 0 ? 0 : 1;
}
