/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>

#include "accounts/token-cache.h"

/* What a listener was told, in order: "+KEY" for a token published,
 * "-KEY" for one withdrawn, "-*" for all of them. */
static GString *heard;

static void
on_published (const char *key, KeyholdSecret *token, gint64 expires_at_us, gpointer user_data)
{
  g_string_append_printf (heard, "+%s=%s@%" G_GINT64_FORMAT " ", key, keyhold_secret_get (token),
                          expires_at_us);
}

static void
on_withdrawn (const char *key, gpointer user_data)
{
  g_string_append_printf (heard, "-%s ", key != NULL ? key : "*");
}

static const KeyholdTokenCacheListener listener = {
  .published = on_published,
  .withdrawn = on_withdrawn,
};

static void
setup (void)
{
  heard = g_string_new (NULL);
}

static void
teardown (void)
{
  g_string_free (heard, TRUE);
}

static void
insert (KeyholdTokenCache *cache, const char *key, const char *token, gint64 expires_at_us)
{
  g_autoptr (KeyholdSecret) secret = keyhold_secret_new_from_string (token);

  keyhold_token_cache_insert (cache, key, secret, expires_at_us);
}

START_TEST (test_lookup_honours_validity)
{
  g_autoptr (KeyholdTokenCache) cache = keyhold_token_cache_new ();
  g_autoptr (KeyholdSecret) found = NULL;
  gint64 expires_at_us = 0;

  insert (cache, "", "t1", 1000);
  found = keyhold_token_cache_lookup (cache, "", 999, &expires_at_us);
  ck_assert_ptr_nonnull (found);
  ck_assert_str_eq (keyhold_secret_get (found), "t1");
  ck_assert_int_eq (expires_at_us, 1000);
  /* A token that expires exactly when it must still be valid is no use. */
  ck_assert_ptr_null (keyhold_token_cache_lookup (cache, "", 1000, NULL));
  ck_assert_ptr_null (keyhold_token_cache_lookup (cache, "other", 0, NULL));
}
END_TEST

START_TEST (test_remove_only_the_token_named)
{
  g_autoptr (KeyholdTokenCache) cache = keyhold_token_cache_new ();
  g_autoptr (KeyholdSecret) stale = keyhold_secret_new_from_string ("old");
  g_autoptr (KeyholdSecret) found = NULL;

  insert (cache, "k", "new", 1000);
  /* A 401 for a token already replaced must not wipe its successor. */
  keyhold_token_cache_remove (cache, "k", stale);
  found = keyhold_token_cache_lookup (cache, "k", 0, NULL);
  ck_assert_ptr_nonnull (found);
  keyhold_token_cache_remove (cache, "k", found);
  ck_assert_ptr_null (keyhold_token_cache_lookup (cache, "k", 0, NULL));
}
END_TEST

START_TEST (test_listener_hears_every_change)
{
  g_autoptr (KeyholdTokenCache) cache = keyhold_token_cache_new ();
  g_autoptr (KeyholdSecret) b = NULL;

  insert (cache, "a", "ta", 100);
  /* Tokens already held are told to a new listener. */
  keyhold_token_cache_set_listener (cache, &listener, NULL);
  ck_assert_str_eq (heard->str, "+a=ta@100 ");

  insert (cache, "b", "tb", 200);
  b = keyhold_token_cache_lookup (cache, "b", 0, NULL);
  keyhold_token_cache_remove (cache, "b", b);
  keyhold_token_cache_expire (cache, 100);
  insert (cache, "c", "tc", 300);
  keyhold_token_cache_clear (cache);
  ck_assert_str_eq (heard->str, "+a=ta@100 +b=tb@200 -b -a +c=tc@300 -* ");

  keyhold_token_cache_set_listener (cache, NULL, NULL);
  insert (cache, "d", "td", 400);
  ck_assert_str_eq (heard->str, "+a=ta@100 +b=tb@200 -b -a +c=tc@300 -* ");
}
END_TEST

START_TEST (test_full_cache_evicts_the_soonest_expiring)
{
  g_autoptr (KeyholdTokenCache) cache = keyhold_token_cache_new ();
  g_autoptr (KeyholdSecret) kept = NULL;

  for (guint i = 0; i < KEYHOLD_TOKEN_CACHE_MAX_ENTRIES; i++)
    {
      g_autofree char *key = g_strdup_printf ("k%u", i);
      insert (cache, key, "t", 1000 + i);
    }
  keyhold_token_cache_set_listener (cache, &listener, NULL);
  g_string_truncate (heard, 0);

  insert (cache, "newest", "t", 5000);
  ck_assert_str_eq (heard->str, "-k0 +newest=t@5000 ");
  ck_assert_ptr_null (keyhold_token_cache_lookup (cache, "k0", 0, NULL));
  kept = keyhold_token_cache_lookup (cache, "k1", 0, NULL);
  ck_assert_ptr_nonnull (kept);

  /* Replacing a key that is there evicts nothing. */
  g_string_truncate (heard, 0);
  insert (cache, "newest", "t2", 6000);
  ck_assert_str_eq (heard->str, "+newest=t2@6000 ");
}
END_TEST

int
main (void)
{
  Suite *suite = suite_create ("token-cache");
  TCase *tcase = tcase_create ("token-cache");
  SRunner *runner;
  int failed;

  tcase_add_checked_fixture (tcase, setup, teardown);
  tcase_add_test (tcase, test_lookup_honours_validity);
  tcase_add_test (tcase, test_remove_only_the_token_named);
  tcase_add_test (tcase, test_listener_hears_every_change);
  tcase_add_test (tcase, test_full_cache_evicts_the_soonest_expiring);
  suite_add_tcase (suite, tcase);
  runner = srunner_create (suite);
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
