/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include <keyhold/keyhold-error.h>

#include "accounts/token-cache.h"

typedef struct
{
  KeyholdSecret *token;
  gint64 expires_at_us;
} CachedToken;

struct _KeyholdTokenCache
{
  GHashTable *tokens; /* key -> CachedToken */
  /* Mirror of @tokens for answering on GDBus's worker thread, or NULL. */
  KeyholdTokenFastPath *fast_path;
  char *object_path;
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
  keyhold_token_cache_clear (cache);
  g_hash_table_unref (cache->tokens);
  g_free (cache->object_path);
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
    {
      if (cache->fast_path != NULL)
        keyhold_token_fast_path_withdraw (cache->fast_path, cache->object_path, victim);
      g_hash_table_remove (cache->tokens, victim);
    }
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
  if (cache->fast_path != NULL)
    keyhold_token_fast_path_publish (cache->fast_path, cache->object_path, key, token,
                                     expires_at_us);
}

void
keyhold_token_cache_remove (KeyholdTokenCache *cache, const char *key, const KeyholdSecret *token)
{
  CachedToken *cached = g_hash_table_lookup (cache->tokens, key);

  if (cached == NULL || !keyhold_secret_equal (cached->token, token))
    return;
  if (cache->fast_path != NULL)
    keyhold_token_fast_path_withdraw (cache->fast_path, cache->object_path, key);
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
        if (cache->fast_path != NULL)
          keyhold_token_fast_path_withdraw (cache->fast_path, cache->object_path, key);
        g_hash_table_iter_remove (&iter);
      }
}

void
keyhold_token_cache_clear (KeyholdTokenCache *cache)
{
  if (cache->fast_path != NULL)
    keyhold_token_fast_path_withdraw_all (cache->fast_path, cache->object_path);
  g_hash_table_remove_all (cache->tokens);
}

void
keyhold_token_cache_set_fast_path (KeyholdTokenCache *cache,
                                   KeyholdTokenFastPath *fast_path,
                                   const char *object_path)
{
  g_assert (g_hash_table_size (cache->tokens) == 0);
  cache->fast_path = fast_path;
  g_free (cache->object_path);
  cache->object_path = g_strdup (object_path);
}

static gboolean
is_scope_token (const char *scope)
{
  gsize length = strlen (scope);

  if (length == 0 || length > 128)
    return FALSE;
  /* RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) */
  for (const char *c = scope; *c != '\0'; c++)
    if (*c < 0x21 || *c > 0x7e || *c == '"' || *c == '\\')
      return FALSE;
  return TRUE;
}

gboolean
keyhold_token_request_validate (const char *const *scopes,
                                const char *audience,
                                guint min_validity_s,
                                GError **error)
{
  guint n_scopes = scopes != NULL ? g_strv_length ((char **) scopes) : 0;

  if (n_scopes > 32)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "At most 32 scopes may be requested");
      return FALSE;
    }
  for (guint i = 0; i < n_scopes; i++)
    if (!is_scope_token (scopes[i]))
      {
        g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                     "Scope %u is not a valid OAuth scope token", i + 1);
        return FALSE;
      }
  /* RFC 8707 §2: a resource indicator is an absolute URI without fragment. */
  if (*audience != '\0'
      && (strlen (audience) > 2048 || !g_uri_is_valid (audience, G_URI_FLAGS_NONE, NULL)
          || strchr (audience, '#') != NULL))
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "The audience must be an absolute URI without a fragment");
      return FALSE;
    }
  if (min_validity_s > KEYHOLD_TOKEN_MAX_MIN_VALIDITY_S)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "min_validity may be at most %d seconds", KEYHOLD_TOKEN_MAX_MIN_VALIDITY_S);
      return FALSE;
    }
  return TRUE;
}

gint64
keyhold_token_request_min_validity_us (guint min_validity_s)
{
  return (gint64) (min_validity_s != 0 ? min_validity_s : KEYHOLD_TOKEN_DEFAULT_MIN_VALIDITY_S)
         * G_USEC_PER_SEC;
}
