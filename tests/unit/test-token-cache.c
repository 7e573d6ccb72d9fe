/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>

#include "accounts/token-cache.h"

/* What a listener was told, in order: "+KEY=TOKEN@LIFETIME" for a token
 * published, "-KEY" for one withdrawn, "-*" for all of them. Times in
 * these tests are in seconds; S () makes microseconds of them. */
#define S(seconds) ((gint64) (seconds) *G_USEC_PER_SEC)

static GString *heard;

static void
on_published (const char *key,
              KeyholdSecret *token,
              gint64 issued_at_us,
              gint64 expires_at_us,
              gpointer user_data)
{
  g_string_append_printf (heard, "+%s=%s@%" G_GINT64_FORMAT " ", key, keyhold_secret_get (token),
                          (expires_at_us - issued_at_us) / G_USEC_PER_SEC);
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

/* A token issued at time 0 that expires at @expires_at_s. */
static gboolean
insert (KeyholdTokenCache *cache, const char *key, const char *token, gint64 expires_at_s)
{
  g_autoptr (KeyholdSecret) secret = keyhold_secret_new_from_string (token);

  return keyhold_token_cache_insert (cache, key, secret, 0, S (expires_at_s));
}

static KeyholdSecret *
lookup (KeyholdTokenCache *cache, const char *key, gint64 now_s, guint min_validity_s)
{
  return keyhold_token_cache_lookup (cache, key, S (now_s), min_validity_s, NULL);
}

START_TEST (test_lookup_honours_validity)
{
  g_autoptr (KeyholdTokenCache) cache = keyhold_token_cache_new ();
  g_autoptr (KeyholdSecret) found = NULL;
  gint64 expires_at_us = 0;

  insert (cache, "", "t1", 1000);
  found = keyhold_token_cache_lookup (cache, "", S (998), 1, &expires_at_us);
  ck_assert_ptr_nonnull (found);
  ck_assert_str_eq (keyhold_secret_get (found), "t1");
  ck_assert_int_eq (expires_at_us, S (1000));
  /* A token that expires exactly when it must still be valid is no use. */
  ck_assert_ptr_null (lookup (cache, "", 999, 1));
  ck_assert_ptr_null (lookup (cache, "other", 0, 1));
}
END_TEST

START_TEST (test_default_min_validity_follows_lifetime)
{
  g_autoptr (KeyholdTokenCache) cache = keyhold_token_cache_new ();
  g_autoptr (KeyholdSecret) long_lived = NULL, short_lived = NULL, explicit = NULL;

  /* 0 means 60 s for a token that lives long... */
  insert (cache, "long", "t1", 1000);
  long_lived = lookup (cache, "long", 939, 0);
  ck_assert_ptr_nonnull (long_lived);
  ck_assert_ptr_null (lookup (cache, "long", 940, 0));

  /* ...and half the lifetime for one that lives 20 s. */
  insert (cache, "short", "t2", 20);
  short_lived = lookup (cache, "short", 9, 0);
  ck_assert_ptr_nonnull (short_lived);
  ck_assert_ptr_null (lookup (cache, "short", 10, 0));
  /* An explicit value is taken as it is. */
  explicit = lookup (cache, "short", 4, 15);
  ck_assert_ptr_nonnull (explicit);
  ck_assert_ptr_null (lookup (cache, "short", 0, 21));
}
END_TEST

START_TEST (test_short_lived_token_is_not_kept)
{
  g_autoptr (KeyholdTokenCache) cache = keyhold_token_cache_new ();

  keyhold_token_cache_set_listener (cache, &listener, NULL);
  ck_assert (!insert (cache, "zero", "t0", 0));
  ck_assert (!insert (cache, "two", "t2", KEYHOLD_TOKEN_CACHE_MIN_LIFETIME_S - 1));
  ck_assert_ptr_null (lookup (cache, "zero", 0, 0));
  ck_assert_ptr_null (lookup (cache, "two", 0, 0));
  ck_assert_str_eq (heard->str, "");
  ck_assert (insert (cache, "three", "t3", KEYHOLD_TOKEN_CACHE_MIN_LIFETIME_S));
  ck_assert_str_eq (heard->str, "+three=t3@3 ");
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
  found = lookup (cache, "k", 0, 1);
  ck_assert_ptr_nonnull (found);
  keyhold_token_cache_remove (cache, "k", found);
  ck_assert_ptr_null (lookup (cache, "k", 0, 1));
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
  b = lookup (cache, "b", 0, 1);
  keyhold_token_cache_remove (cache, "b", b);
  keyhold_token_cache_expire (cache, S (100));
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
  ck_assert_ptr_null (lookup (cache, "k0", 0, 1));
  kept = lookup (cache, "k1", 0, 1);
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
  tcase_add_test (tcase, test_default_min_validity_follows_lifetime);
  tcase_add_test (tcase, test_short_lived_token_is_not_kept);
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
