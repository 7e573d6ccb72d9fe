/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "keyhold-contract.h"

#include "base/clock.h"
#include "base/untrusted-json.h"
#include "oidc/provider-cache.h"

#define MAX_DOCUMENT_AGE_S (24 * 60 * 60)
/* Bounds the memory a long list of distinct issuers could take. */
#define MAX_CACHED_ISSUERS 64

typedef enum
{
  DOCUMENT_METADATA,
  DOCUMENT_JWKS,
} DocumentKind;

/* One cached document and the requests waiting for its fetch. */
typedef struct
{
  char *document;
  gint64 fetched_at;
  GPtrArray *waiters; /* GTask */
} CachedDocument;

struct _KeyholdProviderCache
{
  KeyholdHttp *http;
  KeyholdStore *store;
  KeyholdProviderCacheStoreFailed on_store_failed;
  gpointer on_store_failed_data;
  /* issuer -> CachedDocument, one table per DocumentKind */
  GHashTable *documents[2];
};

typedef struct
{
  KeyholdProviderCache *cache;
  DocumentKind kind;
  char *issuer;
} FetchData;

static void
cached_document_free (CachedDocument *entry)
{
  g_free (entry->document);
  g_ptr_array_unref (entry->waiters);
  g_free (entry);
}

KeyholdProviderCache *
keyhold_provider_cache_new (KeyholdHttp *http,
                            KeyholdStore *store,
                            KeyholdProviderCacheStoreFailed on_store_failed,
                            gpointer user_data)
{
  KeyholdProviderCache *cache = g_new0 (KeyholdProviderCache, 1);

  cache->http = http;
  cache->store = store;
  cache->on_store_failed = on_store_failed;
  cache->on_store_failed_data = user_data;
  for (guint i = 0; i < G_N_ELEMENTS (cache->documents); i++)
    cache->documents[i] = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                 (GDestroyNotify) cached_document_free);
  return cache;
}

void
keyhold_provider_cache_free (KeyholdProviderCache *cache)
{
  if (cache == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (cache->documents); i++)
    g_hash_table_unref (cache->documents[i]);
  g_free (cache);
}

static CachedDocument *
lookup_entry (KeyholdProviderCache *cache, DocumentKind kind, const char *issuer)
{
  GHashTable *table = cache->documents[kind];
  CachedDocument *entry = g_hash_table_lookup (table, issuer);
  g_autoptr (GError) error = NULL;

  if (entry != NULL)
    return entry;

  if (g_hash_table_size (table) >= MAX_CACHED_ISSUERS)
    {
      /* Only idle entries may go; a fetch in flight owns its waiters. */
      GHashTableIter iter;
      CachedDocument *candidate;

      g_hash_table_iter_init (&iter, table);
      while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &candidate))
        if (candidate->waiters->len == 0)
          g_hash_table_iter_remove (&iter);
    }

  entry = g_new0 (CachedDocument, 1);
  entry->waiters = g_ptr_array_new_with_free_func (g_object_unref);
  if (cache->store != NULL)
    {
      /* A store read error only costs us the offline copy; the network
       * fetch below still works, so it is not worth failing for. */
      if (kind == DOCUMENT_METADATA)
        entry->document = keyhold_store_get_provider_metadata (cache->store, issuer,
                                                               &entry->fetched_at, &error);
      else
        entry->document
            = keyhold_store_get_provider_jwks (cache->store, issuer, &entry->fetched_at, &error);
    }
  g_hash_table_insert (table, g_strdup (issuer), entry);
  return entry;
}

static void
remember_document (KeyholdProviderCache *cache,
                   DocumentKind kind,
                   const char *issuer,
                   CachedDocument *entry,
                   char *document)
{
  g_autoptr (GError) error = NULL;

  g_free (entry->document);
  entry->document = document;
  entry->fetched_at = keyhold_clock_now_s ();
  if (cache->store == NULL)
    return;
  if (kind == DOCUMENT_METADATA)
    keyhold_store_put_provider_metadata (cache->store, issuer, document, entry->fetched_at, &error);
  else
    keyhold_store_put_provider_jwks (cache->store, issuer, document, entry->fetched_at, &error);
  if (error != NULL)
    cache->on_store_failed (issuer, error, cache->on_store_failed_data);
}

static void
complete_waiters (CachedDocument *entry, const GError *error)
{
  g_autoptr (GPtrArray) waiters = g_steal_pointer (&entry->waiters);

  entry->waiters = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < waiters->len; i++)
    {
      GTask *task = waiters->pdata[i];
      gboolean refetch = GPOINTER_TO_INT (g_task_get_task_data (task));

      /* A caller that asked for a refetch already has the cached copy and
       * found it wanting; it must learn that the fetch failed. */
      if (entry->document != NULL && !(refetch && error != NULL))
        g_task_return_pointer (task, g_strdup (entry->document), g_free);
      else
        g_task_return_error (task, g_error_copy (error));
    }
}

static void
fetch_data_free (FetchData *data)
{
  g_free (data->issuer);
  g_free (data);
}

static void
on_document_fetched (GObject *source, GAsyncResult *result, gpointer user_data)
{
  FetchData *data = user_data;
  KeyholdProviderCache *cache = data->cache;
  CachedDocument *entry = g_hash_table_lookup (cache->documents[data->kind], data->issuer);
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdProviderMetadata) metadata = NULL;
  char *document = NULL;

  if (data->kind == DOCUMENT_METADATA)
    metadata = keyhold_provider_fetch_finish (result, &document, &error);
  else
    document = keyhold_provider_fetch_jwks_finish (result, &error);

  if (document != NULL)
    remember_document (cache, data->kind, data->issuer, entry, document);
  /* With a fetch failure, a stale cached copy is still the best answer:
   * discovery data rarely changes and offline start-up depends on it. */
  complete_waiters (entry, error);
  fetch_data_free (data);
}

static void
get_document_async (KeyholdProviderCache *cache,
                    DocumentKind kind,
                    const char *issuer,
                    const char *fetch_url,
                    gboolean refetch,
                    GCancellable *cancellable,
                    GAsyncReadyCallback callback,
                    gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  CachedDocument *entry = lookup_entry (cache, kind, issuer);
  gboolean fresh
      = entry->document != NULL && keyhold_clock_now_s () - entry->fetched_at < MAX_DOCUMENT_AGE_S;
  FetchData *data;

  if (fresh && !refetch)
    {
      g_task_return_pointer (task, g_strdup (entry->document), g_free);
      return;
    }

  g_task_set_task_data (task, GINT_TO_POINTER (refetch), NULL);
  g_ptr_array_add (entry->waiters, g_steal_pointer (&task));
  if (entry->waiters->len > 1)
    return;

  data = g_new0 (FetchData, 1);
  data->cache = cache;
  data->kind = kind;
  data->issuer = g_strdup (issuer);
  /* The fetch is shared, so no single caller's cancellable may stop it. */
  if (kind == DOCUMENT_METADATA)
    keyhold_provider_fetch_async (cache->http, issuer, NULL, on_document_fetched, data);
  else
    keyhold_provider_fetch_jwks_async (cache->http, fetch_url, NULL, on_document_fetched, data);
}

static void
on_metadata_document (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  const char *issuer = g_task_get_task_data (task);
  g_autofree char *document = NULL;
  GError *error = NULL;
  KeyholdProviderMetadata *metadata;

  document = g_task_propagate_pointer (G_TASK (result), &error);
  if (document == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  /* Parsed on every use rather than cached parsed, so that a document read
   * back from the store is held to the same rules as a fetched one
   * (RFC 8414 §3.3: its issuer must be exactly ours). */
  metadata = keyhold_provider_metadata_parse (document, strlen (document), issuer, &error);
  if (metadata == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, metadata, (GDestroyNotify) keyhold_provider_metadata_free);
}

void
keyhold_provider_cache_get_metadata_async (KeyholdProviderCache *cache,
                                           const char *issuer,
                                           GCancellable *cancellable,
                                           GAsyncReadyCallback callback,
                                           gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_task_data (task, g_strdup (issuer), g_free);
  get_document_async (cache, DOCUMENT_METADATA, issuer, NULL, FALSE, cancellable,
                      on_metadata_document, task);
}

KeyholdProviderMetadata *
keyhold_provider_cache_get_metadata_finish (KeyholdProviderCache *cache,
                                            GAsyncResult *result,
                                            GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
on_jwks_document (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autofree char *document = NULL;
  GError *error = NULL;
  JsonNode *jwks;

  document = g_task_propagate_pointer (G_TASK (result), &error);
  if (document == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  /* A copy read back from the store is held to the same bounds as a
   * fetched one: json-glib alone recurses once per nesting level. */
  jwks = keyhold_untrusted_json_parse_object (document, strlen (document), &error);
  if (jwks == NULL)
    {
      g_clear_error (&error);
      g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_PROVIDER_ERROR,
                               "The provider's key set is not a JSON object");
      return;
    }
  g_task_return_pointer (task, jwks, (GDestroyNotify) json_node_unref);
}

void
keyhold_provider_cache_get_jwks_async (KeyholdProviderCache *cache,
                                       const KeyholdProviderMetadata *metadata,
                                       gboolean refetch,
                                       GCancellable *cancellable,
                                       GAsyncReadyCallback callback,
                                       gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);

  get_document_async (cache, DOCUMENT_JWKS, metadata->issuer, metadata->jwks_uri, refetch,
                      cancellable, on_jwks_document, task);
}

JsonNode *
keyhold_provider_cache_get_jwks_finish (KeyholdProviderCache *cache,
                                        GAsyncResult *result,
                                        GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}
