/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>

#include "base/backoff.h"

static const KeyholdBackoff refresh = { .first_bound_s = 4, .cap_s = 300 };

START_TEST (test_bound_doubles_up_to_the_cap)
{
  ck_assert_uint_eq (keyhold_backoff_delay_s (&refresh, 1, -1, 0.999), 4);
  ck_assert_uint_eq (keyhold_backoff_delay_s (&refresh, 2, -1, 0.999), 8);
  ck_assert_uint_eq (keyhold_backoff_delay_s (&refresh, 3, -1, 0.999), 16);
  ck_assert_uint_eq (keyhold_backoff_delay_s (&refresh, 8, -1, 0.999), 300);
  ck_assert_uint_eq (keyhold_backoff_delay_s (&refresh, 1000, -1, 0.999), 300);
}
END_TEST

START_TEST (test_full_jitter_spans_one_second_to_bound)
{
  ck_assert_uint_eq (keyhold_backoff_delay_s (&refresh, 5, -1, 0.0), 1);
  ck_assert_uint_eq (keyhold_backoff_delay_s (&refresh, 5, -1, 0.5), 33);
}
END_TEST

START_TEST (test_retry_after_is_honoured_and_clamped)
{
  ck_assert_uint_eq (keyhold_backoff_delay_s (&refresh, 1, 120, 0.0), 120);
  ck_assert_uint_eq (keyhold_backoff_delay_s (&refresh, 8, 2, 0.999), 300);
  ck_assert_uint_eq (keyhold_backoff_delay_s (&refresh, 1, G_MAXINT64, 0.0), 24 * 60 * 60);
}
END_TEST

/* The figure the closing note of the faults issue reports: how many
 * refresh attempts a ten-minute outage costs, at the worst and on average. */
START_TEST (test_ten_minute_outage_request_count)
{
  GRand *rand = g_rand_new_with_seed (42);
  guint worst = 0, total = 0;
  const guint runs = 10000;

  for (guint run = 0; run < runs; run++)
    {
      guint elapsed = 0, attempts = 1;

      while (TRUE)
        {
          elapsed += keyhold_backoff_delay_s (&refresh, attempts, -1, g_rand_double (rand));
          if (elapsed > 600)
            break;
          attempts++;
        }
      worst = MAX (worst, attempts);
      total += attempts;
    }
  g_rand_free (rand);
  g_print ("10-minute outage: %.1f refresh requests on average, %u at most\n",
           (double) total / runs, worst);
  ck_assert_uint_le (worst, 40);
}
END_TEST

int
main (void)
{
  Suite *suite = suite_create ("backoff");
  TCase *tcase = tcase_create ("backoff");
  SRunner *runner;
  int failed;

  tcase_add_test (tcase, test_bound_doubles_up_to_the_cap);
  tcase_add_test (tcase, test_full_jitter_spans_one_second_to_bound);
  tcase_add_test (tcase, test_retry_after_is_honoured_and_clamped);
  tcase_add_test (tcase, test_ten_minute_outage_request_count);
  suite_add_tcase (suite, tcase);
  runner = srunner_create (suite);
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
