/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <string.h>

#include "base/http-syntax.h"

/* RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
 * "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static const char tchar_specials[] = "!#$%&'*+-.^_`|~";

START_TEST (test_tchar_is_exactly_the_rfc_set)
{
  for (int c = 0; c < 256; c++)
    {
      gboolean expected = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                          || (c != 0 && strchr (tchar_specials, c) != NULL);

      ck_assert_msg (keyhold_http_syntax_is_tchar ((char) c) == expected, "byte 0x%02x", c);
    }
}
END_TEST

START_TEST (test_tokens)
{
  const char *const good[] = {
    "GET",        "POST", "PATCH",        "M-SEARCH",     "X-Request-Id",
    "x_custom.1", "a",    tchar_specials, "Content-Type", "0",
  };
  const char *const bad[] = {
    "",     " GET",       "GET ", "X A", "X-A:",        "X-A: 1", "X-A\r\nX-B", "X-A\n",
    "X\tA", "\"quoted\"", "a(b)", "a,b", "a;b",         "a/b",    "a=b",        "a@b",
    "a[b]", "a{b}",       "a\\b", "a?b", "caf\xc3\xa9", "\x7f",   "\x01",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    ck_assert_msg (keyhold_http_syntax_is_token (good[i]), "\"%s\"", good[i]);
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    ck_assert_msg (!keyhold_http_syntax_is_token (bad[i]), "\"%s\"", bad[i]);
}
END_TEST

START_TEST (test_field_values)
{
  /* Visible characters, SP, HTAB and obs-text (bytes 0x80 to 0xff). */
  const char *const good[] = {
    "",
    "application/json",
    "a b",
    "a\tb",
    "\"3f1c\"",
    "caf\xc3\xa9",
    "\x80\xff",
    " ",
    "text/plain; charset=utf-8",
    "~!@#$%^&*()_+{}|:<>?",
  };
  const char *const bad[] = {
    "1\r\nX-B: 2",
    "1\n",
    "1\r",
    "a\x01"
    "b",
    "\x7f",
    "a\x1f",
    "\x1b[31m",
    "\x0b",
    "\x0c",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    ck_assert_msg (keyhold_http_syntax_is_field_value (good[i]), "value %zu", i);
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    ck_assert_msg (!keyhold_http_syntax_is_field_value (bad[i]), "value %zu", i);
}
END_TEST

START_TEST (test_every_control_character_but_htab_is_refused)
{
  for (int c = 1; c < 256; c++)
    {
      char value[] = { 'a', (char) c, 'b', '\0' };
      gboolean expected = c == '\t' || (c >= 0x20 && c != 0x7f);

      ck_assert_msg (keyhold_http_syntax_is_field_value (value) == expected, "byte 0x%02x", c);
    }
}
END_TEST

int
main (void)
{
  Suite *suite = suite_create ("http-syntax");
  TCase *tcase = tcase_create ("http-syntax");
  SRunner *runner;
  int failed;

  tcase_add_test (tcase, test_tchar_is_exactly_the_rfc_set);
  tcase_add_test (tcase, test_tokens);
  tcase_add_test (tcase, test_field_values);
  tcase_add_test (tcase, test_every_control_character_but_htab_is_refused);
  suite_add_tcase (suite, tcase);
  runner = srunner_create (suite);
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
