/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <glib/gstdio.h>
#include <string.h>

#include "agent-client.h"

/* Rotation before expiry, suspend, outages and hostile providers, on the
 * real stack. Time is made testable without hooks in the agent:
 *  - the mock issues tokens that live seconds;
 *  - libfaketime moves the agent's wall clock (never its monotonic clock,
 *    as a real suspend does) through a file the test writes;
 *  - stand-ins for logind and NetworkManager (fake-system-services.py) run
 *    on the private bus, which the agent is told is its system bus. */

static KeyholdTestEnv *env;
static GSubprocess *system_services;
static char *faketime_file;

static void
mock_settings (const char *json)
{
  keyhold_test_mock_post (env, "/settings", json);
}

static void
mock_fault (const char *json)
{
  keyhold_test_mock_post (env, "/faults", json);
}

static void
system_services_command (const char *command)
{
  GOutputStream *input = g_subprocess_get_stdin_pipe (system_services);
  GDataInputStream *output = g_object_get_data (G_OBJECT (system_services), "output");
  g_autofree char *line = g_strconcat (command, "\n", NULL);
  g_autofree char *answer = NULL;

  ck_assert (g_output_stream_write_all (input, line, strlen (line), NULL, NULL, NULL));
  answer = g_data_input_stream_read_line (output, NULL, NULL, NULL);
  ck_assert_str_eq (answer, "ok");
}

static void
shift_agent_wall_clock (const char *offset)
{
  g_autoptr (GError) error = NULL;

  if (!g_file_set_contents (faketime_file, offset, -1, &error))
    g_error ("Could not move the agent's clock: %s", error->message);
}

static void
start_system_services (void)
{
  g_autofree char *script = g_build_filename (g_getenv ("KEYHOLD_SOURCE_DIR"), "tests",
                                              "integration", "fake-system-services.py", NULL);
  g_autofree char *address
      = g_strconcat ("DBUS_SYSTEM_BUS_ADDRESS=", keyhold_test_env_get_bus_address (env), NULL);
  const char *argv[] = { "env", address, g_getenv ("KEYHOLD_PYTHON"), script, NULL };
  g_autoptr (GError) error = NULL;
  GDataInputStream *output;
  g_autofree char *ready = NULL;

  system_services = keyhold_test_env_spawn (
      env, argv, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_assert_no_error (error);
  output = g_data_input_stream_new (g_subprocess_get_stdout_pipe (system_services));
  g_object_set_data_full (G_OBJECT (system_services), "output", output, g_object_unref);
  ready = g_data_input_stream_read_line (output, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (ready, ==, "ready");
}

static void
configure_agent_environment (void)
{
  const char *asan_options = g_getenv ("ASAN_OPTIONS");
  g_autofree char *asan
      = g_strdup_printf ("%s%sverify_asan_link_order=0", asan_options != NULL ? asan_options : "",
                         asan_options != NULL ? ":" : "");

  faketime_file = g_build_filename (keyhold_test_env_get_tmpdir (env), "faketime", NULL);
  shift_agent_wall_clock ("+0");
  keyhold_test_env_set_agent_env (env, "DBUS_SYSTEM_BUS_ADDRESS",
                                  keyhold_test_env_get_bus_address (env));
  keyhold_test_env_set_agent_env (env, "GIO_USE_NETWORK_MONITOR", "networkmanager");
  keyhold_test_env_set_agent_env (env, "LD_PRELOAD",
                                  "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1");
  keyhold_test_env_set_agent_env (env, "FAKETIME_TIMESTAMP_FILE", faketime_file);
  keyhold_test_env_set_agent_env (env, "FAKETIME_NO_CACHE", "1");
  keyhold_test_env_set_agent_env (env, "FAKETIME_DONT_FAKE_MONOTONIC", "1");
  /* libfaketime comes before the sanitizer runtime in the preload list. */
  keyhold_test_env_set_agent_env (env, "ASAN_OPTIONS", asan);
}

static void
sign_in (const char *name)
{
  keyhold_test_add_account (env, name);
  keyhold_test_login (env, name);
}

/* Removing the account stops its background refreshes, which would
 * otherwise take faults meant for the next test. */
static void
forget (const char *name)
{
  g_autofree char *cli
      = g_build_filename (g_getenv ("KEYHOLD_BUILD_DIR"), "examples", "keyhold", NULL);
  const char *argv[] = { cli, "account", "remove", name, NULL };

  keyhold_test_mock_post (env, "/faults/clear", NULL);
  keyhold_test_mock_post (env, "/online", NULL);
  ck_assert_int_eq (keyhold_test_env_run (env, argv, NULL, NULL), 0);
}

static char *
state_of (const char *name)
{
  return keyhold_test_account_state (env, name);
}

static gboolean
wait_for_state (const char *name, const char *expected, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * 1000;

  while (g_get_monotonic_time () < deadline)
    {
      g_autofree char *state = state_of (name);

      if (g_strcmp0 (state, expected) == 0)
        return TRUE;
      g_usleep (100 * 1000);
    }
  return FALSE;
}

static guint
refreshes (void)
{
  return keyhold_test_count_token_requests (env, "refresh_token");
}

static gboolean
wait_for_refreshes (guint count, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * 1000;

  while (g_get_monotonic_time () < deadline)
    {
      if (refreshes () >= count)
        return TRUE;
      g_usleep (100 * 1000);
    }
  return FALSE;
}

/* Case 1: with short-lived tokens, callers that ask several times a second
 * always get a token the provider accepts, and the agent refreshes ahead of
 * expiry on its own rather than making a caller wait. */
START_TEST (test_proactive_rotation_keeps_every_token_valid)
{
  guint before, calls = 0, slowest_ms = 0;
  gint64 end;

  mock_settings ("{\"token_lifetime\": 6, \"rotate_refresh\": true}");
  sign_in ("rotating");
  before = refreshes ();
  end = g_get_monotonic_time () + 24 * G_USEC_PER_SEC;
  while (g_get_monotonic_time () < end)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *token = NULL;
      gint64 expires_at = 0, started = g_get_monotonic_time ();
      guint took_ms;

      token = keyhold_test_get_token (env, "rotating", NULL, NULL, 1, &expires_at, &error);
      took_ms = (g_get_monotonic_time () - started) / 1000;
      slowest_ms = MAX (slowest_ms, took_ms);
      ck_assert_msg (token != NULL, "call %u: %s", calls, error ? error->message : "");
      ck_assert_msg (keyhold_test_mock_token_is_valid (env, token),
                     "call %u got a token the provider rejects", calls);
      ck_assert_int_ge (expires_at, g_get_real_time () / G_USEC_PER_SEC + 1);
      calls++;
      g_usleep (200 * 1000);
    }
  mock_settings ("{\"token_lifetime\": 3600}");
  g_print ("rotation: %u calls over 24 s, %u refreshes, slowest call %u ms\n", calls,
           refreshes () - before, slowest_ms);
  /* Refreshes at about 80 % of 6 s: four or five in 24 s. A caller-driven
   * refresh on top of each would double that. */
  ck_assert_uint_ge (refreshes () - before, 3);
  ck_assert_uint_le (refreshes () - before, 7);
  forget ("rotating");
}
END_TEST

/* Case 2: a two-hour suspend with a one-hour token. The monotonic clock
 * stopped, so no timer fired; the first call after resume must still not
 * get the stale token, and the agent re-checks on its own within seconds. */
START_TEST (test_suspend_never_serves_a_stale_token)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *before = NULL, *after = NULL;
  guint refreshes_before;

  mock_settings ("{\"token_lifetime\": 3600}");
  sign_in ("sleepy");
  sign_in ("sleepy-idle");
  before = keyhold_test_get_token (env, "sleepy", NULL, NULL, 0, NULL, &error);
  ck_assert_ptr_nonnull (before);

  /* Two hours pass on the wall clock, none on the monotonic clock. */
  system_services_command ("sleep");
  shift_agent_wall_clock ("+2h");
  mock_settings ("{\"clock_offset\": 7200}");

  /* The first call, even before the resume is announced, gets a fresh
   * token: expiry is checked on the wall clock. */
  after = keyhold_test_get_token (env, "sleepy", NULL, NULL, 0, NULL, &error);
  ck_assert_msg (after != NULL, "%s", error ? error->message : "");
  ck_assert_str_ne (after, before);
  ck_assert (keyhold_test_mock_token_is_valid (env, after));
  ck_assert (!keyhold_test_mock_token_is_valid (env, before));

  /* Resume: the account nobody asked about is re-checked by the agent. */
  refreshes_before = refreshes ();
  system_services_command ("resume");
  ck_assert_msg (wait_for_refreshes (refreshes_before + 1, 3000),
                 "no re-check within 3 s of resume");

  shift_agent_wall_clock ("+0");
  mock_settings ("{\"clock_offset\": 0}");
  /* Back in the present, the agent's tokens are from the future; refresh
   * them so that later tests start from a sane state. */
  system_services_command ("resume");
  forget ("sleepy");
  forget ("sleepy-idle");
}
END_TEST

/* Case 2b: any local user can emit logind's PrepareForSleep on the system
 * bus, or send it straight to the agent. Only the owner of
 * org.freedesktop.login1 is heard. The agent's wall clock has moved on by
 * two hours while its monotonic timers stood still, so a resume it
 * believed would start a refresh at once, and nothing else would. */
START_TEST (test_spoofed_resume_is_ignored)
{
  guint before;

  /* A re-check coalesced from the last test's resumes goes out first. */
  g_usleep (3 * G_USEC_PER_SEC);
  mock_settings ("{\"token_lifetime\": 3600}");
  sign_in ("spoofed");
  shift_agent_wall_clock ("+2h");
  mock_settings ("{\"clock_offset\": 7200}");

  before = refreshes ();
  for (int i = 0; i < 5; i++)
    system_services_command ("spoof-resume");
  g_usleep (2 * G_USEC_PER_SEC);
  ck_assert_msg (refreshes () == before, "%u refreshes after resumes from another connection",
                 refreshes () - before);

  /* logind itself is still heard. */
  system_services_command ("resume");
  ck_assert_msg (wait_for_refreshes (before + 1, 3000), "no re-check within 3 s of resume");

  shift_agent_wall_clock ("+0");
  mock_settings ("{\"clock_offset\": 0}");
  forget ("spoofed");
}
END_TEST

/* Case 2c: every re-check ends the backoff and may start a refresh, so a
 * burst of genuine events against a provider that is down gives a few
 * refreshes, not one per event. */
START_TEST (test_burst_of_resumes_is_rate_limited)
{
  guint start, during_burst;
  gint64 started;

  mock_settings ("{\"token_lifetime\": 4}");
  sign_in ("bursty");
  mock_settings ("{\"token_lifetime\": 3600}");
  mock_fault ("{\"target\": \"token\", \"kind\": \"status\", \"status\": 500, \"count\": -1}");
  ck_assert (wait_for_state ("bursty", "offline", 8000));

  start = refreshes ();
  started = g_get_monotonic_time ();
  for (int i = 0; i < 40; i++)
    {
      system_services_command ("resume");
      g_usleep (150 * 1000);
    }
  g_usleep (G_USEC_PER_SEC);
  during_burst = refreshes () - start;
  g_print ("burst: %u refreshes for 40 resumes over %" G_GINT64_FORMAT " ms\n", during_burst,
           (g_get_monotonic_time () - started) / 1000);
  /* At most one re-check per 2 s (four in the 7 s or so), and between
   * them backoff retries at least 1 s apart. */
  ck_assert_uint_le (during_burst, 12);
  forget ("bursty");
}
END_TEST

/* Case 3: 500s, then connection refused, then 429 with Retry-After. The
 * account is offline, never needs-login; requests back off; the cached
 * token is served until it expires, then Offline comes quickly; the agent
 * recovers by itself. */
START_TEST (test_outage_backs_off_and_recovers)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *token = NULL, *state = NULL;
  guint start, during_500, during_refused;
  gint64 started;

  mock_settings ("{\"token_lifetime\": 4}");
  sign_in ("outage");
  mock_settings ("{\"token_lifetime\": 3600}");
  mock_fault ("{\"target\": \"token\", \"kind\": \"status\", \"status\": 500, \"count\": -1}");
  start = refreshes ();
  ck_assert (wait_for_state ("outage", "offline", 8000));

  /* Many callers, few requests: callers during the backoff do not each
   * send one. */
  for (int i = 0; i < 20; i++)
    {
      g_autoptr (GError) call_error = NULL;
      g_autofree char *ignored = NULL;

      started = g_get_monotonic_time ();
      ignored = keyhold_test_get_token (env, "outage", NULL, NULL, 1, NULL, &call_error);
      ck_assert_int_lt (g_get_monotonic_time () - started, 5 * G_USEC_PER_SEC);
      if (ignored == NULL)
        ck_assert_str_eq (keyhold_test_error_name (call_error), "org.keyhold.Error.Offline");
      g_usleep (300 * 1000);
    }
  during_500 = refreshes () - start;
  ck_assert_uint_le (during_500, 5);

  keyhold_test_mock_post (env, "/faults/clear", NULL);
  keyhold_test_mock_post (env, "/offline", NULL);
  g_usleep (8 * G_USEC_PER_SEC);
  during_refused = refreshes () - start - during_500;
  state = state_of ("outage");
  /* A retry may be in flight; what matters is that no sign-in was lost. */
  ck_assert_msg (g_strcmp0 (state, "offline") == 0 || g_strcmp0 (state, "refreshing") == 0,
                 "state is %s", state);

  keyhold_test_mock_post (env, "/online", NULL);
  mock_fault ("{\"target\": \"token\", \"kind\": \"status\", \"status\": 429, \"retry_after\": 3}");
  g_print ("outage: %u requests during 6 s of 500s, %u during 8 s of refused connections\n",
           during_500, during_refused);

  /* The network coming back makes the agent try at once; the 429 asks for
   * three seconds' rest, which even the next network event respects; then
   * the agent recovers with no user action. */
  start = refreshes ();
  system_services_command ("network none");
  system_services_command ("network full");
  ck_assert (wait_for_refreshes (start + 1, 10000));
  started = g_get_monotonic_time ();
  system_services_command ("network none");
  system_services_command ("network full");
  ck_assert (wait_for_state ("outage", "signed-in", 30000));
  ck_assert_int_ge (g_get_monotonic_time () - started, 2 * G_USEC_PER_SEC);
  token = keyhold_test_get_token (env, "outage", NULL, NULL, 60, NULL, &error);
  ck_assert_msg (token != NULL, "%s", error ? error->message : "");
  ck_assert (keyhold_test_mock_token_is_valid (env, token));
  forget ("outage");
}
END_TEST

/* Case 4: the provider rotated the token but the answer was lost. The
 * agent resends the same refresh token at once; a provider with a rotation
 * grace window accepts it, and the user stays signed in. */
START_TEST (test_lost_answer_is_retried_with_the_same_token)
{
  g_autoptr (JsonNode) log = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *token = NULL, *state = NULL;
  JsonArray *entries;
  const char *last = NULL, *previous = NULL;

  mock_settings ("{\"token_lifetime\": 600, \"rotate_refresh\": true, \"rotation_grace\": 30}");
  sign_in ("lost-answer");
  mock_settings ("{\"token_lifetime\": 3600}");
  mock_fault (
      "{\"target\": \"token\", \"kind\": \"drop_before_response\", \"grant_type\": \"refresh_token\"}");
  token = keyhold_test_get_token (env, "lost-answer", NULL, NULL, 900, NULL, &error);

  log = keyhold_test_env_mock (env, "GET", "/log?target=token", NULL);
  entries = json_object_get_array_member (json_node_get_object (log), "entries");
  for (guint i = 0; i < json_array_get_length (entries); i++)
    {
      JsonObject *form
          = json_object_get_object_member (json_array_get_object_element (entries, i), "form");

      if (form == NULL
          || g_strcmp0 (json_object_get_string_member_with_default (form, "grant_type", ""),
                        "refresh_token")
                 != 0)
        continue;
      previous = last;
      last = json_object_get_string_member (form, "refresh_token");
    }
  ck_assert_ptr_nonnull (previous);
  ck_assert_str_eq (previous, last);
  state = state_of ("lost-answer");
  ck_assert_str_ne (state, "needs-login");
  g_clear_pointer (&token, g_free);
  token = keyhold_test_get_token (env, "lost-answer", NULL, NULL, 1, NULL, &error);
  ck_assert_msg (token != NULL, "%s", error ? error->message : "");
  ck_assert (keyhold_test_mock_token_is_valid (env, token));
  mock_settings ("{\"rotation_grace\": 0}");
  forget ("lost-answer");
}
END_TEST

static void
store_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

static gboolean
under_memory_checker (void)
{
  return g_getenv ("KEYHOLD_TEST_UNDER_VALGRIND") != NULL || g_getenv ("ASAN_OPTIONS") != NULL;
}

static guint64
agent_rss_kib (void)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", keyhold_test_env_get_agent_pid (env));
  g_autofree char *status = NULL;
  const char *line;

  ck_assert (g_file_get_contents (path, &status, NULL, NULL));
  line = strstr (status, "VmRSS:");
  ck_assert_ptr_nonnull (line);
  return g_ascii_strtoull (line + strlen ("VmRSS:"), NULL, 10);
}

/* Case 5: garbage JSON, an oversized body and a slowloris provider each
 * give a clear error; memory stays flat; another account keeps working
 * while one waits on the slow provider. */
START_TEST (test_hostile_provider_responses)
{
  guint64 rss_before, rss_after;
  g_autoptr (GError) error = NULL;
  g_autofree char *token = NULL, *last_error = NULL;

  mock_settings ("{\"token_lifetime\": 600}");
  sign_in ("hostile");
  sign_in ("bystander");

  rss_before = agent_rss_kib ();
  for (int i = 0; i < 10; i++)
    {
      g_autofree char *garbage = NULL, *huge = NULL;

      mock_fault (
          "{\"target\": \"token\", \"kind\": \"garbage\", \"grant_type\": \"refresh_token\"}");
      garbage = keyhold_test_get_token (env, "hostile", NULL, NULL, 900, NULL, &error);
      ck_assert_msg (garbage == NULL, "garbage JSON gave a token");
      ck_assert_str_eq (keyhold_test_error_name (error), "org.keyhold.Error.ProviderError");
      ck_assert_msg (strstr (error->message, "JSON") != NULL, "unclear error: %s", error->message);
      g_clear_error (&error);
      /* Coming online ends the backoff; wait for the re-check's refresh
       * so that the next fault meets the next call. */
      system_services_command ("network none");
      system_services_command ("network full");
      ck_assert (wait_for_state ("hostile", "signed-in", 10000));

      mock_fault (
          "{\"target\": \"token\", \"kind\": \"oversized\", \"bytes\": 20000000, \"grant_type\": \"refresh_token\"}");
      huge = keyhold_test_get_token (env, "hostile", NULL, NULL, 900, NULL, &error);
      ck_assert_ptr_null (huge);
      ck_assert_str_eq (keyhold_test_error_name (error), "org.keyhold.Error.ProviderError");
      ck_assert_msg (strstr (error->message, "exceeds") != NULL, "unclear error: %s",
                     error->message);
      g_clear_error (&error);
      system_services_command ("network none");
      system_services_command ("network full");
      ck_assert (wait_for_state ("hostile", "signed-in", 10000));
    }
  rss_after = agent_rss_kib ();
  g_print ("hostile: agent RSS %" G_GUINT64_FORMAT " KiB before, %" G_GUINT64_FORMAT
           " KiB after 20 hostile answers\n",
           rss_before, rss_after);
  /* valgrind and ASan hold on to freed blocks (a quarantine of 20 and 16
   * MB) to catch use after free; their own leak checks cover the rest. */
  ck_assert_uint_lt (rss_after, rss_before + (under_memory_checker () ? 40 : 8) * 1024);

  /* A provider that dribbles its answer: the caller gets an answer within
   * the call's bound, and the other account is served meanwhile. */
  mock_settings ("{\"token_lifetime\": 3600}");
  mock_fault (
      "{\"target\": \"token\", \"kind\": \"slowloris\", \"seconds\": 40, \"interval\": 1, \"grant_type\": \"refresh_token\"}");
  {
    g_autofree char *path = keyhold_test_account_path ("hostile");
    g_autoptr (GAsyncResult) slow_result = NULL;
    g_autoptr (GVariant) reply = NULL;
    g_autoptr (GError) slow_error = NULL;
    gint64 started = g_get_monotonic_time ();

    g_dbus_connection_call (
        keyhold_test_env_get_bus (env), "org.keyhold.Agent", path, "org.keyhold.Account1",
        "GetAccessToken", g_variant_new ("(^as&su)", (const char *const[]) { NULL }, "", 900),
        G_VARIANT_TYPE ("(sx)"), G_DBUS_CALL_FLAGS_NONE, 60000, NULL, store_result, &slow_result);
    g_usleep (500 * 1000);
    token = keyhold_test_get_token (env, "bystander", NULL, NULL, 900, NULL, &error);
    ck_assert_msg (token != NULL, "the other account stalled: %s", error ? error->message : "");
    ck_assert_int_lt (g_get_monotonic_time () - started, 10 * G_USEC_PER_SEC);

    while (slow_result == NULL)
      g_main_context_iteration (NULL, TRUE);
    reply
        = g_dbus_connection_call_finish (keyhold_test_env_get_bus (env), slow_result, &slow_error);
    ck_assert_ptr_null (reply);
    ck_assert_str_eq (keyhold_test_error_name (slow_error), "org.keyhold.Error.TimedOut");
    ck_assert_int_lt (g_get_monotonic_time () - started, 25 * G_USEC_PER_SEC);
  }
  last_error = state_of ("hostile");
  ck_assert_str_ne (last_error, "needs-login");
  forget ("hostile");
  forget ("bystander");
}
END_TEST

/* Case 6: the network monitor says offline, then online: the agent shows
 * the account offline, then re-checks at once. A captive portal is not
 * online. */
START_TEST (test_network_monitor_offline_then_online)
{
  guint before;

  mock_settings ("{\"token_lifetime\": 600}");
  sign_in ("roaming");
  system_services_command ("network none");
  ck_assert (wait_for_state ("roaming", "offline", 3000));

  before = refreshes ();
  system_services_command ("network portal");
  g_usleep (1500 * 1000);
  ck_assert_uint_eq (refreshes (), before);

  system_services_command ("network full");
  ck_assert_msg (wait_for_refreshes (before + 1, 2000), "no re-check within 2 s of coming online");
  ck_assert (wait_for_state ("roaming", "signed-in", 5000));
  forget ("roaming");
}
END_TEST

int
main (void)
{
  Suite *suite = suite_create ("faults");
  TCase *tcase = tcase_create ("faults");
  SRunner *runner;
  int failed;

  tcase_set_timeout (tcase, 300);
  tcase_add_test (tcase, test_proactive_rotation_keeps_every_token_valid);
  tcase_add_test (tcase, test_suspend_never_serves_a_stale_token);
  tcase_add_test (tcase, test_spoofed_resume_is_ignored);
  tcase_add_test (tcase, test_burst_of_resumes_is_rate_limited);
  tcase_add_test (tcase, test_outage_backs_off_and_recovers);
  tcase_add_test (tcase, test_lost_answer_is_retried_with_the_same_token);
  tcase_add_test (tcase, test_hostile_provider_responses);
  tcase_add_test (tcase, test_network_monitor_offline_then_online);
  suite_add_tcase (suite, tcase);

  env = keyhold_test_env_start (KEYHOLD_TEST_ENV_KEYRING | KEYHOLD_TEST_ENV_MOCK);
  start_system_services ();
  configure_agent_environment ();
  keyhold_test_env_start_agent (env, NULL);
  keyhold_test_mock_post (env, "/settings", "{\"device_interval\": 1}");

  runner = srunner_create (suite);
  srunner_set_fork_status (runner, CK_NOFORK);
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  if (keyhold_test_env_stop_agent (env) != 0)
    failed++;
  g_subprocess_force_exit (system_services);
  g_clear_object (&system_services);
  keyhold_test_env_stop (env);
  g_free (faketime_file);
  return failed == 0 ? 0 : 1;
}
