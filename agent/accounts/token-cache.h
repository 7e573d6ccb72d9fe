/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "base/secret.h"

G_BEGIN_DECLS

/* One account's access tokens, keyed by the scopes and audience (RFC 8707
 * resource) they were issued for. Tokens stay in guarded memory and are
 * wiped as soon as they expire or the cache is cleared. */
typedef struct _KeyholdTokenCache KeyholdTokenCache;

/* Distinct (scopes, audience) pairs one account may hold at a time. */
#define KEYHOLD_TOKEN_CACHE_MAX_ENTRIES 32
/* A token that lives less than this (a provider answering expires_in 0 or
 * a few seconds) is not kept: it goes only to the callers of the request
 * that fetched it, and nothing refreshes it ahead of expiry
 * (ARCHITECTURE.md, "Token lifetime"). */
#define KEYHOLD_TOKEN_CACHE_MIN_LIFETIME_S 3

KeyholdTokenCache *keyhold_token_cache_new (void);
void keyhold_token_cache_free (KeyholdTokenCache *cache);

/* Keys are keyhold_token_request_key ()'s. Returns a new reference to the
 * token for @key if it is still valid @min_validity_s after @now_us (0
 * meaning the default for its lifetime, see token-request.h). */
KeyholdSecret *keyhold_token_cache_lookup (KeyholdTokenCache *cache,
                                           const char *key,
                                           gint64 now_us,
                                           guint min_validity_s,
                                           gint64 *out_expires_at_us);
/* Keeps @token, issued at @issued_at_us (when its request was sent) and
 * valid until @expires_at_us, unless it lives less than
 * KEYHOLD_TOKEN_CACHE_MIN_LIFETIME_S; returns whether it was kept. */
gboolean keyhold_token_cache_insert (KeyholdTokenCache *cache,
                                     const char *key,
                                     KeyholdSecret *token,
                                     gint64 issued_at_us,
                                     gint64 expires_at_us);
/* Wipes the token for @key if it is @token. */
void keyhold_token_cache_remove (KeyholdTokenCache *cache,
                                 const char *key,
                                 const KeyholdSecret *token);
/* Wipes every token that has expired at @now_us. */
void keyhold_token_cache_expire (KeyholdTokenCache *cache, gint64 now_us);
void keyhold_token_cache_clear (KeyholdTokenCache *cache);

/* Told of every token the cache starts or stops holding, so that a copy
 * elsewhere (the bus layer's fast path) never outlives the cache's own. */
typedef struct
{
  /* @issued_at_us and @expires_at_us give the lifetime that the default
   * min_validity depends on. */
  void (*published) (const char *key,
                     KeyholdSecret *token,
                     gint64 issued_at_us,
                     gint64 expires_at_us,
                     gpointer user_data);
  /* @key is NULL when every token was wiped at once. */
  void (*withdrawn) (const char *key, gpointer user_data);
} KeyholdTokenCacheListener;

/* Installs the one listener (NULL removes it) and tells it of the tokens
 * already held. @listener and @user_data must outlive the cache, or be
 * removed first. */
void keyhold_token_cache_set_listener (KeyholdTokenCache *cache,
                                       const KeyholdTokenCacheListener *listener,
                                       gpointer user_data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdTokenCache, keyhold_token_cache_free)

G_END_DECLS
