/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "accounts/token-cache.h"
#include "accounts/token-request.h"

typedef struct
{
  KeyholdSecret *token;
  gint64 issued_at_us;
  gint64 expires_at_us;
} CachedToken;

struct _KeyholdTokenCache
{
  GHashTable *tokens; /* key -> CachedToken */
  const KeyholdTokenCacheListener *listener;
  gpointer listener_data;
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

  cache->tokens
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) cached_token_free);
  return cache;
}

void
keyhold_token_cache_free (KeyholdTokenCache *cache)
{
  if (cache == NULL)
    return;
  keyhold_token_cache_clear (cache);
  g_hash_table_unref (cache->tokens);
  g_free (cache);
}

static void
withdraw (KeyholdTokenCache *cache, const char *key)
{
  if (cache->listener != NULL)
    cache->listener->withdrawn (key, cache->listener_data);
}

KeyholdSecret *
keyhold_token_cache_lookup (KeyholdTokenCache *cache,
                            const char *key,
                            gint64 now_us,
                            guint min_validity_s,
                            gint64 *out_expires_at_us)
{
  CachedToken *cached = g_hash_table_lookup (cache->tokens, key);

  if (cached == NULL
      || cached->expires_at_us
             <= now_us
                    + keyhold_token_request_min_validity_us (
                        min_validity_s, cached->expires_at_us - cached->issued_at_us))
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
    {
      withdraw (cache, victim);
      g_hash_table_remove (cache->tokens, victim);
    }
}

gboolean
keyhold_token_cache_insert (KeyholdTokenCache *cache,
                            const char *key,
                            KeyholdSecret *token,
                            gint64 issued_at_us,
                            gint64 expires_at_us)
{
  CachedToken *cached;

  if (expires_at_us - issued_at_us < (gint64) KEYHOLD_TOKEN_CACHE_MIN_LIFETIME_S * G_USEC_PER_SEC)
    return FALSE;

  cached = g_new0 (CachedToken, 1);
  if (!g_hash_table_contains (cache->tokens, key)
      && g_hash_table_size (cache->tokens) >= KEYHOLD_TOKEN_CACHE_MAX_ENTRIES)
    evict_soonest_expiring (cache);

  cached->token = keyhold_secret_ref (token);
  cached->issued_at_us = issued_at_us;
  cached->expires_at_us = expires_at_us;
  g_hash_table_replace (cache->tokens, g_strdup (key), cached);
  if (cache->listener != NULL)
    cache->listener->published (key, token, issued_at_us, expires_at_us, cache->listener_data);
  return TRUE;
}

void
keyhold_token_cache_remove (KeyholdTokenCache *cache, const char *key, const KeyholdSecret *token)
{
  CachedToken *cached = g_hash_table_lookup (cache->tokens, key);

  if (cached == NULL || !keyhold_secret_equal (cached->token, token))
    return;
  withdraw (cache, key);
  g_hash_table_remove (cache->tokens, key);
}

void
keyhold_token_cache_expire (KeyholdTokenCache *cache, gint64 now_us)
{
  GHashTableIter iter;
  const char *key;
  CachedToken *cached;

  g_hash_table_iter_init (&iter, cache->tokens);
  while (g_hash_table_iter_next (&iter, (gpointer *) &key, (gpointer *) &cached))
    if (cached->expires_at_us <= now_us)
      {
        withdraw (cache, key);
        g_hash_table_iter_remove (&iter);
      }
}

void
keyhold_token_cache_clear (KeyholdTokenCache *cache)
{
  withdraw (cache, NULL);
  g_hash_table_remove_all (cache->tokens);
}

void
keyhold_token_cache_set_listener (KeyholdTokenCache *cache,
                                  const KeyholdTokenCacheListener *listener,
                                  gpointer user_data)
{
  GHashTableIter iter;
  const char *key;
  CachedToken *cached;

  cache->listener = listener;
  cache->listener_data = user_data;
  if (listener == NULL)
    return;
  g_hash_table_iter_init (&iter, cache->tokens);
  while (g_hash_table_iter_next (&iter, (gpointer *) &key, (gpointer *) &cached))
    listener->published (key, cached->token, cached->issued_at_us, cached->expires_at_us,
                         user_data);
}
