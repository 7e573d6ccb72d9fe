/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "oidc/oauth.h"
#include "base/untrusted-json.h"

/* Secrets in answers: json-glib copies every string out of the body while
 * parsing. Once the tokens are in KeyholdSecret, every string in the parsed
 * tree is overwritten with zeros before the tree is freed (SecretTree
 * below). That covers the copies that live on in json-glib's tree; it cannot
 * reach the short-lived copies its scanner makes and frees while reading a
 * string, so a token's bytes may remain in freed heap until it is reused.
 * The body itself is in guarded memory (KeyholdHttpResponse). */

#define MAX_ERROR_TEXT_CHARS 200
#define MAX_SCOPE_BYTES 4096
#define MAX_USER_CODE_BYTES 128
#define MAX_VERIFICATION_URI_BYTES 2048
#define DEVICE_CODE_GRANT_TYPE "urn:ietf:params:oauth:grant-type:device_code"

/* clang-format 14 would put spaces around the hyphens of the quark name. */
/* clang-format off */
G_DEFINE_QUARK (keyhold-oauth-error-quark, keyhold_oauth_error)
/* clang-format on */

void
keyhold_token_response_free (KeyholdTokenResponse *response)
{
  if (response == NULL)
    return;
  keyhold_secret_unref (response->access_token);
  keyhold_secret_unref (response->refresh_token);
  keyhold_secret_unref (response->id_token);
  g_free (response->scope);
  g_free (response);
}

void
keyhold_device_authorization_free (KeyholdDeviceAuthorization *authorization)
{
  if (authorization == NULL)
    return;
  keyhold_secret_unref (authorization->device_code);
  g_free (authorization->user_code);
  g_free (authorization->verification_uri);
  g_free (authorization->verification_uri_complete);
  g_free (authorization);
}

/* A parsed answer that may hold tokens. */
typedef JsonNode SecretTree;

static void
secret_tree_free (SecretTree *root)
{
  if (root == NULL)
    return;
  keyhold_untrusted_json_wipe_strings (root);
  json_node_unref (root);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SecretTree, secret_tree_free)

/* RFC 6749 Appendix A: tokens, error codes and descriptions are VSCHAR
 * (%x20-7E). Holding text to that also keeps CR/LF out of headers and
 * terminal escapes out of what the user sees. */
static gboolean
is_visible_ascii (const char *text)
{
  for (const char *c = text; *c != '\0'; c++)
    if (*c < 0x20 || *c > 0x7e)
      return FALSE;
  return TRUE;
}

char *
keyhold_oauth_sanitize_provider_text (const char *text)
{
  GString *clean = g_string_new (NULL);

  for (const char *c = text; *c != '\0' && clean->len < MAX_ERROR_TEXT_CHARS; c++)
    g_string_append_c (clean, (*c >= 0x20 && *c <= 0x7e) ? *c : '?');
  return g_string_free (clean, FALSE);
}

static KeyholdOAuthError
error_code_from_name (const char *name)
{
  static const struct
  {
    const char *name;
    KeyholdOAuthError code;
  } codes[] = {
    { "invalid_grant", KEYHOLD_OAUTH_ERROR_INVALID_GRANT },
    { "invalid_client", KEYHOLD_OAUTH_ERROR_INVALID_CLIENT },
    { "invalid_request", KEYHOLD_OAUTH_ERROR_INVALID_REQUEST },
    { "invalid_scope", KEYHOLD_OAUTH_ERROR_INVALID_SCOPE },
    { "unauthorized_client", KEYHOLD_OAUTH_ERROR_UNAUTHORIZED_CLIENT },
    { "unsupported_grant_type", KEYHOLD_OAUTH_ERROR_UNSUPPORTED_GRANT_TYPE },
    { "access_denied", KEYHOLD_OAUTH_ERROR_ACCESS_DENIED },
    { "expired_token", KEYHOLD_OAUTH_ERROR_EXPIRED_TOKEN },
    { "authorization_pending", KEYHOLD_OAUTH_ERROR_AUTHORIZATION_PENDING },
    { "slow_down", KEYHOLD_OAUTH_ERROR_SLOW_DOWN },
    { "temporarily_unavailable", KEYHOLD_OAUTH_ERROR_TEMPORARILY_UNAVAILABLE },
    /* Defined for the authorization endpoint, but token endpoints send it
     * too; it is the server's fault, never a reason to sign out. */
    { "server_error", KEYHOLD_OAUTH_ERROR_TEMPORARILY_UNAVAILABLE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (codes); i++)
    if (strcmp (name, codes[i].name) == 0)
      return codes[i].code;
  return KEYHOLD_OAUTH_ERROR_OTHER;
}

static void
set_malformed (GError **error, const char *what, const char *reason)
{
  g_set_error (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_MALFORMED_RESPONSE,
               "Malformed %s from the provider: %s", what, reason);
}

/* Returns FALSE when the body is not an RFC 6749 §5.2 error object. */
static gboolean
set_error_from_error_object (const char *body, gsize length, GError **error)
{
  g_autoptr (SecretTree) root = keyhold_untrusted_json_parse_object (body, length, NULL);
  g_autofree char *name = NULL;
  g_autofree char *description = NULL;
  const char *value;
  JsonObject *object;

  if (root == NULL)
    return FALSE;
  object = json_node_get_object (root);
  if (!keyhold_untrusted_json_get_string (object, "error", &value, NULL) || value == NULL)
    return FALSE;
  name = keyhold_oauth_sanitize_provider_text (value);
  if (keyhold_untrusted_json_get_string (object, "error_description", &value, NULL)
      && value != NULL)
    description = keyhold_oauth_sanitize_provider_text (value);

  g_set_error (error, KEYHOLD_OAUTH_ERROR, error_code_from_name (name),
               "The provider answered %s%s%s", name, description != NULL ? ": " : "",
               description != NULL ? description : "");
  return TRUE;
}

void
keyhold_oauth_set_error_from_answer (guint status, const char *body, gsize length, GError **error)
{
  /* RFC 9110 §15.5.9, RFC 8470 §5.2, RFC 6585 §4: try again later. */
  if (status == 408 || status == 425 || status == 429 || (status >= 500 && status <= 599))
    {
      g_set_error (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_TEMPORARILY_UNAVAILABLE,
                   "The provider is temporarily unavailable (HTTP %u)", status);
      return;
    }
  if (status >= 400 && status <= 499 && length <= KEYHOLD_OAUTH_MAX_RESPONSE_BYTES
      && set_error_from_error_object (body, length, error))
    return;
  if (status == 400 || status == 401 || status == 403)
    {
      g_set_error (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_REFUSED_WITHOUT_REASON,
                   "The provider refused the request (HTTP %u) without saying why", status);
      return;
    }

  g_set_error (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_MALFORMED_RESPONSE,
               "The provider answered HTTP %u without an OAuth error", status);
}

/* Parses the body of a 200 answer; any other status becomes an error. */
static SecretTree *
parse_success_answer (guint status,
                      const char *body,
                      gsize length,
                      const char *what,
                      GError **error)
{
  g_autoptr (GError) local_error = NULL;
  SecretTree *root;

  if (status != 200)
    {
      keyhold_oauth_set_error_from_answer (status, body, length, error);
      return NULL;
    }
  if (length > KEYHOLD_OAUTH_MAX_RESPONSE_BYTES)
    {
      set_malformed (error, what, "too large");
      return NULL;
    }
  root = keyhold_untrusted_json_parse_object (body, length, &local_error);
  if (root == NULL)
    set_malformed (error, what, local_error->message);
  return root;
}

static gboolean
get_text (JsonObject *object,
          const char *member,
          gsize max_length,
          const char *what,
          const char **out_value,
          GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autofree char *reason = NULL;
  const char *value;

  if (!keyhold_untrusted_json_get_string (object, member, &value, &local_error))
    {
      set_malformed (error, what, local_error->message);
      return FALSE;
    }
  if (value != NULL && (strlen (value) > max_length || !is_visible_ascii (value)))
    {
      reason = g_strdup_printf ("\"%s\" is too long or not printable ASCII", member);
      set_malformed (error, what, reason);
      return FALSE;
    }
  /* An empty optional value means as much as a missing one. */
  *out_value = (value != NULL && *value != '\0') ? value : NULL;
  return TRUE;
}

static gboolean
get_required_text (JsonObject *object,
                   const char *member,
                   gsize max_length,
                   const char *what,
                   const char **out_value,
                   GError **error)
{
  g_autofree char *reason = NULL;

  if (!get_text (object, member, max_length, what, out_value, error))
    return FALSE;
  if (*out_value == NULL)
    {
      reason = g_strdup_printf ("\"%s\" is missing", member);
      set_malformed (error, what, reason);
      return FALSE;
    }
  return TRUE;
}

static KeyholdSecret *
secret_or_null (const char *value)
{
  return value != NULL ? keyhold_secret_new_from_string (value) : NULL;
}

static gboolean
get_expires_in (JsonObject *object, gint64 *out_expires_in_s, gboolean *out_missing, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  gboolean present;
  gint64 value;

  if (!keyhold_untrusted_json_get_integer (object, "expires_in", &value, &present, &local_error))
    {
      set_malformed (error, "token response", local_error->message);
      return FALSE;
    }
  if (present && value < 0)
    {
      set_malformed (error, "token response", "\"expires_in\" is negative");
      return FALSE;
    }
  *out_missing = !present;
  *out_expires_in_s
      = present ? MIN (value, KEYHOLD_OAUTH_MAX_EXPIRES_IN_S) : KEYHOLD_OAUTH_DEFAULT_EXPIRES_IN_S;
  return TRUE;
}

KeyholdTokenResponse *
keyhold_oauth_parse_token_response (guint status,
                                    const char *body,
                                    gsize length,
                                    gint64 sent_at_real_us,
                                    GError **error)
{
  const char *what = "token response";
  g_autoptr (SecretTree) root = parse_success_answer (status, body, length, what, error);
  const char *access_token, *token_type, *refresh_token, *id_token, *scope;
  KeyholdTokenResponse *response;
  gint64 expires_in_s;
  gboolean expires_in_missing;
  JsonObject *object;

  if (root == NULL)
    return NULL;
  object = json_node_get_object (root);

  if (!get_required_text (object, "access_token", KEYHOLD_OAUTH_MAX_TOKEN_BYTES, what,
                          &access_token, error)
      || !get_required_text (object, "token_type", MAX_ERROR_TEXT_CHARS, what, &token_type, error)
      || !get_expires_in (object, &expires_in_s, &expires_in_missing, error)
      || !get_text (object, "refresh_token", KEYHOLD_OAUTH_MAX_TOKEN_BYTES, what, &refresh_token,
                    error)
      || !get_text (object, "id_token", KEYHOLD_OAUTH_MAX_RESPONSE_BYTES, what, &id_token, error)
      || !get_text (object, "scope", MAX_SCOPE_BYTES, what, &scope, error))
    return NULL;

  /* RFC 6749 §7.1: an unknown token type must not be used. The agent only
   * knows how to present bearer tokens (RFC 6750). */
  if (g_ascii_strcasecmp (token_type, "Bearer") != 0)
    {
      set_malformed (error, what, "token_type is not Bearer");
      return NULL;
    }

  response = g_new0 (KeyholdTokenResponse, 1);
  response->access_token = keyhold_secret_new_from_string (access_token);
  response->refresh_token = secret_or_null (refresh_token);
  response->id_token = secret_or_null (id_token);
  response->scope = g_strdup (scope);
  response->sent_at_us = sent_at_real_us;
  response->expires_at_us = sent_at_real_us + expires_in_s * G_USEC_PER_SEC;
  response->expires_in_missing = expires_in_missing;
  return response;
}

static gboolean
is_browser_url (const char *url)
{
  g_autoptr (GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  const char *scheme;

  if (uri == NULL || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
    return FALSE;
  scheme = g_uri_get_scheme (uri);
  return g_ascii_strcasecmp (scheme, "https") == 0 || g_ascii_strcasecmp (scheme, "http") == 0;
}

/* The user opens these in a browser: only web URLs, never file: or
 * javascript:. */
static gboolean
get_verification_uri (JsonObject *object,
                      const char *member,
                      const char **out_value,
                      GError **error)
{
  const char *what = "device authorization";
  g_autofree char *reason = NULL;

  if (!get_text (object, member, MAX_VERIFICATION_URI_BYTES, what, out_value, error))
    return FALSE;
  if (*out_value != NULL && !is_browser_url (*out_value))
    {
      reason = g_strdup_printf ("\"%s\" is not an http(s) URL", member);
      set_malformed (error, what, reason);
      return FALSE;
    }
  return TRUE;
}

static gboolean
get_device_timing (JsonObject *object, guint *out_expires_in, guint *out_interval, GError **error)
{
  const char *what = "device authorization";
  g_autoptr (GError) local_error = NULL;
  gint64 expires_in, interval;
  gboolean present;

  if (!keyhold_untrusted_json_get_integer (object, "expires_in", &expires_in, &present,
                                           &local_error))
    {
      set_malformed (error, what, local_error->message);
      return FALSE;
    }
  if (!present || expires_in < 1)
    {
      set_malformed (error, what, "\"expires_in\" is missing or not positive");
      return FALSE;
    }
  if (!keyhold_untrusted_json_get_integer (object, "interval", &interval, &present, &local_error))
    {
      set_malformed (error, what, local_error->message);
      return FALSE;
    }

  *out_expires_in = (guint) MIN (expires_in, KEYHOLD_OAUTH_MAX_DEVICE_EXPIRES_IN_S);
  /* RFC 8628 §3.2: 5 s when absent. A provider's value is honoured, but at
   * least 1 s so that polling never spins. */
  *out_interval = present ? (guint) CLAMP (interval, 1, *out_expires_in)
                          : MIN (KEYHOLD_OAUTH_DEFAULT_DEVICE_INTERVAL_S, *out_expires_in);
  return TRUE;
}

KeyholdDeviceAuthorization *
keyhold_oauth_parse_device_authorization (guint status,
                                          const char *body,
                                          gsize length,
                                          GError **error)
{
  const char *what = "device authorization";
  g_autoptr (SecretTree) root = parse_success_answer (status, body, length, what, error);
  const char *device_code, *user_code, *verification_uri, *verification_uri_complete;
  KeyholdDeviceAuthorization *authorization;
  guint expires_in, interval;
  JsonObject *object;

  if (root == NULL)
    return NULL;
  object = json_node_get_object (root);

  if (!get_required_text (object, "device_code", KEYHOLD_OAUTH_MAX_TOKEN_BYTES, what, &device_code,
                          error)
      || !get_required_text (object, "user_code", MAX_USER_CODE_BYTES, what, &user_code, error)
      || !get_verification_uri (object, "verification_uri", &verification_uri, error)
      || !get_verification_uri (object, "verification_uri_complete", &verification_uri_complete,
                                error)
      || !get_device_timing (object, &expires_in, &interval, error))
    return NULL;
  /* Google's endpoint predates RFC 8628 and says "verification_url". */
  if (verification_uri == NULL
      && !get_verification_uri (object, "verification_url", &verification_uri, error))
    return NULL;
  if (verification_uri == NULL)
    {
      set_malformed (error, what, "\"verification_uri\" is missing");
      return NULL;
    }

  authorization = g_new0 (KeyholdDeviceAuthorization, 1);
  authorization->device_code = keyhold_secret_new_from_string (device_code);
  authorization->user_code = g_strdup (user_code);
  authorization->verification_uri = g_strdup (verification_uri);
  authorization->verification_uri_complete = g_strdup (verification_uri_complete);
  authorization->expires_in = expires_in;
  authorization->interval = interval;
  return authorization;
}

/* Requests. Every one is a form POST; the task data keeps the KeyholdHttp
 * (http.c's finish function needs it; callers keep it alive while requests
 * run) and the Retry-After of the answer. */

typedef struct
{
  KeyholdHttp *http;
  gint64 retry_after_s;
} RequestData;

static GTask *
request_task_new (KeyholdHttp *http,
                  gpointer source_tag,
                  GCancellable *cancellable,
                  GAsyncReadyCallback callback,
                  gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  RequestData *data = g_new0 (RequestData, 1);

  data->http = http;
  data->retry_after_s = -1;
  g_task_set_source_tag (task, source_tag);
  g_task_set_task_data (task, data, g_free);
  return task;
}

static void
post_form_within (const char *endpoint,
                  KeyholdHttpForm *form,
                  guint total_timeout_ms,
                  GTask *task,
                  GAsyncReadyCallback callback)
{
  RequestData *data = g_task_get_task_data (task);
  g_autoptr (KeyholdHttpRequest) request = keyhold_http_request_new ("POST", endpoint);
  g_autoptr (KeyholdSecret) body = keyhold_http_form_end (form);

  /* Token requests change state at the provider (codes are single use,
   * refresh tokens rotate), so each goes out exactly once per attempt. */
  keyhold_http_request_set_send_once (request);
  keyhold_http_request_add_header (request, "Accept", "application/json");
  keyhold_http_request_set_limits (request, KEYHOLD_OAUTH_CONNECT_TIMEOUT_MS, total_timeout_ms,
                                   KEYHOLD_OAUTH_MAX_RESPONSE_BYTES);
  keyhold_http_request_set_form (request, body);
  keyhold_http_send_async (data->http, g_steal_pointer (&request), g_task_get_cancellable (task),
                           callback, task);
}

static void
post_form (const char *endpoint, KeyholdHttpForm *form, GTask *task, GAsyncReadyCallback callback)
{
  post_form_within (endpoint, form, KEYHOLD_OAUTH_TOTAL_TIMEOUT_MS, task, callback);
}

static KeyholdHttpResponse *
receive_answer (GAsyncResult *result, GTask *task, GError **error)
{
  RequestData *data = g_task_get_task_data (task);
  KeyholdHttpResponse *response = keyhold_http_send_finish (data->http, result, error);

  if (response != NULL)
    data->retry_after_s = keyhold_http_response_get_retry_after (response);
  return response;
}

static void
on_token_answer (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (KeyholdHttpResponse) response = NULL;
  KeyholdTokenResponse *token = NULL;
  GError *error = NULL;

  response = receive_answer (result, task, &error);
  if (response != NULL)
    token = keyhold_oauth_parse_token_response (
        response->status, keyhold_secret_get (response->body),
        keyhold_secret_get_length (response->body), response->sent_at_real_us, &error);
  if (token == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, token, (GDestroyNotify) keyhold_token_response_free);
}

static KeyholdTokenResponse *
token_request_finish (GAsyncResult *result,
                      gpointer source_tag,
                      gint64 *out_retry_after_s,
                      GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == source_tag, NULL);

  if (out_retry_after_s != NULL)
    *out_retry_after_s = ((RequestData *) g_task_get_task_data (G_TASK (result)))->retry_after_s;
  return g_task_propagate_pointer (G_TASK (result), error);
}

void
keyhold_oauth_refresh_async (KeyholdHttp *http,
                             const char *token_endpoint,
                             const char *client_id,
                             KeyholdSecret *refresh_token,
                             const char *scope,
                             const char *resource,
                             GCancellable *cancellable,
                             GAsyncReadyCallback callback,
                             gpointer user_data)
{
  GTask *task
      = request_task_new (http, keyhold_oauth_refresh_async, cancellable, callback, user_data);
  KeyholdHttpForm *form = keyhold_http_form_new ();

  keyhold_http_form_add (form, "grant_type", "refresh_token");
  keyhold_http_form_add_secret (form, "refresh_token", refresh_token);
  keyhold_http_form_add (form, "client_id", client_id);
  if (scope != NULL)
    keyhold_http_form_add (form, "scope", scope);
  if (resource != NULL)
    keyhold_http_form_add (form, "resource", resource);
  post_form_within (token_endpoint, form, KEYHOLD_OAUTH_REFRESH_TIMEOUT_MS, task, on_token_answer);
}

KeyholdTokenResponse *
keyhold_oauth_refresh_finish (GAsyncResult *result, gint64 *out_retry_after_s, GError **error)
{
  return token_request_finish (result, keyhold_oauth_refresh_async, out_retry_after_s, error);
}

void
keyhold_oauth_exchange_code_async (KeyholdHttp *http,
                                   const char *token_endpoint,
                                   const char *client_id,
                                   KeyholdSecret *code,
                                   const char *redirect_uri,
                                   KeyholdSecret *code_verifier,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data)
{
  GTask *task = request_task_new (http, keyhold_oauth_exchange_code_async, cancellable, callback,
                                  user_data);
  KeyholdHttpForm *form = keyhold_http_form_new ();

  keyhold_http_form_add (form, "grant_type", "authorization_code");
  keyhold_http_form_add_secret (form, "code", code);
  keyhold_http_form_add (form, "redirect_uri", redirect_uri);
  keyhold_http_form_add (form, "client_id", client_id);
  keyhold_http_form_add_secret (form, "code_verifier", code_verifier);
  post_form (token_endpoint, form, task, on_token_answer);
}

KeyholdTokenResponse *
keyhold_oauth_exchange_code_finish (GAsyncResult *result, GError **error)
{
  return token_request_finish (result, keyhold_oauth_exchange_code_async, NULL, error);
}

void
keyhold_oauth_poll_device_token_async (KeyholdHttp *http,
                                       const char *token_endpoint,
                                       const char *client_id,
                                       KeyholdSecret *device_code,
                                       GCancellable *cancellable,
                                       GAsyncReadyCallback callback,
                                       gpointer user_data)
{
  GTask *task = request_task_new (http, keyhold_oauth_poll_device_token_async, cancellable,
                                  callback, user_data);
  KeyholdHttpForm *form = keyhold_http_form_new ();

  keyhold_http_form_add (form, "grant_type", DEVICE_CODE_GRANT_TYPE);
  keyhold_http_form_add_secret (form, "device_code", device_code);
  keyhold_http_form_add (form, "client_id", client_id);
  post_form (token_endpoint, form, task, on_token_answer);
}

KeyholdTokenResponse *
keyhold_oauth_poll_device_token_finish (GAsyncResult *result, GError **error)
{
  return token_request_finish (result, keyhold_oauth_poll_device_token_async, NULL, error);
}

static void
on_device_authorization_answer (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (KeyholdHttpResponse) response = NULL;
  KeyholdDeviceAuthorization *authorization = NULL;
  GError *error = NULL;

  response = receive_answer (result, task, &error);
  if (response != NULL)
    authorization = keyhold_oauth_parse_device_authorization (
        response->status, keyhold_secret_get (response->body),
        keyhold_secret_get_length (response->body), &error);
  if (authorization == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, authorization, (GDestroyNotify) keyhold_device_authorization_free);
}

void
keyhold_oauth_request_device_authorization_async (KeyholdHttp *http,
                                                  const char *device_authorization_endpoint,
                                                  const char *client_id,
                                                  const char *scope,
                                                  GCancellable *cancellable,
                                                  GAsyncReadyCallback callback,
                                                  gpointer user_data)
{
  GTask *task = request_task_new (http, keyhold_oauth_request_device_authorization_async,
                                  cancellable, callback, user_data);
  KeyholdHttpForm *form = keyhold_http_form_new ();

  keyhold_http_form_add (form, "client_id", client_id);
  if (scope != NULL)
    keyhold_http_form_add (form, "scope", scope);
  post_form (device_authorization_endpoint, form, task, on_device_authorization_answer);
}

KeyholdDeviceAuthorization *
keyhold_oauth_request_device_authorization_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result))
                            == keyhold_oauth_request_device_authorization_async,
                        NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
on_revocation_answer (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (KeyholdHttpResponse) response = NULL;
  GError *error = NULL;

  response = receive_answer (result, task, &error);
  if (response != NULL && response->status != 200)
    keyhold_oauth_set_error_from_answer (response->status, keyhold_secret_get (response->body),
                                         keyhold_secret_get_length (response->body), &error);
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

void
keyhold_oauth_revoke_async (KeyholdHttp *http,
                            const char *revocation_endpoint,
                            const char *client_id,
                            KeyholdSecret *refresh_token,
                            GCancellable *cancellable,
                            GAsyncReadyCallback callback,
                            gpointer user_data)
{
  GTask *task
      = request_task_new (http, keyhold_oauth_revoke_async, cancellable, callback, user_data);
  KeyholdHttpForm *form = keyhold_http_form_new ();

  keyhold_http_form_add_secret (form, "token", refresh_token);
  keyhold_http_form_add (form, "token_type_hint", "refresh_token");
  keyhold_http_form_add (form, "client_id", client_id);
  post_form (revocation_endpoint, form, task, on_revocation_answer);
}

gboolean
keyhold_oauth_revoke_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == keyhold_oauth_revoke_async,
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
