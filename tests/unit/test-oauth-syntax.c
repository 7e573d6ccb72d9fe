/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>

#include "base/oauth-syntax.h"

/* RFC 6749 §3.3 allows %x21 / %x23-5B / %x5D-7E: every visible ASCII
 * character but '"' and '\'. */
START_TEST (test_scope_characters)
{
  for (guint c = 1; c < 256; c++)
    {
      char scope[] = { 'a', (char) c, 'z', '\0' };
      gboolean expected = c >= 0x21 && c <= 0x7e && c != '"' && c != '\\';

      ck_assert_msg (keyhold_oauth_syntax_is_scope_token (scope) == expected, "byte 0x%02x", c);
    }
}
END_TEST

START_TEST (test_scope_length)
{
  g_autofree char *longest = g_strnfill (KEYHOLD_SCOPE_MAX_LENGTH, 's');
  g_autofree char *too_long = g_strnfill (KEYHOLD_SCOPE_MAX_LENGTH + 1, 's');

  ck_assert (!keyhold_oauth_syntax_is_scope_token (""));
  ck_assert (keyhold_oauth_syntax_is_scope_token ("s"));
  ck_assert (keyhold_oauth_syntax_is_scope_token (longest));
  ck_assert (!keyhold_oauth_syntax_is_scope_token (too_long));
}
END_TEST

int
main (void)
{
  Suite *suite = suite_create ("oauth-syntax");
  TCase *tcase = tcase_create ("oauth-syntax");
  SRunner *runner;
  int failed;

  tcase_add_test (tcase, test_scope_characters);
  tcase_add_test (tcase, test_scope_length);
  suite_add_tcase (suite, tcase);
  runner = srunner_create (suite);
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
