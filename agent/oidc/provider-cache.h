/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

#include "net/http.h"
#include "oidc/provider.h"
#include "storage/store.h"

G_BEGIN_DECLS

/* Provider discovery documents and JWKS, kept in memory and in the store so
 * that the agent starts and serves cached tokens while offline. A document
 * older than a day is fetched again; when that fails the cached copy is used.
 * Concurrent requests for one issuer share a single fetch. */
typedef struct _KeyholdProviderCache KeyholdProviderCache;

/* Called when a fetched document could not be written to the store. The
 * fetch itself succeeded, so no caller hears of it; the daemon logs it. */
typedef void (*KeyholdProviderCacheStoreFailed) (const char *issuer,
                                                 const GError *error,
                                                 gpointer user_data);

/* @store may be NULL: documents are then kept in memory only. */
KeyholdProviderCache *keyhold_provider_cache_new (KeyholdHttp *http,
                                                  KeyholdStore *store,
                                                  KeyholdProviderCacheStoreFailed on_store_failed,
                                                  gpointer user_data);
void keyhold_provider_cache_free (KeyholdProviderCache *cache);

void keyhold_provider_cache_get_metadata_async (KeyholdProviderCache *cache,
                                                const char *issuer,
                                                GCancellable *cancellable,
                                                GAsyncReadyCallback callback,
                                                gpointer user_data);
KeyholdProviderMetadata *keyhold_provider_cache_get_metadata_finish (KeyholdProviderCache *cache,
                                                                     GAsyncResult *result,
                                                                     GError **error);

/* @refetch asks for a network fetch even when a copy is cached: the provider
 * rotated its keys and an ID token names a kid the cached set lacks. If
 * that fetch fails, the caller gets its error, not the cached copy. */
void keyhold_provider_cache_get_jwks_async (KeyholdProviderCache *cache,
                                            const KeyholdProviderMetadata *metadata,
                                            gboolean refetch,
                                            GCancellable *cancellable,
                                            GAsyncReadyCallback callback,
                                            gpointer user_data);
JsonNode *keyhold_provider_cache_get_jwks_finish (KeyholdProviderCache *cache,
                                                  GAsyncResult *result,
                                                  GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdProviderCache, keyhold_provider_cache_free)

G_END_DECLS
