/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "keyhold-contract.h"

#include "base/http-syntax.h"
#include "net/http.h"
#include "outbox/outbox-request.h"

/* Longest method accepted, and longest header name repeated in an error. */
#define MAX_METHOD_LENGTH 32
#define MAX_QUOTED_NAME_LENGTH 256

/* ---- requests and item infos ---------------------------------------------- */

KeyholdOutboxRequest *
keyhold_outbox_request_new (const char *method, const char *url)
{
  KeyholdOutboxRequest *request = g_new0 (KeyholdOutboxRequest, 1);

  request->method = g_strdup (method);
  request->url = g_strdup (url);
  request->header_names = g_ptr_array_new_with_free_func (g_free);
  request->header_values = g_ptr_array_new_with_free_func (g_free);
  return request;
}

void
keyhold_outbox_request_add_header (KeyholdOutboxRequest *request,
                                   const char *name,
                                   const char *value)
{
  g_ptr_array_add (request->header_names, g_strdup (name));
  g_ptr_array_add (request->header_values, g_strdup (value));
}

void
keyhold_outbox_request_free (KeyholdOutboxRequest *request)
{
  if (request == NULL)
    return;
  g_free (request->method);
  g_free (request->url);
  g_ptr_array_unref (request->header_names);
  g_ptr_array_unref (request->header_values);
  g_clear_pointer (&request->body, g_bytes_unref);
  g_free (request);
}

void
keyhold_outbox_item_info_free (KeyholdOutboxItemInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->id);
  g_free (info->account);
  g_free (info->queue);
  g_free (info->method);
  g_free (info->url);
  g_free (info->idempotency_key);
  g_free (info->reason);
  g_clear_pointer (&info->response_header_names, g_ptr_array_unref);
  g_clear_pointer (&info->response_header_values, g_ptr_array_unref);
  g_clear_pointer (&info->response_body, g_bytes_unref);
  g_free (info);
}

/* ---- as GVariants ---------------------------------------------------------------- */

GVariant *
keyhold_outbox_headers_variant (GPtrArray *names, GPtrArray *values)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(ss)"));
  for (guint i = 0; names != NULL && i < names->len; i++)
    g_variant_builder_add (&builder, "(ss)", names->pdata[i], values->pdata[i]);
  return g_variant_builder_end (&builder);
}

static GVariant *
body_variant (GBytes *body)
{
  return g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, body, TRUE);
}

GVariant *
keyhold_outbox_request_to_variant (const KeyholdOutboxRequest *request)
{
  GVariant *body = request->body != NULL ? body_variant (request->body) : NULL;

  return g_variant_ref_sink (
      g_variant_new ("(@a(ss)@may)",
                     keyhold_outbox_headers_variant (request->header_names, request->header_values),
                     g_variant_new_maybe (G_VARIANT_TYPE_BYTESTRING, body)));
}

/* ---- validating requests ---------------------------------------------------------- */

static gboolean G_GNUC_PRINTF (3, 4)
    fail (GError **error, KeyholdError code, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_propagate_error (error, g_error_new_valist (KEYHOLD_ERROR, code, format, args));
  va_end (args);
  return FALSE;
}

gboolean
keyhold_outbox_validate_queue_name (const char *queue, GError **error)
{
  gsize length = strlen (queue);

  if (length == 0 || length > KEYHOLD_OUTBOX_MAX_QUEUE_NAME)
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT, "A queue name has 1 to %d characters",
                 KEYHOLD_OUTBOX_MAX_QUEUE_NAME);
  for (const char *c = queue; *c != '\0'; c++)
    if (!g_ascii_isalnum (*c) && strchr ("._:-", *c) == NULL)
      return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "A queue name holds only A-Z a-z 0-9 . _ : -");
  return TRUE;
}

static gboolean
validate_method (const char *method, gboolean has_body, GError **error)
{
  if (strlen (method) > MAX_METHOD_LENGTH || !keyhold_http_syntax_is_token (method))
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT, "The method is not an HTTP method token");
  /* CONNECT opens a tunnel and TRACE echoes the request, token included. */
  if (g_ascii_strcasecmp (method, "CONNECT") == 0 || g_ascii_strcasecmp (method, "TRACE") == 0)
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT, "%s requests cannot be queued", method);
  if (has_body && strcmp (method, "HEAD") == 0)
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT, "A HEAD request cannot carry a body");
  return TRUE;
}

/* Invariant 8: the token goes only to origins the account allows, so the
 * URL kept is the one the policy approved, in the form libcurl gets. The
 * messages never repeat the URL, which may carry data. */
static gboolean
validate_url (const char *url,
              const KeyholdAccountConfig *config,
              char **out_approved_url,
              GError **error)
{
  g_autoptr (GError) policy_error = NULL;

  if (strlen (url) > KEYHOLD_OUTBOX_MAX_URL_BYTES)
    return fail (error, KEYHOLD_ERROR_QUOTA_EXCEEDED, "The URL is longer than %d bytes",
                 KEYHOLD_OUTBOX_MAX_URL_BYTES);
  *out_approved_url
      = keyhold_url_policy_approve (url, (const char *const *) config->api_origins, &policy_error);
  if (*out_approved_url != NULL)
    return TRUE;
  if (g_error_matches (policy_error, KEYHOLD_ERROR, KEYHOLD_ERROR_ACCESS_DENIED))
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT,
                 "The URL's origin is not one of the API origins of account %s", config->name);
  return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT, "The URL cannot be used: %s",
               policy_error->message);
}

/* The HTTP module's own check is the one that counts at send time, so a
 * header it would refuse then is refused now. */
static gboolean
validate_header (const char *name, const char *value, GError **error)
{
  if (g_ascii_strcasecmp (name, "Authorization") == 0
      || g_ascii_strcasecmp (name, "Proxy-Authorization") == 0)
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT,
                 "Queued requests carry no credentials of their own: the agent adds the "
                 "account's token when it sends them");
  if (g_ascii_strcasecmp (name, "Idempotency-Key") == 0)
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT,
                 "The agent sets the Idempotency-Key header itself");
  if (!keyhold_http_header_is_allowed (name, value))
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT,
                 "Header \"%s\" is malformed or is one that only the agent may set",
                 strlen (name) <= MAX_QUOTED_NAME_LENGTH && keyhold_http_syntax_is_token (name)
                     ? name
                     : "?");
  return TRUE;
}

static gboolean
validate_headers (const KeyholdOutboxRequest *request, gsize *out_bytes, GError **error)
{
  gsize bytes = 0;
  guint content_types = 0;

  if (request->header_names->len > KEYHOLD_OUTBOX_MAX_HEADERS)
    return fail (error, KEYHOLD_ERROR_QUOTA_EXCEEDED, "A request has at most %d headers",
                 KEYHOLD_OUTBOX_MAX_HEADERS);
  for (guint i = 0; i < request->header_names->len; i++)
    {
      const char *name = request->header_names->pdata[i];
      const char *value = request->header_values->pdata[i];

      bytes += strlen (name) + strlen (value) + 4;
      if (!validate_header (name, value, error))
        return FALSE;
      if (g_ascii_strcasecmp (name, "Content-Type") == 0)
        content_types++;
    }
  if (bytes > KEYHOLD_OUTBOX_MAX_HEADER_BYTES)
    return fail (error, KEYHOLD_ERROR_QUOTA_EXCEEDED, "The headers are larger than %d bytes",
                 KEYHOLD_OUTBOX_MAX_HEADER_BYTES);
  if (content_types > 1)
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT, "More than one Content-Type header");
  *out_bytes = bytes;
  return TRUE;
}

gboolean
keyhold_outbox_request_validate (const KeyholdOutboxRequest *request,
                                 const KeyholdAccountConfig *config,
                                 gsize *out_size,
                                 char **out_url,
                                 GError **error)
{
  gsize body_size = request->body != NULL ? g_bytes_get_size (request->body) : 0;
  gsize header_bytes = 0;
  g_autofree char *url = NULL;

  if (!validate_method (request->method, request->body != NULL, error)
      || !validate_url (request->url, config, &url, error)
      || !validate_headers (request, &header_bytes, error))
    return FALSE;
  if (body_size > KEYHOLD_OUTBOX_MAX_BODY_BYTES)
    return fail (error, KEYHOLD_ERROR_QUOTA_EXCEEDED, "The body is larger than %d bytes",
                 KEYHOLD_OUTBOX_MAX_BODY_BYTES);
  if (request->max_age_s > KEYHOLD_OUTBOX_MAX_MAX_AGE_S)
    return fail (error, KEYHOLD_ERROR_INVALID_ARGUMENT, "max_age is at most %d seconds",
                 KEYHOLD_OUTBOX_MAX_MAX_AGE_S);
  *out_size = strlen (url) + header_bytes + body_size;
  if (out_url != NULL)
    *out_url = g_steal_pointer (&url);
  return TRUE;
}
