/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "base/secret.h"
#include "bus/token-fast-path.h"

G_BEGIN_DECLS

/* One account's access tokens, keyed by the scopes and audience (RFC 8707
 * resource) they were issued for. Tokens stay in guarded memory and are
 * wiped as soon as they expire or the cache is cleared. */
typedef struct _KeyholdTokenCache KeyholdTokenCache;

/* Distinct (scopes, audience) pairs one account may hold at a time. */
#define KEYHOLD_TOKEN_CACHE_MAX_ENTRIES 32

KeyholdTokenCache *keyhold_token_cache_new (void);
void keyhold_token_cache_free (KeyholdTokenCache *cache);

/* "" for the account's own scopes and no audience; otherwise the sorted,
 * de-duplicated scopes joined by spaces, then "|" and the audience. */
char *keyhold_token_cache_key (const char *const *scopes, const char *audience);

/* A new reference to the token for @key if it is still valid at @valid_until_us. */
KeyholdSecret *keyhold_token_cache_lookup (KeyholdTokenCache *cache,
                                           const char *key,
                                           gint64 valid_until_us,
                                           gint64 *out_expires_at_us);
void keyhold_token_cache_insert (KeyholdTokenCache *cache,
                                 const char *key,
                                 KeyholdSecret *token,
                                 gint64 expires_at_us);
/* Wipes the token for @key if it is @token. */
void keyhold_token_cache_remove (KeyholdTokenCache *cache, const char *key,
                                 const KeyholdSecret *token);
/* Wipes every token that has expired at @now_us. */
void keyhold_token_cache_expire (KeyholdTokenCache *cache, gint64 now_us);
void keyhold_token_cache_clear (KeyholdTokenCache *cache);

/* Mirrors every change into @fast_path under @object_path (the account's
 * D-Bus object). Set before the first token is inserted; @fast_path must
 * outlive the cache. */
void keyhold_token_cache_set_fast_path (KeyholdTokenCache *cache,
                                        KeyholdTokenFastPath *fast_path,
                                        const char *object_path);

/* Default min_validity when the caller passes 0 (DESIGN.md). */
#define KEYHOLD_TOKEN_DEFAULT_MIN_VALIDITY_S 60
/* Longest min_validity a caller may ask for. */
#define KEYHOLD_TOKEN_MAX_MIN_VALIDITY_S (24 * 60 * 60)

/* Checks a GetAccessToken request's arguments: scopes are RFC 6749 §3.3
 * scope tokens (at most 32), the audience an absolute URI without fragment
 * (RFC 8707 §2) or "", min_validity within bounds. */
gboolean keyhold_token_request_validate (const char *const *scopes,
                                         const char *audience,
                                         guint min_validity_s,
                                         GError **error);
/* @min_validity_s as asked, 0 meaning the default, in microseconds. */
gint64 keyhold_token_request_min_validity_us (guint min_validity_s);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdTokenCache, keyhold_token_cache_free)

G_END_DECLS
