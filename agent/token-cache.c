/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "token-cache.h"

typedef struct
{
  KeyholdSecret *token;
  gint64 expires_at_us;
} CachedToken;

struct _KeyholdTokenCache
{
  GHashTable *tokens; /* key -> CachedToken */
};

static void
cached_token_free (CachedToken *cached)
{
  keyhold_secret_unref (cached->token);
  g_free (cached);
}

KeyholdTokenCache *
keyhold_token_cache_new (void)
{
  KeyholdTokenCache *cache = g_new0 (KeyholdTokenCache, 1);

  cache->tokens = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) cached_token_free);
  return cache;
}

void
keyhold_token_cache_free (KeyholdTokenCache *cache)
{
  if (cache == NULL)
    return;
  g_hash_table_unref (cache->tokens);
  g_free (cache);
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

char *
keyhold_token_cache_key (const char *const *scopes, const char *audience)
{
  g_autoptr (GPtrArray) sorted = g_ptr_array_new ();
  g_autoptr (GString) key = g_string_new (NULL);

  for (guint i = 0; scopes != NULL && scopes[i] != NULL; i++)
    g_ptr_array_add (sorted, (gpointer) scopes[i]);
  g_ptr_array_sort (sorted, compare_strings);

  for (guint i = 0; i < sorted->len; i++)
    {
      if (i > 0 && strcmp (sorted->pdata[i], sorted->pdata[i - 1]) == 0)
        continue;
      if (key->len > 0)
        g_string_append_c (key, ' ');
      g_string_append (key, sorted->pdata[i]);
    }
  if (audience != NULL && *audience != '\0')
    g_string_append_printf (key, "|%s", audience);
  return g_string_free (g_steal_pointer (&key), FALSE);
}

KeyholdSecret *
keyhold_token_cache_lookup (KeyholdTokenCache *cache,
                            const char *key,
                            gint64 valid_until_us,
                            gint64 *out_expires_at_us)
{
  CachedToken *cached = g_hash_table_lookup (cache->tokens, key);

  if (cached == NULL || cached->expires_at_us <= valid_until_us)
    return NULL;
  if (out_expires_at_us != NULL)
    *out_expires_at_us = cached->expires_at_us;
  return keyhold_secret_ref (cached->token);
}

static void
evict_soonest_expiring (KeyholdTokenCache *cache)
{
  GHashTableIter iter;
  const char *key, *victim = NULL;
  CachedToken *cached;
  gint64 soonest = G_MAXINT64;

  g_hash_table_iter_init (&iter, cache->tokens);
  while (g_hash_table_iter_next (&iter, (gpointer *) &key, (gpointer *) &cached))
    if (cached->expires_at_us < soonest)
      {
        soonest = cached->expires_at_us;
        victim = key;
      }
  if (victim != NULL)
    g_hash_table_remove (cache->tokens, victim);
}

void
keyhold_token_cache_insert (KeyholdTokenCache *cache,
                            const char *key,
                            KeyholdSecret *token,
                            gint64 expires_at_us)
{
  CachedToken *cached = g_new0 (CachedToken, 1);

  if (!g_hash_table_contains (cache->tokens, key)
      && g_hash_table_size (cache->tokens) >= KEYHOLD_TOKEN_CACHE_MAX_ENTRIES)
    evict_soonest_expiring (cache);

  cached->token = keyhold_secret_ref (token);
  cached->expires_at_us = expires_at_us;
  g_hash_table_replace (cache->tokens, g_strdup (key), cached);
}

void
keyhold_token_cache_remove (KeyholdTokenCache *cache, const char *key, const KeyholdSecret *token)
{
  CachedToken *cached = g_hash_table_lookup (cache->tokens, key);

  if (cached != NULL && keyhold_secret_equal (cached->token, token))
    g_hash_table_remove (cache->tokens, key);
}

static gboolean
is_expired (gpointer key, gpointer value, gpointer user_data)
{
  const CachedToken *cached = value;
  const gint64 *now_us = user_data;

  return cached->expires_at_us <= *now_us;
}

void
keyhold_token_cache_expire (KeyholdTokenCache *cache, gint64 now_us)
{
  g_hash_table_foreach_remove (cache->tokens, is_expired, &now_us);
}

void
keyhold_token_cache_clear (KeyholdTokenCache *cache)
{
  g_hash_table_remove_all (cache->tokens);
}
