/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <string.h>

#include "oidc/oauth.h"
#include "oidc/provider.h"
#include "base/untrusted-json.h"

#define SENT_AT_US G_GINT64_CONSTANT (1700000000000000)
#define ISSUER "https://id.example.com"
#define LOOPBACK_ISSUER "http://127.0.0.1:8080"

static KeyholdTokenResponse *
parse_token (guint status, const char *body, GError **error)
{
  return keyhold_oauth_parse_token_response (status, body, strlen (body), SENT_AT_US, error);
}

static void
assert_token_error (guint status, const char *body, KeyholdOAuthError code)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdTokenResponse) response = parse_token (status, body, &error);

  ck_assert_msg (response == NULL, "accepted: %u %s", status, body);
  ck_assert_msg (g_error_matches (error, KEYHOLD_OAUTH_ERROR, (gint) code),
                 "%u %s: expected code %d, got %s %d: %s", status, body, code,
                 g_quark_to_string (error->domain), error->code, error->message);
}

static void
assert_malformed_token (const char *body)
{
  assert_token_error (200, body, KEYHOLD_OAUTH_ERROR_MALFORMED_RESPONSE);
}

/* Token responses (RFC 6749 §5.1) */

START_TEST (test_token_response_complete)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdTokenResponse) response = parse_token (
      200,
      "{\"access_token\":\"at-1\",\"token_type\":\"Bearer\",\"expires_in\":3600,"
      "\"refresh_token\":\"rt-1\",\"id_token\":\"h.p.s\",\"scope\":\"openid email\"}",
      &error);

  ck_assert_ptr_nonnull (response);
  ck_assert_str_eq (keyhold_secret_get (response->access_token), "at-1");
  ck_assert_str_eq (keyhold_secret_get (response->refresh_token), "rt-1");
  ck_assert_str_eq (keyhold_secret_get (response->id_token), "h.p.s");
  ck_assert_str_eq (response->scope, "openid email");
  ck_assert_int_eq (response->expires_at_us,
                    SENT_AT_US + G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC);
  ck_assert (!response->expires_in_missing);
}
END_TEST

START_TEST (test_token_response_minimal)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdTokenResponse) response = parse_token (
      200, "{\"access_token\":\"at-1\",\"token_type\":\"bearer\",\"expires_in\":60}", &error);

  ck_assert_ptr_nonnull (response);
  ck_assert_ptr_null (response->refresh_token);
  ck_assert_ptr_null (response->id_token);
  ck_assert_ptr_null (response->scope);
}
END_TEST

START_TEST (test_token_response_nulls_and_empties_are_absent)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdTokenResponse) response
      = parse_token (200,
                     "{\"access_token\":\"at-1\",\"token_type\":\"Bearer\",\"expires_in\":60,"
                     "\"refresh_token\":null,\"id_token\":\"\",\"scope\":null}",
                     &error);

  ck_assert_ptr_nonnull (response);
  ck_assert_ptr_null (response->refresh_token);
  ck_assert_ptr_null (response->id_token);
  ck_assert_ptr_null (response->scope);
}
END_TEST

START_TEST (test_token_response_missing_expires_in_is_short)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdTokenResponse) response
      = parse_token (200, "{\"access_token\":\"at-1\",\"token_type\":\"Bearer\"}", &error);

  ck_assert_ptr_nonnull (response);
  ck_assert (response->expires_in_missing);
  ck_assert_int_eq (response->expires_at_us,
                    SENT_AT_US + (gint64) KEYHOLD_OAUTH_DEFAULT_EXPIRES_IN_S * G_USEC_PER_SEC);
}
END_TEST

START_TEST (test_token_response_expires_in_values)
{
  struct
  {
    const char *value;
    gint64 expected_s; /* -1: refused */
  } cases[] = {
    { "0", 0 },
    { "3600.0", 3600 },
    { "1e3", 1000 },
    { "999999999999", KEYHOLD_OAUTH_MAX_EXPIRES_IN_S },
    /* json-glib wraps integers beyond 64 bits: no true value to clamp. */
    { "99999999999999999999999", -1 },
    { "1e308", KEYHOLD_OAUTH_MAX_EXPIRES_IN_S },
    { "-1", -1 },
    { "-1e308", -1 },
    { "3600.5", -1 },
    { "\"3600\"", -1 },
    { "true", -1 },
    { "[3600]", -1 },
    { "{}", -1 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *body = g_strdup_printf (
          "{\"access_token\":\"at-1\",\"token_type\":\"Bearer\",\"expires_in\":%s}",
          cases[i].value);
      g_autoptr (KeyholdTokenResponse) response = parse_token (200, body, &error);

      if (cases[i].expected_s < 0)
        {
          ck_assert_msg (response == NULL, "expires_in %s accepted", cases[i].value);
          ck_assert (
              g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_MALFORMED_RESPONSE));
        }
      else
        {
          ck_assert_msg (response != NULL, "expires_in %s refused: %s", cases[i].value,
                         error->message);
          ck_assert_int_eq (response->expires_at_us,
                            SENT_AT_US + cases[i].expected_s * G_USEC_PER_SEC);
        }
    }
}
END_TEST

START_TEST (test_token_response_token_type)
{
  assert_malformed_token ("{\"access_token\":\"at-1\",\"token_type\":\"mac\",\"expires_in\":60}");
  assert_malformed_token ("{\"access_token\":\"at-1\",\"token_type\":\"DPoP\",\"expires_in\":60}");
  assert_malformed_token (
      "{\"access_token\":\"at-1\",\"token_type\":\"Bearer \",\"expires_in\":60}");
  assert_malformed_token ("{\"access_token\":\"at-1\",\"expires_in\":60}");
  assert_malformed_token ("{\"access_token\":\"at-1\",\"token_type\":1,\"expires_in\":60}");
}
END_TEST

START_TEST (test_token_response_bad_access_token)
{
  g_autofree char *huge = NULL;
  g_autofree char *huge_body = NULL;

  assert_malformed_token ("{\"token_type\":\"Bearer\",\"expires_in\":60}");
  assert_malformed_token ("{\"access_token\":\"\",\"token_type\":\"Bearer\"}");
  assert_malformed_token ("{\"access_token\":null,\"token_type\":\"Bearer\"}");
  assert_malformed_token ("{\"access_token\":42,\"token_type\":\"Bearer\"}");
  assert_malformed_token ("{\"access_token\":[\"at\"],\"token_type\":\"Bearer\"}");
  /* CR LF would split the Authorization header it ends up in. */
  assert_malformed_token ("{\"access_token\":\"at\\r\\nX-Evil: 1\",\"token_type\":\"Bearer\"}");
  assert_malformed_token ("{\"access_token\":\"at-\\u00e9\",\"token_type\":\"Bearer\"}");

  huge = g_strnfill (KEYHOLD_OAUTH_MAX_TOKEN_BYTES + 1, 'a');
  huge_body = g_strdup_printf ("{\"access_token\":\"%s\",\"token_type\":\"Bearer\"}", huge);
  assert_malformed_token (huge_body);
}
END_TEST

START_TEST (test_token_response_not_an_object)
{
  const char *bodies[] = {
    "",
    " ",
    "[]",
    "[{\"access_token\":\"at\",\"token_type\":\"Bearer\"}]",
    "\"at\"",
    "42",
    "null",
    "true",
    "{",
    "{\"access_token\":",
    "<html>502 Bad Gateway</html>",
    "{\"access_token\":\"at\",\"token_type\":\"Bearer\"} trailing",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bodies); i++)
    assert_malformed_token (bodies[i]);
}
END_TEST

START_TEST (test_token_response_hostile_bytes)
{
  static const char with_nul[] = "{\"access_token\":\"at\",\"token_type\":\"Bearer\"}\0{}";
  static const char bad_utf8[]
      = "{\"access_token\":\"at\",\"token_type\":\"Bearer\",\"x\":\"\xff\xfe\"}";
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdTokenResponse) response
      = keyhold_oauth_parse_token_response (200, with_nul, sizeof with_nul - 1, SENT_AT_US, &error);

  ck_assert_ptr_null (response);
  ck_assert (g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_MALFORMED_RESPONSE));
  assert_malformed_token (bad_utf8);
}
END_TEST

START_TEST (test_token_response_deep_nesting_does_not_crash)
{
  /* json-glib recurses per level: this many levels overflow its stack. */
  const gsize depth = 60000;
  g_autofree char *body = g_malloc (2 * depth + 64);

  strcpy (body, "{\"access_token\":\"at\",\"token_type\":\"Bearer\",\"x\":");
  memset (body + strlen (body), '[', depth);
  body[strlen ("{\"access_token\":\"at\",\"token_type\":\"Bearer\",\"x\":") + depth] = '\0';
  assert_malformed_token (body);
}
END_TEST

START_TEST (test_token_response_too_large)
{
  gsize length = 2 * 1024 * 1024;
  g_autofree char *body = g_malloc (length + 1);
  g_autoptr (GError) error = NULL;
  KeyholdTokenResponse *response;
  const char *head = "{\"access_token\":\"at\",\"token_type\":\"Bearer\",\"pad\":\"";

  memset (body, 'a', length);
  memcpy (body, head, strlen (head));
  memcpy (body + length - 2, "\"}", 2);
  body[length] = '\0';
  response = keyhold_oauth_parse_token_response (200, body, length, SENT_AT_US, &error);
  ck_assert_ptr_null (response);
  ck_assert (g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_MALFORMED_RESPONSE));
}
END_TEST

START_TEST (test_token_response_errors_do_not_repeat_tokens)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdTokenResponse) response
      = parse_token (200,
                     "{\"access_token\":\"SECRET-ACCESS\",\"refresh_token\":\"SECRET-REFRESH\","
                     "\"token_type\":\"mac\"}",
                     &error);

  ck_assert_ptr_null (response);
  ck_assert_ptr_null (strstr (error->message, "SECRET"));
}
END_TEST

/* Error answers (RFC 6749 §5.2) */

START_TEST (test_error_codes)
{
  struct
  {
    const char *name;
    KeyholdOAuthError code;
  } cases[] = {
    { "invalid_grant", KEYHOLD_OAUTH_ERROR_INVALID_GRANT },
    { "invalid_client", KEYHOLD_OAUTH_ERROR_INVALID_CLIENT },
    { "invalid_request", KEYHOLD_OAUTH_ERROR_INVALID_REQUEST },
    { "invalid_scope", KEYHOLD_OAUTH_ERROR_INVALID_SCOPE },
    { "unauthorized_client", KEYHOLD_OAUTH_ERROR_UNAUTHORIZED_CLIENT },
    { "unsupported_grant_type", KEYHOLD_OAUTH_ERROR_UNSUPPORTED_GRANT_TYPE },
    { "access_denied", KEYHOLD_OAUTH_ERROR_ACCESS_DENIED },
    { "expired_token", KEYHOLD_OAUTH_ERROR_EXPIRED_TOKEN },
    { "authorization_pending", KEYHOLD_OAUTH_ERROR_AUTHORIZATION_PENDING },
    { "slow_down", KEYHOLD_OAUTH_ERROR_SLOW_DOWN },
    { "temporarily_unavailable", KEYHOLD_OAUTH_ERROR_TEMPORARILY_UNAVAILABLE },
    { "server_error", KEYHOLD_OAUTH_ERROR_TEMPORARILY_UNAVAILABLE },
    { "invalid_dpop_proof", KEYHOLD_OAUTH_ERROR_OTHER },
    { "INVALID_GRANT", KEYHOLD_OAUTH_ERROR_OTHER },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"error\":\"%s\"}", cases[i].name);

      assert_token_error (400, body, cases[i].code);
    }
  assert_token_error (401, "{\"error\":\"invalid_client\"}", KEYHOLD_OAUTH_ERROR_INVALID_CLIENT);
  assert_token_error (403, "{\"error\":\"access_denied\"}", KEYHOLD_OAUTH_ERROR_ACCESS_DENIED);
}
END_TEST

START_TEST (test_error_message_carries_sanitised_description)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdTokenResponse) response = NULL;
  g_autofree char *long_text = g_strnfill (5000, 'x');
  g_autofree char *body = NULL;

  response = parse_token (400,
                          "{\"error\":\"invalid_grant\","
                          "\"error_description\":\"Token \\u001b[31mrevoked\\r\\nX: \\u00e9\"}",
                          &error);
  ck_assert (g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_INVALID_GRANT));
  ck_assert_ptr_nonnull (strstr (error->message, "invalid_grant"));
  ck_assert_ptr_nonnull (strstr (error->message, "revoked"));
  for (const char *c = error->message; *c != '\0'; c++)
    ck_assert_msg (*c >= 0x20 && *c <= 0x7e, "unprintable byte 0x%02x in message",
                   (guint) (guchar) *c);
  g_clear_error (&error);

  body = g_strdup_printf ("{\"error\":\"%s\",\"error_description\":\"%s\"}", long_text, long_text);
  response = parse_token (400, body, &error);
  ck_assert (g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_OTHER));
  ck_assert_uint_lt (strlen (error->message), 600);
}
END_TEST

START_TEST (test_error_statuses)
{
  guint transient[] = { 408, 425, 429, 500, 502, 503, 504, 599 };

  for (gsize i = 0; i < G_N_ELEMENTS (transient); i++)
    {
      assert_token_error (transient[i], "", KEYHOLD_OAUTH_ERROR_TEMPORARILY_UNAVAILABLE);
      /* A 5xx is the server's trouble even when it claims invalid_grant:
       * it must never sign anybody out. */
      assert_token_error (transient[i], "{\"error\":\"invalid_grant\"}",
                          KEYHOLD_OAUTH_ERROR_TEMPORARILY_UNAVAILABLE);
    }
  /* A refusal without an RFC 6749 §5.2 body (Glewlwyd answers a reused
   * refresh token with a bare 400) is told apart from a broken answer. */
  assert_token_error (400, "", KEYHOLD_OAUTH_ERROR_REFUSED_WITHOUT_REASON);
  assert_token_error (401, "", KEYHOLD_OAUTH_ERROR_REFUSED_WITHOUT_REASON);
  assert_token_error (403, "Forbidden", KEYHOLD_OAUTH_ERROR_REFUSED_WITHOUT_REASON);
  assert_token_error (400, "<html>Bad Request</html>", KEYHOLD_OAUTH_ERROR_REFUSED_WITHOUT_REASON);
  assert_token_error (400, "{\"error\":42}", KEYHOLD_OAUTH_ERROR_REFUSED_WITHOUT_REASON);
  assert_token_error (400, "{\"error_description\":\"no code\"}",
                      KEYHOLD_OAUTH_ERROR_REFUSED_WITHOUT_REASON);
  assert_token_error (404, "", KEYHOLD_OAUTH_ERROR_MALFORMED_RESPONSE);
  assert_token_error (302, "", KEYHOLD_OAUTH_ERROR_MALFORMED_RESPONSE);
  assert_token_error (204, "", KEYHOLD_OAUTH_ERROR_MALFORMED_RESPONSE);
  assert_token_error (201, "{\"access_token\":\"at\",\"token_type\":\"Bearer\"}",
                      KEYHOLD_OAUTH_ERROR_MALFORMED_RESPONSE);
}
END_TEST

START_TEST (test_sanitize_provider_text)
{
  g_autofree char *clean = keyhold_oauth_sanitize_provider_text ("a\tb\x1b[0m\xc3\xa9 ok");
  g_autofree char *long_text = g_strnfill (1000, 'y');
  g_autofree char *cut = keyhold_oauth_sanitize_provider_text (long_text);

  ck_assert_str_eq (clean, "a?b?[0m?? ok");
  ck_assert_uint_eq (strlen (cut), 200);
}
END_TEST

/* Device authorization (RFC 8628 §3.2) */

static KeyholdDeviceAuthorization *
parse_device (guint status, const char *body, GError **error)
{
  return keyhold_oauth_parse_device_authorization (status, body, strlen (body), error);
}

START_TEST (test_device_authorization_complete)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdDeviceAuthorization) authorization = parse_device (
      200,
      "{\"device_code\":\"dc-1\",\"user_code\":\"BCDF-GHJK\","
      "\"verification_uri\":\"https://id.example.com/device\","
      "\"verification_uri_complete\":\"https://id.example.com/device?user_code=BCDF-GHJK\","
      "\"expires_in\":600,\"interval\":7}",
      &error);

  ck_assert_ptr_nonnull (authorization);
  ck_assert_str_eq (keyhold_secret_get (authorization->device_code), "dc-1");
  ck_assert_str_eq (authorization->user_code, "BCDF-GHJK");
  ck_assert_str_eq (authorization->verification_uri, "https://id.example.com/device");
  ck_assert_str_eq (authorization->verification_uri_complete,
                    "https://id.example.com/device?user_code=BCDF-GHJK");
  ck_assert_uint_eq (authorization->expires_in, 600);
  ck_assert_uint_eq (authorization->interval, 7);
}
END_TEST

#define DEVICE_TEMPLATE                                                                            \
  "{\"device_code\":\"dc\",\"user_code\":\"U\",\"verification_url\":"                              \
  "\"https://x.example/d\",\"expires_in\":%s%s}"

START_TEST (test_device_authorization_interval)
{
  struct
  {
    const char *expires_in;
    const char *interval;
    guint expected_expires_in;
    guint expected_interval;
  } cases[] = {
    { "600", "", 600, KEYHOLD_OAUTH_DEFAULT_DEVICE_INTERVAL_S },
    { "600", ",\"interval\":0", 600, 1 },
    { "600", ",\"interval\":-5", 600, 1 },
    { "600", ",\"interval\":null", 600, KEYHOLD_OAUTH_DEFAULT_DEVICE_INTERVAL_S },
    { "3", "", 3, 3 },
    { "99999999", ",\"interval\":99999999", KEYHOLD_OAUTH_MAX_DEVICE_EXPIRES_IN_S,
      KEYHOLD_OAUTH_MAX_DEVICE_EXPIRES_IN_S },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *body
          = g_strdup_printf (DEVICE_TEMPLATE, cases[i].expires_in, cases[i].interval);
      g_autoptr (KeyholdDeviceAuthorization) authorization = parse_device (200, body, &error);

      ck_assert_msg (authorization != NULL, "%s refused", body);
      ck_assert_str_eq (authorization->verification_uri, "https://x.example/d");
      ck_assert_uint_eq (authorization->expires_in, cases[i].expected_expires_in);
      ck_assert_uint_eq (authorization->interval, cases[i].expected_interval);
    }
}
END_TEST

#define CODES "\"device_code\":\"dc\",\"user_code\":\"U\""
#define URI "\"verification_uri\":\"https://x.example/d\""

START_TEST (test_device_authorization_refused)
{
  const char *bodies[] = {
    "{\"user_code\":\"U\"," URI ",\"expires_in\":600}",
    "{\"device_code\":\"dc\"," URI ",\"expires_in\":600}",
    "{" CODES ",\"expires_in\":600}",
    "{" CODES "," URI "}",
    "{" CODES "," URI ",\"expires_in\":0}",
    "{" CODES "," URI ",\"expires_in\":\"600\"}",
    "{" CODES ",\"verification_uri\":\"javascript:alert(1)\",\"expires_in\":600}",
    "{" CODES ",\"verification_uri\":\"file:///etc/passwd\",\"expires_in\":600}",
    "{\"device_code\":\"dc\",\"user_code\":\"U\\u001b]0;x\"," URI ",\"expires_in\":600}",
    "[]",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (KeyholdDeviceAuthorization) authorization = parse_device (200, bodies[i], &error);

      ck_assert_msg (authorization == NULL, "accepted %s", bodies[i]);
      ck_assert (
          g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_MALFORMED_RESPONSE));
    }
}
END_TEST

START_TEST (test_device_authorization_error_answer)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdDeviceAuthorization) authorization
      = parse_device (400, "{\"error\":\"invalid_client\"}", &error);

  ck_assert_ptr_null (authorization);
  ck_assert (g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_INVALID_CLIENT));
}
END_TEST

/* Provider metadata (RFC 8414, OIDC Discovery) */

static char *
metadata_document (const char *issuer, const char *base, const char *extra)
{
  return g_strdup_printf ("{\"issuer\":\"%s\","
                          "\"authorization_endpoint\":\"%s/authorize\","
                          "\"token_endpoint\":\"%s/token\","
                          "\"device_authorization_endpoint\":\"%s/device\","
                          "\"revocation_endpoint\":\"%s/revoke\","
                          "\"userinfo_endpoint\":\"%s/userinfo\","
                          "\"jwks_uri\":\"%s/jwks\"%s}",
                          issuer, base, base, base, base, base, base, extra);
}

static KeyholdProviderMetadata *
parse_metadata (const char *document, const char *expected_issuer, GError **error)
{
  return keyhold_provider_metadata_parse (document, strlen (document), expected_issuer, error);
}

static void
assert_metadata_error (const char *document, const char *expected_issuer, KeyholdProviderError code)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdProviderMetadata) metadata = parse_metadata (document, expected_issuer, &error);

  ck_assert_msg (metadata == NULL, "accepted %s", document);
  ck_assert_msg (g_error_matches (error, KEYHOLD_PROVIDER_ERROR, (gint) code),
                 "%s: expected %d, got %s %d: %s", document, code,
                 g_quark_to_string (error->domain), error->code, error->message);
}

START_TEST (test_metadata_complete)
{
  g_autofree char *document
      = metadata_document (ISSUER, ISSUER,
                           ",\"authorization_response_iss_parameter_supported\":true,"
                           "\"code_challenge_methods_supported\":[\"plain\",\"S256\"],"
                           "\"unknown_member\":{\"nested\":[1,2,3]}");
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdProviderMetadata) metadata = parse_metadata (document, ISSUER, &error);

  ck_assert_msg (metadata != NULL, "%s", error ? error->message : "");
  ck_assert_str_eq (metadata->issuer, ISSUER);
  ck_assert_str_eq (metadata->authorization_endpoint, ISSUER "/authorize");
  ck_assert_str_eq (metadata->token_endpoint, ISSUER "/token");
  ck_assert_str_eq (metadata->device_authorization_endpoint, ISSUER "/device");
  ck_assert_str_eq (metadata->revocation_endpoint, ISSUER "/revoke");
  ck_assert_str_eq (metadata->userinfo_endpoint, ISSUER "/userinfo");
  ck_assert_str_eq (metadata->jwks_uri, ISSUER "/jwks");
  ck_assert (metadata->authorization_response_iss_parameter_supported);
  ck_assert_uint_eq (g_strv_length (metadata->code_challenge_methods_supported), 2);
  ck_assert (keyhold_provider_metadata_allows_pkce_s256 (metadata));
}
END_TEST

START_TEST (test_metadata_minimal)
{
  const char *document = "{\"issuer\":\"" ISSUER "\",\"token_endpoint\":\"" ISSUER "/t\","
                         "\"jwks_uri\":\"https://keys.example.net/jwks\"}";
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdProviderMetadata) metadata = parse_metadata (document, ISSUER, &error);

  ck_assert_ptr_nonnull (metadata);
  ck_assert_ptr_null (metadata->authorization_endpoint);
  ck_assert_ptr_null (metadata->device_authorization_endpoint);
  ck_assert_ptr_null (metadata->revocation_endpoint);
  ck_assert_ptr_null (metadata->code_challenge_methods_supported);
  ck_assert (!metadata->authorization_response_iss_parameter_supported);
  /* Silence about PKCE is not a refusal. */
  ck_assert (keyhold_provider_metadata_allows_pkce_s256 (metadata));
}
END_TEST

START_TEST (test_metadata_pkce_plain_only)
{
  g_autofree char *document
      = metadata_document (ISSUER, ISSUER, ",\"code_challenge_methods_supported\":[\"plain\"]");
  g_autoptr (KeyholdProviderMetadata) metadata = parse_metadata (document, ISSUER, NULL);

  ck_assert_ptr_nonnull (metadata);
  ck_assert (!keyhold_provider_metadata_allows_pkce_s256 (metadata));
}
END_TEST

START_TEST (test_metadata_issuer_must_match_exactly)
{
  g_autofree char *other = metadata_document ("https://evil.example.com", ISSUER, "");
  g_autofree char *slash = metadata_document (ISSUER "/", ISSUER, "");
  g_autofree char *upper = metadata_document ("https://ID.example.com", ISSUER, "");
  g_autofree char *path = metadata_document (ISSUER "/tenant", ISSUER, "");

  assert_metadata_error (other, ISSUER, KEYHOLD_PROVIDER_ERROR_ISSUER_MISMATCH);
  assert_metadata_error (slash, ISSUER, KEYHOLD_PROVIDER_ERROR_ISSUER_MISMATCH);
  assert_metadata_error (upper, ISSUER, KEYHOLD_PROVIDER_ERROR_ISSUER_MISMATCH);
  assert_metadata_error (path, ISSUER, KEYHOLD_PROVIDER_ERROR_ISSUER_MISMATCH);
  assert_metadata_error ("{\"token_endpoint\":\"" ISSUER "/t\",\"jwks_uri\":\"" ISSUER "/j\"}",
                         ISSUER, KEYHOLD_PROVIDER_ERROR_MALFORMED);
  assert_metadata_error ("{\"issuer\":[\"" ISSUER "\"]}", ISSUER, KEYHOLD_PROVIDER_ERROR_MALFORMED);
}
END_TEST

START_TEST (test_metadata_required_members)
{
  assert_metadata_error ("{\"issuer\":\"" ISSUER "\",\"jwks_uri\":\"" ISSUER "/j\"}", ISSUER,
                         KEYHOLD_PROVIDER_ERROR_MALFORMED);
  assert_metadata_error ("{\"issuer\":\"" ISSUER "\",\"token_endpoint\":\"" ISSUER "/t\"}", ISSUER,
                         KEYHOLD_PROVIDER_ERROR_MALFORMED);
  assert_metadata_error ("{\"issuer\":\"" ISSUER "\",\"token_endpoint\":5,\"jwks_uri\":\"" ISSUER
                         "/j\"}",
                         ISSUER, KEYHOLD_PROVIDER_ERROR_MALFORMED);
}
END_TEST

START_TEST (test_metadata_wrong_member_types)
{
  g_autofree char *iss_string = metadata_document (
      ISSUER, ISSUER, ",\"authorization_response_iss_parameter_supported\":\"true\"");
  g_autofree char *methods_string
      = metadata_document (ISSUER, ISSUER, ",\"code_challenge_methods_supported\":\"S256\"");
  g_autofree char *methods_mixed
      = metadata_document (ISSUER, ISSUER, ",\"code_challenge_methods_supported\":[\"S256\",1]");

  assert_metadata_error (iss_string, ISSUER, KEYHOLD_PROVIDER_ERROR_MALFORMED);
  assert_metadata_error (methods_string, ISSUER, KEYHOLD_PROVIDER_ERROR_MALFORMED);
  assert_metadata_error (methods_mixed, ISSUER, KEYHOLD_PROVIDER_ERROR_MALFORMED);
}
END_TEST

START_TEST (test_metadata_endpoint_security)
{
  g_autofree char *http_endpoints = metadata_document (ISSUER, "http://id.example.com", "");
  g_autofree char *loopback_under_https = metadata_document (ISSUER, "http://127.0.0.1:8080", "");
  g_autofree char *loopback = metadata_document (LOOPBACK_ISSUER, LOOPBACK_ISSUER, "");
  g_autofree char *remote_under_loopback
      = metadata_document (LOOPBACK_ISSUER, "http://id.example.com", "");
  g_autofree char *http_issuer
      = metadata_document ("http://id.example.com", "https://id.example.com", "");
  g_autofree char *fragment = metadata_document (ISSUER, ISSUER "/x#frag", "");
  g_autofree char *credentials = metadata_document (ISSUER, "https://user:pw@id.example.com", "");
  g_autofree char *file = metadata_document (ISSUER, "file:///etc", "");
  g_autoptr (KeyholdProviderMetadata) metadata = parse_metadata (loopback, LOOPBACK_ISSUER, NULL);

  ck_assert_ptr_nonnull (metadata);
  assert_metadata_error (http_endpoints, ISSUER, KEYHOLD_PROVIDER_ERROR_INSECURE_URL);
  assert_metadata_error (loopback_under_https, ISSUER, KEYHOLD_PROVIDER_ERROR_INSECURE_URL);
  assert_metadata_error (remote_under_loopback, LOOPBACK_ISSUER,
                         KEYHOLD_PROVIDER_ERROR_INSECURE_URL);
  assert_metadata_error (http_issuer, "http://id.example.com", KEYHOLD_PROVIDER_ERROR_INSECURE_URL);
  assert_metadata_error (fragment, ISSUER, KEYHOLD_PROVIDER_ERROR_INSECURE_URL);
  assert_metadata_error (credentials, ISSUER, KEYHOLD_PROVIDER_ERROR_INSECURE_URL);
  assert_metadata_error (file, ISSUER, KEYHOLD_PROVIDER_ERROR_INSECURE_URL);
}
END_TEST

START_TEST (test_metadata_hostile_documents)
{
  const char *documents[] = { "", "[]", "null", "\"" ISSUER "\"", "{", "<html></html>" };
  g_autofree char *deep = g_strnfill (200000, '[');
  gsize large_length = KEYHOLD_PROVIDER_MAX_DOCUMENT_BYTES + 1;
  g_autofree char *large = g_strnfill (large_length, ' ');
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdProviderMetadata) metadata = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (documents); i++)
    assert_metadata_error (documents[i], ISSUER, KEYHOLD_PROVIDER_ERROR_MALFORMED);
  assert_metadata_error (deep, ISSUER, KEYHOLD_PROVIDER_ERROR_MALFORMED);

  large[0] = '{';
  large[large_length - 1] = '}';
  metadata = keyhold_provider_metadata_parse (large, large_length, ISSUER, &error);
  ck_assert_ptr_null (metadata);
  ck_assert (g_error_matches (error, KEYHOLD_PROVIDER_ERROR, KEYHOLD_PROVIDER_ERROR_TOO_LARGE));
}
END_TEST

START_TEST (test_jwks_validate)
{
  const char *good = "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"1\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}";
  const char *bad[] = { "{}", "{\"keys\":{}}", "{\"keys\":null}", "[]", "", "{\"keys\":[" };

  ck_assert (keyhold_provider_jwks_validate (good, strlen (good), NULL));
  ck_assert (keyhold_provider_jwks_validate ("{\"keys\":[]}", strlen ("{\"keys\":[]}"), NULL));
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;

      ck_assert_msg (!keyhold_provider_jwks_validate (bad[i], strlen (bad[i]), &error), "%s",
                     bad[i]);
      ck_assert (g_error_matches (error, KEYHOLD_PROVIDER_ERROR, KEYHOLD_PROVIDER_ERROR_MALFORMED));
    }
}
END_TEST

/* Untrusted JSON helpers */

START_TEST (test_wipe_strings)
{
  const char *body = "{\"a\":\"secret-a\",\"b\":[\"secret-b\",{\"c\":\"secret-c\"}],\"n\":1}";
  g_autoptr (JsonNode) root = keyhold_untrusted_json_parse_object (body, strlen (body), NULL);
  JsonObject *object = json_node_get_object (root);
  JsonArray *array = json_object_get_array_member (object, "b");

  keyhold_untrusted_json_wipe_strings (root);
  ck_assert_str_eq (json_object_get_string_member (object, "a"), "");
  ck_assert_str_eq (json_array_get_string_element (array, 0), "");
  ck_assert_str_eq (json_object_get_string_member (json_array_get_object_element (array, 1), "c"),
                    "");
  ck_assert_int_eq (json_object_get_int_member (object, "n"), 1);
}
END_TEST

START_TEST (test_nesting_limit_counts_only_structure)
{
  g_autofree char *opening = g_strnfill (KEYHOLD_UNTRUSTED_JSON_MAX_DEPTH, '[');
  g_autofree char *closing = g_strnfill (KEYHOLD_UNTRUSTED_JSON_MAX_DEPTH, ']');
  g_autofree char *at_limit = NULL;
  g_autofree char *over_limit = NULL;
  GString *text
      = g_string_new ("{\"s\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[\",\"x\":");
  g_autoptr (JsonNode) strings_ok = NULL;
  g_autoptr (JsonNode) deep_ok = NULL;
  g_autoptr (JsonNode) too_deep = NULL;
  g_autoptr (GError) error = NULL;

  g_string_append (text, "1}");
  strings_ok = keyhold_untrusted_json_parse_object (text->str, text->len, NULL);
  ck_assert_ptr_nonnull (strings_ok);
  g_string_free (text, TRUE);

  /* The root object counts as one level. */
  at_limit = g_strdup_printf ("{\"x\":%s%s}", opening + 1, closing + 1);
  over_limit = g_strdup_printf ("{\"x\":%s%s}", opening, closing);
  deep_ok = keyhold_untrusted_json_parse_object (at_limit, strlen (at_limit), NULL);
  ck_assert_ptr_nonnull (deep_ok);
  too_deep = keyhold_untrusted_json_parse_object (over_limit, strlen (over_limit), &error);
  ck_assert_ptr_null (too_deep);
  ck_assert (
      g_error_matches (error, KEYHOLD_UNTRUSTED_JSON_ERROR, KEYHOLD_UNTRUSTED_JSON_ERROR_TOO_DEEP));
}
END_TEST

static Suite *
oauth_parse_suite (void)
{
  Suite *suite = suite_create ("oauth-parse");
  TCase *tokens = tcase_create ("token-response");
  TCase *errors = tcase_create ("error-answer");
  TCase *device = tcase_create ("device-authorization");
  TCase *metadata = tcase_create ("provider-metadata");
  TCase *json = tcase_create ("untrusted-json");

  tcase_add_test (tokens, test_token_response_complete);
  tcase_add_test (tokens, test_token_response_minimal);
  tcase_add_test (tokens, test_token_response_nulls_and_empties_are_absent);
  tcase_add_test (tokens, test_token_response_missing_expires_in_is_short);
  tcase_add_test (tokens, test_token_response_expires_in_values);
  tcase_add_test (tokens, test_token_response_token_type);
  tcase_add_test (tokens, test_token_response_bad_access_token);
  tcase_add_test (tokens, test_token_response_not_an_object);
  tcase_add_test (tokens, test_token_response_hostile_bytes);
  tcase_add_test (tokens, test_token_response_deep_nesting_does_not_crash);
  tcase_add_test (tokens, test_token_response_too_large);
  tcase_add_test (tokens, test_token_response_errors_do_not_repeat_tokens);
  suite_add_tcase (suite, tokens);

  tcase_add_test (errors, test_error_codes);
  tcase_add_test (errors, test_error_message_carries_sanitised_description);
  tcase_add_test (errors, test_error_statuses);
  tcase_add_test (errors, test_sanitize_provider_text);
  suite_add_tcase (suite, errors);

  tcase_add_test (device, test_device_authorization_complete);
  tcase_add_test (device, test_device_authorization_interval);
  tcase_add_test (device, test_device_authorization_refused);
  tcase_add_test (device, test_device_authorization_error_answer);
  suite_add_tcase (suite, device);

  tcase_add_test (metadata, test_metadata_complete);
  tcase_add_test (metadata, test_metadata_minimal);
  tcase_add_test (metadata, test_metadata_pkce_plain_only);
  tcase_add_test (metadata, test_metadata_issuer_must_match_exactly);
  tcase_add_test (metadata, test_metadata_required_members);
  tcase_add_test (metadata, test_metadata_wrong_member_types);
  tcase_add_test (metadata, test_metadata_endpoint_security);
  tcase_add_test (metadata, test_metadata_hostile_documents);
  tcase_add_test (metadata, test_jwks_validate);
  suite_add_tcase (suite, metadata);

  tcase_add_test (json, test_wipe_strings);
  tcase_add_test (json, test_nesting_limit_counts_only_structure);
  suite_add_tcase (suite, json);
  return suite;
}

int
main (void)
{
  SRunner *runner = srunner_create (oauth_parse_suite ());
  int failed;

  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
