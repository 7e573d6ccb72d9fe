/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "oidc/provider.h"
#include "base/untrusted-json.h"
#include "base/url-policy.h"

#define FETCH_CONNECT_TIMEOUT_MS 10000
#define FETCH_TOTAL_TIMEOUT_MS 30000
#define DISCOVERY_PATH "/.well-known/openid-configuration"

/* clang-format 14 would put spaces around the hyphens of the quark name. */
/* clang-format off */
G_DEFINE_QUARK (keyhold-provider-error-quark, keyhold_provider_error)
/* clang-format on */

void
keyhold_provider_metadata_free (KeyholdProviderMetadata *metadata)
{
  if (metadata == NULL)
    return;
  g_free (metadata->issuer);
  g_free (metadata->authorization_endpoint);
  g_free (metadata->token_endpoint);
  g_free (metadata->device_authorization_endpoint);
  g_free (metadata->revocation_endpoint);
  g_free (metadata->userinfo_endpoint);
  g_free (metadata->jwks_uri);
  g_strfreev (metadata->code_challenge_methods_supported);
  g_free (metadata);
}

/* url-policy.c's errors are KEYHOLD_ERROR_INVALID_ARGUMENT; here they mean
 * the provider (or its configuration) is not safe to talk to. */
static gboolean
set_insecure (GError **error, const char *what, GError *cause)
{
  g_set_error (error, KEYHOLD_PROVIDER_ERROR, KEYHOLD_PROVIDER_ERROR_INSECURE_URL, "%s: %s", what,
               cause->message);
  return FALSE;
}

static gboolean
check_issuer (const char *issuer, GError **error)
{
  g_autoptr (GError) local_error = NULL;

  if (!keyhold_url_policy_check_issuer (issuer, &local_error))
    return set_insecure (error, "The issuer", local_error);
  return TRUE;
}

/* The endpoint as the URL policy approved it, the form every request to
 * it uses. */
static char *
approve_endpoint (const char *url, const char *member, const char *issuer, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  char *approved = keyhold_url_policy_approve_endpoint (url, issuer, &local_error);

  if (approved == NULL)
    set_insecure (error, member, local_error);
  return approved;
}

static void
set_malformed (GError **error, GError *cause)
{
  g_set_error (error, KEYHOLD_PROVIDER_ERROR, KEYHOLD_PROVIDER_ERROR_MALFORMED,
               "Malformed provider document: %s", cause->message);
}

static gboolean
get_string (JsonObject *object,
            const char *member,
            gboolean required,
            char **out_value,
            GError **error)
{
  g_autoptr (GError) local_error = NULL;
  const char *value;

  if (!keyhold_untrusted_json_get_string (object, member, &value, &local_error))
    {
      set_malformed (error, local_error);
      return FALSE;
    }
  if (value == NULL && required)
    {
      g_set_error (error, KEYHOLD_PROVIDER_ERROR, KEYHOLD_PROVIDER_ERROR_MALFORMED,
                   "Malformed provider document: \"%s\" is missing", member);
      return FALSE;
    }
  *out_value = g_strdup (value);
  return TRUE;
}

static gboolean
get_endpoint (JsonObject *object,
              const char *member,
              gboolean required,
              const char *issuer,
              char **out_value,
              GError **error)
{
  g_autofree char *value = NULL;

  if (!get_string (object, member, required, &value, error))
    return FALSE;
  if (value == NULL)
    {
      *out_value = NULL;
      return TRUE;
    }
  *out_value = approve_endpoint (value, member, issuer, error);
  return *out_value != NULL;
}

static gboolean
get_boolean (JsonObject *object, const char *member, gboolean *out_value, GError **error)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      *out_value = FALSE;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    {
      g_set_error (error, KEYHOLD_PROVIDER_ERROR, KEYHOLD_PROVIDER_ERROR_MALFORMED,
                   "Malformed provider document: \"%s\" is not a boolean", member);
      return FALSE;
    }
  *out_value = json_node_get_boolean (node);
  return TRUE;
}

static gboolean
get_string_array (JsonObject *object, const char *member, GStrv *out_value, GError **error)
{
  JsonNode *node = json_object_get_member (object, member);
  g_autoptr (GStrvBuilder) builder = NULL;
  JsonArray *array;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      *out_value = NULL;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_ARRAY (node))
    goto wrong_type;

  builder = g_strv_builder_new ();
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);

      if (!JSON_NODE_HOLDS_VALUE (element) || json_node_get_value_type (element) != G_TYPE_STRING)
        goto wrong_type;
      g_strv_builder_add (builder, json_node_get_string (element));
    }
  *out_value = g_strv_builder_end (builder);
  return TRUE;

wrong_type:
  g_set_error (error, KEYHOLD_PROVIDER_ERROR, KEYHOLD_PROVIDER_ERROR_MALFORMED,
               "Malformed provider document: \"%s\" is not an array of strings", member);
  return FALSE;
}

static JsonNode *
parse_document (const char *document, gsize length, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  JsonNode *root;

  if (length > KEYHOLD_PROVIDER_MAX_DOCUMENT_BYTES)
    {
      g_set_error (error, KEYHOLD_PROVIDER_ERROR, KEYHOLD_PROVIDER_ERROR_TOO_LARGE,
                   "Provider document larger than %d bytes", KEYHOLD_PROVIDER_MAX_DOCUMENT_BYTES);
      return NULL;
    }
  root = keyhold_untrusted_json_parse_object (document, length, &local_error);
  if (root == NULL)
    set_malformed (error, local_error);
  return root;
}

static gboolean
check_issuer_matches (JsonObject *object,
                      const char *expected_issuer,
                      char **out_issuer,
                      GError **error)
{
  g_autofree char *issuer = NULL;

  if (!get_string (object, "issuer", TRUE, &issuer, error))
    return FALSE;
  /* Exact comparison: no case folding, no trailing-slash normalisation. */
  if (strcmp (issuer, expected_issuer) != 0)
    {
      g_set_error_literal (
          error, KEYHOLD_PROVIDER_ERROR, KEYHOLD_PROVIDER_ERROR_ISSUER_MISMATCH,
          "The provider document names a different issuer than the one configured");
      return FALSE;
    }
  *out_issuer = g_steal_pointer (&issuer);
  return TRUE;
}

KeyholdProviderMetadata *
keyhold_provider_metadata_parse (const char *document,
                                 gsize length,
                                 const char *expected_issuer,
                                 GError **error)
{
  g_autoptr (KeyholdProviderMetadata) metadata = g_new0 (KeyholdProviderMetadata, 1);
  g_autoptr (JsonNode) root = NULL;
  JsonObject *object;

  if (!check_issuer (expected_issuer, error))
    return NULL;
  root = parse_document (document, length, error);
  if (root == NULL)
    return NULL;
  object = json_node_get_object (root);

  if (!check_issuer_matches (object, expected_issuer, &metadata->issuer, error)
      || !get_endpoint (object, "token_endpoint", TRUE, expected_issuer, &metadata->token_endpoint,
                        error)
      || !get_endpoint (object, "jwks_uri", TRUE, expected_issuer, &metadata->jwks_uri, error)
      || !get_endpoint (object, "authorization_endpoint", FALSE, expected_issuer,
                        &metadata->authorization_endpoint, error)
      || !get_endpoint (object, "device_authorization_endpoint", FALSE, expected_issuer,
                        &metadata->device_authorization_endpoint, error)
      || !get_endpoint (object, "revocation_endpoint", FALSE, expected_issuer,
                        &metadata->revocation_endpoint, error)
      || !get_endpoint (object, "userinfo_endpoint", FALSE, expected_issuer,
                        &metadata->userinfo_endpoint, error)
      || !get_boolean (object, "authorization_response_iss_parameter_supported",
                       &metadata->authorization_response_iss_parameter_supported, error)
      || !get_string_array (object, "code_challenge_methods_supported",
                            &metadata->code_challenge_methods_supported, error))
    return NULL;

  return g_steal_pointer (&metadata);
}

gboolean
keyhold_provider_metadata_allows_pkce_s256 (const KeyholdProviderMetadata *metadata)
{
  return metadata->code_challenge_methods_supported == NULL
         || g_strv_contains ((const char *const *) metadata->code_challenge_methods_supported,
                             "S256");
}

gboolean
keyhold_provider_jwks_validate (const char *document, gsize length, GError **error)
{
  g_autoptr (JsonNode) root = parse_document (document, length, error);
  JsonNode *keys;

  if (root == NULL)
    return FALSE;
  keys = json_object_get_member (json_node_get_object (root), "keys");
  if (keys == NULL || !JSON_NODE_HOLDS_ARRAY (keys))
    {
      g_set_error_literal (error, KEYHOLD_PROVIDER_ERROR, KEYHOLD_PROVIDER_ERROR_MALFORMED,
                           "Malformed key set: \"keys\" is not an array");
      return FALSE;
    }
  return TRUE;
}

/* Fetching. Both documents are public, so their text lives in ordinary
 * memory once it leaves the HTTP layer. */

typedef struct
{
  char *document;
  KeyholdProviderMetadata *metadata;
} FetchResult;

static void
fetch_result_free (FetchResult *result)
{
  g_free (result->document);
  keyhold_provider_metadata_free (result->metadata);
  g_free (result);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FetchResult, fetch_result_free)

/* The task keeps the KeyholdHttp pointer because http.c's finish function
 * needs it; the caller keeps @http alive while requests run, as for any
 * other http.c user. */
static void
send_get (KeyholdHttp *http,
          const char *url,
          const char *accept,
          GTask *task,
          GAsyncReadyCallback callback)
{
  g_autoptr (KeyholdHttpRequest) request = keyhold_http_request_new ("GET", url);

  keyhold_http_request_add_header (request, "Accept", accept);
  keyhold_http_request_set_limits (request, FETCH_CONNECT_TIMEOUT_MS, FETCH_TOTAL_TIMEOUT_MS,
                                   KEYHOLD_PROVIDER_MAX_DOCUMENT_BYTES);
  keyhold_http_send_async (http, g_steal_pointer (&request), g_task_get_cancellable (task),
                           callback, task);
}

/* Returns the body of a 200 answer, NUL-terminated, with its exact length
 * (a NUL inside the body must reach the parser, which refuses it). */
static char *
receive_document (GAsyncResult *result, GTask *task, gsize *out_length, GError **error)
{
  KeyholdHttp *http = g_task_get_task_data (task);
  g_autoptr (KeyholdHttpResponse) response = keyhold_http_send_finish (http, result, error);
  gsize length;
  char *document;

  if (response == NULL)
    return NULL;
  if (response->status != 200)
    {
      g_set_error (error, KEYHOLD_PROVIDER_ERROR, KEYHOLD_PROVIDER_ERROR_HTTP_STATUS,
                   "The provider answered with HTTP status %u", response->status);
      return NULL;
    }

  length = keyhold_secret_get_length (response->body);
  document = g_malloc (length + 1);
  memcpy (document, keyhold_secret_get (response->body), length + 1);
  *out_length = length;
  return document;
}

static void
on_discovery_received (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (FetchResult) fetched = g_new0 (FetchResult, 1);
  GError *error = NULL;
  gsize length;

  fetched->document = receive_document (result, task, &length, &error);
  if (fetched->document != NULL)
    fetched->metadata = keyhold_provider_metadata_parse (
        fetched->document, length, g_object_get_data (G_OBJECT (task), "issuer"), &error);
  if (fetched->metadata == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_steal_pointer (&fetched), (GDestroyNotify) fetch_result_free);
}

void
keyhold_provider_fetch_async (KeyholdHttp *http,
                              const char *issuer,
                              GCancellable *cancellable,
                              GAsyncReadyCallback callback,
                              gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_autofree char *discovery_url = NULL;
  g_autofree char *url = NULL;
  gsize base_length = strlen (issuer);
  GError *error = NULL;

  g_task_set_source_tag (task, keyhold_provider_fetch_async);
  /* Nothing goes to an issuer that the document would be refused for. */
  if (!check_issuer (issuer, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  g_task_set_task_data (task, http, NULL);
  g_object_set_data_full (G_OBJECT (task), "issuer", g_strdup (issuer), g_free);

  /* OIDC Discovery §4: a terminating "/" of the issuer is removed before the
   * well-known path is appended. */
  if (base_length > 0 && issuer[base_length - 1] == '/')
    base_length--;
  discovery_url = g_strdup_printf ("%.*s" DISCOVERY_PATH, (int) base_length, issuer);
  url = approve_endpoint (discovery_url, "The discovery URL", issuer, &error);
  if (url == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  send_get (http, url, "application/json", g_steal_pointer (&task), on_discovery_received);
}

KeyholdProviderMetadata *
keyhold_provider_fetch_finish (GAsyncResult *result, char **out_document, GError **error)
{
  g_autoptr (FetchResult) fetched = NULL;

  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == keyhold_provider_fetch_async,
                        NULL);

  fetched = g_task_propagate_pointer (G_TASK (result), error);
  if (fetched == NULL)
    return NULL;
  if (out_document != NULL)
    *out_document = g_steal_pointer (&fetched->document);
  return g_steal_pointer (&fetched->metadata);
}

static void
on_jwks_received (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autofree char *document = NULL;
  GError *error = NULL;
  gsize length;

  document = receive_document (result, task, &length, &error);
  if (document == NULL || !keyhold_provider_jwks_validate (document, length, &error))
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_steal_pointer (&document), g_free);
}

void
keyhold_provider_fetch_jwks_async (KeyholdHttp *http,
                                   const char *jwks_uri,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, keyhold_provider_fetch_jwks_async);
  g_task_set_task_data (task, http, NULL);
  /* RFC 7517 §8.5 registers application/jwk-set+json; many servers send
   * plain application/json. */
  send_get (http, jwks_uri, "application/jwk-set+json, application/json", g_steal_pointer (&task),
            on_jwks_received);
}

char *
keyhold_provider_fetch_jwks_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (
      g_task_get_source_tag (G_TASK (result)) == keyhold_provider_fetch_jwks_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
