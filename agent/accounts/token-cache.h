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

KeyholdTokenCache *keyhold_token_cache_new (void);
void keyhold_token_cache_free (KeyholdTokenCache *cache);

/* Keys are keyhold_token_request_key ()'s. Returns a new reference to the
 * token for @key if it is still valid at @valid_until_us. */
KeyholdSecret *keyhold_token_cache_lookup (KeyholdTokenCache *cache,
                                           const char *key,
                                           gint64 valid_until_us,
                                           gint64 *out_expires_at_us);
void keyhold_token_cache_insert (KeyholdTokenCache *cache,
                                 const char *key,
                                 KeyholdSecret *token,
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
  void (*published) (const char *key,
                     KeyholdSecret *token,
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
