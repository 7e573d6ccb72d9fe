/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "base/secret.h"

START_TEST (test_new_copies_bytes_and_terminates)
{
  char source[] = "refresh-token";
  g_autoptr (KeyholdSecret) secret = keyhold_secret_new (source, strlen (source));

  /* A copy: changing the source afterwards does not reach the secret. */
  memset (source, 'x', strlen (source));
  ck_assert_uint_eq (keyhold_secret_get_length (secret), strlen ("refresh-token"));
  ck_assert_str_eq (keyhold_secret_get (secret), "refresh-token");
  ck_assert_ptr_ne (keyhold_secret_get (secret), source);
}
END_TEST

/* Only @length bytes are taken, NUL or not, and a NUL always follows. */
START_TEST (test_length_is_what_was_given)
{
  static const char data[] = { 'a', '\0', 'b', 'c', 'd', 'e' };
  g_autoptr (KeyholdSecret) binary = keyhold_secret_new (data, 3);
  g_autoptr (KeyholdSecret) prefix = keyhold_secret_new ("abcdef", 4);
  g_autoptr (KeyholdSecret) from_string = keyhold_secret_new_from_string ("access");

  ck_assert_uint_eq (keyhold_secret_get_length (binary), 3);
  ck_assert_int_eq (memcmp (keyhold_secret_get (binary), data, 3), 0);
  ck_assert_int_eq (keyhold_secret_get (binary)[3], '\0');

  ck_assert_uint_eq (keyhold_secret_get_length (prefix), 4);
  ck_assert_str_eq (keyhold_secret_get (prefix), "abcd");

  ck_assert_uint_eq (keyhold_secret_get_length (from_string), 6);
  ck_assert_str_eq (keyhold_secret_get (from_string), "access");
}
END_TEST

START_TEST (test_empty_secret)
{
  g_autoptr (KeyholdSecret) from_null = keyhold_secret_new (NULL, 0);
  g_autoptr (KeyholdSecret) from_text = keyhold_secret_new ("ignored", 0);
  g_autoptr (KeyholdSecret) from_string = keyhold_secret_new_from_string ("");
  g_autoptr (KeyholdSecret) one = keyhold_secret_new_from_string ("a");
  KeyholdSecret *ref;

  ck_assert_uint_eq (keyhold_secret_get_length (from_null), 0);
  ck_assert_ptr_nonnull (keyhold_secret_get (from_null));
  ck_assert_str_eq (keyhold_secret_get (from_null), "");
  ck_assert_str_eq (keyhold_secret_get (from_text), "");
  ck_assert_uint_eq (keyhold_secret_get_length (from_string), 0);

  ck_assert (keyhold_secret_equal (from_null, from_text));
  ck_assert (keyhold_secret_equal (from_text, from_string));
  ck_assert (!keyhold_secret_equal (from_null, one));
  ck_assert (!keyhold_secret_equal (one, from_null));

  /* Empty secrets are counted like any other. */
  ref = keyhold_secret_ref (from_null);
  ck_assert_ptr_eq (ref, from_null);
  keyhold_secret_unref (ref);
  ck_assert_str_eq (keyhold_secret_get (from_null), "");
}
END_TEST

START_TEST (test_ref_and_unref)
{
  KeyholdSecret *secret = keyhold_secret_new_from_string ("shared");
  KeyholdSecret *second = keyhold_secret_ref (secret);
  KeyholdSecret *third = keyhold_secret_ref (secret);

  ck_assert_ptr_eq (second, secret);
  ck_assert_ptr_eq (third, secret);
  keyhold_secret_unref (second);
  keyhold_secret_unref (third);
  /* One reference is left: the bytes are still there. */
  ck_assert_str_eq (keyhold_secret_get (secret), "shared");
  keyhold_secret_unref (secret);

  keyhold_secret_unref (NULL);
}
END_TEST

START_TEST (test_equal)
{
  g_autoptr (KeyholdSecret) abc = keyhold_secret_new_from_string ("abc");
  g_autoptr (KeyholdSecret) abc_again = keyhold_secret_new_from_string ("abc");
  g_autoptr (KeyholdSecret) abd = keyhold_secret_new_from_string ("abd");
  g_autoptr (KeyholdSecret) xbc = keyhold_secret_new_from_string ("xbc");
  g_autoptr (KeyholdSecret) abcd = keyhold_secret_new_from_string ("abcd");
  g_autoptr (KeyholdSecret) ab = keyhold_secret_new_from_string ("ab");
  g_autoptr (KeyholdSecret) abc_nul = keyhold_secret_new ("abc\0", 4);

  ck_assert (keyhold_secret_equal (abc, abc));
  ck_assert (keyhold_secret_equal (abc, abc_again));
  ck_assert (keyhold_secret_equal (abc_again, abc));
  ck_assert (!keyhold_secret_equal (abc, abd));
  ck_assert (!keyhold_secret_equal (abc, xbc));

  /* A prefix is not equal, whichever side is longer, even when the longer
   * one only adds a NUL. */
  ck_assert (!keyhold_secret_equal (abc, abcd));
  ck_assert (!keyhold_secret_equal (abcd, abc));
  ck_assert (!keyhold_secret_equal (ab, abc));
  ck_assert (!keyhold_secret_equal (abc, ab));
  ck_assert (!keyhold_secret_equal (abc, abc_nul));
  ck_assert (!keyhold_secret_equal (abc_nul, abc));
}
END_TEST

static gboolean
all_zero (const char *bytes, gsize length)
{
  for (gsize i = 0; i < length; i++)
    if (bytes[i] != '\0')
      return FALSE;
  return TRUE;
}

START_TEST (test_new_random)
{
  g_autoptr (KeyholdSecret) first = keyhold_secret_new_random (32);
  g_autoptr (KeyholdSecret) second = keyhold_secret_new_random (32);
  g_autoptr (KeyholdSecret) long_one = keyhold_secret_new_random (5000);
  g_autoptr (KeyholdSecret) none = keyhold_secret_new_random (0);

  ck_assert_uint_eq (keyhold_secret_get_length (first), 32);
  ck_assert_int_eq (keyhold_secret_get (first)[32], '\0');
  ck_assert_uint_eq (keyhold_secret_get_length (long_one), 5000);
  ck_assert_int_eq (keyhold_secret_get (long_one)[5000], '\0');

  /* 2^-256 chance of a false failure. */
  ck_assert (!keyhold_secret_equal (first, second));
  ck_assert (!all_zero (keyhold_secret_get (first), 32));
  ck_assert (!all_zero (keyhold_secret_get (long_one) + 4968, 32));

  ck_assert_uint_eq (keyhold_secret_get_length (none), 0);
  ck_assert_str_eq (keyhold_secret_get (none), "");
}
END_TEST

/* The protection of the mapping that holds @address, as /proc/self/maps
 * shows it ("r--p"), or NULL. */
static char *
protection_of (const void *address)
{
  g_autofree char *maps = NULL;
  g_auto (GStrv) lines = NULL;
  guintptr wanted = (guintptr) address;

  ck_assert (g_file_get_contents ("/proc/self/maps", &maps, NULL, NULL));
  lines = g_strsplit (maps, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      unsigned long long start, end;
      char protection[5];

      if (sscanf (lines[i], "%llx-%llx %4s", &start, &end, protection) == 3 && wanted >= start
          && wanted < end)
        return g_strdup (protection);
    }
  return NULL;
}

/* The header promises the bytes are read-only once filled: a stray write
 * faults instead of changing a credential. The page's protection says so
 * without a fault, which the sanitizers would take over. */
START_TEST (test_bytes_are_read_only)
{
  g_autoptr (KeyholdSecret) secret = keyhold_secret_new_from_string ("read-only");
  g_autofree char *protection = protection_of (keyhold_secret_get (secret));

  ck_assert_ptr_nonnull (protection);
  ck_assert_str_eq (protection, "r--p");
}
END_TEST

START_TEST (test_wipe_string)
{
  /* Frees (valgrind's leak check sees it) and takes NULL. The wiping
   * itself cannot be observed without reading freed memory. */
  keyhold_secret_wipe_string (g_strdup ("copy-made-by-a-library"));
  keyhold_secret_wipe_string (g_strdup (""));
  keyhold_secret_wipe_string (NULL);
}
END_TEST

int
main (void)
{
  Suite *suite = suite_create ("secret");
  TCase *tcase = tcase_create ("secret");
  SRunner *runner;
  int failed;

  tcase_add_test (tcase, test_new_copies_bytes_and_terminates);
  tcase_add_test (tcase, test_length_is_what_was_given);
  tcase_add_test (tcase, test_empty_secret);
  tcase_add_test (tcase, test_ref_and_unref);
  tcase_add_test (tcase, test_equal);
  tcase_add_test (tcase, test_new_random);
  tcase_add_test (tcase, test_wipe_string);
  tcase_add_test (tcase, test_bytes_are_read_only);
  suite_add_tcase (suite, tcase);
  runner = srunner_create (suite);
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
