/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include "keyhold-contract.h"
#include <string.h>

#include "oidc/browser-sign-in.h"
#include "oidc/device-sign-in.h"
#include "harness.h"
#include "oidc/oauth.h"
#include "oidc/provider.h"

/* The OAuth client modules against the real mock provider over HTTP:
 * discovery, both sign-in flows, refresh, revocation. The test plays the
 * user (approving device codes through the mock's control port) and the
 * browser (following the authorization redirect to the loopback listener).
 * All tests share one environment; each starts from a reset mock. */

#define CLIENT_ID "keyhold-test-client"

static KeyholdTestEnv *env;
static KeyholdHttp *http;
static char *token_endpoint;

/* libcurl silently sends a request again when a reused keep-alive
 * connection dies before any answer. A new client has no connection to
 * reuse, so a connection dropped by the mock reaches the module under
 * test. */
static void
use_new_http_client (void)
{
  keyhold_http_free (http);
  http = keyhold_http_new ();
}

/* ---- the async API, run to completion ---- */

static void
on_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **slot = user_data;

  *slot = g_object_ref (result);
}

static void
wait_for (GAsyncResult **slot)
{
  while (*slot == NULL)
    g_main_context_iteration (NULL, TRUE);
}

/* ---- the mock ---- */

static JsonNode *
mock (const char *method, const char *path, const char *json)
{
  return keyhold_test_env_mock (env, method, path, json);
}

static void
mock_post (const char *path, const char *json)
{
  g_autoptr (JsonNode) reply = mock ("POST", path, json);
}

static void
reset_mock (void)
{
  mock_post ("/reset", NULL);
  mock_post ("/settings", "{\"device_interval\": 1}");
}

/* The /log entries of @target, oldest first. */
static JsonArray *
mock_log (const char *target)
{
  g_autofree char *path = g_strdup_printf ("/log?target=%s", target);
  g_autoptr (JsonNode) reply = mock ("GET", path, NULL);

  return json_array_ref (json_object_get_array_member (json_node_get_object (reply), "entries"));
}

static const char *
log_form_value (JsonArray *entries, guint index, const char *name)
{
  JsonObject *entry = json_array_get_object_element (entries, index);
  JsonObject *form = json_object_get_object_member (entry, "form");

  return form != NULL && json_object_has_member (form, name)
             ? json_object_get_string_member (form, name)
             : NULL;
}

static guint
count_answers_containing (JsonArray *entries, const char *text)
{
  guint count = 0;

  for (guint i = 0; i < json_array_get_length (entries); i++)
    {
      JsonObject *entry = json_array_get_object_element (entries, i);
      const char *response = json_object_get_string_member_with_default (entry, "response", "");

      if (response != NULL && strstr (response, text) != NULL)
        count++;
    }
  return count;
}

/* "active", "rotated", "revoked" or "unknown". */
static char *
mock_refresh_token_state (KeyholdSecret *refresh_token)
{
  g_autofree char *body
      = g_strdup_printf ("{\"refresh_token\": \"%s\"}", keyhold_secret_get (refresh_token));
  g_autoptr (JsonNode) reply = mock ("POST", "/check-token", body);

  return g_strdup (json_object_get_string_member (json_node_get_object (reply), "state"));
}

/* ---- discovery ---- */

static KeyholdProviderMetadata *
fetch_metadata_from (const char *issuer, char **out_document, GError **error)
{
  GAsyncResult *result = NULL;
  KeyholdProviderMetadata *metadata;

  keyhold_provider_fetch_async (http, issuer, NULL, on_done, &result);
  wait_for (&result);
  metadata = keyhold_provider_fetch_finish (result, out_document, error);
  g_object_unref (result);
  return metadata;
}

static KeyholdProviderMetadata *
fetch_metadata (void)
{
  g_autoptr (GError) error = NULL;
  KeyholdProviderMetadata *metadata
      = fetch_metadata_from (keyhold_test_env_get_issuer (env), NULL, &error);

  ck_assert_msg (metadata != NULL, "discovery failed: %s", error ? error->message : "");
  return metadata;
}

START_TEST (test_discovery)
{
  const char *issuer = keyhold_test_env_get_issuer (env);
  g_autoptr (KeyholdProviderMetadata) metadata = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *document = NULL;
  g_autofree char *jwks = NULL;
  g_autofree char *expected_token_endpoint = g_strconcat (issuer, "/token", NULL);
  GAsyncResult *result = NULL;

  reset_mock ();
  metadata = fetch_metadata_from (issuer, &document, &error);
  ck_assert_msg (metadata != NULL, "%s", error ? error->message : "");
  ck_assert_str_eq (metadata->issuer, issuer);
  ck_assert_str_eq (metadata->token_endpoint, expected_token_endpoint);
  ck_assert_ptr_nonnull (metadata->device_authorization_endpoint);
  ck_assert_ptr_nonnull (metadata->revocation_endpoint);
  ck_assert (metadata->authorization_response_iss_parameter_supported);
  ck_assert (keyhold_provider_metadata_allows_pkce_s256 (metadata));

  /* The document handed back for the cache parses to the same metadata. */
  {
    g_autoptr (KeyholdProviderMetadata) cached
        = keyhold_provider_metadata_parse (document, strlen (document), issuer, &error);

    ck_assert_ptr_nonnull (cached);
    ck_assert_str_eq (cached->jwks_uri, metadata->jwks_uri);
  }

  keyhold_provider_fetch_jwks_async (http, metadata->jwks_uri, NULL, on_done, &result);
  wait_for (&result);
  jwks = keyhold_provider_fetch_jwks_finish (result, &error);
  g_object_unref (result);
  ck_assert_msg (jwks != NULL, "%s", error ? error->message : "");
  ck_assert_ptr_nonnull (strstr (jwks, "\"keys\""));
}
END_TEST

START_TEST (test_discovery_rejects_other_issuer)
{
  g_autofree char *with_slash = g_strconcat (keyhold_test_env_get_issuer (env), "/", NULL);
  g_autoptr (KeyholdProviderMetadata) metadata = NULL;
  g_autoptr (GError) error = NULL;

  reset_mock ();
  mock_post ("/settings",
             "{\"discovery_overrides\": {\"issuer\": \"https://wrong-issuer.example\"}}");
  metadata = fetch_metadata_from (keyhold_test_env_get_issuer (env), NULL, &error);
  ck_assert_ptr_null (metadata);
  ck_assert_msg (
      g_error_matches (error, KEYHOLD_PROVIDER_ERROR, KEYHOLD_PROVIDER_ERROR_ISSUER_MISMATCH), "%s",
      error->message);
  g_clear_error (&error);

  /* A configured issuer differing only by a trailing slash is another
   * issuer (RFC 8414 §3.3: identical, not equivalent). */
  reset_mock ();
  metadata = fetch_metadata_from (with_slash, NULL, &error);
  ck_assert_ptr_null (metadata);
  ck_assert (
      g_error_matches (error, KEYHOLD_PROVIDER_ERROR, KEYHOLD_PROVIDER_ERROR_ISSUER_MISMATCH));
}
END_TEST

START_TEST (test_discovery_transport_errors_pass_through)
{
  g_autoptr (KeyholdProviderMetadata) metadata = NULL;
  g_autoptr (GError) error = NULL;

  reset_mock ();
  use_new_http_client ();
  mock_post ("/faults", "{\"target\": \"discovery\", \"kind\": \"drop_immediately\"}");
  metadata = fetch_metadata_from (keyhold_test_env_get_issuer (env), NULL, &error);
  ck_assert_ptr_null (metadata);
  ck_assert_msg (error->domain == KEYHOLD_HTTP_ERROR, "%s", error->message);
  g_clear_error (&error);

  mock_post ("/faults", "{\"target\": \"discovery\", \"kind\": \"status\", \"status\": 404}");
  metadata = fetch_metadata_from (keyhold_test_env_get_issuer (env), NULL, &error);
  ck_assert_ptr_null (metadata);
  ck_assert (g_error_matches (error, KEYHOLD_PROVIDER_ERROR, KEYHOLD_PROVIDER_ERROR_HTTP_STATUS));
}
END_TEST

/* ---- device flow ---- */

typedef struct
{
  guint calls;
  char *user_code;
  char *verification_uri;
  guint expires_in;
  /* What the test does as the user once the code is shown. */
  const char *decision_path;
} DeviceProgress;

static void
on_device_progress (const KeyholdDeviceAuthorization *authorization, gpointer user_data)
{
  DeviceProgress *progress = user_data;

  progress->calls++;
  progress->user_code = g_strdup (authorization->user_code);
  progress->verification_uri = g_strdup (authorization->verification_uri);
  progress->expires_in = authorization->expires_in;
  if (progress->decision_path != NULL)
    {
      g_autofree char *body = g_strdup_printf ("{\"user_code\": \"%s\"}", authorization->user_code);

      mock_post (progress->decision_path, body);
    }
}

static KeyholdTokenResponse *
run_device_sign_in (DeviceProgress *progress, GError **error)
{
  g_autoptr (KeyholdProviderMetadata) metadata = fetch_metadata ();
  GAsyncResult *result = NULL;
  KeyholdTokenResponse *response;

  keyhold_device_sign_in_async (http, metadata, CLIENT_ID, "openid offline_access",
                                on_device_progress, progress, NULL, on_done, &result);
  wait_for (&result);
  response = keyhold_device_sign_in_finish (result, error);
  g_object_unref (result);
  return response;
}

static void
device_progress_clear (DeviceProgress *progress)
{
  g_free (progress->user_code);
  g_free (progress->verification_uri);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (DeviceProgress, device_progress_clear)

/* A signed-in grant to refresh and revoke. */
static KeyholdTokenResponse *
sign_in_with_device (void)
{
  g_auto (DeviceProgress) progress = { 0 };
  g_autoptr (GError) error = NULL;
  KeyholdTokenResponse *response = run_device_sign_in (&progress, &error);

  ck_assert_msg (response != NULL, "device sign-in failed: %s", error ? error->message : "");
  ck_assert_ptr_nonnull (response->refresh_token);
  return response;
}

START_TEST (test_device_flow_waits_for_approval)
{
  g_auto (DeviceProgress) progress = { 0 };
  g_autoptr (KeyholdTokenResponse) response = NULL;
  g_autoptr (JsonArray) polls = NULL;
  g_autoptr (GError) error = NULL;
  gint64 before = g_get_real_time ();

  reset_mock ();
  mock_post ("/settings", "{\"approve_after_polls\": 1}");
  response = run_device_sign_in (&progress, &error);

  ck_assert_msg (response != NULL, "%s", error ? error->message : "");
  ck_assert_uint_eq (progress.calls, 1);
  ck_assert_ptr_nonnull (progress.user_code);
  ck_assert (g_str_has_prefix (progress.verification_uri, keyhold_test_env_get_issuer (env)));
  ck_assert_uint_eq (progress.expires_in, 600);
  ck_assert_ptr_nonnull (response->access_token);
  ck_assert_ptr_nonnull (response->refresh_token);
  ck_assert_ptr_nonnull (response->id_token);
  ck_assert (!response->expires_in_missing);
  ck_assert_int_ge (response->expires_at_us, before + G_GINT64_CONSTANT (3590) * G_USEC_PER_SEC);

  /* One pending answer, then the tokens; never a slow_down. */
  polls = mock_log ("token");
  ck_assert_uint_eq (json_array_get_length (polls), 2);
  ck_assert_str_eq (log_form_value (polls, 0, "grant_type"),
                    "urn:ietf:params:oauth:grant-type:device_code");
  ck_assert_str_eq (log_form_value (polls, 0, "client_id"), CLIENT_ID);
  ck_assert_uint_eq (count_answers_containing (polls, "authorization_pending"), 1);
  ck_assert_uint_eq (count_answers_containing (polls, "slow_down"), 0);
}
END_TEST

START_TEST (test_device_flow_slows_down_for_good)
{
  g_auto (DeviceProgress) progress = { 0 };
  g_autoptr (KeyholdTokenResponse) response = NULL;
  g_autoptr (JsonArray) polls = NULL;
  g_autoptr (GError) error = NULL;

  reset_mock ();
  /* The mock raises its interval by 5 s with the slow_down and answers
   * slow_down again to any poll that comes sooner than that. */
  mock_post ("/settings", "{\"force_slow_down\": 1, \"approve_after_polls\": 1}");
  response = run_device_sign_in (&progress, &error);

  ck_assert_msg (response != NULL, "%s", error ? error->message : "");
  polls = mock_log ("token");
  ck_assert_uint_eq (json_array_get_length (polls), 3);
  ck_assert_uint_eq (count_answers_containing (polls, "slow_down"), 1);
  ck_assert_uint_eq (count_answers_containing (polls, "authorization_pending"), 1);
}
END_TEST

START_TEST (test_device_flow_survives_a_503)
{
  g_auto (DeviceProgress) progress = { 0 };
  g_autoptr (KeyholdTokenResponse) response = NULL;
  g_autoptr (GError) error = NULL;

  reset_mock ();
  mock_post ("/faults", "{\"target\": \"token\", \"kind\": \"status\", \"status\": 503}");
  response = run_device_sign_in (&progress, &error);
  ck_assert_msg (response != NULL, "%s", error ? error->message : "");
}
END_TEST

START_TEST (test_device_flow_access_denied)
{
  g_auto (DeviceProgress) progress = { .decision_path = "/device/deny" };
  g_autoptr (KeyholdTokenResponse) response = NULL;
  g_autoptr (GError) error = NULL;

  reset_mock ();
  mock_post ("/settings", "{\"auto_approve\": false}");
  response = run_device_sign_in (&progress, &error);

  ck_assert_ptr_null (response);
  ck_assert_msg (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_SIGN_IN_FAILED), "%s",
                 error->message);
}
END_TEST

START_TEST (test_device_flow_expires)
{
  g_auto (DeviceProgress) progress = { 0 };
  g_autoptr (KeyholdTokenResponse) response = NULL;
  g_autoptr (GError) error = NULL;

  reset_mock ();
  mock_post ("/settings", "{\"auto_approve\": false, \"device_expires_in\": 2}");
  response = run_device_sign_in (&progress, &error);

  ck_assert_ptr_null (response);
  ck_assert_msg (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_TIMED_OUT), "%s",
                 error->message);
}
END_TEST

START_TEST (test_device_flow_cancel)
{
  g_autoptr (KeyholdProviderMetadata) metadata = NULL;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (KeyholdTokenResponse) response = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (DeviceProgress) progress = { 0 };
  GAsyncResult *result = NULL;

  reset_mock ();
  mock_post ("/settings", "{\"auto_approve\": false}");
  metadata = fetch_metadata ();
  keyhold_device_sign_in_async (http, metadata, CLIENT_ID, NULL, on_device_progress, &progress,
                                cancellable, on_done, &result);
  while (progress.calls == 0)
    g_main_context_iteration (NULL, TRUE);
  g_cancellable_cancel (cancellable);
  wait_for (&result);
  response = keyhold_device_sign_in_finish (result, &error);
  g_object_unref (result);

  ck_assert_ptr_null (response);
  ck_assert (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
}
END_TEST

/* ---- browser flow ---- */

/* The test's browser: plain HTTP from a thread, because the loopback
 * listener it talks to runs on this thread's main loop. */
typedef struct
{
  char *url;
  guint status;
  char *page;
  gint done;
} Visit;

static gpointer
visit_thread (gpointer user_data)
{
  Visit *visit = user_data;

  visit->status = keyhold_test_env_http (env, "GET", visit->url, NULL, NULL, &visit->page, NULL);
  g_atomic_int_set (&visit->done, 1);
  g_main_context_wakeup (NULL);
  return NULL;
}

/* Fetches @url while the main loop runs; returns the status and, in
 * @out_page, the body. */
static guint
visit (const char *url, char **out_page)
{
  Visit visit = { .url = (char *) url };
  GThread *thread = g_thread_new ("browser", visit_thread, &visit);

  while (!g_atomic_int_get (&visit.done))
    g_main_context_iteration (NULL, TRUE);
  g_thread_join (thread);
  *out_page = visit.page;
  return visit.status;
}

static void
on_authorization_url (const char *url, gpointer user_data)
{
  char **slot = user_data;

  *slot = g_strdup (url);
}

static char *
query_value (const char *url, const char *name)
{
  g_autoptr (GUri) uri = g_uri_parse (url, G_URI_FLAGS_ENCODED_QUERY, NULL);
  g_autoptr (GHashTable) params = NULL;

  params = g_uri_parse_params (g_uri_get_query (uri), -1, "&", G_URI_PARAMS_WWW_FORM, NULL);
  return g_strdup (g_hash_table_lookup (params, name));
}

typedef struct
{
  char *authorization_url;
  char *redirect;
  guint callback_status;
  char *callback_page;
  KeyholdTokenResponse *response;
  char *nonce;
  GError *error;
} BrowserRun;

static void
browser_run_clear (BrowserRun *run)
{
  g_free (run->authorization_url);
  g_free (run->redirect);
  g_free (run->callback_page);
  keyhold_token_response_free (run->response);
  g_free (run->nonce);
  g_clear_error (&run->error);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (BrowserRun, browser_run_clear)

/* Starts a browser sign-in, lets the mock's authorization endpoint decide,
 * and delivers its redirect to the loopback listener. */
static void
run_browser_sign_in (BrowserRun *run)
{
  g_autoptr (KeyholdProviderMetadata) metadata = fetch_metadata ();
  g_autofree char *favicon = NULL;
  g_autofree char *favicon_page = NULL;
  g_autofree char *redirect_uri = NULL;
  GAsyncResult *result = NULL;
  guint status;

  keyhold_browser_sign_in_async (http, metadata, CLIENT_ID, "openid offline_access",
                                 on_authorization_url, &run->authorization_url, NULL, on_done,
                                 &result);
  ck_assert_ptr_nonnull (run->authorization_url);

  status = keyhold_test_env_http (env, "GET", run->authorization_url, NULL, NULL, NULL,
                                  &run->redirect);
  ck_assert_uint_eq (status, 302);
  ck_assert_ptr_nonnull (run->redirect);

  /* Another path on the listener does not end the sign-in. */
  redirect_uri = query_value (run->authorization_url, "redirect_uri");
  favicon = g_strdup_printf ("%.*s/favicon.ico",
                             (int) (strlen (redirect_uri) - strlen ("/callback")), redirect_uri);
  ck_assert_uint_eq (visit (favicon, &favicon_page), 404);
  ck_assert_ptr_null (result);

  run->callback_status = visit (run->redirect, &run->callback_page);
  wait_for (&result);
  run->response = keyhold_browser_sign_in_finish (result, &run->nonce, &run->error);
  g_object_unref (result);
}

START_TEST (test_browser_flow)
{
  g_auto (BrowserRun) run = { 0 };
  g_autofree char *redirect_uri = NULL;
  g_autofree char *sent_nonce = NULL;
  g_autofree char *method = NULL;
  g_autofree char *code = NULL;
  g_autoptr (JsonArray) token_requests = NULL;
  const char *verifier;

  reset_mock ();
  run_browser_sign_in (&run);
  ck_assert_msg (run.response != NULL, "%s", run.error ? run.error->message : "");
  ck_assert_ptr_nonnull (run.response->refresh_token);
  ck_assert_ptr_nonnull (run.response->id_token);

  redirect_uri = query_value (run.authorization_url, "redirect_uri");
  ck_assert (g_str_has_prefix (redirect_uri, "http://127.0.0.1:"));
  ck_assert (g_str_has_suffix (redirect_uri, "/callback"));
  method = query_value (run.authorization_url, "code_challenge_method");
  ck_assert_str_eq (method, "S256");
  sent_nonce = query_value (run.authorization_url, "nonce");
  ck_assert_str_eq (run.nonce, sent_nonce);

  /* The page says what to do and repeats nothing from the redirect. */
  ck_assert_uint_eq (run.callback_status, 200);
  ck_assert_ptr_nonnull (strstr (run.callback_page, "You can close this window"));
  code = query_value (run.redirect, "code");
  ck_assert_ptr_null (strstr (run.callback_page, code));

  token_requests = mock_log ("token");
  ck_assert_uint_eq (json_array_get_length (token_requests), 1);
  ck_assert_str_eq (log_form_value (token_requests, 0, "grant_type"), "authorization_code");
  ck_assert_str_eq (log_form_value (token_requests, 0, "redirect_uri"), redirect_uri);
  ck_assert_str_eq (log_form_value (token_requests, 0, "code"), code);
  verifier = log_form_value (token_requests, 0, "code_verifier");
  ck_assert_ptr_nonnull (verifier);
  ck_assert_uint_eq (strlen (verifier), 43);
}
END_TEST

static void
assert_browser_sign_in_refused (const char *settings, const char *expected_text)
{
  g_auto (BrowserRun) run = { 0 };
  g_autoptr (JsonArray) token_requests = NULL;

  reset_mock ();
  mock_post ("/settings", settings);
  run_browser_sign_in (&run);

  ck_assert_ptr_null (run.response);
  ck_assert_msg (g_error_matches (run.error, KEYHOLD_ERROR, KEYHOLD_ERROR_SIGN_IN_FAILED), "%s",
                 run.error->message);
  ck_assert_msg (strstr (run.error->message, expected_text) != NULL, "%s", run.error->message);
  ck_assert_uint_eq (run.callback_status, 400);
  ck_assert_ptr_nonnull (strstr (run.callback_page, "You can close this window"));
  /* No code was exchanged. */
  token_requests = mock_log ("token");
  ck_assert_uint_eq (json_array_get_length (token_requests), 0);
}

/* Any local user can reach the listener. Requests without this sign-in's
 * state (a bare /callback, a made-up state, a redirect for another
 * sign-in) each get an error page and are ignored: the provider's real
 * redirect that follows still completes the sign-in. */
START_TEST (test_browser_flow_ignores_callbacks_without_its_state)
{
  g_autoptr (KeyholdProviderMetadata) metadata = NULL;
  g_autoptr (KeyholdTokenResponse) response = NULL;
  g_autoptr (JsonArray) token_requests = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *authorization_url = NULL, *redirect_uri = NULL, *wrong_redirect = NULL;
  g_autofree char *redirect = NULL, *page = NULL, *code = NULL;
  GAsyncResult *result = NULL;
  const char *bad_suffixes[]
      = { "", "?state=", "?state=not-the-state&code=made-up", "?code=made-up", NULL };

  reset_mock ();
  metadata = fetch_metadata ();
  keyhold_browser_sign_in_async (http, metadata, CLIENT_ID, "openid offline_access",
                                 on_authorization_url, &authorization_url, NULL, on_done, &result);
  redirect_uri = query_value (authorization_url, "redirect_uri");

  for (guint i = 0; bad_suffixes[i] != NULL; i++)
    {
      g_autofree char *url = g_strconcat (redirect_uri, bad_suffixes[i], NULL);
      g_autofree char *bad_page = NULL;

      ck_assert_uint_eq (visit (url, &bad_page), 400);
      while (g_main_context_iteration (NULL, FALSE))
        ;
      ck_assert_msg (result == NULL, "a request without the state ended the sign-in");
      ck_assert_ptr_nonnull (strstr (bad_page, "not the sign-in keyhold is waiting for"));
    }

  /* A well-formed redirect from the provider, but for another state. */
  mock_post ("/settings", "{\"authorize_mode\": \"wrong_state\"}");
  ck_assert_uint_eq (
      keyhold_test_env_http (env, "GET", authorization_url, NULL, NULL, NULL, &wrong_redirect),
      302);
  ck_assert_uint_eq (visit (wrong_redirect, &page), 400);
  ck_assert_ptr_nonnull (strstr (page, "not the sign-in keyhold is waiting for"));
  ck_assert_ptr_null (result);
  g_clear_pointer (&page, g_free);

  mock_post ("/settings", "{\"authorize_mode\": \"approve\"}");
  ck_assert_uint_eq (
      keyhold_test_env_http (env, "GET", authorization_url, NULL, NULL, NULL, &redirect), 302);
  ck_assert_uint_eq (visit (redirect, &page), 200);
  ck_assert_ptr_nonnull (strstr (page, "You can close this window"));
  wait_for (&result);
  response = keyhold_browser_sign_in_finish (result, NULL, &error);
  g_object_unref (result);
  ck_assert_msg (response != NULL, "%s", error ? error->message : "");
  ck_assert_ptr_nonnull (response->refresh_token);

  /* Only the real code was exchanged. */
  code = query_value (redirect, "code");
  token_requests = mock_log ("token");
  ck_assert_uint_eq (json_array_get_length (token_requests), 1);
  ck_assert_str_eq (log_form_value (token_requests, 0, "code"), code);
}
END_TEST

START_TEST (test_browser_flow_wrong_iss)
{
  assert_browser_sign_in_refused ("{\"authorize_mode\": \"wrong_iss\"}", "iss");
}
END_TEST

START_TEST (test_browser_flow_missing_iss)
{
  /* The mock's metadata promises iss (RFC 9207), so its absence is an
   * attack (a mix-up), not an old provider. */
  assert_browser_sign_in_refused ("{\"authorize_mode\": \"no_iss\"}", "iss");
}
END_TEST

START_TEST (test_browser_flow_missing_iss_allowed_when_not_promised)
{
  g_auto (BrowserRun) run = { 0 };

  reset_mock ();
  mock_post ("/settings", "{\"authorize_mode\": \"no_iss\", \"discovery_overrides\":"
                          " {\"authorization_response_iss_parameter_supported\": false}}");
  run_browser_sign_in (&run);
  ck_assert_msg (run.response != NULL, "%s", run.error ? run.error->message : "");
}
END_TEST

START_TEST (test_browser_flow_access_denied)
{
  assert_browser_sign_in_refused ("{\"authorize_mode\": \"access_denied\"}", "access_denied");
}
END_TEST

START_TEST (test_browser_flow_cancel_closes_listener)
{
  g_autoptr (KeyholdProviderMetadata) metadata = NULL;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (KeyholdTokenResponse) response = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *redirect_uri = NULL;
  g_autofree char *page = NULL;
  GAsyncResult *result = NULL;

  reset_mock ();
  metadata = fetch_metadata ();
  keyhold_browser_sign_in_async (http, metadata, CLIENT_ID, NULL, on_authorization_url, &url,
                                 cancellable, on_done, &result);
  g_cancellable_cancel (cancellable);
  wait_for (&result);
  response = keyhold_browser_sign_in_finish (result, NULL, &error);
  g_object_unref (result);
  ck_assert_ptr_null (response);
  ck_assert (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED));

  redirect_uri = query_value (url, "redirect_uri");
  ck_assert_uint_eq (visit (redirect_uri, &page), 0);
}
END_TEST

/* ---- refresh and revocation ---- */

static KeyholdTokenResponse *
refresh (KeyholdSecret *refresh_token, gint64 *out_retry_after_s, GError **error)
{
  GAsyncResult *result = NULL;
  KeyholdTokenResponse *response;

  keyhold_oauth_refresh_async (http, token_endpoint, CLIENT_ID, refresh_token, NULL, NULL, NULL,
                               on_done, &result);
  wait_for (&result);
  response = keyhold_oauth_refresh_finish (result, out_retry_after_s, error);
  g_object_unref (result);
  return response;
}

START_TEST (test_refresh_rotates)
{
  g_autoptr (KeyholdTokenResponse) signed_in = NULL;
  g_autoptr (KeyholdTokenResponse) refreshed = NULL;
  g_autoptr (KeyholdTokenResponse) reused = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *old_state = NULL;
  g_autofree char *new_state = NULL;
  gint64 retry_after_s = 0;

  reset_mock ();
  signed_in = sign_in_with_device ();
  refreshed = refresh (signed_in->refresh_token, &retry_after_s, &error);

  ck_assert_msg (refreshed != NULL, "%s", error ? error->message : "");
  ck_assert_int_eq (retry_after_s, -1);
  ck_assert_ptr_nonnull (refreshed->refresh_token);
  ck_assert (!keyhold_secret_equal (refreshed->refresh_token, signed_in->refresh_token));
  ck_assert (!keyhold_secret_equal (refreshed->access_token, signed_in->access_token));
  old_state = mock_refresh_token_state (signed_in->refresh_token);
  new_state = mock_refresh_token_state (refreshed->refresh_token);
  ck_assert_str_eq (old_state, "rotated");
  ck_assert_str_eq (new_state, "active");

  /* The rotated token is refused for good: the sign-in is gone. */
  reused = refresh (signed_in->refresh_token, NULL, &error);
  ck_assert_ptr_null (reused);
  ck_assert_msg (g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_INVALID_GRANT),
                 "%s", error->message);
}
END_TEST

START_TEST (test_refresh_transient_failures)
{
  g_autoptr (KeyholdTokenResponse) signed_in = NULL;
  g_autoptr (KeyholdTokenResponse) refreshed = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *state = NULL;
  gint64 retry_after_s = 0;

  reset_mock ();
  signed_in = sign_in_with_device ();

  mock_post ("/faults",
             "{\"target\": \"token\", \"kind\": \"status\", \"status\": 503, \"retry_after\": 7}");
  refreshed = refresh (signed_in->refresh_token, &retry_after_s, &error);
  ck_assert_ptr_null (refreshed);
  ck_assert_msg (
      g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_TEMPORARILY_UNAVAILABLE),
      "%s", error->message);
  ck_assert_int_eq (retry_after_s, 7);
  g_clear_error (&error);

  mock_post ("/faults", "{\"target\": \"token\", \"kind\": \"status\", \"status\": 429}");
  refreshed = refresh (signed_in->refresh_token, &retry_after_s, &error);
  ck_assert (
      g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_TEMPORARILY_UNAVAILABLE));
  ck_assert_int_eq (retry_after_s, -1);
  g_clear_error (&error);

  mock_post ("/faults", "{\"target\": \"token\", \"kind\": \"garbage\", \"style\": \"html\"}");
  refreshed = refresh (signed_in->refresh_token, NULL, &error);
  ck_assert_msg (
      g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_MALFORMED_RESPONSE), "%s",
      error->message);
  g_clear_error (&error);

  /* The server rotated the token but its answer never arrived: the caller
   * must be able to tell this from "offline". */
  mock_post ("/settings", "{\"rotation_grace\": 30}");
  use_new_http_client ();
  mock_post ("/faults", "{\"target\": \"token\", \"kind\": \"drop_before_response\"}");
  refreshed = refresh (signed_in->refresh_token, NULL, &error);
  ck_assert_ptr_null (refreshed);
  ck_assert_msg (g_error_matches (error, KEYHOLD_HTTP_ERROR, KEYHOLD_HTTP_ERROR_ANSWER_LOST), "%s",
                 error->message);
  g_clear_error (&error);
  state = mock_refresh_token_state (signed_in->refresh_token);
  ck_assert_str_eq (state, "rotated");

  /* Within the grace window the same token is accepted once more. */
  refreshed = refresh (signed_in->refresh_token, NULL, &error);
  ck_assert_msg (refreshed != NULL, "%s", error ? error->message : "");
  g_clear_pointer (&refreshed, keyhold_token_response_free);

  mock_post ("/faults", "{\"target\": \"token\", \"kind\": \"oversized\", \"bytes\": 2097152}");
  refreshed = refresh (signed_in->refresh_token, NULL, &error);
  ck_assert_ptr_null (refreshed);
  ck_assert_msg (g_error_matches (error, KEYHOLD_HTTP_ERROR, KEYHOLD_HTTP_ERROR_TOO_LARGE), "%s",
                 error->message);
}
END_TEST

START_TEST (test_refresh_invalid_grant)
{
  g_autoptr (KeyholdTokenResponse) signed_in = NULL;
  g_autoptr (KeyholdTokenResponse) refreshed = NULL;
  g_autoptr (GError) error = NULL;

  reset_mock ();
  signed_in = sign_in_with_device ();
  mock_post ("/revoke-grants", "{}");
  refreshed = refresh (signed_in->refresh_token, NULL, &error);
  ck_assert_ptr_null (refreshed);
  ck_assert_msg (g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_INVALID_GRANT),
                 "%s", error->message);
  ck_assert_ptr_null (strstr (error->message, keyhold_secret_get (signed_in->refresh_token)));
}
END_TEST

START_TEST (test_revoke)
{
  g_autoptr (KeyholdTokenResponse) signed_in = NULL;
  g_autoptr (KeyholdTokenResponse) refreshed = NULL;
  g_autoptr (KeyholdProviderMetadata) metadata = NULL;
  g_autoptr (JsonArray) requests = NULL;
  g_autoptr (JsonNode) revocations = NULL;
  g_autoptr (GError) error = NULL;
  GAsyncResult *result = NULL;
  JsonArray *list;
  gboolean revoked;

  reset_mock ();
  signed_in = sign_in_with_device ();
  metadata = fetch_metadata ();
  keyhold_oauth_revoke_async (http, metadata->revocation_endpoint, CLIENT_ID,
                              signed_in->refresh_token, NULL, on_done, &result);
  wait_for (&result);
  revoked = keyhold_oauth_revoke_finish (result, &error);
  g_object_unref (result);
  ck_assert_msg (revoked, "%s", error ? error->message : "");

  requests = mock_log ("revoke");
  ck_assert_uint_eq (json_array_get_length (requests), 1);
  ck_assert_str_eq (log_form_value (requests, 0, "token"),
                    keyhold_secret_get (signed_in->refresh_token));
  ck_assert_str_eq (log_form_value (requests, 0, "token_type_hint"), "refresh_token");
  ck_assert_str_eq (log_form_value (requests, 0, "client_id"), CLIENT_ID);
  revocations = mock ("GET", "/revocations", NULL);
  list = json_object_get_array_member (json_node_get_object (revocations), "revocations");
  ck_assert_uint_eq (json_array_get_length (list), 1);
  ck_assert (json_object_get_boolean_member (json_array_get_object_element (list, 0), "accepted"));

  refreshed = refresh (signed_in->refresh_token, NULL, &error);
  ck_assert_ptr_null (refreshed);
  ck_assert (g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_INVALID_GRANT));
}
END_TEST

START_TEST (test_revoke_unavailable)
{
  g_autoptr (KeyholdTokenResponse) signed_in = NULL;
  g_autoptr (KeyholdProviderMetadata) metadata = NULL;
  g_autoptr (GError) error = NULL;
  GAsyncResult *result = NULL;

  reset_mock ();
  signed_in = sign_in_with_device ();
  metadata = fetch_metadata ();
  mock_post ("/faults", "{\"target\": \"revoke\", \"kind\": \"status\", \"status\": 503}");
  keyhold_oauth_revoke_async (http, metadata->revocation_endpoint, CLIENT_ID,
                              signed_in->refresh_token, NULL, on_done, &result);
  wait_for (&result);
  ck_assert (!keyhold_oauth_revoke_finish (result, &error));
  g_object_unref (result);
  ck_assert (
      g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_TEMPORARILY_UNAVAILABLE));
}
END_TEST

int
main (void)
{
  Suite *suite = suite_create ("oauth-flows");
  TCase *discovery = tcase_create ("discovery");
  TCase *device = tcase_create ("device");
  TCase *browser = tcase_create ("browser");
  TCase *tokens = tcase_create ("refresh-revoke");
  SRunner *runner;
  int failed;

  tcase_add_test (discovery, test_discovery);
  tcase_add_test (discovery, test_discovery_rejects_other_issuer);
  tcase_add_test (discovery, test_discovery_transport_errors_pass_through);
  suite_add_tcase (suite, discovery);

  tcase_set_timeout (device, 120);
  tcase_add_test (device, test_device_flow_waits_for_approval);
  tcase_add_test (device, test_device_flow_slows_down_for_good);
  tcase_add_test (device, test_device_flow_survives_a_503);
  tcase_add_test (device, test_device_flow_access_denied);
  tcase_add_test (device, test_device_flow_expires);
  tcase_add_test (device, test_device_flow_cancel);
  suite_add_tcase (suite, device);

  tcase_set_timeout (browser, 120);
  tcase_add_test (browser, test_browser_flow);
  tcase_add_test (browser, test_browser_flow_ignores_callbacks_without_its_state);
  tcase_add_test (browser, test_browser_flow_wrong_iss);
  tcase_add_test (browser, test_browser_flow_missing_iss);
  tcase_add_test (browser, test_browser_flow_missing_iss_allowed_when_not_promised);
  tcase_add_test (browser, test_browser_flow_access_denied);
  tcase_add_test (browser, test_browser_flow_cancel_closes_listener);
  suite_add_tcase (suite, browser);

  tcase_set_timeout (tokens, 120);
  tcase_add_test (tokens, test_refresh_rotates);
  tcase_add_test (tokens, test_refresh_transient_failures);
  tcase_add_test (tokens, test_refresh_invalid_grant);
  tcase_add_test (tokens, test_revoke);
  tcase_add_test (tokens, test_revoke_unavailable);
  suite_add_tcase (suite, tokens);

  env = keyhold_test_env_start (KEYHOLD_TEST_ENV_MOCK);
  http = keyhold_http_new ();
  {
    g_autoptr (KeyholdProviderMetadata) metadata
        = fetch_metadata_from (keyhold_test_env_get_issuer (env), NULL, NULL);

    if (metadata == NULL)
      g_error ("the mock provider's discovery document could not be fetched");
    token_endpoint = g_strdup (metadata->token_endpoint);
  }
  runner = srunner_create (suite);
  /* One environment and one HTTP client for all tests, in this process. */
  srunner_set_fork_status (runner, CK_NOFORK);
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  keyhold_http_free (http);
  g_free (token_endpoint);
  keyhold_test_env_stop (env);
  return failed == 0 ? 0 : 1;
}
