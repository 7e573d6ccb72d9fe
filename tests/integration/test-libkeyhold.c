/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <string.h>

#include <keyhold/keyhold.h>

#include "harness.h"

/* libkeyhold on the real stack: a private dbus-daemon, gnome-keyring-daemon,
 * the mock provider and the built agent. The tests run in order in one
 * process and one environment (restarting the agent needs the process that
 * started it); each uses its own accounts. */

#define TEST_CLIENT_ID "test-client"
#define MOCK_SUBJECT "user-alice-0001"

static KeyholdTestEnv *env;

static guint
wait_timeout_s (void)
{
  return g_strcmp0 (g_getenv ("KEYHOLD_TEST_UNDER_VALGRIND"), "1") == 0 ? 600 : 60;
}

static void
mock_post (const char *path, const char *json)
{
  g_autoptr (JsonNode) reply = keyhold_test_env_mock (env, "POST", path, json);
}

static gboolean
mock_token_is_valid (const char *token)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonNode) request = NULL;
  g_autoptr (JsonNode) reply = NULL;
  g_autofree char *body = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "access_token");
  json_builder_add_string_value (builder, token);
  json_builder_end_object (builder);
  request = json_builder_get_root (builder);
  body = json_to_string (request, FALSE);
  reply = keyhold_test_env_mock (env, "POST", "/check-token", body);
  return json_object_get_boolean_member (json_node_get_object (reply), "valid");
}

static gboolean
on_wait_timeout (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the default main context, where the client delivers its signals,
 * until @done says so. */
static void
wait_until (gboolean (*done) (gpointer), gpointer data, const char *what)
{
  gboolean timed_out = FALSE;
  guint timeout_id = g_timeout_add_seconds (wait_timeout_s (), on_wait_timeout, &timed_out);

  while (!done (data) && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (timeout_id);
  ck_assert_msg (!timed_out, "timed out waiting for %s", what);
}

static gboolean
account_is_signed_out (gpointer account)
{
  return keyhold_account_get_state (account) == KEYHOLD_ACCOUNT_STATE_SIGNED_OUT;
}

static gboolean
agent_is_running (gpointer client)
{
  return keyhold_client_get_agent_running (client);
}

static gboolean
agent_is_gone (gpointer client)
{
  return !keyhold_client_get_agent_running (client);
}

static gboolean
result_arrived (gpointer result)
{
  return *(GAsyncResult **) result != NULL;
}

static void
store_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static void
count_progress (KeyholdClient *client, const char *name, GVariant *info, gpointer user_data)
{
  guint *progress = user_data;
  const char *user_code;

  if (g_variant_lookup (info, "user_code", "&s", &user_code) && user_code[0] != '\0')
    (*progress)++;
}

static KeyholdAccount *
add_account (KeyholdClient *client, const char *name)
{
  const char *issuer = keyhold_test_env_get_issuer (env);
  const char *const origins[] = { issuer, NULL };
  g_autoptr (GError) error = NULL;
  KeyholdAccount *account = keyhold_client_add_account_sync (client, name, issuer, TEST_CLIENT_ID,
                                                             NULL, origins, NULL, &error);

  ck_assert_msg (account != NULL, "AddAccount: %s", error ? error->message : "");
  return account;
}

/* Adds @name and signs in with the device flow, which the mock approves. */
static KeyholdAccount *
add_signed_in_account (KeyholdClient *client, const char *name)
{
  g_autoptr (KeyholdAccount) account = add_account (client, name);
  g_autoptr (GError) error = NULL;
  guint progress = 0;
  gulong handler
      = g_signal_connect (client, "sign-in-progress", G_CALLBACK (count_progress), &progress);

  ck_assert_msg (
      keyhold_client_sign_in_sync (client, name, KEYHOLD_SIGN_IN_METHOD_DEVICE, NULL, &error),
      "sign-in: %s", error ? error->message : "");
  g_signal_handler_disconnect (client, handler);
  ck_assert_uint_ge (progress, 1);
  /* The account object shows the sign-in as soon as the call returns. */
  ck_assert_int_eq (keyhold_account_get_state (account), KEYHOLD_ACCOUNT_STATE_SIGNED_IN);
  ck_assert_str_eq (keyhold_account_get_subject (account), MOCK_SUBJECT);
  return g_steal_pointer (&account);
}

static KeyholdClient *
new_client (void)
{
  g_autoptr (GError) error = NULL;
  KeyholdClient *client = keyhold_client_new_sync (NULL, &error);

  ck_assert_msg (client != NULL, "keyhold_client_new_sync: %s", error ? error->message : "");
  return client;
}

static void
assert_clean_error (const GError *error, KeyholdError code)
{
  ck_assert_msg (g_error_matches (error, KEYHOLD_ERROR, code), "expected code %d, got %s %d: %s",
                 code, error != NULL ? g_quark_to_string (error->domain) : "no error",
                 error != NULL ? error->code : 0, error != NULL ? error->message : "");
  ck_assert_msg (strstr (error->message, "GDBus.Error") == NULL, "%s", error->message);
}

START_TEST (test_sync_sign_in_token_and_identity)
{
  g_autoptr (KeyholdClient) client = new_client ();
  g_autoptr (KeyholdAccount) account = NULL;
  g_autoptr (KeyholdAccount) looked_up = NULL;
  g_autoptr (KeyholdToken) token = NULL;
  g_autoptr (GVariant) claims = NULL;
  g_autoptr (GError) error = NULL;
  const char *subject;

  account = add_account (client, "sync");
  ck_assert_str_eq (keyhold_account_get_name (account), "sync");
  ck_assert_int_eq (keyhold_account_get_state (account), KEYHOLD_ACCOUNT_STATE_SIGNED_OUT);
  looked_up = keyhold_client_lookup_account (client, "sync");
  ck_assert_ptr_eq (looked_up, account);
  g_clear_object (&account);

  account = add_signed_in_account (client, "sync-2");
  ck_assert_str_eq (keyhold_account_get_subject (account), MOCK_SUBJECT);

  token = keyhold_account_get_token_sync (account, NULL, NULL, 0, NULL, &error);
  ck_assert_msg (token != NULL, "get_token: %s", error ? error->message : "");
  ck_assert (mock_token_is_valid (keyhold_token_get_value (token)));
  ck_assert_int_gt (keyhold_token_get_expires_at (token), g_get_real_time () / G_USEC_PER_SEC + 60);

  claims = keyhold_account_get_identity_sync (account, NULL, &error);
  ck_assert_msg (claims != NULL, "get_identity: %s", error ? error->message : "");
  ck_assert (g_variant_lookup (claims, "sub", "&s", &subject));
  ck_assert_str_eq (subject, MOCK_SUBJECT);
}
END_TEST

static gboolean
set_flag (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* A _sync call waits on a private context, so the caller's own sources
 * do not run in the middle of it. */
START_TEST (test_sync_call_runs_no_caller_sources)
{
  g_autoptr (KeyholdClient) client = new_client ();
  g_autoptr (KeyholdAccount) account = keyhold_client_lookup_account (client, "sync-2");
  g_autoptr (KeyholdToken) token = NULL;
  gboolean idle_ran = FALSE;

  ck_assert_ptr_nonnull (account);
  g_idle_add (set_flag, &idle_ran);
  token = keyhold_account_get_token_sync (account, NULL, NULL, 0, NULL, NULL);
  ck_assert_ptr_nonnull (token);
  ck_assert (!idle_ran);
  while (!idle_ran)
    g_main_context_iteration (NULL, TRUE);
}
END_TEST

START_TEST (test_async_paths)
{
  GAsyncResult *result = NULL;
  g_autoptr (KeyholdClient) client = NULL;
  g_autoptr (KeyholdAccount) account = NULL;
  g_autoptr (KeyholdToken) token = NULL;
  g_autoptr (GVariant) claims = NULL;
  g_autoptr (GError) error = NULL;
  const char *subject;

  keyhold_client_new (NULL, store_result, &result);
  wait_until (result_arrived, &result, "the client");
  client = keyhold_client_new_finish (result, &error);
  g_clear_object (&result);
  ck_assert_msg (client != NULL, "%s", error ? error->message : "");

  account = add_signed_in_account (client, "async");

  keyhold_account_get_token (account, NULL, NULL, 120, NULL, store_result, &result);
  wait_until (result_arrived, &result, "a token");
  token = keyhold_account_get_token_finish (account, result, &error);
  g_clear_object (&result);
  ck_assert_msg (token != NULL, "%s", error ? error->message : "");
  ck_assert (mock_token_is_valid (keyhold_token_get_value (token)));

  keyhold_account_get_identity (account, NULL, store_result, &result);
  wait_until (result_arrived, &result, "the identity");
  claims = keyhold_account_get_identity_finish (account, result, &error);
  g_clear_object (&result);
  ck_assert_ptr_nonnull (claims);
  ck_assert (g_variant_lookup (claims, "sub", "&s", &subject));
  ck_assert_str_eq (subject, MOCK_SUBJECT);

  keyhold_account_sign_out (account, NULL, store_result, &result);
  wait_until (result_arrived, &result, "the sign-out");
  ck_assert (keyhold_account_sign_out_finish (account, result, &error));
  g_clear_object (&result);
  wait_until (account_is_signed_out, account, "the state to follow the sign-out");
}
END_TEST

START_TEST (test_error_mapping)
{
  g_autoptr (KeyholdClient) client = new_client ();
  g_autoptr (KeyholdAccount) not_signed_in = add_account (client, "not-signed-in");
  g_autoptr (KeyholdAccount) signed_in = keyhold_client_lookup_account (client, "sync-2");
  g_autoptr (KeyholdAccount) bad = NULL;
  g_autoptr (KeyholdToken) token = NULL;
  g_autoptr (GVariant) claims = NULL;
  g_autoptr (GError) error = NULL;
  const char *issuer = keyhold_test_env_get_issuer (env);

  bad = keyhold_client_add_account_sync (client, "no spaces allowed", issuer, TEST_CLIENT_ID, NULL,
                                         NULL, NULL, &error);
  ck_assert_ptr_null (bad);
  assert_clean_error (error, KEYHOLD_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  ck_assert (!keyhold_client_remove_account_sync (client, "no-such-account", NULL, &error));
  assert_clean_error (error, KEYHOLD_ERROR_NO_SUCH_ACCOUNT);
  g_clear_error (&error);

  ck_assert (!keyhold_client_sign_in_sync (client, "no-such-account", KEYHOLD_SIGN_IN_METHOD_DEVICE,
                                           NULL, &error));
  assert_clean_error (error, KEYHOLD_ERROR_NO_SUCH_ACCOUNT);
  g_clear_error (&error);

  token = keyhold_account_get_token_sync (not_signed_in, NULL, NULL, 0, NULL, &error);
  ck_assert_ptr_null (token);
  assert_clean_error (error, KEYHOLD_ERROR_NOT_SIGNED_IN);
  g_clear_error (&error);

  claims = keyhold_account_get_identity_sync (not_signed_in, NULL, &error);
  ck_assert_ptr_null (claims);
  assert_clean_error (error, KEYHOLD_ERROR_NOT_SIGNED_IN);
  g_clear_error (&error);

  /* More than a day of validity is more than the agent will promise. */
  ck_assert_ptr_nonnull (signed_in);
  token = keyhold_account_get_token_sync (signed_in, NULL, NULL, 24 * 60 * 60 + 1, NULL, &error);
  ck_assert_ptr_null (token);
  assert_clean_error (error, KEYHOLD_ERROR_INVALID_ARGUMENT);
}
END_TEST

/* Without the agent, and without an activation file for it on this bus,
 * calls fail with a code of their own rather than a D-Bus error. */
START_TEST (test_agent_unavailable)
{
  g_autoptr (KeyholdClient) client = new_client ();
  g_autoptr (KeyholdAccount) account = keyhold_client_lookup_account (client, "sync-2");
  g_autoptr (KeyholdClient) second = NULL;
  g_autoptr (KeyholdToken) token = NULL;
  g_autoptr (GError) error = NULL;

  ck_assert_int_eq (keyhold_test_env_stop_agent (env), 0);
  wait_until (agent_is_gone, client, "the client to see the agent go");

  token = keyhold_account_get_token_sync (account, NULL, NULL, 0, NULL, &error);
  ck_assert_ptr_null (token);
  assert_clean_error (error, KEYHOLD_ERROR_AGENT_UNAVAILABLE);
  g_clear_error (&error);

  second = keyhold_client_new_sync (NULL, &error);
  ck_assert_ptr_null (second);
  assert_clean_error (error, KEYHOLD_ERROR_AGENT_UNAVAILABLE);

  keyhold_test_env_start_agent (env, NULL);
  wait_until (agent_is_running, client, "the client to see the agent back");
}
END_TEST

static void
count_notify (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  guint *count = user_data;

  (*count)++;
}

START_TEST (test_reconnect_after_agent_restart)
{
  g_autoptr (KeyholdClient) client = new_client ();
  g_autoptr (KeyholdAccount) account = add_signed_in_account (client, "restart");
  g_autolist (KeyholdAccount) accounts = NULL;
  g_autoptr (KeyholdToken) before = NULL;
  g_autoptr (KeyholdToken) after = NULL;
  g_autoptr (GError) error = NULL;
  guint agent_notifies = 0;

  g_signal_connect (client, "notify::agent-running", G_CALLBACK (count_notify), &agent_notifies);
  before = keyhold_account_get_token_sync (account, NULL, NULL, 0, NULL, &error);
  ck_assert_ptr_nonnull (before);

  ck_assert_int_eq (keyhold_test_env_stop_agent (env), 0);
  wait_until (agent_is_gone, client, "the client to see the agent go");
  /* While the agent is away, the account keeps what it last knew. */
  ck_assert_int_eq (keyhold_account_get_state (account), KEYHOLD_ACCOUNT_STATE_SIGNED_IN);
  ck_assert_str_eq (keyhold_account_get_subject (account), MOCK_SUBJECT);

  keyhold_test_env_start_agent (env, NULL);
  wait_until (agent_is_running, client, "the client to see the agent back");
  ck_assert_uint_eq (agent_notifies, 2);

  /* The same object serves tokens from the new agent process... */
  after = keyhold_account_get_token_sync (account, NULL, NULL, 0, NULL, &error);
  ck_assert_msg (after != NULL, "token after the restart: %s", error ? error->message : "");
  ck_assert (mock_token_is_valid (keyhold_token_get_value (after)));

  /* ...follows its signals... */
  ck_assert (keyhold_account_sign_out_sync (account, NULL, &error));
  wait_until (account_is_signed_out, account, "the state to follow the new agent");

  /* ...and is still the only object for that account. */
  accounts = keyhold_client_get_accounts (client);
  ck_assert_ptr_nonnull (g_list_find (accounts, account));
  for (GList *l = accounts; l != NULL; l = l->next)
    ck_assert (l->data == account
               || g_strcmp0 (keyhold_account_get_name (l->data), "restart") != 0);
}
END_TEST

typedef struct
{
  GArray *states;
  guint subject_notifies;
} StateLog;

static void
log_state (GObject *account, GParamSpec *pspec, gpointer user_data)
{
  StateLog *log = user_data;
  KeyholdAccountState state = keyhold_account_get_state (KEYHOLD_ACCOUNT (account));

  if (g_str_equal (pspec->name, "state"))
    g_array_append_val (log->states, state);
  else if (g_str_equal (pspec->name, "subject"))
    log->subject_notifies++;
}

static gboolean
state_logged (gpointer user_data)
{
  StateLog *log = user_data;

  return log->states->len > 0
         && g_array_index (log->states, KeyholdAccountState, log->states->len - 1)
                == KEYHOLD_ACCOUNT_STATE_SIGNED_IN;
}

START_TEST (test_notify_on_state_change)
{
  g_autoptr (KeyholdClient) client = new_client ();
  g_autoptr (KeyholdAccount) account = add_account (client, "notify");
  g_autoptr (GError) error = NULL;
  StateLog log = { g_array_new (FALSE, FALSE, sizeof (KeyholdAccountState)), 0 };
  guint states_after_sign_in;

  g_signal_connect (account, "notify", G_CALLBACK (log_state), &log);
  ck_assert (
      keyhold_client_sign_in_sync (client, "notify", KEYHOLD_SIGN_IN_METHOD_DEVICE, NULL, &error));
  wait_until (state_logged, &log, "a notification of the signed-in state");
  ck_assert_uint_eq (log.subject_notifies, 1);
  states_after_sign_in = log.states->len;

  /* Serving the cached token changes no state. */
  for (int i = 0; i < 2; i++)
    {
      g_autoptr (KeyholdToken) token
          = keyhold_account_get_token_sync (account, NULL, NULL, 0, NULL, &error);

      ck_assert_ptr_nonnull (token);
    }
  while (g_main_context_iteration (NULL, FALSE))
    ;
  ck_assert_uint_eq (log.states->len, states_after_sign_in);

  ck_assert (keyhold_account_sign_out_sync (account, NULL, &error));
  wait_until (account_is_signed_out, account, "the signed-out state");
  ck_assert_uint_gt (log.states->len, states_after_sign_in);
  ck_assert_int_eq (g_array_index (log.states, KeyholdAccountState, log.states->len - 1),
                    KEYHOLD_ACCOUNT_STATE_SIGNED_OUT);
  g_signal_handlers_disconnect_by_data (account, &log);
  g_array_unref (log.states);
}
END_TEST

static void
cancel_on_progress (KeyholdClient *client, const char *name, GVariant *info, gpointer user_data)
{
  g_cancellable_cancel (user_data);
}

/* Cancelling stops the flow in the agent, so the account is free for the
 * next sign-in at once (no "Busy"). */
START_TEST (test_cancel_sign_in)
{
  g_autoptr (KeyholdClient) client = new_client ();
  g_autoptr (KeyholdAccount) account = add_account (client, "cancel");
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GError) error = NULL;
  gulong handler;

  mock_post ("/settings", "{\"auto_approve\": false}");
  handler
      = g_signal_connect (client, "sign-in-progress", G_CALLBACK (cancel_on_progress), cancellable);
  ck_assert (!keyhold_client_sign_in_sync (client, "cancel", KEYHOLD_SIGN_IN_METHOD_DEVICE,
                                           cancellable, &error));
  g_signal_handler_disconnect (client, handler);
  mock_post ("/settings", "{\"auto_approve\": true}");
  ck_assert_msg (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED), "%s", error->message);
  g_clear_error (&error);

  ck_assert_msg (
      keyhold_client_sign_in_sync (client, "cancel", KEYHOLD_SIGN_IN_METHOD_DEVICE, NULL, &error),
      "second sign-in: %s", error ? error->message : "");
}
END_TEST

/* ---- the outbox ---- */

static char *
api_url (const char *path)
{
  return g_strconcat (keyhold_test_env_get_issuer (env), path, NULL);
}

typedef struct
{
  const char *id;
  KeyholdOutboxState last_state;
  guint changes;
} ItemWatch;

static void
on_item_changed (KeyholdClient *client,
                 const char *id,
                 KeyholdOutboxState state,
                 int status,
                 gpointer user_data)
{
  ItemWatch *watch = user_data;

  if (g_strcmp0 (id, watch->id) != 0)
    return;
  watch->last_state = state;
  watch->changes++;
}

static gboolean
item_is_final (gpointer user_data)
{
  ItemWatch *watch = user_data;

  return keyhold_outbox_state_is_final (watch->last_state);
}

static KeyholdOutboxRequest *
put_note (const char *path, const char *text)
{
  g_autofree char *url = api_url (path);
  g_autoptr (GBytes) body = g_bytes_new (text, strlen (text));
  KeyholdOutboxRequest *request = keyhold_outbox_request_new ("PUT", url);

  keyhold_outbox_request_add_header (request, "Content-Type", "text/plain");
  keyhold_outbox_request_set_body (request, body);
  return request;
}

START_TEST (test_outbox_round_trip)
{
  g_autoptr (KeyholdClient) client = new_client ();
  g_autoptr (KeyholdAccount) account = add_signed_in_account (client, "outbox");
  g_autoptr (KeyholdOutboxRequest) request = put_note ("/api/notes/round-trip", "hello");
  g_autoptr (KeyholdOutboxItem) item = NULL;
  g_autolist (KeyholdOutboxItem) done = NULL;
  g_autoptr (GBytes) response_body = NULL;
  g_autoptr (GVariant) response_headers = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *id = NULL;
  const KeyholdOutboxState done_states[] = { KEYHOLD_OUTBOX_STATE_DONE };
  ItemWatch watch = { NULL, KEYHOLD_OUTBOX_STATE_UNKNOWN, 0 };
  gboolean listed = FALSE;

  g_signal_connect (client, "outbox-item-changed", G_CALLBACK (on_item_changed), &watch);
  id = keyhold_client_outbox_enqueue_sync (client, "outbox", "notes", request, NULL, &error);
  ck_assert_msg (id != NULL, "enqueue: %s", error ? error->message : "");
  watch.id = id;
  wait_until (item_is_final, &watch, "the item to finish");
  ck_assert_int_eq (watch.last_state, KEYHOLD_OUTBOX_STATE_DONE);

  item = keyhold_client_outbox_get_sync (client, id, NULL, &error);
  ck_assert_msg (item != NULL, "get: %s", error ? error->message : "");
  ck_assert_str_eq (keyhold_outbox_item_get_id (item), id);
  ck_assert_str_eq (keyhold_outbox_item_get_account (item), "outbox");
  ck_assert_str_eq (keyhold_outbox_item_get_queue (item), "notes");
  ck_assert_str_eq (keyhold_outbox_item_get_method (item), "PUT");
  ck_assert_int_eq (keyhold_outbox_item_get_state (item), KEYHOLD_OUTBOX_STATE_DONE);
  ck_assert_int_eq (keyhold_outbox_item_get_status (item), 200);
  ck_assert_uint_ge (keyhold_outbox_item_get_attempts (item), 1);
  ck_assert_int_gt (keyhold_outbox_item_get_finished (item), 0);
  response_body = keyhold_outbox_item_get_response_body (item);
  ck_assert_ptr_nonnull (response_body);
  ck_assert_uint_gt (g_bytes_get_size (response_body), 0);
  response_headers = keyhold_outbox_item_get_response_headers (item);
  ck_assert_ptr_nonnull (response_headers);
  ck_assert_ptr_nonnull (keyhold_outbox_item_lookup_response_header (item, "Content-Type"));

  done = keyhold_client_outbox_list_sync (client, "outbox", NULL, done_states,
                                          G_N_ELEMENTS (done_states), NULL, 0, NULL, &error);
  ck_assert_ptr_null (error);
  for (GList *l = done; l != NULL; l = l->next)
    listed |= g_str_equal (keyhold_outbox_item_get_id (l->data), id);
  ck_assert (listed);

  /* A finished item cannot be cancelled. */
  ck_assert (!keyhold_client_outbox_cancel_sync (client, id, NULL, &error));
  assert_clean_error (error, KEYHOLD_ERROR_INVALID_ARGUMENT);
  g_signal_handlers_disconnect_by_data (client, &watch);
}
END_TEST

START_TEST (test_outbox_cancel_and_errors)
{
  g_autoptr (KeyholdClient) client = new_client ();
  g_autoptr (KeyholdOutboxRequest) request = put_note ("/api/notes/cancelled", "never sent");
  g_autoptr (KeyholdOutboxRequest) elsewhere
      = keyhold_outbox_request_new ("PUT", "https://elsewhere.example/api/notes/1");
  g_autoptr (KeyholdOutboxItem) item = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *id = NULL;
  g_autofree char *refused = NULL;

  /* The API is down, so the item waits and can be cancelled. */
  mock_post ("/offline", NULL);
  id = keyhold_client_outbox_enqueue_sync (client, "outbox", "cancel", request, NULL, &error);
  ck_assert_msg (id != NULL, "enqueue: %s", error ? error->message : "");
  ck_assert_msg (keyhold_client_outbox_cancel_sync (client, id, NULL, &error), "cancel: %s",
                 error ? error->message : "");
  mock_post ("/online", NULL);
  item = keyhold_client_outbox_get_sync (client, id, NULL, &error);
  ck_assert_ptr_nonnull (item);
  ck_assert_int_eq (keyhold_outbox_item_get_state (item), KEYHOLD_OUTBOX_STATE_CANCELLED);

  refused = keyhold_client_outbox_enqueue_sync (client, "outbox", NULL, elsewhere, NULL, &error);
  ck_assert_ptr_null (refused);
  assert_clean_error (error, KEYHOLD_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_clear_object (&item);
  item = keyhold_client_outbox_get_sync (client, "00000000-0000-4000-8000-000000000000", NULL,
                                         &error);
  ck_assert_ptr_null (item);
  assert_clean_error (error, KEYHOLD_ERROR_NOT_FOUND);
}
END_TEST

int
main (void)
{
  SRunner *runner;
  Suite *suite = suite_create ("libkeyhold");
  TCase *tcase = tcase_create ("libkeyhold");
  int failed;

  tcase_set_timeout (tcase, 300);
  tcase_add_test (tcase, test_sync_sign_in_token_and_identity);
  tcase_add_test (tcase, test_sync_call_runs_no_caller_sources);
  tcase_add_test (tcase, test_async_paths);
  tcase_add_test (tcase, test_error_mapping);
  tcase_add_test (tcase, test_agent_unavailable);
  tcase_add_test (tcase, test_reconnect_after_agent_restart);
  tcase_add_test (tcase, test_notify_on_state_change);
  tcase_add_test (tcase, test_cancel_sign_in);
  tcase_add_test (tcase, test_outbox_round_trip);
  tcase_add_test (tcase, test_outbox_cancel_and_errors);
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
  /* The agent must also end cleanly (under valgrind: without errors). */
  if (keyhold_test_env_stop_agent (env) != 0)
    failed++;
  keyhold_test_env_stop (env);
  return failed == 0 ? 0 : 1;
}
