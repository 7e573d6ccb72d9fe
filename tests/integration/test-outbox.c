/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <sqlite3.h>
#include <string.h>

#include "agent-client.h"

/* The offline outbox (issue 5) on the real stack: a private dbus-daemon,
 * gnome-keyring-daemon, the mock provider and API, and the built agent and
 * CLI. The tests run in order in one environment; each signs in its own
 * account and tells its items apart by their Idempotency-Keys. */

#define AGENT_NAME "org.keyhold.Agent"
#define AGENT_PATH "/org/keyhold/Agent"
#define OUTBOX_INTERFACE "org.keyhold.Outbox1"
#define CALL_TIMEOUT_MS 120000
#define MIB (1024 * 1024)

static KeyholdTestEnv *env;

static gboolean
under_valgrind (void)
{
  return g_strcmp0 (g_getenv ("KEYHOLD_TEST_UNDER_VALGRIND"), "1") == 0;
}

/* Seconds to wait for something the agent does in the background. */
static guint
patience_s (guint seconds)
{
  return under_valgrind () ? seconds * 10 : seconds;
}

static void
sign_in (const char *name)
{
  keyhold_test_add_account (env, name);
  keyhold_test_login (env, name);
}

static char *
api_url (const char *path)
{
  return g_strconcat (keyhold_test_env_get_issuer (env), path, NULL);
}

/* ---- the D-Bus API -------------------------------------------------------------- */

static GVariant *
outbox_call (const char *method, GVariant *parameters, const char *reply_type, GError **error)
{
  return g_dbus_connection_call_sync (
      keyhold_test_env_get_bus (env), AGENT_NAME, AGENT_PATH, OUTBOX_INTERFACE, method, parameters,
      G_VARIANT_TYPE (reply_type), G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, error);
}

/* @headers: NULL, or name, value, name, value, ..., NULL. */
static GVariant *
new_request (const char *method, const char *url, const char *body, const char *const *headers)
{
  GVariantBuilder builder;
  GVariantBuilder header_builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_init (&header_builder, G_VARIANT_TYPE ("a(ss)"));
  for (guint i = 0; headers != NULL && headers[i] != NULL; i += 2)
    g_variant_builder_add (&header_builder, "(ss)", headers[i], headers[i + 1]);
  g_variant_builder_add (&builder, "{sv}", "method", g_variant_new_string (method));
  g_variant_builder_add (&builder, "{sv}", "url", g_variant_new_string (url));
  g_variant_builder_add (&builder, "{sv}", "headers", g_variant_builder_end (&header_builder));
  if (body != NULL)
    g_variant_builder_add (&builder, "{sv}", "body",
                           g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, body, strlen (body), 1));
  return g_variant_builder_end (&builder);
}

static char *
try_enqueue (const char *account, const char *queue, GVariant *request, GError **error)
{
  g_autoptr (GVariant) reply = outbox_call (
      "Enqueue", g_variant_new ("(ss@a{sv})", account, queue, request), "(s)", error);
  char *id = NULL;

  if (reply != NULL)
    g_variant_get (reply, "(s)", &id);
  return id;
}

static char *
enqueue (const char *account, const char *queue, GVariant *request)
{
  g_autoptr (GError) error = NULL;
  char *id = try_enqueue (account, queue, request, &error);

  ck_assert_msg (id != NULL, "Enqueue failed: %s", error ? error->message : "");
  return id;
}

static void
assert_refused (const char *account, GVariant *request, const char *error_name)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *id = try_enqueue (account, "refused", request, &error);

  ck_assert_msg (id == NULL, "a request that should be refused was queued");
  ck_assert_str_eq (keyhold_test_error_name (error), error_name);
}

static GVariant *
get_item (const char *id)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = outbox_call ("Get", g_variant_new ("(s)", id), "(a{sv})", &error);
  GVariant *item;

  ck_assert_msg (reply != NULL, "Get %s failed: %s", id, error ? error->message : "");
  g_variant_get (reply, "(@a{sv})", &item);
  return item;
}

static char *
item_string (GVariant *item, const char *key)
{
  const char *value = NULL;

  ck_assert_msg (g_variant_lookup (item, key, "&s", &value), "item has no %s", key);
  return g_strdup (value);
}

static char *
item_state (const char *id)
{
  g_autoptr (GVariant) item = get_item (id);

  return item_string (item, "state");
}

/* The Idempotency-Key header as the agent sends it: a quoted UUID. */
static char *
sent_key (const char *id)
{
  g_autoptr (GVariant) item = get_item (id);
  g_autofree char *key = item_string (item, "idempotency_key");

  return g_strdup_printf ("\"%s\"", key);
}

/* @report names the first few items that are not in @state yet. */
static gboolean
all_in_state (GPtrArray *ids, const char *state, GString *report)
{
  guint others = 0;

  g_string_truncate (report, 0);
  for (guint i = 0; i < ids->len; i++)
    {
      g_autoptr (GVariant) item = get_item (ids->pdata[i]);
      g_autofree char *current = item_string (item, "state");
      g_autofree char *reason = item_string (item, "reason");

      if (!g_str_equal (current, state) && others++ < 5)
        g_string_append_printf (report, "\n  item %u of %u is %s (%s)", i, ids->len, current,
                                reason);
    }
  if (others > 5)
    g_string_append_printf (report, "\n  and %u more", others - 5);
  return others == 0;
}

static void
wait_for_states (GPtrArray *ids, const char *state, guint timeout_s)
{
  g_autoptr (GString) report = g_string_new (NULL);
  gint64 deadline = g_get_monotonic_time () + (gint64) patience_s (timeout_s) * G_USEC_PER_SEC;

  while (!all_in_state (ids, state, report))
    {
      ck_assert_msg (g_get_monotonic_time () < deadline, "items did not become %s in time:%s",
                     state, report->str);
      g_usleep (50 * 1000);
    }
}

static void
wait_for_state (const char *id, const char *state, guint timeout_s)
{
  g_autoptr (GPtrArray) ids = g_ptr_array_new ();

  g_ptr_array_add (ids, (char *) id);
  wait_for_states (ids, state, timeout_s);
}

/* Returns the reason once it contains @part. */
static char *
wait_for_reason (const char *id, const char *part)
{
  gint64 deadline = g_get_monotonic_time () + patience_s (30) * G_USEC_PER_SEC;
  g_autofree char *reason = NULL;

  for (;;)
    {
      g_autoptr (GVariant) item = get_item (id);

      g_free (reason);
      reason = item_string (item, "reason");
      if (strstr (reason, part) != NULL)
        return g_steal_pointer (&reason);
      ck_assert_msg (g_get_monotonic_time () < deadline, "the reason is still \"%s\"", reason);
      g_usleep (50 * 1000);
    }
}

static GVariant *
agent_property (const char *name)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      keyhold_test_env_get_bus (env), AGENT_NAME, AGENT_PATH, "org.freedesktop.DBus.Properties",
      "Get", g_variant_new ("(ss)", "org.keyhold.Agent1", name), G_VARIANT_TYPE ("(v)"),
      G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, &error);
  GVariant *value;

  ck_assert_msg (reply != NULL, "%s", error ? error->message : "");
  g_variant_get (reply, "(v)", &value);
  return value;
}

static char *
storage_error (void)
{
  g_autoptr (GVariant) value = agent_property ("StorageError");

  return g_variant_dup_string (value, NULL);
}

/* ---- the mock ---------------------------------------------------------------------- */

static void
mock_post (const char *path, const char *json)
{
  keyhold_test_mock_post (env, path, json);
}

/* The mock's /api requests carrying @key, oldest first. */
static GPtrArray *
api_requests_for (const char *key)
{
  g_autoptr (JsonNode) answer = keyhold_test_env_mock (env, "GET", "/api-requests", NULL);
  JsonArray *requests = json_object_get_array_member (json_node_get_object (answer), "requests");
  GPtrArray *matching = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);

  for (guint i = 0; i < json_array_get_length (requests); i++)
    {
      JsonObject *request = json_array_get_object_element (requests, i);
      JsonNode *request_key = json_object_get_member (request, "idempotency_key");

      if (request_key != NULL && JSON_NODE_HOLDS_VALUE (request_key)
          && g_strcmp0 (json_node_get_string (request_key), key) == 0)
        g_ptr_array_add (matching, json_object_ref (request));
    }
  return matching;
}

/* The mock's successful deliveries (one per Idempotency-Key) whose key is
 * in @keys, in arrival order. */
static GPtrArray *
deliveries_for (GHashTable *keys)
{
  g_autoptr (JsonNode) answer = keyhold_test_env_mock (env, "GET", "/api-deliveries", NULL);
  JsonArray *deliveries
      = json_object_get_array_member (json_node_get_object (answer), "deliveries");
  GPtrArray *matching = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);

  for (guint i = 0; i < json_array_get_length (deliveries); i++)
    {
      JsonObject *delivery = json_array_get_object_element (deliveries, i);
      const char *key
          = json_object_get_string_member_with_default (delivery, "idempotency_key", "");

      if (g_hash_table_contains (keys, key))
        g_ptr_array_add (matching, json_object_ref (delivery));
    }
  return matching;
}

static const char *
delivery_key (GPtrArray *deliveries, guint index)
{
  return json_object_get_string_member (deliveries->pdata[index], "idempotency_key");
}

static GHashTable *
sent_keys_of (GPtrArray *ids, GPtrArray *out_keys_in_order)
{
  GHashTable *keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < ids->len; i++)
    {
      char *key = sent_key (ids->pdata[i]);

      g_hash_table_add (keys, key);
      if (out_keys_in_order != NULL)
        g_ptr_array_add (out_keys_in_order, g_strdup (key));
    }
  return keys;
}

static const char *
request_header (JsonObject *request, const char *name)
{
  JsonObject *headers = json_object_get_object_member (request, "headers");

  return json_object_get_string_member_with_default (headers, name, NULL);
}

/* ---- 1. offline, then online ----------------------------------------------------- */

START_TEST (test_offline_enqueue_then_in_order_once_online)
{
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) keys_in_order = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) keys = NULL;
  g_autoptr (GPtrArray) deliveries = NULL;
  g_autoptr (GPtrArray) first_requests = NULL;
  g_autofree char *url = api_url ("/api/notes");

  sign_in ("fifo");
  mock_post ("/offline", NULL);
  for (guint i = 0; i < 5; i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"note\": %u}", i);
      g_autofree char *seq = g_strdup_printf ("%u", i);
      const char *headers[] = { "Content-Type", "application/json", "X-Seq", seq, NULL };

      g_ptr_array_add (ids, enqueue ("fifo", "notes", new_request ("POST", url, body, headers)));
    }
  /* Nothing can go out while the API is down. */
  g_usleep (500 * 1000);
  for (guint i = 0; i < ids->len; i++)
    {
      g_autofree char *state = item_state (ids->pdata[i]);

      ck_assert_msg (g_str_equal (state, "pending") || g_str_equal (state, "sending"),
                     "item %u is %s while offline", i, state);
    }
  keys = sent_keys_of (ids, keys_in_order);
  ck_assert_uint_eq (g_hash_table_size (keys), 5);

  /* The first request fails once, to show its key is the same on retry. */
  mock_post ("/api-script", "{\"statuses\": [503]}");
  mock_post ("/online", NULL);
  wait_for_states (ids, "done", 60);

  deliveries = deliveries_for (keys);
  ck_assert_uint_eq (deliveries->len, 5);
  for (guint i = 0; i < deliveries->len; i++)
    {
      JsonObject *delivery = deliveries->pdata[i];
      g_autofree char *body = g_strdup_printf ("{\"note\": %u}", i);

      ck_assert_str_eq (delivery_key (deliveries, i), keys_in_order->pdata[i]);
      ck_assert_str_eq (json_object_get_string_member (delivery, "body"), body);
      ck_assert_int_eq (json_object_get_int_member (delivery, "count"), 1);
      ck_assert_str_eq (json_object_get_string_member (delivery, "sub"), "user-alice-0001");
    }

  first_requests = api_requests_for (keys_in_order->pdata[0]);
  ck_assert_uint_eq (first_requests->len, 2);
  for (guint i = 0; i < keys_in_order->len; i++)
    {
      g_autoptr (GPtrArray) requests = api_requests_for (keys_in_order->pdata[i]);
      g_autofree char *seq = g_strdup_printf ("%u", i);

      for (guint r = 0; r < requests->len; r++)
        {
          JsonObject *request = requests->pdata[r];
          const char *authorization = request_header (request, "authorization");

          /* A valid bearer: the mock checked it, and it ran the script or
           * delivered, which it only does for valid tokens. */
          ck_assert_ptr_nonnull (authorization);
          ck_assert (g_str_has_prefix (authorization, "Bearer at-"));
          ck_assert_str_ne (json_object_get_string_member (request, "outcome"), "");
          ck_assert (!g_str_has_prefix (json_object_get_string_member (request, "outcome"),
                                        "invalid_token"));
          ck_assert_str_eq (request_header (request, "x-seq"), seq);
          ck_assert_str_eq (request_header (request, "content-type"), "application/json");
        }
    }
}
END_TEST

/* ---- 2. SIGKILL during enqueue and replay ------------------------------------------- */

#define ENQUEUE_WAVE 4

typedef struct
{
  char *id;
  gboolean answered;
} PendingEnqueue;

static void
on_enqueue_answered (GObject *source, GAsyncResult *result, gpointer user_data)
{
  PendingEnqueue *pending = user_data;
  g_autoptr (GVariant) reply
      = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, NULL);

  if (reply != NULL)
    g_variant_get (reply, "(s)", &pending->id);
  pending->answered = TRUE;
}

static void
start_enqueue (const char *account, PendingEnqueue *pending)
{
  g_autofree char *url = api_url ("/api/crash");

  g_dbus_connection_call (
      keyhold_test_env_get_bus (env), AGENT_NAME, AGENT_PATH, OUTBOX_INTERFACE, "Enqueue",
      g_variant_new ("(ss@a{sv})", account, "crash", new_request ("POST", url, "crash", NULL)),
      G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, on_enqueue_answered,
      pending);
}

/* Two waves of enqueues on one connection, so they reach the agent in
 * this order: the first wave is answered, the second is cut by a SIGKILL
 * after @kill_after_us. Adds the acknowledged ids to @acknowledged. */
static void
enqueue_then_kill (const char *account, gulong kill_after_us, GPtrArray *acknowledged)
{
  PendingEnqueue pending[2 * ENQUEUE_WAVE] = { { 0 } };

  for (guint i = 0; i < ENQUEUE_WAVE; i++)
    start_enqueue (account, &pending[i]);
  while (!pending[0].answered)
    g_main_context_iteration (NULL, TRUE);
  for (guint i = ENQUEUE_WAVE; i < 2 * ENQUEUE_WAVE; i++)
    start_enqueue (account, &pending[i]);
  g_usleep (kill_after_us);
  keyhold_test_env_kill_agent (env);
  /* The bus answers the calls the agent never did with NoReply. */
  for (guint i = 0; i < G_N_ELEMENTS (pending); i++)
    while (!pending[i].answered)
      g_main_context_iteration (NULL, TRUE);
  for (guint i = 0; i < G_N_ELEMENTS (pending); i++)
    if (pending[i].id != NULL)
      g_ptr_array_add (acknowledged, pending[i].id);
}

START_TEST (test_sigkill_loses_nothing_acknowledged)
{
  guint iterations = under_valgrind () ? 5 : 50;
  g_autoptr (GPtrArray) acknowledged = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) keys_in_order = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) keys = NULL;
  g_autoptr (GPtrArray) deliveries = NULL;
  /* Microseconds: under valgrind everything takes about ten times longer. */
  gint32 scale = under_valgrind () ? 10 : 1;
  guint resent = 0;

  sign_in ("crash");
  /* Every start refreshes (access tokens live only in memory), and a kill
   * can land after the provider rotated the refresh token but before the
   * agent stored the new one. That is the provider's grace window's job
   * (ARCHITECTURE.md, "Token lifetime"); here it keeps the account signed in, so that what is
   * tested is the outbox. */
  mock_post ("/settings", "{\"rotation_grace\": 3600}");
  /* Slow answers, so that kills also land between the server's processing
   * and the agent recording the outcome: the server sees a repeat then. */
  mock_post ("/faults", "{\"target\": \"api\", \"kind\": \"delay\", \"seconds\": 0.03, "
                        "\"count\": -1}");
  for (guint i = 0; i < iterations; i++)
    {
      enqueue_then_kill ("crash", (gulong) g_random_int_range (0, 20000 * scale), acknowledged);
      keyhold_test_env_start_agent (env, NULL);
      /* Let replay run for a while, then kill it in the middle. */
      g_usleep ((gulong) g_random_int_range (0, 250000 * scale));
      keyhold_test_env_kill_agent (env);
      keyhold_test_env_start_agent (env, NULL);
    }
  ck_assert_uint_ge (acknowledged->len, iterations);

  /* Every acknowledged item was kept and ends delivered ... */
  wait_for_states (acknowledged, "done", 120);
  mock_post ("/faults/clear", NULL);
  mock_post ("/settings", "{\"rotation_grace\": 0}");
  keys = sent_keys_of (acknowledged, keys_in_order);
  deliveries = deliveries_for (keys);
  /* ... exactly once as the server's de-duplication sees it, and in the
   * order it was queued in. */
  ck_assert_uint_eq (deliveries->len, acknowledged->len);
  for (guint i = 0; i < deliveries->len; i++)
    {
      ck_assert_str_eq (delivery_key (deliveries, i), keys_in_order->pdata[i]);
      if (json_object_get_int_member (deliveries->pdata[i], "count") > 1)
        resent++;
    }
  g_printerr ("SIGKILL: %u iterations, %u items acknowledged, %u of them reached the server "
              "more than once\n",
              iterations, acknowledged->len, resent);
}
END_TEST

/* ---- 3. the token expires mid-replay ------------------------------------------------- */

START_TEST (test_token_expiring_mid_replay_is_refreshed)
{
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) keys_in_order = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) keys = NULL;
  g_autoptr (GPtrArray) deliveries = NULL;
  g_autoptr (GPtrArray) first = NULL, second = NULL;
  g_autofree char *url = api_url ("/api/expiry");
  const char *first_token, *refreshed_token;
  guint refreshes_before;

  sign_in ("expiry");
  g_ptr_array_add (ids, enqueue ("expiry", "q", new_request ("PUT", url, "one", NULL)));
  wait_for_states (ids, "done", 30);

  /* The provider's clock runs two hours ahead: the token the agent holds
   * has expired as far as the API is concerned, though the agent does not
   * know yet. (No ID token on refresh: its iat would be in the future.) */
  mock_post ("/settings", "{\"clock_offset\": 7200, \"id_token_on_refresh\": false}");
  refreshes_before = keyhold_test_count_token_requests (env, "refresh_token");
  g_ptr_array_add (ids, enqueue ("expiry", "q", new_request ("PUT", url, "two", NULL)));
  g_ptr_array_add (ids, enqueue ("expiry", "q", new_request ("PUT", url, "three", NULL)));
  wait_for_states (ids, "done", 30);
  mock_post ("/settings", "{\"clock_offset\": 0, \"id_token_on_refresh\": true}");

  keys = sent_keys_of (ids, keys_in_order);
  deliveries = deliveries_for (keys);
  ck_assert_uint_eq (deliveries->len, 3);
  for (guint i = 0; i < 3; i++)
    ck_assert_str_eq (delivery_key (deliveries, i), keys_in_order->pdata[i]);

  /* Item two met the expired token (401), the agent refreshed once and
   * sent it again with the new token, which item three used as well. */
  first = api_requests_for (keys_in_order->pdata[1]);
  ck_assert_uint_eq (first->len, 2);
  ck_assert_int_eq (json_object_get_int_member (first->pdata[0], "status"), 401);
  ck_assert_str_eq (json_object_get_string_member (first->pdata[1], "outcome"), "ok");
  first_token = request_header (first->pdata[0], "authorization");
  refreshed_token = request_header (first->pdata[1], "authorization");
  ck_assert_str_ne (first_token, refreshed_token);
  second = api_requests_for (keys_in_order->pdata[2]);
  ck_assert_uint_eq (second->len, 1);
  ck_assert_str_eq (request_header (second->pdata[0], "authorization"), refreshed_token);
  ck_assert_uint_eq (keyhold_test_count_token_requests (env, "refresh_token"),
                     refreshes_before + 1);
}
END_TEST

/* ---- 4. invalid_grant mid-replay ---------------------------------------------------- */

START_TEST (test_invalid_grant_pauses_until_sign_in)
{
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) keys_in_order = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) keys = NULL;
  g_autoptr (GPtrArray) deliveries = NULL;
  g_autofree char *url = api_url ("/api/revoked");

  sign_in ("revoked");
  mock_post ("/offline", NULL);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *body = g_strdup_printf ("revoked %u", i);

      g_ptr_array_add (ids, enqueue ("revoked", "q", new_request ("POST", url, body, NULL)));
    }
  keys = sent_keys_of (ids, keys_in_order);
  /* The sign-in ends at the provider while the items wait. */
  mock_post ("/revoke-grants", "{}");
  mock_post ("/online", NULL);

  /* The head met a revoked token (401), the forced refresh got
   * invalid_grant: the account needs a new sign-in and the queue pauses. */
  wait_for_state (ids->pdata[0], "waiting", 60);
  {
    g_autofree char *account_state = keyhold_test_account_state (env, "revoked");

    ck_assert_str_eq (account_state, "needs-login");
  }
  g_usleep (500 * 1000);
  for (guint i = 1; i < ids->len; i++)
    {
      g_autofree char *state = item_state (ids->pdata[i]);

      ck_assert_str_eq (state, "pending");
    }
  {
    g_autoptr (GPtrArray) none = deliveries_for (keys);

    ck_assert_uint_eq (none->len, 0);
  }

  /* The same user signs in again: the items resume, in order. */
  keyhold_test_login (env, "revoked");
  wait_for_states (ids, "done", 60);
  deliveries = deliveries_for (keys);
  ck_assert_uint_eq (deliveries->len, 3);
  for (guint i = 0; i < 3; i++)
    ck_assert_str_eq (delivery_key (deliveries, i), keys_in_order->pdata[i]);
}
END_TEST

/* ---- 5. 5xx, 429 with Retry-After, success ------------------------------------------- */

typedef struct
{
  char *id;
  GPtrArray *changes; /* "state status" of every ItemChanged for @id */
} ChangeLog;

static void
on_item_changed (GDBusConnection *connection,
                 const char *sender_name,
                 const char *object_path,
                 const char *interface_name,
                 const char *signal_name,
                 GVariant *parameters,
                 gpointer user_data)
{
  ChangeLog *log = user_data;
  const char *id, *state;
  gint32 status;

  g_variant_get (parameters, "(&s&si)", &id, &state, &status);
  if (log->id != NULL && g_str_equal (id, log->id))
    g_ptr_array_add (log->changes, g_strdup_printf ("%s %d", state, status));
}

static gboolean
change_logged (ChangeLog *log, const char *change)
{
  return log->changes->len > 0 && g_str_equal (log->changes->pdata[log->changes->len - 1], change);
}

START_TEST (test_retries_follow_backoff_and_retry_after)
{
  g_autofree char *url = api_url ("/api/retry");
  g_autofree char *id = NULL, *key = NULL;
  g_autoptr (GPtrArray) requests = NULL;
  g_autoptr (GVariant) item = NULL;
  guint32 attempts = 0;
  gint32 status = 0;
  double first, second, third;
  ChangeLog log = { NULL, g_ptr_array_new_with_free_func (g_free) };
  const char *const expected_changes[] = {
    "pending 0",   "sending 0",   "pending 503", "sending 503",
    "pending 429", "sending 429", "done 200",
  };
  gint64 deadline;
  guint subscription;

  sign_in ("retry");
  mock_post ("/api-script", "{\"statuses\": [503, {\"status\": 429, \"retry_after\": 2}]}");
  subscription = g_dbus_connection_signal_subscribe (
      keyhold_test_env_get_bus (env), AGENT_NAME, OUTBOX_INTERFACE, "ItemChanged", AGENT_PATH, NULL,
      G_DBUS_SIGNAL_FLAGS_NONE, on_item_changed, &log, NULL);
  id = enqueue ("retry", "q", new_request ("DELETE", url, NULL, NULL));
  log.id = id;
  wait_for_state (id, "done", 60);

  /* Every state change was announced, with the status of the last answer.
   * Signals are dispatched only when this thread's main context runs, so
   * the id is known by the time the first one is looked at. */
  deadline = g_get_monotonic_time () + patience_s (10) * G_USEC_PER_SEC;
  while (!change_logged (&log, "done 200") && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (10 * 1000);
  g_dbus_connection_signal_unsubscribe (keyhold_test_env_get_bus (env), subscription);
  ck_assert_uint_eq (log.changes->len, G_N_ELEMENTS (expected_changes));
  for (guint i = 0; i < G_N_ELEMENTS (expected_changes); i++)
    ck_assert_str_eq (log.changes->pdata[i], expected_changes[i]);
  g_ptr_array_unref (log.changes);

  key = sent_key (id);
  requests = api_requests_for (key);
  ck_assert_uint_eq (requests->len, 3);
  ck_assert_int_eq (json_object_get_int_member (requests->pdata[0], "status"), 503);
  ck_assert_int_eq (json_object_get_int_member (requests->pdata[1], "status"), 429);
  ck_assert_int_eq (json_object_get_int_member (requests->pdata[2], "status"), 200);
  first = json_object_get_double_member (requests->pdata[0], "time");
  second = json_object_get_double_member (requests->pdata[1], "time");
  third = json_object_get_double_member (requests->pdata[2], "time");
  /* The first backoff is a whole second (full jitter over [1 s, 1 s]);
   * Retry-After: 2 is honoured even though the backoff would be shorter. */
  ck_assert_msg (second - first >= 0.9, "retried after %.2f s", second - first);
  ck_assert_msg (third - second >= 1.9, "Retry-After ignored: retried after %.2f s",
                 third - second);

  item = get_item (id);
  ck_assert (g_variant_lookup (item, "attempts", "u", &attempts));
  ck_assert (g_variant_lookup (item, "status", "i", &status));
  ck_assert_uint_eq (attempts, 3);
  ck_assert_int_eq (status, 200);
}
END_TEST

/* ---- 6. a 4xx fails, and a fresh process reads the response ---------------------------- */

/* ---- an account removed and added again ------------------------------------------------ */

static void
remove_account (const char *name)
{
  g_autofree char *out = NULL;

  ck_assert_int_eq (keyhold_test_run_cli (env, &out, NULL, "account", "remove", name, NULL), 0);
}

START_TEST (test_removed_account_added_again_resumes_for_the_same_user)
{
  g_autofree char *url = api_url ("/api/again");
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) keys_in_order = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) keys = NULL;
  g_autoptr (GPtrArray) deliveries = NULL;
  g_autofree char *reason = NULL;

  sign_in ("again");
  mock_post ("/offline", NULL);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *body = g_strdup_printf ("again %u", i);

      g_ptr_array_add (ids, enqueue ("again", "q", new_request ("POST", url, body, NULL)));
    }
  keys = sent_keys_of (ids, keys_in_order);
  /* The sign-in ends at the provider: the head waits for a new one, the
   * others behind it. */
  mock_post ("/revoke-grants", "{}");
  mock_post ("/online", NULL);
  wait_for_state (ids->pdata[0], "waiting", 60);

  /* Removed and added again, the account is signed in by another user:
   * the items try again, but do not go out under that user. */
  remove_account ("again");
  mock_post ("/settings", "{\"user\": {\"sub\": \"user-bob-0002\"}}");
  sign_in ("again");
  reason = wait_for_reason (ids->pdata[0], "another user");
  {
    g_autoptr (GPtrArray) none = deliveries_for (keys);

    ck_assert_uint_eq (none->len, 0);
  }

  /* Once more, with the user who queued them: they go out, in order,
   * without a restart of the agent. */
  remove_account ("again");
  mock_post ("/settings", "{\"user\": {\"sub\": \"user-alice-0001\"}}");
  sign_in ("again");
  wait_for_states (ids, "done", 60);
  deliveries = deliveries_for (keys);
  ck_assert_uint_eq (deliveries->len, 3);
  for (guint i = 0; i < 3; i++)
    ck_assert_str_eq (delivery_key (deliveries, i), keys_in_order->pdata[i]);
}
END_TEST

static char *failed_id;

START_TEST (test_4xx_fails_and_response_is_kept)
{
  g_autofree char *url = api_url ("/api/fail");
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  gint64 deadline;

  sign_in ("fail");
  mock_post ("/api-script", "{\"statuses\": [{\"status\": 422, \"headers\": {\"X-Failure\": "
                            "\"yes\"}, \"body\": \"{\\\"error\\\": \\\"MARKER-422\\\"}\"}]}");
  ck_assert_int_eq (keyhold_test_run_cli (env, &out, &err, "queue", "add", "fail", "POST", url,
                                          "--data", "hello", "--header", "Content-Type: text/plain",
                                          NULL),
                    0);
  failed_id = g_strstrip (g_steal_pointer (&out));
  ck_assert_uint_eq (strlen (failed_id), 36);

  /* Every `keyhold queue show` is a new process that was not running when
   * the outcome arrived. */
  deadline = g_get_monotonic_time () + patience_s (30) * G_USEC_PER_SEC;
  for (;;)
    {
      g_clear_pointer (&out, g_free);
      g_clear_pointer (&err, g_free);
      ck_assert_int_eq (keyhold_test_run_cli (env, &out, &err, "queue", "show", failed_id, NULL),
                        0);
      if (strstr (out, "failed") != NULL || g_get_monotonic_time () > deadline)
        break;
      g_usleep (100 * 1000);
    }
  ck_assert_msg (g_regex_match_simple ("^State: +failed$", out, G_REGEX_MULTILINE, 0), "%s", out);
  ck_assert_msg (strstr (out, "HTTP 422") != NULL, "%s", out);
  ck_assert_msg (strstr (out, "x-failure: yes") != NULL, "%s", out);
  ck_assert_msg (strstr (out, "{\"error\": \"MARKER-422\"}") != NULL, "%s", out);

  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  ck_assert_int_eq (
      keyhold_test_run_cli (env, &out, &err, "queue", "list", "--state", "failed", NULL), 0);
  ck_assert_msg (strstr (out, failed_id) != NULL, "%s", out);

  /* A finished item cannot be cancelled. */
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  ck_assert_int_eq (keyhold_test_run_cli (env, &out, &err, "queue", "cancel", failed_id, NULL), 1);
  ck_assert_msg (strstr (err, "InvalidArgument") != NULL, "%s", err);

  /* Items belong to the application that queued them (here the keyhold
   * CLI); this test program is another one and sees nothing. */
  reply = outbox_call ("Get", g_variant_new ("(s)", failed_id), "(a{sv})", &error);
  ck_assert_ptr_null (reply);
  ck_assert_str_eq (keyhold_test_error_name (error), "org.keyhold.Error.NotFound");
  g_clear_error (&error);
  reply = outbox_call ("Cancel", g_variant_new ("(s)", failed_id), "()", &error);
  ck_assert_ptr_null (reply);
  ck_assert_str_eq (keyhold_test_error_name (error), "org.keyhold.Error.NotFound");
}
END_TEST

/* ---- 7. refused requests ------------------------------------------------------------ */

START_TEST (test_off_origin_and_credentials_are_refused)
{
  g_autofree char *url = api_url ("/api/refused");
  const char *authorization[] = { "Authorization", "Bearer stolen", NULL };
  const char *lower_authorization[] = { "authorization", "Basic Zm9vOmJhcg==", NULL };
  const char *host[] = { "Host", "evil.example", NULL };
  const char *crlf[] = { "X-Injected", "a\r\nAuthorization: Bearer x", NULL };
  const char *idempotency[] = { "Idempotency-Key", "\"mine\"", NULL };
  g_autofree char *other_origin = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GError) error = NULL;

  sign_in ("strict");
  /* Another loopback address: still local, but not the allowed origin. */
  ck_assert (g_str_has_prefix (url, "http://127.0.0.1:"));
  other_origin = g_strconcat ("http://127.0.0.2:", url + strlen ("http://127.0.0.1:"), NULL);
  assert_refused ("strict", new_request ("POST", "https://evil.example/api/x", "x", NULL),
                  "org.keyhold.Error.InvalidArgument");
  assert_refused ("strict", new_request ("POST", other_origin, "x", NULL),
                  "org.keyhold.Error.InvalidArgument");
  assert_refused ("strict", new_request ("POST", "/api/relative", "x", NULL),
                  "org.keyhold.Error.InvalidArgument");
  assert_refused ("strict", new_request ("POST", url, "x", authorization),
                  "org.keyhold.Error.InvalidArgument");
  assert_refused ("strict", new_request ("POST", url, "x", lower_authorization),
                  "org.keyhold.Error.InvalidArgument");
  assert_refused ("strict", new_request ("POST", url, "x", host),
                  "org.keyhold.Error.InvalidArgument");
  assert_refused ("strict", new_request ("POST", url, "x", crlf),
                  "org.keyhold.Error.InvalidArgument");
  assert_refused ("strict", new_request ("POST", url, "x", idempotency),
                  "org.keyhold.Error.InvalidArgument");
  assert_refused ("strict", new_request ("GET /x", url, NULL, NULL),
                  "org.keyhold.Error.InvalidArgument");
  assert_refused ("strict", new_request ("TRACE", url, NULL, NULL),
                  "org.keyhold.Error.InvalidArgument");
  assert_refused ("nobody", new_request ("POST", url, "x", NULL),
                  "org.keyhold.Error.NoSuchAccount");
  {
    GVariantBuilder builder;

    g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add (&builder, "{sv}", "method", g_variant_new_string ("POST"));
    g_variant_builder_add (&builder, "{sv}", "url", g_variant_new_string (url));
    g_variant_builder_add (&builder, "{sv}", "bearer", g_variant_new_string ("x"));
    assert_refused ("strict", g_variant_builder_end (&builder),
                    "org.keyhold.Error.InvalidArgument");
  }

  /* Nothing of it was queued. */
  reply = outbox_call ("List",
                       g_variant_new ("(ss@as@a{sv})", "strict", "", g_variant_new_strv (NULL, 0),
                                      g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0)),
                       "(aa{sv})", &error);
  ck_assert_ptr_nonnull (reply);
  {
    g_autoptr (GVariant) items = g_variant_get_child_value (reply, 0);

    ck_assert_uint_eq (g_variant_n_children (items), 0);
  }
}
END_TEST

/* ---- 8. nothing in the clear on disk -------------------------------------------------- */

static void
assert_markers_absent (const char *dir,
                       const char *skip_dir,
                       const char *const *markers,
                       guint *inout_files)
{
  g_autoptr (GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;

  while (listing != NULL && (name = g_dir_read_name (listing)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *contents = NULL;
      gsize length;

      if (g_strcmp0 (path, skip_dir) == 0 || g_file_test (path, G_FILE_TEST_IS_SYMLINK))
        continue;
      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        {
          assert_markers_absent (path, skip_dir, markers, inout_files);
          continue;
        }
      if (!g_file_test (path, G_FILE_TEST_IS_REGULAR)
          || !g_file_get_contents (path, &contents, &length, NULL))
        continue;
      (*inout_files)++;
      for (guint i = 0; markers[i] != NULL; i++)
        ck_assert_msg (memmem (contents, length, markers[i], strlen (markers[i])) == NULL,
                       "%s holds %s in the clear", path, markers[i]);
    }
}

static void
assert_no_marker_on_disk (const char *const *markers)
{
  g_autofree char *keyring_dir
      = g_build_filename (keyhold_test_env_get_tmpdir (env), "keyring-data", NULL);
  g_autofree char *db = g_build_filename (g_get_user_data_dir (), "keyhold", "keyhold.db", NULL);
  g_autofree char *wal = g_strconcat (db, "-wal", NULL);
  guint files = 0;

  ck_assert (g_file_test (db, G_FILE_TEST_IS_REGULAR));
  ck_assert (g_file_test (wal, G_FILE_TEST_IS_REGULAR));
  assert_markers_absent (keyhold_test_env_get_tmpdir (env), keyring_dir, markers, &files);
  ck_assert_uint_gt (files, 2);
}

START_TEST (test_no_request_in_the_clear_on_disk)
{
  g_autofree char *nonce = g_uuid_string_random ();
  g_autofree char *body_marker = g_strconcat ("BODYMARKER-", nonce, NULL);
  g_autofree char *header_marker = g_strconcat ("HEADERMARKER-", nonce, NULL);
  g_autofree char *url_marker = g_strconcat ("URLMARKER-", nonce, NULL);
  g_autofree char *path_marker = g_strconcat ("PATHMARKER-", nonce, NULL);
  g_autofree char *path = g_strconcat ("/api/private/", path_marker, "?q=", url_marker, NULL);
  g_autofree char *url = api_url (path);
  const char *const markers[]
      = { body_marker, header_marker, url_marker, path_marker, nonce, NULL };
  const char *headers[] = { "X-Private", header_marker, NULL };
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) requests = NULL;
  g_autofree char *key = NULL;
  g_autofree char *reason = NULL;

  sign_in ("private");
  mock_post ("/offline", NULL);
  for (guint i = 0; i < 3; i++)
    g_ptr_array_add (ids,
                     enqueue ("private", "q", new_request ("POST", url, body_marker, headers)));
  /* At rest, queued, and after a transfer error, whose reason is stored in
   * the clear: it says what happened and where, but by the origin only. */
  reason = wait_for_reason (ids->pdata[0], "connect");
  ck_assert_msg (strstr (reason, keyhold_test_env_get_issuer (env)) != NULL, "%s", reason);
  assert_no_marker_on_disk (markers);

  mock_post ("/online", NULL);
  wait_for_states (ids, "done", 60);
  /* At rest, finished, with the responses kept. */
  assert_no_marker_on_disk (markers);

  /* The markers were real: the API got them. */
  key = sent_key (ids->pdata[0]);
  requests = api_requests_for (key);
  ck_assert_uint_ge (requests->len, 1);
  ck_assert_str_eq (json_object_get_string_member (requests->pdata[0], "body"), body_marker);
  ck_assert_str_eq (request_header (requests->pdata[0], "x-private"), header_marker);
}
END_TEST

/* ---- an item that cannot go out in time expires ---------------------------------------- */

START_TEST (test_max_age_expires_unsent_items)
{
  g_autofree char *url = api_url ("/api/late");
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GVariant) item = NULL;
  g_autofree char *reason = NULL;
  gint64 finished = 0;
  GVariantDict request;

  sign_in ("late");
  mock_post ("/offline", NULL);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr (GVariant) base = g_variant_ref_sink (new_request ("POST", url, "late", NULL));

      g_variant_dict_init (&request, base);
      g_variant_dict_insert (&request, "max_age", "u", 2);
      g_ptr_array_add (ids, enqueue ("late", "q", g_variant_dict_end (&request)));
    }
  wait_for_states (ids, "expired", 30);
  mock_post ("/online", NULL);

  item = get_item (ids->pdata[0]);
  reason = item_string (item, "reason");
  ck_assert_msg (strstr (reason, "max_age") != NULL, "%s", reason);
  ck_assert (g_variant_lookup (item, "finished", "x", &finished));
  ck_assert_int_gt (finished, 0);
}
END_TEST

/* ---- 9. size limits and quota ---------------------------------------------------------- */

static GVariant *
request_with_body_size (const char *url, gsize size)
{
  g_autofree char *body = g_malloc (size + 1);

  memset (body, 'b', size);
  body[size] = '\0';
  return new_request ("POST", url, body, NULL);
}

START_TEST (test_size_limits_and_quota)
{
  g_autofree char *url = api_url ("/api/quota");
  g_autoptr (GPtrArray) headers = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *long_value = g_strnfill (9000, 'v');
  const char *big_headers[] = { "X-One", long_value, "X-Two", long_value, NULL };
  g_autofree char *long_path = g_strnfill (8200, 'p');
  g_autofree char *long_url = g_strconcat (url, "/", long_path, NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *fits = NULL;
  guint accepted = 0;

  sign_in ("quota");
  mock_post ("/offline", NULL);

  assert_refused ("quota", request_with_body_size (url, MIB + 1),
                  "org.keyhold.Error.QuotaExceeded");
  for (guint i = 0; i < 65; i++)
    {
      g_ptr_array_add (headers, g_strdup_printf ("X-H%u", i));
      g_ptr_array_add (headers, g_strdup ("v"));
    }
  g_ptr_array_add (headers, NULL);
  assert_refused ("quota", new_request ("POST", url, "x", (const char *const *) headers->pdata),
                  "org.keyhold.Error.QuotaExceeded");
  assert_refused ("quota", new_request ("POST", url, "x", big_headers),
                  "org.keyhold.Error.QuotaExceeded");
  assert_refused ("quota", new_request ("POST", long_url, "x", NULL),
                  "org.keyhold.Error.QuotaExceeded");

  /* 100 MiB of unsent requests per application, each charged its size
   * plus 512 bytes: 99 bodies of 1 MiB fit, the 100th does not. */
  for (;;)
    {
      char *id = try_enqueue ("quota", "big", request_with_body_size (url, MIB), &error);

      if (id == NULL)
        break;
      g_ptr_array_add (ids, id);
      accepted++;
      ck_assert_uint_le (accepted, 100);
    }
  ck_assert_str_eq (keyhold_test_error_name (error), "org.keyhold.Error.QuotaExceeded");
  ck_assert_uint_eq (accepted, 99);

  /* A cancelled item no longer counts. */
  {
    g_autoptr (GVariant) reply
        = outbox_call ("Cancel", g_variant_new ("(s)", ids->pdata[0]), "()", NULL);

    ck_assert_ptr_nonnull (reply);
  }
  fits = enqueue ("quota", "big", request_with_body_size (url, MIB));
  g_ptr_array_add (ids, g_steal_pointer (&fits));
  for (guint i = 1; i < ids->len; i++)
    {
      g_autoptr (GVariant) reply
          = outbox_call ("Cancel", g_variant_new ("(s)", ids->pdata[i]), "()", NULL);

      ck_assert_ptr_nonnull (reply);
    }
  wait_for_states (ids, "cancelled", 10);
  mock_post ("/online", NULL);
}
END_TEST

/* ---- damaged storage --------------------------------------------------------------------- */

static char *
database_path (void)
{
  return g_build_filename (g_get_user_data_dir (), "keyhold", "keyhold.db", NULL);
}

static void
assert_storage_refused (void)
{
  g_autofree char *url = api_url ("/api/x");
  g_autofree char *message = storage_error ();
  g_autofree char *out = NULL;

  ck_assert_str_ne (message, "");
  assert_refused ("fifo", new_request ("POST", url, "x", NULL), "org.keyhold.Error.Storage");
  ck_assert_int_eq (keyhold_test_run_cli (env, &out, NULL, "status", NULL), 0);
  ck_assert_msg (strstr (out, "Storage problem:") != NULL, "%s", out);
}

START_TEST (test_damaged_database_is_reported_and_left_alone)
{
  g_autofree char *path = database_path ();
  g_autofree char *original = NULL, *after = NULL, *out = NULL;
  gsize length, after_length;

  ck_assert_int_eq (keyhold_test_env_stop_agent (env), 0);
  ck_assert (g_file_get_contents (path, &original, &length, NULL));
  /* A clean stop leaves everything in the main file. */
  ck_assert_uint_gt (length, 8192);
  ck_assert (g_file_set_contents (path, original, length / 2, NULL));

  keyhold_test_env_start_agent (env, NULL);
  assert_storage_refused ();
  {
    g_autofree char *message = storage_error ();

    ck_assert_msg (strstr (message, "left as it is") != NULL, "%s", message);
  }
  ck_assert_int_eq (keyhold_test_env_stop_agent (env), 0);
  ck_assert (g_file_get_contents (path, &after, &after_length, NULL));
  ck_assert_uint_eq (after_length, length / 2);
  ck_assert_int_eq (memcmp (after, original, after_length), 0);

  /* Put back, everything is there again. */
  ck_assert (g_file_set_contents (path, original, length, NULL));
  keyhold_test_env_start_agent (env, NULL);
  {
    g_autofree char *message = storage_error ();

    ck_assert_str_eq (message, "");
  }
  ck_assert_int_eq (keyhold_test_run_cli (env, &out, NULL, "queue", "show", failed_id, NULL), 0);
  ck_assert_msg (strstr (out, "MARKER-422") != NULL, "%s", out);
}
END_TEST

/* The keyring is changed through secret-tool, in a process of its own:
 * libsecret in this process would leave proxies behind that valgrind
 * reports. Attributes as the agent stores its key (agent/keyring.c),
 * spelled out independently. */
static GBytes *
secret_tool (const char *command, GBytes *input, int *out_status)
{
  const char *argv[] = { "secret-tool",
                         command,
                         "--label=keyhold outbox key",
                         "xdg:schema",
                         "org.keyhold.Secret",
                         "kind",
                         "outbox-key",
                         "account",
                         "",
                         "issuer",
                         "",
                         NULL };
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  g_autoptr (GSubprocess) process = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) no_input = g_bytes_new (NULL, 0);
  GBytes *output = NULL;

  /* Only "store" takes a label. */
  for (guint i = 0; argv[i] != NULL; i++)
    if (i != 2 || g_str_equal (command, "store"))
      g_ptr_array_add (args, (char *) argv[i]);
  g_ptr_array_add (args, NULL);
  process = keyhold_test_env_spawn (env, (const char *const *) args->pdata,
                                    G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                                    &error);
  ck_assert_msg (process != NULL, "%s", error ? error->message : "");
  ck_assert_msg (g_subprocess_communicate (process, input != NULL ? input : no_input, NULL, &output,
                                           NULL, &error),
                 "%s", error ? error->message : "");
  *out_status = g_subprocess_get_exit_status (process);
  return output;
}

/* NULL when the keyring has no outbox key. */
static GBytes *
look_up_outbox_key (void)
{
  int status;
  g_autoptr (GBytes) key = secret_tool ("lookup", NULL, &status);

  return status == 0 && g_bytes_get_size (key) > 0 ? g_steal_pointer (&key) : NULL;
}

static void
delete_outbox_key (void)
{
  int status;
  g_autoptr (GBytes) output = secret_tool ("clear", NULL, &status);

  ck_assert_int_eq (status, 0);
}

static void
store_outbox_key (GBytes *key)
{
  int status;
  g_autoptr (GBytes) output = secret_tool ("store", key, &status);

  ck_assert_int_eq (status, 0);
}

static int
count_rows (const char *path)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *statement = NULL;
  int count = -1;

  ck_assert_int_eq (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  if (sqlite3_prepare_v2 (db, "SELECT count (*) FROM outbox_items", -1, &statement, NULL)
          == SQLITE_OK
      && sqlite3_step (statement) == SQLITE_ROW)
    count = sqlite3_column_int (statement, 0);
  sqlite3_finalize (statement);
  sqlite3_close (db);
  return count;
}

START_TEST (test_missing_key_is_reported_and_rows_kept)
{
  g_autofree char *path = database_path ();
  g_autoptr (GBytes) key = NULL;
  g_autofree char *out = NULL;
  int rows;

  ck_assert_int_eq (keyhold_test_env_stop_agent (env), 0);
  rows = count_rows (path);
  ck_assert_int_gt (rows, 0);
  key = look_up_outbox_key ();
  ck_assert_msg (key != NULL, "no outbox key in the keyring");
  ck_assert_uint_eq (g_bytes_get_size (key), 32);
  delete_outbox_key ();

  keyhold_test_env_start_agent (env, NULL);
  {
    gint64 deadline = g_get_monotonic_time () + patience_s (20) * G_USEC_PER_SEC;
    g_autofree char *message = NULL;

    /* The key is looked up in the background after start. */
    while ((message = storage_error ()) != NULL && *message == '\0'
           && g_get_monotonic_time () < deadline)
      {
        g_clear_pointer (&message, g_free);
        g_usleep (50 * 1000);
      }
    ck_assert_msg (strstr (message, "key is missing") != NULL, "%s", message);
  }
  assert_storage_refused ();
  ck_assert_int_eq (keyhold_test_env_stop_agent (env), 0);
  /* No new key was made behind the user's back, and nothing was dropped. */
  {
    g_autoptr (GBytes) none = look_up_outbox_key ();

    ck_assert_ptr_null (none);
  }
  ck_assert_int_eq (count_rows (path), rows);

  /* With the key back, the items are readable again. */
  store_outbox_key (key);
  keyhold_test_env_start_agent (env, NULL);
  ck_assert_int_eq (keyhold_test_run_cli (env, &out, NULL, "queue", "show", failed_id, NULL), 0);
  ck_assert_msg (strstr (out, "MARKER-422") != NULL, "%s", out);
}
END_TEST

/* ---- calls waiting for the key while the keyring prompts -------------------------------- */

typedef struct
{
  GPtrArray *error_names;
  guint answered;
} KeyWaitReplies;

static void
on_key_wait_answered (GObject *source, GAsyncResult *result, gpointer user_data)
{
  KeyWaitReplies *replies = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply
      = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  g_ptr_array_add (replies->error_names,
                   g_strdup (reply != NULL ? "success" : keyhold_test_error_name (error)));
  replies->answered++;
}

static GSubprocess *
start_stalled_prompter (GDataInputStream **out_output)
{
  g_autofree char *script = g_build_filename (g_getenv ("KEYHOLD_SOURCE_DIR"), "tests",
                                              "integration", "stalled-prompter.py", NULL);
  const char *argv[] = { g_getenv ("KEYHOLD_PYTHON"), script, NULL };
  g_autoptr (GError) error = NULL;
  g_autofree char *ready = NULL;
  GSubprocess *prompter;

  prompter = keyhold_test_env_spawn (
      env, argv, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  ck_assert_msg (prompter != NULL, "%s", error ? error->message : "");
  *out_output = g_data_input_stream_new (g_subprocess_get_stdout_pipe (prompter));
  ready = g_data_input_stream_read_line (*out_output, NULL, NULL, &error);
  ck_assert_str_eq (ready, "ready");
  return prompter;
}

static void
lock_keyring (void)
{
  g_autoptr (GError) error = NULL;
  const char *collection[] = { "/org/freedesktop/secrets/collection/login", NULL };
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      keyhold_test_env_get_bus (env), "org.freedesktop.secrets", "/org/freedesktop/secrets",
      "org.freedesktop.Secret.Service", "Lock",
      g_variant_new ("(@ao)", g_variant_new_objv (collection, -1)), G_VARIANT_TYPE ("(aoo)"),
      G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, &error);

  ck_assert_msg (reply != NULL, "%s", error ? error->message : "");
}

/* The agent asks for the outbox key at start, the keyring is locked and
 * its unlock prompt is never answered. Calls that need the key wait a
 * bounded time, and only so many of them at once. Locks the keyring for
 * good: the last test. */
START_TEST (test_calls_waiting_for_the_key_are_bounded)
{
  g_autofree char *url = api_url ("/api/quota");
  g_autoptr (GSubprocess) prompter = NULL;
  g_autoptr (GDataInputStream) prompter_output = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *prompt = NULL;
  KeyWaitReplies replies = { g_ptr_array_new_with_free_func (g_free), 0 };
  const guint calls = 24;
  guint refused = 0, timed_out = 0;

  ck_assert_int_eq (keyhold_test_env_stop_agent (env), 0);
  prompter = start_stalled_prompter (&prompter_output);
  lock_keyring ();
  keyhold_test_env_start_agent (env, NULL);
  /* The database records a key, so the agent asks for it now. */
  prompt = g_data_input_stream_read_line (prompter_output, NULL, NULL, &error);
  ck_assert_str_eq (prompt, "prompt");

  /* 1 MiB each: 24 MiB waiting would be too much to hold. */
  for (guint i = 0; i < calls; i++)
    g_dbus_connection_call (
        keyhold_test_env_get_bus (env), AGENT_NAME, AGENT_PATH, OUTBOX_INTERFACE, "Enqueue",
        g_variant_new ("(ss@a{sv})", "quota", "locked", request_with_body_size (url, MIB)),
        G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, on_key_wait_answered,
        &replies);
  while (replies.answered < calls)
    g_main_context_iteration (NULL, TRUE);

  /* Those over the cap are refused at once, before any of the others
   * gives up waiting; the others fail with the reason, not by the
   * caller's D-Bus timeout. */
  for (guint i = 0; i < calls; i++)
    {
      const char *name = replies.error_names->pdata[i];

      if (g_str_equal (name, "org.keyhold.Error.QuotaExceeded"))
        {
          ck_assert_msg (timed_out == 0, "a call was refused after another one timed out");
          refused++;
        }
      else
        {
          ck_assert_str_eq (name, "org.keyhold.Error.Keyring");
          timed_out++;
        }
    }
  ck_assert_uint_gt (refused, 0);
  ck_assert_uint_gt (timed_out, 0);

  /* Gone, the prompter dismisses the prompt; the agent still stops cleanly. */
  ck_assert (g_output_stream_close (g_subprocess_get_stdin_pipe (prompter), NULL, NULL));
  ck_assert (g_subprocess_wait (prompter, NULL, NULL));
  g_ptr_array_unref (replies.error_names);
}
END_TEST

int
main (void)
{
  SRunner *runner;
  Suite *suite = suite_create ("outbox");
  TCase *tcase = tcase_create ("outbox");
  int failed;

  tcase_set_timeout (tcase, under_valgrind () ? 3000 : 300);
  tcase_add_test (tcase, test_offline_enqueue_then_in_order_once_online);
  tcase_add_test (tcase, test_sigkill_loses_nothing_acknowledged);
  tcase_add_test (tcase, test_token_expiring_mid_replay_is_refreshed);
  tcase_add_test (tcase, test_retries_follow_backoff_and_retry_after);
  tcase_add_test (tcase, test_4xx_fails_and_response_is_kept);
  tcase_add_test (tcase, test_off_origin_and_credentials_are_refused);
  tcase_add_test (tcase, test_no_request_in_the_clear_on_disk);
  tcase_add_test (tcase, test_max_age_expires_unsent_items);
  tcase_add_test (tcase, test_size_limits_and_quota);
  /* Revoke every grant at the mock: after the tests that rely on theirs. */
  tcase_add_test (tcase, test_invalid_grant_pauses_until_sign_in);
  tcase_add_test (tcase, test_removed_account_added_again_resumes_for_the_same_user);
  tcase_add_test (tcase, test_damaged_database_is_reported_and_left_alone);
  tcase_add_test (tcase, test_missing_key_is_reported_and_rows_kept);
  /* Leaves the keyring locked: last. */
  tcase_add_test (tcase, test_calls_waiting_for_the_key_are_bounded);
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
  g_clear_pointer (&failed_id, g_free);
  /* The agent must also end cleanly (under valgrind: without errors). */
  if (keyhold_test_env_stop_agent (env) != 0)
    failed++;
  keyhold_test_env_stop (env);
  return failed == 0 ? 0 : 1;
}
