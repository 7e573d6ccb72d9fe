/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>

#include "accounts/token-request.h"
#include "keyhold-contract.h"

static void
assert_invalid (const char *const *scopes, const char *audience, guint min_validity_s)
{
  g_autoptr (GError) error = NULL;

  ck_assert (!keyhold_token_request_validate (scopes, audience, min_validity_s, &error));
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT));
}

static void
assert_valid (const char *const *scopes, const char *audience, guint min_validity_s)
{
  g_autoptr (GError) error = NULL;

  ck_assert_msg (keyhold_token_request_validate (scopes, audience, min_validity_s, &error), "%s",
                 error != NULL ? error->message : "");
}

START_TEST (test_accepts_ordinary_requests)
{
  const char *const none[] = { NULL };
  const char *const some[] = { "openid", "api:read", "https://api.example.com/write", NULL };

  assert_valid (none, "", 0);
  assert_valid (NULL, "", 0);
  assert_valid (some, "https://api.example.com/", 300);
  assert_valid (some, "urn:example:resource", KEYHOLD_TOKEN_MAX_MIN_VALIDITY_S);
}
END_TEST

/* RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) */
START_TEST (test_refuses_scopes_outside_the_grammar)
{
  const char *const empty[] = { "", NULL };
  const char *const space[] = { "a b", NULL };
  const char *const quote[] = { "a\"b", NULL };
  const char *const backslash[] = { "a\\b", NULL };
  const char *const control[] = { "a\tb", NULL };
  const char *const high[] = { "caf\xc3\xa9", NULL };
  g_autofree char *long_scope = g_strnfill (129, 'a');
  const char *const too_long[] = { long_scope, NULL };

  assert_invalid (empty, "", 0);
  assert_invalid (space, "", 0);
  assert_invalid (quote, "", 0);
  assert_invalid (backslash, "", 0);
  assert_invalid (control, "", 0);
  assert_invalid (high, "", 0);
  assert_invalid (too_long, "", 0);
}
END_TEST

START_TEST (test_bounds_the_number_of_scopes)
{
  g_autoptr (GPtrArray) scopes = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < KEYHOLD_TOKEN_MAX_SCOPES; i++)
    g_ptr_array_add (scopes, g_strdup_printf ("s%u", i));
  g_ptr_array_add (scopes, NULL);
  assert_valid ((const char *const *) scopes->pdata, "", 0);

  g_ptr_array_remove_index (scopes, scopes->len - 1);
  g_ptr_array_add (scopes, g_strdup ("one-too-many"));
  g_ptr_array_add (scopes, NULL);
  assert_invalid ((const char *const *) scopes->pdata, "", 0);
}
END_TEST

/* RFC 8707 §2: an absolute URI without a fragment. */
START_TEST (test_refuses_audiences_that_are_not_resource_indicators)
{
  g_autofree char *path = g_strnfill (2048, 'a');
  g_autofree char *too_long = g_strconcat ("https://api.example.com/", path, NULL);

  assert_invalid (NULL, "api.example.com", 0);
  assert_invalid (NULL, "/relative", 0);
  assert_invalid (NULL, "https://api.example.com/#fragment", 0);
  assert_invalid (NULL, "https://api.example.com/ with space", 0);
  assert_invalid (NULL, "https://api.example.com/\ttab", 0);
  assert_invalid (NULL, "https://api.example.com/caf\xc3\xa9", 0);
  assert_invalid (NULL, too_long, 0);
}
END_TEST

START_TEST (test_bounds_min_validity)
{
  gint64 hour_us = (gint64) 3600 * G_USEC_PER_SEC;

  assert_invalid (NULL, "", KEYHOLD_TOKEN_MAX_MIN_VALIDITY_S + 1);
  assert_invalid (NULL, "", G_MAXUINT);
  /* 0: the default, or half the lifetime of a token that lives less than
   * twice that. */
  ck_assert_int_eq (keyhold_token_request_min_validity_us (0, hour_us),
                    (gint64) KEYHOLD_TOKEN_DEFAULT_MIN_VALIDITY_S * G_USEC_PER_SEC);
  ck_assert_int_eq (keyhold_token_request_min_validity_us (0, 20 * G_USEC_PER_SEC),
                    10 * G_USEC_PER_SEC);
  ck_assert_int_eq (keyhold_token_request_min_validity_us (0, 0), 0);
  ck_assert_int_eq (keyhold_token_request_min_validity_us (0, -1), 0);
  /* An explicit value does not depend on the lifetime. */
  ck_assert_int_eq (keyhold_token_request_min_validity_us (1, hour_us), G_USEC_PER_SEC);
  ck_assert_int_eq (keyhold_token_request_min_validity_us (30, 20 * G_USEC_PER_SEC),
                    30 * G_USEC_PER_SEC);
  ck_assert_int_eq (keyhold_token_request_min_validity_us (KEYHOLD_TOKEN_MAX_MIN_VALIDITY_S, 0),
                    (gint64) KEYHOLD_TOKEN_MAX_MIN_VALIDITY_S * G_USEC_PER_SEC);
}
END_TEST

static void
assert_key (const char *const *scopes, const char *audience, const char *expected)
{
  g_autofree char *key = keyhold_token_request_key (scopes, audience);

  ck_assert_str_eq (key, expected);
}

START_TEST (test_key_ignores_scope_order_and_repeats)
{
  const char *const ab[] = { "a", "b", NULL };
  const char *const ba[] = { "b", "a", NULL };
  const char *const repeated[] = { "b", "a", "b", "a", NULL };

  assert_key (NULL, "", "");
  assert_key (NULL, NULL, "");
  assert_key (ab, "", "a b");
  assert_key (ba, "", "a b");
  assert_key (repeated, "", "a b");
}
END_TEST

START_TEST (test_key_tells_audiences_apart)
{
  const char *const a[] = { "a", NULL };

  assert_key (NULL, "https://one.example/", "\nhttps://one.example/");
  assert_key (a, "https://one.example/", "a\nhttps://one.example/");
  assert_key (a, "https://two.example/", "a\nhttps://two.example/");
}
END_TEST

/* "a|https://x" is a valid scope token; asking for it must not be served
 * the token for scope "a" at audience https://x. */
START_TEST (test_key_of_a_scope_is_never_that_of_an_audience)
{
  const char *const odd_scope[] = { "a|https://x.example/", NULL };
  const char *const a[] = { "a", NULL };
  g_autofree char *scope_key = keyhold_token_request_key (odd_scope, "");
  g_autofree char *audience_key = keyhold_token_request_key (a, "https://x.example/");

  assert_valid (odd_scope, "", 0);
  assert_valid (a, "https://x.example/", 0);
  ck_assert_str_ne (scope_key, audience_key);
}
END_TEST

int
main (void)
{
  Suite *suite = suite_create ("token-request");
  TCase *tcase = tcase_create ("token-request");
  SRunner *runner;
  int failed;

  tcase_add_test (tcase, test_accepts_ordinary_requests);
  tcase_add_test (tcase, test_refuses_scopes_outside_the_grammar);
  tcase_add_test (tcase, test_bounds_the_number_of_scopes);
  tcase_add_test (tcase, test_refuses_audiences_that_are_not_resource_indicators);
  tcase_add_test (tcase, test_bounds_min_validity);
  tcase_add_test (tcase, test_key_ignores_scope_order_and_repeats);
  tcase_add_test (tcase, test_key_tells_audiences_apart);
  tcase_add_test (tcase, test_key_of_a_scope_is_never_that_of_an_audience);
  suite_add_tcase (suite, tcase);
  runner = srunner_create (suite);
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
