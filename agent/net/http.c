/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/http-syntax.h"
#include "net/http.h"

/* clang-format 14 would put spaces around the hyphens of the quark name. */
/* clang-format off */
G_DEFINE_QUARK (keyhold-http-error-quark, keyhold_http_error)
/* clang-format on */

/* Longest Retry-After we honour (RFC 9110 leaves it open; a day is already
 * far beyond any sensible back-off). */
#define RETRY_AFTER_MAX_S (24 * 60 * 60)
/* First size of a growing guarded buffer. */
#define GUARDED_BUFFER_MIN_CAPACITY 4096
/* Idle connections kept for reuse. curl's default is four per transfer
 * running at the moment one ends, so a burst that ends one by one would
 * shrink the cache to a few connections and every next burst would
 * connect again. A fixed cap keeps them while bounding idle sockets; it
 * matches the outbox's cap on concurrent sends. */
#define MAX_CACHED_CONNECTIONS 32

/* ---- guarded buffers ---------------------------------------------------- */

/* Bytes that may hold a secret (a response body, a form, a header line),
 * in libsodium guarded memory and always NUL-terminated. */
typedef struct
{
  char *data;
  gsize length;
  gsize capacity;
} GuardedBuffer;

/* Grows @buffer so that @wanted bytes fit (the NUL included), by at most
 * @ceiling bytes. realloc () would leave the old copy unwiped, so the bytes
 * move to a new region and sodium_free () wipes the old one. */
static void
guarded_buffer_reserve (GuardedBuffer *buffer, gsize wanted, gsize ceiling)
{
  gsize capacity = MAX (buffer->capacity, GUARDED_BUFFER_MIN_CAPACITY);
  char *data;

  if (wanted <= buffer->capacity)
    return;
  while (capacity < wanted)
    capacity = capacity > G_MAXSIZE / 2 ? wanted : capacity * 2;
  capacity = MAX (MIN (capacity, ceiling), wanted);

  if (sodium_init () < 0)
    g_error ("libsodium could not be initialised");
  data = sodium_malloc (capacity);
  if (data == NULL)
    g_error ("out of guarded memory for %" G_GSIZE_FORMAT " bytes", capacity);
  memcpy (data, buffer->data != NULL ? buffer->data : "", buffer->length + 1);
  sodium_free (buffer->data);
  buffer->data = data;
  buffer->capacity = capacity;
}

static void
guarded_buffer_append (GuardedBuffer *buffer, const void *bytes, gsize length, gsize ceiling)
{
  guarded_buffer_reserve (buffer, buffer->length + length + 1, ceiling);
  memcpy (buffer->data + buffer->length, bytes, length);
  buffer->length += length;
  buffer->data[buffer->length] = '\0';
}

static void
guarded_buffer_append_string (GuardedBuffer *buffer, const char *string)
{
  guarded_buffer_append (buffer, string, strlen (string), G_MAXSIZE);
}

static KeyholdSecret *
guarded_buffer_to_secret (const GuardedBuffer *buffer)
{
  return keyhold_secret_new (buffer->data != NULL ? buffer->data : "", buffer->length);
}

static void
guarded_buffer_clear (GuardedBuffer *buffer)
{
  /* sodium_free () wipes the region and accepts NULL. */
  sodium_free (buffer->data);
  *buffer = (GuardedBuffer) { 0 };
}

/* ---- requests ----------------------------------------------------------- */

struct _KeyholdHttpRequest
{
  char *method;
  char *url;
  /* "Name: value" lines as curl takes them. */
  GPtrArray *header_lines;
  KeyholdSecret *bearer;
  KeyholdSecret *form;
  GBytes *body;
  char *content_type;
  guint connect_timeout_ms;
  guint total_timeout_ms;
  gsize max_response_bytes;
  gboolean send_once;
};

void
keyhold_http_request_set_send_once (KeyholdHttpRequest *request)
{
  request->send_once = TRUE;
}

KeyholdHttpRequest *
keyhold_http_request_new (const char *method, const char *url)
{
  KeyholdHttpRequest *request = g_new0 (KeyholdHttpRequest, 1);

  request->method = g_strdup (method);
  request->url = g_strdup (url);
  request->header_lines = g_ptr_array_new_with_free_func (g_free);
  request->connect_timeout_ms = KEYHOLD_HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
  request->total_timeout_ms = KEYHOLD_HTTP_DEFAULT_TOTAL_TIMEOUT_MS;
  request->max_response_bytes = KEYHOLD_HTTP_DEFAULT_MAX_RESPONSE_BYTES;
  return request;
}

static void
request_clear_body (KeyholdHttpRequest *request)
{
  g_clear_pointer (&request->form, keyhold_secret_unref);
  g_clear_pointer (&request->body, g_bytes_unref);
  g_clear_pointer (&request->content_type, g_free);
}

void
keyhold_http_request_free (KeyholdHttpRequest *request)
{
  if (request == NULL)
    return;
  request_clear_body (request);
  g_clear_pointer (&request->bearer, keyhold_secret_unref);
  g_ptr_array_unref (request->header_lines);
  g_free (request->method);
  g_free (request->url);
  g_free (request);
}

/* Headers whose value must come from us or from curl: credentials, and
 * the ones that frame the message, which a wrong value would desynchronise
 * from the body curl actually sends. */
static gboolean
is_reserved_header (const char *name)
{
  static const char *const reserved[] = {
    "Authorization",
    "Proxy-Authorization",
    "Host",
    "Content-Length",
    "Transfer-Encoding",
    "Connection",
    "Keep-Alive",
    "Upgrade",
    "TE",
    "Trailer",
    "Expect",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (reserved); i++)
    if (g_ascii_strcasecmp (name, reserved[i]) == 0)
      return TRUE;
  return FALSE;
}

gboolean
keyhold_http_header_is_allowed (const char *name, const char *value)
{
  return keyhold_http_syntax_is_token (name) && keyhold_http_syntax_is_field_value (value)
         && !is_reserved_header (name);
}

gboolean
keyhold_http_request_add_header (KeyholdHttpRequest *request, const char *name, const char *value)
{
  if (!keyhold_http_header_is_allowed (name, value))
    return FALSE;

  /* curl reads "Name:" as "drop this header"; "Name;" sends it empty. */
  if (*value == '\0')
    g_ptr_array_add (request->header_lines, g_strconcat (name, ";", NULL));
  else
    g_ptr_array_add (request->header_lines, g_strconcat (name, ": ", value, NULL));
  return TRUE;
}

void
keyhold_http_request_set_bearer (KeyholdHttpRequest *request, KeyholdSecret *token)
{
  g_clear_pointer (&request->bearer, keyhold_secret_unref);
  request->bearer = keyhold_secret_ref (token);
}

void
keyhold_http_request_set_form (KeyholdHttpRequest *request, KeyholdSecret *form)
{
  request_clear_body (request);
  request->form = keyhold_secret_ref (form);
  request->content_type = g_strdup ("application/x-www-form-urlencoded");
}

void
keyhold_http_request_set_body (KeyholdHttpRequest *request, GBytes *body, const char *content_type)
{
  request_clear_body (request);
  request->body = g_bytes_ref (body);
  request->content_type = g_strdup (content_type);
}

void
keyhold_http_request_set_limits (KeyholdHttpRequest *request,
                                 guint connect_timeout_ms,
                                 guint total_timeout_ms,
                                 gsize max_response_bytes)
{
  if (connect_timeout_ms > 0)
    request->connect_timeout_ms = connect_timeout_ms;
  if (total_timeout_ms > 0)
    request->total_timeout_ms = total_timeout_ms;
  /* One byte stays free for the body's NUL. */
  if (max_response_bytes > 0)
    request->max_response_bytes = MIN (max_response_bytes, G_MAXSIZE - 1);
}

static gboolean
request_has_body (const KeyholdHttpRequest *request)
{
  return request->form != NULL || request->body != NULL;
}

static const char *
request_body_data (const KeyholdHttpRequest *request, gsize *out_length)
{
  if (request->form != NULL)
    {
      *out_length = keyhold_secret_get_length (request->form);
      return keyhold_secret_get (request->form);
    }
  if (request->body != NULL)
    {
      const char *data = g_bytes_get_data (request->body, out_length);
      return data != NULL ? data : "";
    }
  *out_length = 0;
  return "";
}

/* ---- responses ---------------------------------------------------------- */

void
keyhold_http_response_free (KeyholdHttpResponse *response)
{
  if (response == NULL)
    return;
  g_clear_pointer (&response->header_names, g_ptr_array_unref);
  g_clear_pointer (&response->header_values, g_ptr_array_unref);
  g_clear_pointer (&response->body, keyhold_secret_unref);
  g_free (response);
}

const char *
keyhold_http_response_get_header (const KeyholdHttpResponse *response, const char *name)
{
  for (guint i = 0; i < response->header_names->len; i++)
    if (g_ascii_strcasecmp (g_ptr_array_index (response->header_names, i), name) == 0)
      return g_ptr_array_index (response->header_values, i);
  return NULL;
}

static gboolean
is_ascii_digits (const char *string)
{
  if (*string == '\0')
    return FALSE;
  for (const char *c = string; *c != '\0'; c++)
    if (!g_ascii_isdigit (*c))
      return FALSE;
  return TRUE;
}

gint64
keyhold_http_response_get_retry_after (const KeyholdHttpResponse *response)
{
  const char *value = keyhold_http_response_get_header (response, "retry-after");
  time_t date;

  if (value == NULL)
    return -1;

  /* delay-seconds: any run of digits is valid, however long, so the ones
   * too long to parse are simply very far away. */
  if (is_ascii_digits (value))
    return strlen (value) > 6 ? RETRY_AFTER_MAX_S
                              : CLAMP (g_ascii_strtoll (value, NULL, 10), 0, RETRY_AFTER_MAX_S);

  /* HTTP-date, including the obsolete formats RFC 9110 §5.6.7 asks
   * recipients to accept. */
  date = curl_getdate (value, NULL);
  if (date == -1)
    return -1;
  return CLAMP ((gint64) date - g_get_real_time () / G_USEC_PER_SEC, 0, RETRY_AFTER_MAX_S);
}

/* ---- the client --------------------------------------------------------- */

struct _KeyholdHttp
{
  GMainContext *context;
  CURLM *multi;
  /* fd → GSource watching it for curl. */
  GHashTable *sockets;
  GSource *timer;
  /* Transfers handed to curl and not yet completed. */
  GQueue transfers;
};

typedef struct
{
  /* NULL once the transfer has left the multi handle. */
  KeyholdHttp *http;
  GList *link;
  GTask *task;
  KeyholdHttpRequest *request;
  /* scheme://host:port/path: what error messages may say about the URL,
   * whose query and user information can hold secrets. */
  char *where;
  CURL *easy;
  struct curl_slist *headers;
  GSource *cancel_source;
  gint64 started_real_us;
  GuardedBuffer body;
  gsize header_bytes;
  GPtrArray *header_names;
  GPtrArray *header_values;
  gboolean body_too_large;
  gboolean headers_too_large;
  CURLcode result;
} Transfer;

static void
drop_source (GSource *source)
{
  g_source_destroy (source);
  g_source_unref (source);
}

/* curl_slist_free_all () does not wipe, and a header line may be the
 * bearer line. */
static void
wipe_and_free_headers (struct curl_slist *headers)
{
  for (struct curl_slist *item = headers; item != NULL; item = item->next)
    sodium_memzero (item->data, strlen (item->data));
  curl_slist_free_all (headers);
}

static Transfer *
transfer_new (GTask *task, KeyholdHttpRequest *request)
{
  Transfer *transfer = g_new0 (Transfer, 1);

  transfer->task = task;
  transfer->request = request;
  transfer->header_names = g_ptr_array_new_with_free_func (g_free);
  transfer->header_values = g_ptr_array_new_with_free_func (g_free);
  return transfer;
}

static void
transfer_free (Transfer *transfer)
{
  g_assert (transfer->http == NULL);

  g_clear_pointer (&transfer->easy, curl_easy_cleanup);
  g_clear_pointer (&transfer->headers, wipe_and_free_headers);
  guarded_buffer_clear (&transfer->body);
  g_clear_pointer (&transfer->header_names, g_ptr_array_unref);
  g_clear_pointer (&transfer->header_values, g_ptr_array_unref);
  keyhold_http_request_free (transfer->request);
  g_free (transfer->where);
  g_object_unref (transfer->task);
  g_free (transfer);
}

/* Takes @transfer out of curl and out of @http; it can then complete
 * without touching @http, which its callback may free. */
static void
transfer_detach (Transfer *transfer)
{
  KeyholdHttp *http = transfer->http;

  g_clear_pointer (&transfer->cancel_source, drop_source);
  curl_multi_remove_handle (http->multi, transfer->easy);
  g_queue_delete_link (&http->transfers, transfer->link);
  transfer->link = NULL;
  transfer->http = NULL;
}

static GError *
invalid_request (const char *message)
{
  return g_error_new_literal (KEYHOLD_HTTP_ERROR, KEYHOLD_HTTP_ERROR_INVALID, message);
}

/* ---- response assembly (curl callbacks) --------------------------------- */

static size_t
on_body_data (char *data, size_t size, size_t count, void *user_data)
{
  Transfer *transfer = user_data;
  gsize max = transfer->request->max_response_bytes;
  gsize length = size * count;

  /* Servers may omit Content-Length (or lie in it), so the limit holds
   * here too and not only through CURLOPT_MAXFILESIZE_LARGE. Returning
   * anything but @length makes curl abort with CURLE_WRITE_ERROR. */
  if (length > max - transfer->body.length)
    {
      transfer->body_too_large = TRUE;
      return 0;
    }
  guarded_buffer_append (&transfer->body, data, length, max + 1);
  return length;
}

static void
transfer_add_header (Transfer *transfer, const char *line, gsize length)
{
  const char *colon = memchr (line, ':', length);
  g_autofree char *name = NULL;
  char *value;

  /* Not a field line; obs-fold continuations (RFC 9112 §5.2) are dropped
   * with them. */
  if (colon == NULL || colon == line || g_ascii_isspace (*line))
    return;

  name = g_ascii_strdown (line, colon - line);
  value = g_strndup (colon + 1, length - (colon + 1 - line));
  g_ptr_array_add (transfer->header_names, g_steal_pointer (&name));
  g_ptr_array_add (transfer->header_values, g_strstrip (value));
}

static size_t
on_header_line (char *line, size_t size, size_t count, void *user_data)
{
  Transfer *transfer = user_data;
  gsize length = size * count;

  if (length > KEYHOLD_HTTP_MAX_HEADER_BYTES - transfer->header_bytes)
    {
      transfer->headers_too_large = TRUE;
      return 0;
    }
  transfer->header_bytes += length;

  /* A status line starts a new response (after a 1xx); only the final
   * response's headers are kept. */
  if (length >= 5 && memcmp (line, "HTTP/", 5) == 0)
    {
      g_ptr_array_set_size (transfer->header_names, 0);
      g_ptr_array_set_size (transfer->header_values, 0);
    }
  else
    transfer_add_header (transfer, line, length);
  return length;
}

/* curl (7.88 at least) creates its sockets without SOCK_CLOEXEC; this
 * callback is how every connection socket gets it atomically. */
static curl_socket_t
on_open_socket (void *user_data, curlsocktype purpose, struct curl_sockaddr *address)
{
  return socket (address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

/* ---- building a transfer ------------------------------------------------ */

static gboolean
describe_url (const char *url, char **out_where, GError **error)
{
  g_autoptr (GUri) uri = g_uri_parse (url, G_URI_FLAGS_ENCODED, NULL);
  const char *scheme;
  int port;

  /* The messages never repeat the URL: it may carry secrets. */
  if (uri == NULL || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
    {
      g_propagate_error (error, invalid_request ("The URL is not an absolute http or https URL"));
      return FALSE;
    }
  scheme = g_uri_get_scheme (uri);
  if (g_ascii_strcasecmp (scheme, "http") != 0 && g_ascii_strcasecmp (scheme, "https") != 0)
    {
      g_propagate_error (error, invalid_request ("Only http and https URLs can be requested"));
      return FALSE;
    }
  /* curl would turn user information into Basic credentials. */
  if (g_uri_get_userinfo (uri) != NULL)
    {
      g_propagate_error (error, invalid_request ("URLs with user information are refused"));
      return FALSE;
    }

  port = g_uri_get_port (uri);
  if (port == -1)
    port = g_ascii_strcasecmp (scheme, "https") == 0 ? 443 : 80;
  *out_where = g_uri_join (G_URI_FLAGS_ENCODED, scheme, NULL, g_uri_get_host (uri), port,
                           g_uri_get_path (uri), NULL, NULL);
  return TRUE;
}

static void
transfer_append_header (Transfer *transfer, const char *line)
{
  struct curl_slist *headers = curl_slist_append (transfer->headers, line);

  if (headers == NULL)
    g_error ("out of memory for an HTTP header");
  transfer->headers = headers;
}

/* RFC 6750 §2.1 b64token, stricter than needed: a token from the provider
 * with CR or LF in it must not be able to add header lines. */
static gboolean
is_bearer_token (const KeyholdSecret *token)
{
  const guchar *bytes = (const guchar *) keyhold_secret_get (token);
  gsize length = keyhold_secret_get_length (token);

  if (length == 0)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    if (bytes[i] <= 0x20 || bytes[i] >= 0x7f)
      return FALSE;
  return TRUE;
}

/* curl_slist_append () copies the line into ordinary heap memory and curl
 * copies it again into its request buffer, which it frees without wiping.
 * libcurl offers no way around that (CURLOPT_XOAUTH2_BEARER copies as
 * well). Guarded pages for our own short-lived copy would therefore add
 * nothing but an mmap per request: it lives in the heap like the slist
 * copy, and both are wiped, this one at once, that one when the transfer
 * ends. */
static void
transfer_append_bearer (Transfer *transfer)
{
  char *line = g_strconcat ("Authorization: Bearer ",
                            keyhold_secret_get (transfer->request->bearer), NULL);

  transfer_append_header (transfer, line);
  keyhold_secret_wipe_string (line);
}

static gboolean
transfer_build_headers (Transfer *transfer, GError **error)
{
  KeyholdHttpRequest *request = transfer->request;

  for (guint i = 0; i < request->header_lines->len; i++)
    transfer_append_header (transfer, g_ptr_array_index (request->header_lines, i));

  if (request->content_type != NULL)
    {
      g_autofree char *line = NULL;

      if (!keyhold_http_syntax_is_field_value (request->content_type))
        {
          g_propagate_error (error, invalid_request ("The body's content type is not a valid "
                                                     "header value"));
          return FALSE;
        }
      line = g_strconcat ("Content-Type: ", request->content_type, NULL);
      transfer_append_header (transfer, line);
    }
  else
    /* Without this curl would label any body as a form. */
    transfer_append_header (transfer, "Content-Type:");

  /* Waiting for "100 Continue" costs a second with servers that ignore it. */
  transfer_append_header (transfer, "Expect:");

  if (request->bearer != NULL)
    {
      if (!is_bearer_token (request->bearer))
        {
          g_propagate_error (error,
                             invalid_request ("The bearer token cannot be sent in a header"));
          return FALSE;
        }
      transfer_append_bearer (transfer);
    }
  return TRUE;
}

static gboolean
check_method (const KeyholdHttpRequest *request, GError **error)
{
  if (request->method == NULL || !keyhold_http_syntax_is_token (request->method))
    {
      g_propagate_error (error, invalid_request ("The HTTP method is not a valid token"));
      return FALSE;
    }
  /* curl can only send HEAD through CURLOPT_NOBODY, which takes no body. */
  if (strcmp (request->method, "HEAD") == 0 && request_has_body (request))
    {
      g_propagate_error (error, invalid_request ("A HEAD request cannot carry a body"));
      return FALSE;
    }
  return TRUE;
}

static gboolean
transfer_set_method (Transfer *transfer)
{
  KeyholdHttpRequest *request = transfer->request;
  const char *method = request->method;
  const char *body;
  gsize body_length;

  if (strcmp (method, "HEAD") == 0)
    return curl_easy_setopt (transfer->easy, CURLOPT_NOBODY, 1L) == CURLE_OK;
  if (strcmp (method, "GET") == 0 && !request_has_body (request))
    return curl_easy_setopt (transfer->easy, CURLOPT_HTTPGET, 1L) == CURLE_OK;

  /* The body stays owned by the request (a form stays in guarded memory)
   * until the transfer is freed, and curl reads it in place. For small
   * bodies curl copies it into its request buffer, which it frees without
   * wiping: the same limitation as for the bearer line. */
  body = request_body_data (request, &body_length);
  if (curl_easy_setopt (transfer->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body_length)
          != CURLE_OK
      || curl_easy_setopt (transfer->easy, CURLOPT_POSTFIELDS, body) != CURLE_OK)
    return FALSE;
  if (strcmp (method, "POST") == 0)
    return TRUE;
  return curl_easy_setopt (transfer->easy, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
}

static gboolean
transfer_set_options (Transfer *transfer)
{
  KeyholdHttpRequest *request = transfer->request;
  CURL *easy = transfer->easy;

  /* Cookies, HSTS and alt-svc stay off because their files are never set;
   * netrc is off explicitly. Content-Encoding is never requested, so the
   * size limit applies to the bytes as they arrive. */
  return curl_easy_setopt (easy, CURLOPT_URL, request->url) == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_PRIVATE, transfer) == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_NETRC, (long) CURL_NETRC_IGNORED) == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_USERAGENT, "keyhold/" PACKAGE_VERSION) == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, (long) request->connect_timeout_ms)
                == CURLE_OK
         /* The total limit also ends servers that trickle their answer. */
         && curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, (long) request->total_timeout_ms)
                == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_TCP_KEEPIDLE, (long) KEYHOLD_HTTP_KEEPALIVE_IDLE_S)
                == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_TCP_KEEPINTVL, (long) KEYHOLD_HTTP_KEEPALIVE_INTERVAL_S)
                == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_MAXFILESIZE_LARGE,
                              (curl_off_t) request->max_response_bytes)
                == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, on_body_data) == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_WRITEDATA, transfer) == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, on_header_line) == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_HEADERDATA, transfer) == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket) == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_HTTPHEADER, transfer->headers) == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_FRESH_CONNECT, (long) request->send_once) == CURLE_OK
         && curl_easy_setopt (easy, CURLOPT_FORBID_REUSE, (long) request->send_once) == CURLE_OK;
}

static gboolean
transfer_prepare (Transfer *transfer, GError **error)
{
  if (!describe_url (transfer->request->url, &transfer->where, error)
      || !check_method (transfer->request, error) || !transfer_build_headers (transfer, error))
    return FALSE;

  transfer->easy = curl_easy_init ();
  if (transfer->easy == NULL)
    g_error ("out of memory for a curl handle");
  if (!transfer_set_method (transfer) || !transfer_set_options (transfer))
    {
      g_propagate_error (error, invalid_request ("libcurl refused an option this client requires"));
      return FALSE;
    }
  return TRUE;
}

/* ---- completion --------------------------------------------------------- */

/* Whether the request may have reached the server: then a broken
 * connection means the answer was lost, not that nothing happened. The
 * pre-transfer mark counts too, so that transports which do not report a
 * request size (HTTP/2) err on the side of "sent". */
static gboolean
request_went_out (CURL *easy)
{
  long request_bytes = 0;
  curl_off_t body_bytes = 0;
  curl_off_t pretransfer_us = 0;

  curl_easy_getinfo (easy, CURLINFO_REQUEST_SIZE, &request_bytes);
  curl_easy_getinfo (easy, CURLINFO_SIZE_UPLOAD_T, &body_bytes);
  curl_easy_getinfo (easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
  return request_bytes > 0 || body_bytes > 0 || pretransfer_us > 0;
}

static GError *
transfer_error (const Transfer *transfer)
{
  const char *where = transfer->where;
  const char *reason = curl_easy_strerror (transfer->result);

  switch (transfer->result)
    {
    case CURLE_OPERATION_TIMEDOUT:
      if (request_went_out (transfer->easy))
        return g_error_new (KEYHOLD_HTTP_ERROR, KEYHOLD_HTTP_ERROR_TIMED_OUT,
                            "No complete answer from %s within %u ms", where,
                            transfer->request->total_timeout_ms);
      return g_error_new (KEYHOLD_HTTP_ERROR, KEYHOLD_HTTP_ERROR_TIMED_OUT,
                          "Could not reach %s in time", where);

    case CURLE_FILESIZE_EXCEEDED:
    case CURLE_WRITE_ERROR:
      if (transfer->headers_too_large)
        return g_error_new (KEYHOLD_HTTP_ERROR, KEYHOLD_HTTP_ERROR_TOO_LARGE,
                            "The response headers from %s exceed %u bytes", where,
                            KEYHOLD_HTTP_MAX_HEADER_BYTES);
      if (transfer->body_too_large || transfer->result == CURLE_FILESIZE_EXCEEDED)
        return g_error_new (KEYHOLD_HTTP_ERROR, KEYHOLD_HTTP_ERROR_TOO_LARGE,
                            "The response from %s exceeds %" G_GSIZE_FORMAT " bytes", where,
                            transfer->request->max_response_bytes);
      break;

    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
      if (request_went_out (transfer->easy))
        return g_error_new (KEYHOLD_HTTP_ERROR, KEYHOLD_HTTP_ERROR_ANSWER_LOST,
                            "The connection to %s broke before a complete answer arrived (%s)",
                            where, reason);
      G_GNUC_FALLTHROUGH;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_INTERFACE_FAILED:
    case CURLE_PROXY:
      return g_error_new (KEYHOLD_HTTP_ERROR, KEYHOLD_HTTP_ERROR_CONNECT,
                          "Could not connect to %s (%s)", where, reason);

    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
      return g_error_new (KEYHOLD_HTTP_ERROR, KEYHOLD_HTTP_ERROR_TLS,
                          "No secure connection to %s (%s)", where, reason);

    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
      return g_error_new (KEYHOLD_HTTP_ERROR, KEYHOLD_HTTP_ERROR_INVALID,
                          "Cannot send this request to %s (%s)", where, reason);

    default:
      break;
    }
  return g_error_new (KEYHOLD_HTTP_ERROR, KEYHOLD_HTTP_ERROR_FAILED,
                      "The request to %s failed (%s)", where, reason);
}

static KeyholdHttpResponse *
transfer_steal_response (Transfer *transfer)
{
  KeyholdHttpResponse *response = g_new0 (KeyholdHttpResponse, 1);
  long status = 0;
  curl_off_t pretransfer_us = 0;

  curl_easy_getinfo (transfer->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo (transfer->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
  response->status = (guint) status;
  response->header_names = g_steal_pointer (&transfer->header_names);
  response->header_values = g_steal_pointer (&transfer->header_values);
  response->body = guarded_buffer_to_secret (&transfer->body);
  /* curl measures the pre-transfer mark from the moment it started the
   * transfer, which is no earlier than started_real_us: the sum is never
   * later than the real send time, so expiry computed from it errs early. */
  response->sent_at_real_us = transfer->started_real_us + pretransfer_us;
  return response;
}

/* Completes a detached transfer and frees it. */
static void
transfer_complete (Transfer *transfer)
{
  if (transfer->result == CURLE_OK)
    g_task_return_pointer (transfer->task, transfer_steal_response (transfer),
                           (GDestroyNotify) keyhold_http_response_free);
  else
    g_task_return_error (transfer->task, transfer_error (transfer));
  transfer_free (transfer);
}

static void
transfer_complete_cancelled (Transfer *transfer, const char *message)
{
  g_task_return_new_error (transfer->task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s", message);
  transfer_free (transfer);
}

/* All finished transfers leave curl before any callback runs: a callback
 * may start new requests or free @http. */
static void
complete_finished_transfers (KeyholdHttp *http)
{
  GQueue finished = G_QUEUE_INIT;
  Transfer *transfer;
  CURLMsg *message;
  int queued;

  while ((message = curl_multi_info_read (http->multi, &queued)) != NULL)
    {
      if (message->msg != CURLMSG_DONE)
        continue;
      curl_easy_getinfo (message->easy_handle, CURLINFO_PRIVATE, &transfer);
      transfer->result = message->data.result;
      /* This invalidates @message. */
      transfer_detach (transfer);
      g_queue_push_tail (&finished, transfer);
    }

  while ((transfer = g_queue_pop_head (&finished)) != NULL)
    transfer_complete (transfer);
}

/* ---- the main loop drives curl ------------------------------------------ */

static void
drive_curl (KeyholdHttp *http, curl_socket_t fd, int events)
{
  int running;

  /* Failures of single transfers come back through curl_multi_info_read ();
   * what this returns only concerns the call itself. */
  curl_multi_socket_action (http->multi, fd, events, &running);
  complete_finished_transfers (http);
}

static gboolean
on_socket_ready (int fd, GIOCondition condition, gpointer user_data)
{
  int events = 0;

  if (condition & (G_IO_IN | G_IO_HUP))
    events |= CURL_CSELECT_IN;
  if (condition & G_IO_OUT)
    events |= CURL_CSELECT_OUT;
  if (condition & (G_IO_ERR | G_IO_NVAL))
    events |= CURL_CSELECT_ERR;
  drive_curl (user_data, fd, events);
  return G_SOURCE_CONTINUE;
}

static int
on_curl_socket (CURL *easy, curl_socket_t fd, int what, void *user_data, void *socket_data)
{
  KeyholdHttp *http = user_data;
  GIOCondition condition = G_IO_ERR | G_IO_HUP;
  GSource *source;

  if (what == CURL_POLL_REMOVE)
    {
      g_hash_table_remove (http->sockets, GINT_TO_POINTER (fd));
      return 0;
    }

  if (what & CURL_POLL_IN)
    condition |= G_IO_IN;
  if (what & CURL_POLL_OUT)
    condition |= G_IO_OUT;
  source = g_unix_fd_source_new (fd, condition);
  g_source_set_callback (source, G_SOURCE_FUNC (on_socket_ready), http, NULL);
  g_source_attach (source, http->context);
  /* Replacing the entry destroys the previous watch of this fd. */
  g_hash_table_insert (http->sockets, GINT_TO_POINTER (fd), source);
  return 0;
}

static gboolean
on_timer (gpointer user_data)
{
  KeyholdHttp *http = user_data;

  g_clear_pointer (&http->timer, drop_source);
  drive_curl (http, CURL_SOCKET_TIMEOUT, 0);
  return G_SOURCE_REMOVE;
}

/* curl must not be called back into from here, so even a zero timeout
 * goes through the main loop. */
static int
on_curl_timer (CURLM *multi, long timeout_ms, void *user_data)
{
  KeyholdHttp *http = user_data;

  g_clear_pointer (&http->timer, drop_source);
  if (timeout_ms < 0)
    return 0;

  http->timer = g_timeout_source_new ((guint) MIN (timeout_ms, (long) G_MAXUINT));
  g_source_set_callback (http->timer, on_timer, http, NULL);
  g_source_attach (http->timer, http->context);
  return 0;
}

/* ---- lifetime ----------------------------------------------------------- */

static gpointer
initialise_libraries (gpointer data)
{
  /* curl_global_cleanup () is never called: libcurl's global state (and
   * OpenSSL's below it) may be shared with other libraries in the process
   * and is meant to live until exit. */
  if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK)
    g_error ("libcurl could not be initialised");
  if (sodium_init () < 0)
    g_error ("libsodium could not be initialised");
  return NULL;
}

/* The directory's own fd is left out: its number is free again once the
 * listing ends. */
static GHashTable *
list_open_fds (void)
{
  GHashTable *fds = g_hash_table_new (g_direct_hash, g_direct_equal);
  DIR *dir = opendir ("/proc/self/fd");
  struct dirent *entry;

  if (dir == NULL)
    return fds;
  while ((entry = readdir (dir)) != NULL)
    if (g_ascii_isdigit (entry->d_name[0]) && atoi (entry->d_name) != dirfd (dir))
      g_hash_table_add (fds, GINT_TO_POINTER (atoi (entry->d_name)));
  closedir (dir);
  return fds;
}

/* curl_multi_init () opens a socketpair for curl_multi_wakeup () without
 * close-on-exec, and no option reaches it. Marking whatever fds it opened
 * closes that gap; marking an fd another thread opened meanwhile would
 * only make it close-on-exec too, which every fd of ours must be. */
static CURLM *
create_multi_cloexec (void)
{
  g_autoptr (GHashTable) before = list_open_fds ();
  CURLM *multi = curl_multi_init ();
  g_autoptr (GHashTable) after = list_open_fds ();
  GHashTableIter iter;
  gpointer fd;

  if (multi == NULL)
    g_error ("out of memory for a curl multi handle");
  g_hash_table_iter_init (&iter, after);
  while (g_hash_table_iter_next (&iter, &fd, NULL))
    if (!g_hash_table_contains (before, fd))
      {
        int flags = fcntl (GPOINTER_TO_INT (fd), F_GETFD);

        if (flags != -1)
          fcntl (GPOINTER_TO_INT (fd), F_SETFD, flags | FD_CLOEXEC);
      }
  return multi;
}

KeyholdHttp *
keyhold_http_new (void)
{
  static GOnce once = G_ONCE_INIT;
  KeyholdHttp *http;

  g_once (&once, initialise_libraries, NULL);

  http = g_new0 (KeyholdHttp, 1);
  http->context = g_main_context_ref_thread_default ();
  http->multi = create_multi_cloexec ();
  http->sockets
      = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, (GDestroyNotify) drop_source);
  g_queue_init (&http->transfers);
  curl_multi_setopt (http->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt (http->multi, CURLMOPT_SOCKETDATA, http);
  curl_multi_setopt (http->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt (http->multi, CURLMOPT_TIMERDATA, http);
  curl_multi_setopt (http->multi, CURLMOPT_MAXCONNECTS, (long) MAX_CACHED_CONNECTIONS);
  return http;
}

void
keyhold_http_free (KeyholdHttp *http)
{
  GQueue in_flight = G_QUEUE_INIT;
  Transfer *transfer;

  if (http == NULL)
    return;

  while ((transfer = g_queue_peek_head (&http->transfers)) != NULL)
    {
      transfer_detach (transfer);
      g_queue_push_tail (&in_flight, transfer);
    }
  /* Closing cached connections calls on_curl_socket (), so the socket
   * table outlives the multi handle. */
  curl_multi_cleanup (http->multi);
  g_hash_table_destroy (http->sockets);
  g_clear_pointer (&http->timer, drop_source);
  g_main_context_unref (http->context);
  g_free (http);

  /* Callbacks run last: @http is gone and cannot be reached through them. */
  while ((transfer = g_queue_pop_head (&in_flight)) != NULL)
    transfer_complete_cancelled (transfer, "The HTTP client was shut down");
}

/* ---- sending ------------------------------------------------------------ */

static gboolean
on_transfer_cancelled (GCancellable *cancellable, gpointer user_data)
{
  Transfer *transfer = user_data;

  transfer_detach (transfer);
  transfer_complete_cancelled (transfer, "The request was cancelled");
  return G_SOURCE_REMOVE;
}

static gboolean
transfer_start (KeyholdHttp *http, Transfer *transfer, GCancellable *cancellable, GError **error)
{
  /* This only schedules work: curl asks for a timer and the transfer
   * starts from the loop. */
  if (curl_multi_add_handle (http->multi, transfer->easy) != CURLM_OK)
    {
      g_set_error (error, KEYHOLD_HTTP_ERROR, KEYHOLD_HTTP_ERROR_FAILED,
                   "libcurl could not start the request to %s", transfer->where);
      return FALSE;
    }

  transfer->http = http;
  transfer->started_real_us = g_get_real_time ();
  g_queue_push_tail (&http->transfers, transfer);
  transfer->link = http->transfers.tail;

  /* A cancellable source, not a signal handler: cancellation may come from
   * another thread, and the transfer must only be touched from the loop. */
  if (cancellable != NULL)
    {
      transfer->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (transfer->cancel_source, G_SOURCE_FUNC (on_transfer_cancelled),
                             transfer, NULL);
      g_source_attach (transfer->cancel_source, http->context);
    }
  return TRUE;
}

void
keyhold_http_send_async (KeyholdHttp *http,
                         KeyholdHttpRequest *request,
                         GCancellable *cancellable,
                         GAsyncReadyCallback callback,
                         gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr (GError) error = NULL;
  Transfer *transfer;

  g_task_set_source_tag (task, keyhold_http_send_async);

  /* GTask defers both returns below to the main loop, since they happen
   * in the iteration that created the task. */
  if (g_task_return_error_if_cancelled (task))
    {
      keyhold_http_request_free (request);
      return;
    }

  transfer = transfer_new (g_object_ref (task), request);
  if (!transfer_prepare (transfer, &error) || !transfer_start (http, transfer, cancellable, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      transfer_free (transfer);
    }
}

KeyholdHttpResponse *
keyhold_http_send_finish (KeyholdHttp *http, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == keyhold_http_send_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- forms -------------------------------------------------------------- */

struct _KeyholdHttpForm
{
  GuardedBuffer encoded;
};

KeyholdHttpForm *
keyhold_http_form_new (void)
{
  return g_new0 (KeyholdHttpForm, 1);
}

/* Percent-encodes everything but RFC 3986 unreserved characters; the
 * escaped copy is ordinary heap memory, so it is wiped once appended. */
static void
form_append_escaped (KeyholdHttpForm *form, const char *bytes, gsize length)
{
  char *escaped = g_uri_escape_bytes ((const guint8 *) bytes, length, NULL);

  guarded_buffer_append_string (&form->encoded, escaped);
  keyhold_secret_wipe_string (escaped);
}

static void
form_append_field (KeyholdHttpForm *form, const char *name, const char *value, gsize value_length)
{
  if (form->encoded.length > 0)
    guarded_buffer_append_string (&form->encoded, "&");
  form_append_escaped (form, name, strlen (name));
  guarded_buffer_append_string (&form->encoded, "=");
  form_append_escaped (form, value, value_length);
}

void
keyhold_http_form_add (KeyholdHttpForm *form, const char *name, const char *value)
{
  form_append_field (form, name, value, strlen (value));
}

void
keyhold_http_form_add_secret (KeyholdHttpForm *form, const char *name, const KeyholdSecret *value)
{
  form_append_field (form, name, keyhold_secret_get (value), keyhold_secret_get_length (value));
}

KeyholdSecret *
keyhold_http_form_end (KeyholdHttpForm *form)
{
  KeyholdSecret *encoded = guarded_buffer_to_secret (&form->encoded);

  keyhold_http_form_free (form);
  return encoded;
}

void
keyhold_http_form_free (KeyholdHttpForm *form)
{
  if (form == NULL)
    return;
  guarded_buffer_clear (&form->encoded);
  g_free (form);
}
