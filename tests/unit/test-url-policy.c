/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <string.h>

#include "keyhold-contract.h"

#include "base/url-policy.h"

static const char *const good_issuers[] = {
  "https://example.com",
  "https://example.com/",
  "https://example.com/realms/main",
  "https://example.com:8443/tenant/v2.0",
  "HTTPS://Example.COM",
  "https://[2001:db8::1]/",
  "https://192.0.2.7",
  "http://127.0.0.1",
  "http://127.0.0.5:8080",
  "http://127.255.255.254/x",
  "http://[::1]:9",
  "http://[0:0:0:0:0:0:0:1]",
  "http://localhost",
  "http://LOCALHOST:5556/dex",
  "https://bücher.example",
  "https://xn--bcher-kva.example",
  "https://under_score.example.com",
};

static const char *const bad_issuers[] = {
  "",
  "example.com",
  "/relative/path",
  "//example.com/no-scheme",
  "https:example.com",
  "http://example.com",
  "http://192.168.1.1",
  "http://[::ffff:127.0.0.1]",
  "http://127.0.0.1.evil.com",
  "http://localhost.evil.com",
  "http://evil.localhost",
  "http://127.1",
  "http://2130706433",
  "http://0x7f000001",
  "http://0x7f.0.0.1",
  /* Read as 127.0.0.1 by inet_aton (), whatever the scheme. */
  "https://127.1",
  "https://2130706433",
  "https://0x7F.1",
  "https://example.0x",
  "ftp://example.com",
  "file:///etc/passwd",
  "javascript:alert(1)",
  "https://user@example.com",
  "https://user:password@example.com",
  "https://@example.com",
  "https://example.com?",
  "https://example.com/?tenant=1",
  "https://example.com#",
  "https://example.com/#frag",
  "https://",
  "https:///path",
  "https://exa mple.com",
  "https://exa%20mple.com",
  "https://ex%2Fample.com",
  "https://a\\b.example.com",
  "https://a@b@example.com",
  "https://example.com.",
  "https://a..example.com",
  "https://[fe80::1%25eth0]/",
  "https://[v1.x]/",
  "https://example.com:0",
  "https://example.com:65536",
  "https://example.com:-1",
  "https://%ff.example",
  "https://example.com/%zz",
};

START_TEST (test_good_issuers)
{
  for (guint i = 0; i < G_N_ELEMENTS (good_issuers); i++)
    {
      g_autoptr (GError) error = NULL;
      gboolean ok = keyhold_url_policy_check_issuer (good_issuers[i], &error);

      ck_assert_msg (ok, "%s rejected: %s", good_issuers[i], error ? error->message : "");
      ck_assert_ptr_null (error);
    }
}
END_TEST

START_TEST (test_bad_issuers)
{
  for (guint i = 0; i < G_N_ELEMENTS (bad_issuers); i++)
    {
      g_autoptr (GError) error = NULL;

      ck_assert_msg (!keyhold_url_policy_check_issuer (bad_issuers[i], &error), "%s accepted",
                     bad_issuers[i]);
      ck_assert_msg (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT),
                     "%s: wrong error", bad_issuers[i]);
      ck_assert_str_ne (error->message, "");
    }
}
END_TEST

static void
assert_error_mentions (const char *url, const char *word)
{
  g_autoptr (GError) error = NULL;

  ck_assert (!keyhold_url_policy_check_issuer (url, &error));
  ck_assert_msg (strstr (error->message, word) != NULL, "“%s” lacks “%s”", error->message, word);
}

START_TEST (test_error_messages_name_the_problem)
{
  assert_error_mentions ("http://example.com", "https");
  assert_error_mentions ("https://user@example.com", "user");
  assert_error_mentions ("https://example.com/?a=b", "query");
  assert_error_mentions ("https://example.com/#a", "fragment");
  assert_error_mentions ("ftp://example.com", "scheme");
  assert_error_mentions ("https:///x", "host");
}
END_TEST

START_TEST (test_errors_do_not_repeat_user_information)
{
  g_autoptr (GError) error = NULL;

  ck_assert (!keyhold_url_policy_check_issuer ("https://alice:hunter2@example.com", &error));
  ck_assert_ptr_null (strstr (error->message, "hunter2"));
}
END_TEST

static void
assert_origin (const char *url, const char *expected)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *origin = keyhold_url_policy_origin (url, &error);

  ck_assert_msg (origin != NULL, "%s: %s", url, error ? error->message : "");
  ck_assert_str_eq (origin, expected);
}

START_TEST (test_origin_normalisation)
{
  assert_origin ("HTTPS://Example.COM:443/x", "https://example.com");
  assert_origin ("https://example.com", "https://example.com");
  assert_origin ("https://example.com:8443/a/b?c=d#e", "https://example.com:8443");
  assert_origin ("https://example.com:80/", "https://example.com:80");
  assert_origin ("http://127.0.0.1:80", "http://127.0.0.1");
  assert_origin ("http://127.0.0.1:443", "http://127.0.0.1:443");
  assert_origin ("http://[::1]:9/x", "http://[::1]:9");
  assert_origin ("http://[0:0:0:0:0:0:0:1]:80", "http://[::1]");
  assert_origin ("https://[2001:DB8::A]:443", "https://[2001:db8::a]");
  assert_origin ("http://LocalHost:8080", "http://localhost:8080");
  assert_origin ("https://Bücher.Example/x", "https://xn--bcher-kva.example");
  assert_origin ("https://api.example.com/v1/items?q=%FF%00", "https://api.example.com");
}
END_TEST

START_TEST (test_origin_rejects)
{
  const char *const bad[] = {
    "http://example.com/x",
    "https://user@example.com/x",
    "https://a:b@example.com/x",
    "ftp://example.com",
    "relative/path",
    "http://127.0.0.1.evil.com",
    "http://localhost.evil.com",
    "https://evil.com\\@api.example.com",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *origin = keyhold_url_policy_origin (bad[i], &error);

      ck_assert_msg (origin == NULL, "%s gave %s", bad[i], origin);
      ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT));
    }
}
END_TEST

/* Asserts that @url is approved for @allowed and comes back as @expected. */
static void
assert_approved (const char *url, const char *const *allowed, const char *expected)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *approved = keyhold_url_policy_approve (url, allowed, &error);

  ck_assert_msg (approved != NULL, "%s: %s", url, error ? error->message : "");
  ck_assert_str_eq (approved, expected);
}

START_TEST (test_approve)
{
  const char *const allowed[] = { "https://api.example.com", "http://127.0.0.1:8080", NULL };
  g_autoptr (GError) error = NULL;

  assert_approved ("https://API.example.com:443/v1/x?y=1", allowed,
                   "https://api.example.com/v1/x?y=1");
  assert_approved ("http://127.0.0.1:8080/queue", allowed, "http://127.0.0.1:8080/queue");
  /* Path and query stay as sent, percent-encoding included. */
  assert_approved ("https://api.example.com/a%2Fb%00?q=%C3%9F&r#frag", allowed,
                   "https://api.example.com/a%2Fb%00?q=%C3%9F&r#frag");

  ck_assert_ptr_null (
      keyhold_url_policy_approve ("https://api.example.com:8443/", allowed, &error));
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_ACCESS_DENIED));
  ck_assert_ptr_nonnull (strstr (error->message, "https://api.example.com:8443"));
  g_clear_error (&error);

  ck_assert_ptr_null (
      keyhold_url_policy_approve ("https://api.example.com.evil.com/", allowed, &error));
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_ACCESS_DENIED));
  g_clear_error (&error);

  ck_assert_ptr_null (keyhold_url_policy_approve ("http://api.example.com/", allowed, &error));
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT));
  g_clear_error (&error);

  ck_assert_ptr_null (keyhold_url_policy_approve ("https://api.example.com/", NULL, &error));
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_ACCESS_DENIED));
}
END_TEST

/* straße.de is xn--strae-oqa.de; libcurl's UTS #46 mapping (libidn2)
 * would turn the capital sharp s of "straẞe" into "ss" and connect to
 * strasse.de. The approved URL carries the ASCII host that was checked,
 * which libcurl uses as it is, so the bearer token goes where the check
 * said. */
START_TEST (test_approve_international_host)
{
  const char *const allowed[] = { "https://api.xn--strae-oqa.de", NULL };
  const char *const strasse[] = { "https://api.strasse.de", NULL };
  g_autoptr (GError) error = NULL;

  assert_approved ("https://api.straẞe.de/v1/items?x=1", allowed,
                   "https://api.xn--strae-oqa.de/v1/items?x=1");
  assert_approved ("https://api.straße.de/v1", allowed, "https://api.xn--strae-oqa.de/v1");
  assert_approved ("https://API.XN--STRAE-OQA.DE/v1", allowed, "https://api.xn--strae-oqa.de/v1");
  /* A percent-encoded host means the same name. */
  assert_approved ("https://api.stra%C3%9Fe.de/v1", allowed, "https://api.xn--strae-oqa.de/v1");

  /* No spelling of straße reaches strasse.de's origin, nor the reverse. */
  ck_assert_ptr_null (keyhold_url_policy_approve ("https://api.straẞe.de/v1", strasse, &error));
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_ACCESS_DENIED));
  g_clear_error (&error);
  ck_assert_ptr_null (keyhold_url_policy_approve ("https://api.strasse.de/v1", allowed, &error));
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_ACCESS_DENIED));
}
END_TEST

START_TEST (test_approve_international_endpoint)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *approved = keyhold_url_policy_approve_endpoint (
      "https://login.straẞe.de/token?tenant=a", "https://login.xn--strae-oqa.de", &error);

  ck_assert_msg (approved != NULL, "%s", error ? error->message : "");
  ck_assert_str_eq (approved, "https://login.xn--strae-oqa.de/token?tenant=a");
}
END_TEST

static void
assert_endpoint (const char *endpoint, const char *issuer, gboolean expected)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *approved = keyhold_url_policy_approve_endpoint (endpoint, issuer, &error);
  gboolean ok = approved != NULL;

  ck_assert_msg (ok == expected, "%s for issuer %s: %s", endpoint, issuer,
                 error ? error->message : "accepted");
  if (!ok)
    ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT));
}

START_TEST (test_endpoints)
{
  assert_endpoint ("https://example.com/token", "https://example.com", TRUE);
  assert_endpoint ("https://other.example.net/token?tenant=a", "https://example.com", TRUE);
  assert_endpoint ("http://127.0.0.1:5556/token", "http://127.0.0.1:5556", TRUE);
  assert_endpoint ("https://127.0.0.1:5556/token", "http://127.0.0.1:5556", TRUE);
  assert_endpoint ("http://localhost/token", "http://[::1]", TRUE);

  /* A https provider never gets to downgrade, not even to loopback. */
  assert_endpoint ("http://127.0.0.1/token", "https://example.com", FALSE);
  assert_endpoint ("http://example.com/token", "https://example.com", FALSE);
  assert_endpoint ("http://example.com/token", "http://127.0.0.1", FALSE);
  assert_endpoint ("https://example.com/token#x", "https://example.com", FALSE);
  assert_endpoint ("https://u@example.com/token", "https://example.com", FALSE);
  assert_endpoint ("/token", "https://example.com", FALSE);
  assert_endpoint ("ftp://example.com/token", "https://example.com", FALSE);
  /* The issuer itself must be valid. */
  assert_endpoint ("https://example.com/token", "https://example.com/?q", FALSE);
  assert_endpoint ("https://example.com/token", "http://example.com", FALSE);
}
END_TEST

START_TEST (test_length_limit)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) url = g_string_new ("https://example.com/");
  g_autofree char *huge = NULL;
  g_autofree char *long_host = NULL;

  while (url->len < KEYHOLD_URL_POLICY_MAX_LENGTH)
    g_string_append_c (url, 'a');
  ck_assert (keyhold_url_policy_check_issuer (url->str, NULL));

  g_string_append_c (url, 'a');
  ck_assert (!keyhold_url_policy_check_issuer (url->str, &error));
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT));
  g_clear_error (&error);

  huge = g_strnfill (1024 * 1024, 'a');
  memcpy (huge, "https://", 8);
  ck_assert (!keyhold_url_policy_check_issuer (huge, &error));
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT));
  g_clear_error (&error);

  /* A 64-character DNS label is one too many. */
  long_host = g_strdup_printf ("https://%0*d.example.com", 64, 0);
  ck_assert (!keyhold_url_policy_check_issuer (long_host, &error));
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT));
}
END_TEST

START_TEST (test_unicode_and_control_characters)
{
  /* A C string ends at its first NUL, so "https://example.com\0.evil" is
   * just "https://example.com": nothing after the NUL is ever seen. */
  const char with_nul[] = "https://example.com\0.evil.com";
  const char *const bad[] = {
    "https://ex\tample.com",
    "https://example.com\n",
    "https://exa\xffmple.com",
    "https://\xe2\x80\xae"
    "moc.example",
    "http://ｌｏｃａｌｈｏｓｔ.evil.com",
  };

  assert_origin (with_nul, "https://example.com");
  assert_origin ("https://%E2%82%AC.example", "https://xn--lzg.example");
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    ck_assert_msg (!keyhold_url_policy_check_issuer (bad[i], NULL), "%s accepted", bad[i]);
}
END_TEST

static Suite *
url_policy_suite (void)
{
  Suite *suite = suite_create ("url-policy");
  TCase *tc = tcase_create ("core");

  tcase_add_test (tc, test_good_issuers);
  tcase_add_test (tc, test_bad_issuers);
  tcase_add_test (tc, test_error_messages_name_the_problem);
  tcase_add_test (tc, test_errors_do_not_repeat_user_information);
  tcase_add_test (tc, test_origin_normalisation);
  tcase_add_test (tc, test_origin_rejects);
  tcase_add_test (tc, test_approve);
  tcase_add_test (tc, test_approve_international_host);
  tcase_add_test (tc, test_approve_international_endpoint);
  tcase_add_test (tc, test_endpoints);
  tcase_add_test (tc, test_length_limit);
  tcase_add_test (tc, test_unicode_and_control_characters);
  suite_add_tcase (suite, tc);
  return suite;
}

int
main (void)
{
  SRunner *runner = srunner_create (url_policy_suite ());
  int failed;

  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
