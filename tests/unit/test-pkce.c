/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <string.h>

#include "oidc/pkce.h"

/* RFC 7636 §4.1: 43 characters of base64url without padding. */
static gboolean
is_base64url_43 (const char *text)
{
  if (strlen (text) != 43)
    return FALSE;
  for (const char *c = text; *c != '\0'; c++)
    if (!g_ascii_isalnum (*c) && *c != '-' && *c != '_')
      return FALSE;
  return TRUE;
}

START_TEST (test_challenge_matches_rfc7636_appendix_b)
{
  g_autoptr (KeyholdSecret) verifier
      = keyhold_secret_new_from_string ("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
  g_autofree char *challenge = keyhold_pkce_challenge_s256 (verifier);

  ck_assert_str_eq (challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}
END_TEST

START_TEST (test_verifier_is_256_bit_base64url)
{
  g_autoptr (KeyholdSecret) first = keyhold_pkce_new_verifier ();
  g_autoptr (KeyholdSecret) second = keyhold_pkce_new_verifier ();

  ck_assert (is_base64url_43 (keyhold_secret_get (first)));
  ck_assert_uint_eq (keyhold_secret_get_length (first), 43);
  ck_assert (!keyhold_secret_equal (first, second));
}
END_TEST

START_TEST (test_challenge_of_fresh_verifier_is_base64url)
{
  g_autoptr (KeyholdSecret) verifier = keyhold_pkce_new_verifier ();
  g_autofree char *challenge = keyhold_pkce_challenge_s256 (verifier);

  ck_assert (is_base64url_43 (challenge));
  ck_assert_str_ne (challenge, keyhold_secret_get (verifier));
}
END_TEST

START_TEST (test_state_and_nonce_are_fresh)
{
  g_autofree char *state1 = keyhold_pkce_new_state ();
  g_autofree char *state2 = keyhold_pkce_new_state ();
  g_autofree char *nonce1 = keyhold_pkce_new_nonce ();
  g_autofree char *nonce2 = keyhold_pkce_new_nonce ();

  ck_assert (is_base64url_43 (state1));
  ck_assert (is_base64url_43 (nonce1));
  ck_assert_str_ne (state1, state2);
  ck_assert_str_ne (nonce1, nonce2);
  ck_assert_str_ne (state1, nonce1);
}
END_TEST

static Suite *
pkce_suite (void)
{
  Suite *suite = suite_create ("pkce");
  TCase *tcase = tcase_create ("core");

  tcase_add_test (tcase, test_challenge_matches_rfc7636_appendix_b);
  tcase_add_test (tcase, test_verifier_is_256_bit_base64url);
  tcase_add_test (tcase, test_challenge_of_fresh_verifier_is_base64url);
  tcase_add_test (tcase, test_state_and_nonce_are_fresh);
  suite_add_tcase (suite, tcase);
  return suite;
}

int
main (void)
{
  SRunner *runner = srunner_create (pkce_suite ());
  int failed;

  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
