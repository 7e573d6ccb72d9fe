/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <string.h>

#include "keyhold-contract.h"

#include "outbox/outbox-request.h"

#define API "https://api.example.com"

static KeyholdAccountConfig *config;

static void
setup (void)
{
  const char *const origins[] = { API, "http://127.0.0.1:8080", NULL };
  g_autoptr (GError) error = NULL;

  config = keyhold_account_config_new ("work", "https://id.example.com", "client", NULL, origins,
                                       &error);
  ck_assert_msg (config != NULL, "%s", error != NULL ? error->message : "");
}

static void
teardown (void)
{
  g_clear_pointer (&config, keyhold_account_config_free);
}

static gsize
header_bytes (const char *name, const char *value)
{
  return strlen (name) + strlen (value) + 4;
}

static gsize
assert_accepted (const KeyholdOutboxRequest *request)
{
  g_autoptr (GError) error = NULL;
  gsize size = 0;

  ck_assert_msg (keyhold_outbox_request_validate (request, config, &size, NULL, &error), "%s",
                 error != NULL ? error->message : "");
  ck_assert_ptr_null (error);
  return size;
}

/* Returns the message, for checks on what it says and does not say. */
static char *
refusal_message (const KeyholdOutboxRequest *request, KeyholdError code)
{
  g_autoptr (GError) error = NULL;
  gsize size = 12345;

  ck_assert (!keyhold_outbox_request_validate (request, config, &size, NULL, &error));
  ck_assert_msg (g_error_matches (error, KEYHOLD_ERROR, code), "%s (code %d, expected %d)",
                 error != NULL ? error->message : "no error", error != NULL ? error->code : -1,
                 code);
  /* Outputs are set only on success. */
  ck_assert_uint_eq (size, 12345);
  return g_strdup (error->message);
}

static void
assert_refused (const KeyholdOutboxRequest *request, KeyholdError code)
{
  g_free (refusal_message (request, code));
}

static KeyholdOutboxRequest *
request_with_header (const char *name, const char *value)
{
  KeyholdOutboxRequest *request = keyhold_outbox_request_new ("POST", API "/notes");

  keyhold_outbox_request_add_header (request, name, value);
  return request;
}

/* A URL of exactly @length bytes on the API origin. */
static char *
url_of_length (gsize length)
{
  GString *url = g_string_new (API "/");

  while (url->len < length)
    g_string_append_c (url, 'a');
  return g_string_free (url, FALSE);
}

/* ---- good requests ---------------------------------------------------------- */

START_TEST (test_plain_get_is_accepted)
{
  g_autoptr (KeyholdOutboxRequest) request = keyhold_outbox_request_new ("GET", API "/notes?x=1");

  ck_assert_uint_eq (assert_accepted (request), strlen (API "/notes?x=1"));
}
END_TEST

START_TEST (test_post_with_headers_and_body_counts_every_byte)
{
  g_autoptr (KeyholdOutboxRequest) request = keyhold_outbox_request_new ("POST", API "/notes");
  gsize expected;

  keyhold_outbox_request_add_header (request, "Content-Type", "application/json");
  keyhold_outbox_request_add_header (request, "X-Empty", "");
  keyhold_outbox_request_add_header (request, "If-Match", "\"v1\"\tweak");
  request->body = g_bytes_new_static ("{\"a\":1}", 7);
  expected = strlen (API "/notes") + header_bytes ("Content-Type", "application/json")
             + header_bytes ("X-Empty", "") + header_bytes ("If-Match", "\"v1\"\tweak") + 7;

  ck_assert_uint_eq (assert_accepted (request), expected);
}
END_TEST

START_TEST (test_other_methods_and_origins_are_accepted)
{
  const char *const methods[] = { "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND", "M-SEARCH" };

  for (gsize i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      g_autoptr (KeyholdOutboxRequest) request = keyhold_outbox_request_new (methods[i], API "/x");

      assert_accepted (request);
    }
  {
    g_autoptr (KeyholdOutboxRequest) request
        = keyhold_outbox_request_new ("GET", "http://127.0.0.1:8080/local");
    g_autoptr (KeyholdOutboxRequest) head = keyhold_outbox_request_new ("HEAD", API "/x");

    assert_accepted (request);
    assert_accepted (head);
  }
}
END_TEST

/* ---- the method ---------------------------------------------------------------- */

START_TEST (test_bad_methods_are_refused)
{
  const char *const bad[] = { "", "GE T", "GET\r\n", "GET:", "G\xc3\xa9T", "(GET)" };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (KeyholdOutboxRequest) request = keyhold_outbox_request_new (bad[i], API "/x");
      assert_refused (request, KEYHOLD_ERROR_INVALID_ARGUMENT);
    }
}
END_TEST

START_TEST (test_method_length_limit)
{
  g_autofree char *longest = g_strnfill (32, 'X');
  g_autofree char *too_long = g_strnfill (33, 'X');
  g_autoptr (KeyholdOutboxRequest) good = keyhold_outbox_request_new (longest, API "/x");
  g_autoptr (KeyholdOutboxRequest) bad = keyhold_outbox_request_new (too_long, API "/x");

  assert_accepted (good);
  assert_refused (bad, KEYHOLD_ERROR_INVALID_ARGUMENT);
}
END_TEST

START_TEST (test_connect_and_trace_are_refused)
{
  const char *const refused[] = { "CONNECT", "connect", "TRACE", "Trace" };

  for (gsize i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autoptr (KeyholdOutboxRequest) request = keyhold_outbox_request_new (refused[i], API "/x");
      g_autofree char *message = refusal_message (request, KEYHOLD_ERROR_INVALID_ARGUMENT);

      ck_assert_ptr_nonnull (strstr (message, refused[i]));
    }
}
END_TEST

START_TEST (test_head_with_a_body_is_refused)
{
  g_autoptr (KeyholdOutboxRequest) request = keyhold_outbox_request_new ("HEAD", API "/x");
  g_autofree char *message = NULL;

  /* Even an empty body: there is one, and HEAD cannot carry it. */
  request->body = g_bytes_new_static ("", 0);
  message = refusal_message (request, KEYHOLD_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull (strstr (message, "HEAD"));
}
END_TEST

/* ---- the URL --------------------------------------------------------------------- */

START_TEST (test_url_of_another_origin_is_refused_without_repeating_it)
{
  const char *const elsewhere[] = {
    "https://evil.example.com/x?token=s3cret",
    "https://api.example.com:8443/x?token=s3cret",
    "http://api.example.com/x?token=s3cret",
    "https://api.example.com.evil.example/x?token=s3cret",
    "http://127.0.0.1:8081/x?token=s3cret",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (elsewhere); i++)
    {
      g_autoptr (KeyholdOutboxRequest) request = keyhold_outbox_request_new ("GET", elsewhere[i]);
      g_autofree char *message = refusal_message (request, KEYHOLD_ERROR_INVALID_ARGUMENT);

      ck_assert_msg (strstr (message, "s3cret") == NULL, "%s", message);
    }
}
END_TEST

START_TEST (test_unusable_urls_are_refused)
{
  const char *const unusable[] = {
    "", "not a url", "/notes", "ftp://api.example.com/x", "https://user:pw@api.example.com/x",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (unusable); i++)
    {
      g_autoptr (KeyholdOutboxRequest) request = keyhold_outbox_request_new ("GET", unusable[i]);
      assert_refused (request, KEYHOLD_ERROR_INVALID_ARGUMENT);
    }
}
END_TEST

/* The URL the outbox stores and sends is the one the policy approved, with
 * the ASCII host that was checked: libcurl would map the capital sharp s
 * of "straẞe" to "ss" and send the token to strasse.de. */
START_TEST (test_url_is_kept_as_approved)
{
  const char *const origins[] = { "https://api.xn--strae-oqa.de", NULL };
  g_autoptr (KeyholdAccountConfig) idn_config = NULL;
  g_autoptr (KeyholdOutboxRequest) request
      = keyhold_outbox_request_new ("POST", "https://api.straẞe.de/v1/notes?draft=1");
  g_autoptr (GError) error = NULL;
  g_autofree char *url = NULL;
  gsize size = 0;

  idn_config = keyhold_account_config_new ("idn", "https://id.example.com", "client", NULL, origins,
                                           &error);
  ck_assert_msg (idn_config != NULL, "%s", error != NULL ? error->message : "");
  ck_assert_msg (keyhold_outbox_request_validate (request, idn_config, &size, &url, &error), "%s",
                 error != NULL ? error->message : "");
  ck_assert_str_eq (url, "https://api.xn--strae-oqa.de/v1/notes?draft=1");
  ck_assert_uint_eq (size, strlen (url));
}
END_TEST

START_TEST (test_url_length_limit)
{
  g_autofree char *longest = url_of_length (KEYHOLD_OUTBOX_MAX_URL_BYTES);
  g_autofree char *too_long = url_of_length (KEYHOLD_OUTBOX_MAX_URL_BYTES + 1);
  g_autoptr (KeyholdOutboxRequest) good = keyhold_outbox_request_new ("GET", longest);
  g_autoptr (KeyholdOutboxRequest) bad = keyhold_outbox_request_new ("GET", too_long);

  ck_assert_uint_eq (assert_accepted (good), KEYHOLD_OUTBOX_MAX_URL_BYTES);
  assert_refused (bad, KEYHOLD_ERROR_QUOTA_EXCEEDED);
}
END_TEST

/* ---- headers ---------------------------------------------------------------------- */

START_TEST (test_credentials_and_idempotency_key_are_the_agents)
{
  const char *const names[] = {
    "Authorization", "authorization", "Proxy-Authorization", "Idempotency-Key", "idempotency-key",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr (KeyholdOutboxRequest) request = request_with_header (names[i], "x");
      assert_refused (request, KEYHOLD_ERROR_INVALID_ARGUMENT);
    }
}
END_TEST

START_TEST (test_headers_the_http_module_sets_are_refused)
{
  const char *const names[] = {
    "Host",       "Content-Length", "Transfer-Encoding",
    "Connection", "Keep-Alive",     "Upgrade",
    "TE",         "Trailer",        "Expect",
    "host",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr (KeyholdOutboxRequest) request = request_with_header (names[i], "x");
      g_autofree char *message = refusal_message (request, KEYHOLD_ERROR_INVALID_ARGUMENT);

      /* A token name is safe to repeat. */
      ck_assert_msg (strstr (message, names[i]) != NULL, "%s", message);
    }
}
END_TEST

START_TEST (test_malformed_headers_are_refused)
{
  const char *const pairs[][2] = {
    { "", "x" },
    { "X A", "x" },
    { "X-A:", "x" },
    { "X-A\r\nX-B", "x" },
    { "X-A", "1\r\nX-B: 2" },
    { "X-A", "1\n" },
    { "X-A", "a\x01"
             "b" },
    { "X-A", "\x7f" },
    { "X-\xc3\xa9", "x" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (pairs); i++)
    {
      g_autoptr (KeyholdOutboxRequest) request = request_with_header (pairs[i][0], pairs[i][1]);
      g_autofree char *message = refusal_message (request, KEYHOLD_ERROR_INVALID_ARGUMENT);

      /* A name that is not a token could carry anything: not repeated. */
      if (i == 1 || i == 3)
        ck_assert_msg (strstr (message, "\"?\"") != NULL, "%s", message);
    }
}
END_TEST

START_TEST (test_long_names_are_not_repeated)
{
  g_autofree char *name_256 = g_strnfill (256, 'n');
  g_autofree char *name_257 = g_strnfill (257, 'n');
  g_autoptr (KeyholdOutboxRequest) shorter = request_with_header (name_256, "bad\n");
  g_autoptr (KeyholdOutboxRequest) longer = request_with_header (name_257, "bad\n");
  g_autofree char *shorter_message = refusal_message (shorter, KEYHOLD_ERROR_INVALID_ARGUMENT);
  g_autofree char *longer_message = refusal_message (longer, KEYHOLD_ERROR_INVALID_ARGUMENT);

  ck_assert_ptr_nonnull (strstr (shorter_message, name_256));
  ck_assert_ptr_null (strstr (longer_message, name_256));
  ck_assert_ptr_nonnull (strstr (longer_message, "\"?\""));
}
END_TEST

START_TEST (test_one_content_type_at_most)
{
  g_autoptr (KeyholdOutboxRequest) one = request_with_header ("Content-Type", "text/plain");
  g_autoptr (KeyholdOutboxRequest) two = request_with_header ("Content-Type", "text/plain");

  keyhold_outbox_request_add_header (two, "content-type", "application/json");
  assert_accepted (one);
  assert_refused (two, KEYHOLD_ERROR_INVALID_ARGUMENT);
}
END_TEST

START_TEST (test_header_count_limit)
{
  g_autoptr (KeyholdOutboxRequest) most = keyhold_outbox_request_new ("GET", API "/x");
  g_autoptr (KeyholdOutboxRequest) too_many = keyhold_outbox_request_new ("GET", API "/x");

  for (guint i = 0; i < KEYHOLD_OUTBOX_MAX_HEADERS; i++)
    {
      g_autofree char *name = g_strdup_printf ("X-H%u", i);

      keyhold_outbox_request_add_header (most, name, "v");
      keyhold_outbox_request_add_header (too_many, name, "v");
    }
  keyhold_outbox_request_add_header (too_many, "X-One-More", "v");

  assert_accepted (most);
  assert_refused (too_many, KEYHOLD_ERROR_QUOTA_EXCEEDED);
}
END_TEST

START_TEST (test_header_size_limit)
{
  /* One header of name, value and 4 bytes for ": " and CRLF. */
  gsize value_length = KEYHOLD_OUTBOX_MAX_HEADER_BYTES - strlen ("X-Big") - 4;
  g_autofree char *value = g_strnfill (value_length, 'v');
  g_autofree char *longer_value = g_strnfill (value_length + 1, 'v');
  g_autoptr (KeyholdOutboxRequest) largest = request_with_header ("X-Big", value);
  g_autoptr (KeyholdOutboxRequest) too_large = request_with_header ("X-Big", longer_value);

  ck_assert_uint_eq (assert_accepted (largest),
                     strlen (API "/notes") + KEYHOLD_OUTBOX_MAX_HEADER_BYTES);
  assert_refused (too_large, KEYHOLD_ERROR_QUOTA_EXCEEDED);
}
END_TEST

/* ---- body and max_age --------------------------------------------------------------- */

START_TEST (test_body_size_limit)
{
  g_autoptr (KeyholdOutboxRequest) largest = keyhold_outbox_request_new ("PUT", API "/blob");
  g_autoptr (KeyholdOutboxRequest) too_large = keyhold_outbox_request_new ("PUT", API "/blob");

  largest->body
      = g_bytes_new_take (g_malloc0 (KEYHOLD_OUTBOX_MAX_BODY_BYTES), KEYHOLD_OUTBOX_MAX_BODY_BYTES);
  too_large->body = g_bytes_new_take (g_malloc0 (KEYHOLD_OUTBOX_MAX_BODY_BYTES + 1),
                                      KEYHOLD_OUTBOX_MAX_BODY_BYTES + 1);

  ck_assert_uint_eq (assert_accepted (largest),
                     strlen (API "/blob") + KEYHOLD_OUTBOX_MAX_BODY_BYTES);
  assert_refused (too_large, KEYHOLD_ERROR_QUOTA_EXCEEDED);
}
END_TEST

START_TEST (test_max_age_limit)
{
  g_autoptr (KeyholdOutboxRequest) request = keyhold_outbox_request_new ("GET", API "/x");

  request->max_age_s = 0;
  assert_accepted (request);
  request->max_age_s = KEYHOLD_OUTBOX_MAX_MAX_AGE_S;
  assert_accepted (request);
  request->max_age_s = KEYHOLD_OUTBOX_MAX_MAX_AGE_S + 1;
  assert_refused (request, KEYHOLD_ERROR_INVALID_ARGUMENT);
}
END_TEST

/* ---- queue names ---------------------------------------------------------------- */

START_TEST (test_queue_names)
{
  g_autofree char *longest = g_strnfill (KEYHOLD_OUTBOX_MAX_QUEUE_NAME, 'q');
  g_autofree char *too_long = g_strnfill (KEYHOLD_OUTBOX_MAX_QUEUE_NAME + 1, 'q');
  const char *const good[] = { "default", "sync.v2:main_1-x", "0", longest };
  const char *const bad[] = { "", too_long, "a/b", "a b", "a\nb", "caf\xc3\xa9", "a*" };

  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr (GError) error = NULL;

      ck_assert_msg (keyhold_outbox_validate_queue_name (good[i], &error), "%s: %s", good[i],
                     error != NULL ? error->message : "");
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;

      ck_assert (!keyhold_outbox_validate_queue_name (bad[i], &error));
      ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT));
    }
}
END_TEST

/* ---- as GVariants ---------------------------------------------------------------- */

START_TEST (test_headers_variant)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  g_autoptr (GPtrArray) values = g_ptr_array_new ();
  g_autoptr (GVariant) none = g_variant_ref_sink (keyhold_outbox_headers_variant (NULL, NULL));
  g_autoptr (GVariant) empty = g_variant_ref_sink (keyhold_outbox_headers_variant (names, values));
  g_autoptr (GVariant) two = NULL;
  g_autofree char *text = NULL;

  ck_assert_str_eq (g_variant_get_type_string (none), "a(ss)");
  ck_assert_uint_eq (g_variant_n_children (none), 0);
  ck_assert_uint_eq (g_variant_n_children (empty), 0);

  g_ptr_array_add (names, "content-type");
  g_ptr_array_add (values, "text/plain");
  g_ptr_array_add (names, "etag");
  g_ptr_array_add (values, "\"v1\"");
  two = g_variant_ref_sink (keyhold_outbox_headers_variant (names, values));
  text = g_variant_print (two, FALSE);
  ck_assert_str_eq (text, "[('content-type', 'text/plain'), ('etag', '\"v1\"')]");
}
END_TEST

START_TEST (test_request_variant)
{
  g_autoptr (KeyholdOutboxRequest) request = request_with_header ("X-A", "1");
  g_autoptr (KeyholdOutboxRequest) bodiless = keyhold_outbox_request_new ("GET", API "/x");
  g_autoptr (GVariant) with_body = NULL;
  g_autoptr (GVariant) without_body = NULL;
  g_autofree char *text = NULL;

  request->body = g_bytes_new_static ("hi", 2);
  with_body = keyhold_outbox_request_to_variant (request);
  without_body = keyhold_outbox_request_to_variant (bodiless);

  ck_assert (!g_variant_is_floating (with_body));
  ck_assert (g_variant_is_of_type (with_body, G_VARIANT_TYPE (KEYHOLD_OUTBOX_REQUEST_TYPE)));
  text = g_variant_print (with_body, FALSE);
  /* The body's bytes as they are, no NUL added. */
  ck_assert_str_eq (text, "([('X-A', '1')], [0x68, 0x69])");
  g_clear_pointer (&text, g_free);
  text = g_variant_print (without_body, FALSE);
  ck_assert (g_variant_is_of_type (without_body, G_VARIANT_TYPE (KEYHOLD_OUTBOX_REQUEST_TYPE)));
  ck_assert_str_eq (text, "([], nothing)");
}
END_TEST

int
main (void)
{
  Suite *suite = suite_create ("outbox-request");
  TCase *good = tcase_create ("good");
  TCase *method = tcase_create ("method");
  TCase *url = tcase_create ("url");
  TCase *headers = tcase_create ("headers");
  TCase *limits = tcase_create ("body, max_age, queue names");
  TCase *variants = tcase_create ("variants");
  SRunner *runner;
  int failed;

  tcase_add_checked_fixture (good, setup, teardown);
  tcase_add_test (good, test_plain_get_is_accepted);
  tcase_add_test (good, test_post_with_headers_and_body_counts_every_byte);
  tcase_add_test (good, test_other_methods_and_origins_are_accepted);
  suite_add_tcase (suite, good);

  tcase_add_checked_fixture (method, setup, teardown);
  tcase_add_test (method, test_bad_methods_are_refused);
  tcase_add_test (method, test_method_length_limit);
  tcase_add_test (method, test_connect_and_trace_are_refused);
  tcase_add_test (method, test_head_with_a_body_is_refused);
  suite_add_tcase (suite, method);

  tcase_add_checked_fixture (url, setup, teardown);
  tcase_add_test (url, test_url_of_another_origin_is_refused_without_repeating_it);
  tcase_add_test (url, test_unusable_urls_are_refused);
  tcase_add_test (url, test_url_length_limit);
  tcase_add_test (url, test_url_is_kept_as_approved);
  suite_add_tcase (suite, url);

  tcase_add_checked_fixture (headers, setup, teardown);
  tcase_add_test (headers, test_credentials_and_idempotency_key_are_the_agents);
  tcase_add_test (headers, test_headers_the_http_module_sets_are_refused);
  tcase_add_test (headers, test_malformed_headers_are_refused);
  tcase_add_test (headers, test_long_names_are_not_repeated);
  tcase_add_test (headers, test_one_content_type_at_most);
  tcase_add_test (headers, test_header_count_limit);
  tcase_add_test (headers, test_header_size_limit);
  suite_add_tcase (suite, headers);

  tcase_add_checked_fixture (limits, setup, teardown);
  tcase_add_test (limits, test_body_size_limit);
  tcase_add_test (limits, test_max_age_limit);
  tcase_add_test (limits, test_queue_names);
  suite_add_tcase (suite, limits);

  tcase_add_test (variants, test_headers_variant);
  tcase_add_test (variants, test_request_variant);
  suite_add_tcase (suite, variants);

  runner = srunner_create (suite);
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
