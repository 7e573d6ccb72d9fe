/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <sodium.h>
#include <string.h>

#include "keyhold-contract.h"

#include "accounts/identity.h"
#include "base/clock.h"

#define CLIENT_ID "keyhold-desktop"
#define SUBJECT "248289761001"

/* ---- display names ------------------------------------------------------ */

static const char *
display_name_of (const char *claims_json)
{
  static char name[64];
  g_autoptr (JsonNode) node = json_from_string (claims_json, NULL);

  ck_assert_ptr_nonnull (node);
  g_strlcpy (name, keyhold_identity_display_name (json_node_get_object (node)), sizeof name);
  return name;
}

START_TEST (test_display_name_fallback_order)
{
  ck_assert_str_eq (display_name_of ("{\"name\":\"Ada\",\"email\":\"ada@example.org\","
                                     "\"preferred_username\":\"ada\",\"sub\":\"1\"}"),
                    "Ada");
  ck_assert_str_eq (display_name_of ("{\"email\":\"ada@example.org\","
                                     "\"preferred_username\":\"ada\",\"sub\":\"1\"}"),
                    "ada@example.org");
  ck_assert_str_eq (display_name_of ("{\"preferred_username\":\"ada\",\"sub\":\"1\"}"), "ada");
  ck_assert_str_eq (display_name_of ("{\"sub\":\"1\"}"), "1");
  ck_assert_str_eq (display_name_of ("{}"), "");
}
END_TEST

/* An empty, null or non-string claim is passed over, not shown. */
START_TEST (test_display_name_skips_unusable_claims)
{
  ck_assert_str_eq (display_name_of ("{\"name\":\"\",\"email\":\"ada@example.org\"}"),
                    "ada@example.org");
  ck_assert_str_eq (display_name_of ("{\"name\":null,\"email\":5,\"preferred_username\":{},"
                                     "\"sub\":\"1\"}"),
                    "1");
  ck_assert_str_eq (display_name_of ("{\"name\":[\"Ada\"],\"email\":true,"
                                     "\"preferred_username\":\"\",\"sub\":\"\"}"),
                    "");
}
END_TEST

/* ---- validation against a provider cache -------------------------------- */

/* Serves one canned answer to every request, from a worker thread, and
 * counts the requests. */
typedef struct
{
  GSocketService *service;
  guint16 port;
  char *reply;
  gint requests;
} TestServer;

static gboolean
on_run (GThreadedSocketService *service,
        GSocketConnection *connection,
        GObject *source,
        gpointer user_data)
{
  TestServer *server = user_data;
  GInputStream *input = g_io_stream_get_input_stream (G_IO_STREAM (connection));
  GOutputStream *output = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  g_autoptr (GString) received = g_string_new (NULL);
  char buffer[1024];

  while (strstr (received->str, "\r\n\r\n") == NULL)
    {
      gssize n = g_input_stream_read (input, buffer, sizeof buffer, NULL, NULL);

      if (n <= 0)
        return TRUE;
      g_string_append_len (received, buffer, n);
    }
  g_atomic_int_inc (&server->requests);
  g_output_stream_write_all (output, server->reply, strlen (server->reply), NULL, NULL, NULL);
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  return TRUE;
}

static TestServer *
test_server_new (const char *body)
{
  TestServer *server = g_new0 (TestServer, 1);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  server->reply = g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                   "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                                   strlen (body), body);
  server->service = g_threaded_socket_service_new (2);
  g_signal_connect (server->service, "run", G_CALLBACK (on_run), server);
  ck_assert (g_socket_listener_add_address (G_SOCKET_LISTENER (server->service), address,
                                            G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL,
                                            &bound, NULL));
  server->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_socket_service_start (server->service);
  return server;
}

static void
test_server_free (TestServer *server)
{
  g_socket_service_stop (server->service);
  g_socket_listener_close (G_SOCKET_LISTENER (server->service));
  g_object_unref (server->service);
  g_free (server->reply);
  g_free (server);
}

/* A port nothing listens on: bound, then closed. */
static guint16
closed_port (void)
{
  g_autoptr (GSocket) socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  ck_assert (g_socket_bind (socket, address, FALSE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static guint8 old_public[crypto_sign_PUBLICKEYBYTES], old_secret[crypto_sign_SECRETKEYBYTES];
static guint8 new_public[crypto_sign_PUBLICKEYBYTES], new_secret[crypto_sign_SECRETKEYBYTES];

static char *tmpdir;
static KeyholdStore *store;
static KeyholdHttp *http;
static KeyholdProviderCache *providers;
static KeyholdProviderMetadata metadata;

static char *
base64url (const void *data, gsize length)
{
  gsize size = sodium_base64_ENCODED_LEN (length, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  char *text = g_malloc (size);

  return sodium_bin2base64 (text, size, data, length, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static char *
jwk (const char *kid, const guint8 *public_key)
{
  g_autofree char *x = base64url (public_key, crypto_sign_PUBLICKEYBYTES);

  return g_strdup_printf ("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"%s\",\"x\":\"%s\"}", kid,
                          x);
}

static char *
old_key_set (void)
{
  g_autofree char *old_key = jwk ("old", old_public);

  return g_strdup_printf ("{\"keys\":[%s]}", old_key);
}

static char *
rotated_key_set (void)
{
  g_autofree char *old_key = jwk ("old", old_public);
  g_autofree char *new_key = jwk ("new", new_public);

  return g_strdup_printf ("{\"keys\":[%s,%s]}", old_key, new_key);
}

static void
on_store_failed (const char *issuer, const GError *error, gpointer user_data)
{
  ck_abort_msg ("store write failed: %s", error->message);
}

/* The provider at @port, with a key set fetched just now in the store. */
static void
set_up_provider (guint16 port, const char *stored_jwks)
{
  g_autoptr (GError) error = NULL;

  metadata.issuer = g_strdup_printf ("http://127.0.0.1:%u", port);
  metadata.jwks_uri = g_strdup_printf ("http://127.0.0.1:%u/jwks", port);
  ck_assert (keyhold_store_put_provider_jwks (store, metadata.issuer, stored_jwks,
                                              keyhold_clock_now_s (), &error));
  providers = keyhold_provider_cache_new (http, store, on_store_failed, NULL);
}

static void
setup (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;

  tmpdir = g_dir_make_tmp ("test-identity-XXXXXX", &error);
  ck_assert_ptr_nonnull (tmpdir);
  path = g_build_filename (tmpdir, "keyhold.db", NULL);
  store = keyhold_store_open (path, &error);
  ck_assert_msg (store != NULL, "%s", error != NULL ? error->message : "");
  http = keyhold_http_new ();
  memset (&metadata, 0, sizeof metadata);
}

static void
teardown (void)
{
  g_autofree char *path = g_build_filename (tmpdir, "keyhold.db", NULL);

  g_clear_pointer (&providers, keyhold_provider_cache_free);
  keyhold_http_free (http);
  keyhold_store_close (store);
  g_free (metadata.issuer);
  g_free (metadata.jwks_uri);
  g_unlink (path);
  g_rmdir (tmpdir);
  g_free (tmpdir);
}

typedef struct
{
  gboolean done;
  JsonObject *claims;
  GError *error;
  KeyholdIdentityFailure failure;
} Outcome;

static void
on_validated (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Outcome *outcome = user_data;

  outcome->claims = keyhold_identity_validate_finish (result, &outcome->failure, &outcome->error);
  outcome->done = TRUE;
}

static char *
make_token (const char *kid, const guint8 *secret_key, const char *nonce)
{
  gint64 now = keyhold_clock_now_s ();
  g_autofree char *header_json = g_strdup_printf ("{\"alg\":\"EdDSA\",\"kid\":\"%s\"}", kid);
  g_autofree char *nonce_claim
      = nonce != NULL ? g_strdup_printf (",\"nonce\":\"%s\"", nonce) : g_strdup ("");
  g_autofree char *claims_json
      = g_strdup_printf ("{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"%s\",\"iat\":%" G_GINT64_FORMAT
                         ",\"exp\":%" G_GINT64_FORMAT ",\"name\":\"Ada\"%s}",
                         metadata.issuer, CLIENT_ID, SUBJECT, now, now + 600, nonce_claim);
  g_autofree char *header = base64url (header_json, strlen (header_json));
  g_autofree char *claims = base64url (claims_json, strlen (claims_json));
  g_autofree char *input = g_strconcat (header, ".", claims, NULL);
  guint8 signature[crypto_sign_BYTES];
  g_autofree char *signature_text = NULL;

  crypto_sign_detached (signature, NULL, (const guint8 *) input, strlen (input), secret_key);
  signature_text = base64url (signature, sizeof signature);
  return g_strconcat (input, ".", signature_text, NULL);
}

static void
validate (const char *token,
          const char *client_id,
          const char *nonce,
          const char *subject,
          Outcome *outcome)
{
  g_autoptr (KeyholdSecret) id_token = keyhold_secret_new_from_string (token);

  memset (outcome, 0, sizeof *outcome);
  keyhold_identity_validate_async (providers, &metadata, id_token, client_id, nonce, subject, NULL,
                                   on_validated, outcome);
  while (!outcome->done)
    g_main_context_iteration (NULL, TRUE);
}

static void
assert_accepted (Outcome *outcome)
{
  ck_assert_msg (outcome->claims != NULL, "rejected: %s", outcome->error->message);
  ck_assert_str_eq (json_object_get_string_member (outcome->claims, "sub"), SUBJECT);
  ck_assert_str_eq (keyhold_identity_display_name (outcome->claims), "Ada");
  json_object_unref (outcome->claims);
}

/* The account acts on the kind: only OTHER_IDENTITY ends a sign-in. */
static void
assert_rejected (Outcome *outcome, KeyholdIdentityFailure expected)
{
  ck_assert_ptr_null (outcome->claims);
  ck_assert_msg (g_error_matches (outcome->error, KEYHOLD_ERROR, KEYHOLD_ERROR_PROVIDER_ERROR),
                 "%s", outcome->error != NULL ? outcome->error->message : "no error");
  ck_assert_int_eq (outcome->failure, expected);
  g_clear_error (&outcome->error);
}

/* A fresh stored key set is used as it is: the provider is not asked. */
START_TEST (test_valid_token_with_stored_keys)
{
  g_autofree char *keys = old_key_set ();
  g_autofree char *token = NULL;
  Outcome outcome;

  set_up_provider (closed_port (), keys);
  token = make_token ("old", old_secret, "n-1");
  validate (token, CLIENT_ID, "n-1", NULL, &outcome);
  assert_accepted (&outcome);

  /* A refresh: no nonce expected, the subject must stay. */
  validate (token, CLIENT_ID, NULL, SUBJECT, &outcome);
  assert_accepted (&outcome);
}
END_TEST

START_TEST (test_claims_checked)
{
  g_autofree char *keys = old_key_set ();
  g_autofree char *token = NULL;
  Outcome outcome;

  set_up_provider (closed_port (), keys);
  token = make_token ("old", old_secret, "n-1");
  validate (token, "other-client", "n-1", NULL, &outcome);
  assert_rejected (&outcome, KEYHOLD_IDENTITY_OTHER_IDENTITY);
  validate (token, CLIENT_ID, "n-2", NULL, &outcome);
  assert_rejected (&outcome, KEYHOLD_IDENTITY_INVALID);
  validate (token, CLIENT_ID, NULL, "someone-else", &outcome);
  assert_rejected (&outcome, KEYHOLD_IDENTITY_OTHER_IDENTITY);
}
END_TEST

/* The token names a key the stored set lacks: the set is fetched again,
 * once, and the rotated key verifies. */
START_TEST (test_rotated_key_fetched_once)
{
  g_autofree char *stored = old_key_set ();
  g_autofree char *served = rotated_key_set ();
  TestServer *server = test_server_new (served);
  g_autofree char *token = NULL;
  Outcome outcome;

  set_up_provider (server->port, stored);
  token = make_token ("new", new_secret, NULL);
  validate (token, CLIENT_ID, NULL, NULL, &outcome);
  assert_accepted (&outcome);
  ck_assert_int_eq (g_atomic_int_get (&server->requests), 1);

  /* The fetched set is now the cached one: no further request. */
  validate (token, CLIENT_ID, NULL, NULL, &outcome);
  assert_accepted (&outcome);
  ck_assert_int_eq (g_atomic_int_get (&server->requests), 1);
  test_server_free (server);
}
END_TEST

/* A kid the provider does not know even after a refetch is refused after
 * exactly one more request, not retried in a loop. */
START_TEST (test_unknown_key_refetched_only_once)
{
  g_autofree char *stored = old_key_set ();
  TestServer *server = test_server_new (stored);
  g_autofree char *token = NULL;
  Outcome outcome;

  set_up_provider (server->port, stored);
  token = make_token ("new", new_secret, NULL);
  validate (token, CLIENT_ID, NULL, NULL, &outcome);
  assert_rejected (&outcome, KEYHOLD_IDENTITY_INVALID);
  ck_assert_int_eq (g_atomic_int_get (&server->requests), 1);
  test_server_free (server);
}
END_TEST

/* Offline: the refetch for an unknown key fails. That says nothing about
 * the token, so it is UNVERIFIED (transient), not INVALID; a stored key
 * still works. */
START_TEST (test_unknown_key_offline)
{
  g_autofree char *stored = old_key_set ();
  g_autofree char *token = NULL;
  Outcome outcome;

  set_up_provider (closed_port (), stored);
  token = make_token ("new", new_secret, NULL);
  validate (token, CLIENT_ID, NULL, NULL, &outcome);
  assert_rejected (&outcome, KEYHOLD_IDENTITY_UNVERIFIED);

  /* A key that is stored still works. */
  g_free (token);
  token = make_token ("old", old_secret, NULL);
  validate (token, CLIENT_ID, NULL, NULL, &outcome);
  assert_accepted (&outcome);
}
END_TEST

/* The stored copy is read back from a file: it is held to the same bounds
 * as a fetched one, so a damaged store cannot crash the agent. */
START_TEST (test_stored_key_set_is_untrusted)
{
  GString *deep = g_string_new ("{\"keys\":[],\"x\":");
  g_autofree char *stored = NULL;
  g_autofree char *token = NULL;
  Outcome outcome;

  for (guint i = 0; i < 300000; i++)
    g_string_append_c (deep, '[');
  for (guint i = 0; i < 300000; i++)
    g_string_append_c (deep, ']');
  g_string_append_c (deep, '}');
  stored = g_string_free (deep, FALSE);

  set_up_provider (closed_port (), stored);
  token = make_token ("old", old_secret, NULL);
  validate (token, CLIENT_ID, NULL, NULL, &outcome);
  assert_rejected (&outcome, KEYHOLD_IDENTITY_UNVERIFIED);
}
END_TEST

int
main (void)
{
  Suite *suite = suite_create ("identity");
  TCase *names = tcase_create ("display-name");
  TCase *validation = tcase_create ("validate");
  SRunner *runner;
  int failed;

  g_assert_cmpint (sodium_init (), >=, 0);
  crypto_sign_keypair (old_public, old_secret);
  crypto_sign_keypair (new_public, new_secret);

  tcase_add_test (names, test_display_name_fallback_order);
  tcase_add_test (names, test_display_name_skips_unusable_claims);
  suite_add_tcase (suite, names);

  tcase_add_checked_fixture (validation, setup, teardown);
  tcase_add_test (validation, test_valid_token_with_stored_keys);
  tcase_add_test (validation, test_claims_checked);
  tcase_add_test (validation, test_rotated_key_fetched_once);
  tcase_add_test (validation, test_unknown_key_refetched_only_once);
  tcase_add_test (validation, test_unknown_key_offline);
  tcase_add_test (validation, test_stored_key_set_is_untrusted);
  suite_add_tcase (suite, validation);

  runner = srunner_create (suite);
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
