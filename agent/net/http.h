/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "base/secret.h"

G_BEGIN_DECLS

/* HTTP over one libcurl multi handle driven by the GLib main loop (socket
 * and timer callbacks; never a blocking call). Every transfer has a connect
 * timeout, a total timeout, a response size limit and TCP keepalive;
 * redirects are never followed; only http and https are allowed; TLS peers
 * are always verified. */

#define KEYHOLD_HTTP_ERROR (keyhold_http_error_quark ())

typedef enum
{
  /* Nothing was sent: DNS, connection refused, unreachable. */
  KEYHOLD_HTTP_ERROR_CONNECT,
  /* The request went out but the connection broke before a complete answer
   * arrived (RFC 9110 calls this an incomplete response). A refresh in this
   * state may have been processed by the server. */
  KEYHOLD_HTTP_ERROR_ANSWER_LOST,
  /* Connect or total time limit reached. */
  KEYHOLD_HTTP_ERROR_TIMED_OUT,
  /* The body was larger than the transfer's limit. */
  KEYHOLD_HTTP_ERROR_TOO_LARGE,
  /* TLS handshake or certificate verification failed. */
  KEYHOLD_HTTP_ERROR_TLS,
  /* The URL or the request could not be used at all. */
  KEYHOLD_HTTP_ERROR_INVALID,
  /* Any other transport failure. */
  KEYHOLD_HTTP_ERROR_FAILED,
} KeyholdHttpError;

GQuark keyhold_http_error_quark (void);

/* Defaults applied to every request unless it sets its own limits. */
#define KEYHOLD_HTTP_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define KEYHOLD_HTTP_DEFAULT_TOTAL_TIMEOUT_MS 30000
#define KEYHOLD_HTTP_DEFAULT_MAX_RESPONSE_BYTES (1024 * 1024)
#define KEYHOLD_HTTP_MAX_HEADER_BYTES (64 * 1024)
/* TCP keepalive on every connection: a peer that vanished (a dropped route,
 * a suspended laptop's NAT entry gone) is noticed after the idle time plus
 * the kernel's probe count (9 by default) times the interval, about a
 * minute, instead of at a long total timeout. A peer that is alive but slow
 * answers the probes and is waited for. */
#define KEYHOLD_HTTP_KEEPALIVE_IDLE_S 10
#define KEYHOLD_HTTP_KEEPALIVE_INTERVAL_S 5

typedef struct _KeyholdHttp KeyholdHttp;
typedef struct _KeyholdHttpRequest KeyholdHttpRequest;

typedef struct
{
  guint status;
  /* Response headers of the final response as (name, value) pairs, names
   * lower-cased, in arrival order. */
  GPtrArray *header_names;
  GPtrArray *header_values;
  /* The body, NUL-terminated, in guarded memory: token responses carry
   * secrets. */
  KeyholdSecret *body;
  /* Wall-clock time (g_get_real_time (), microseconds) at which the request
   * was handed to the network; RFC 6749 §5.1 expiry counts from here. */
  gint64 sent_at_real_us;
} KeyholdHttpResponse;

/* The multi handle attaches to the thread-default main context at creation. */
KeyholdHttp *keyhold_http_new (void);
/* Transfers still in flight complete with G_IO_ERROR_CANCELLED; their
 * callbacks may call keyhold_http_send_finish () on the freed @http but
 * nothing else. */
void keyhold_http_free (KeyholdHttp *http);

KeyholdHttpRequest *keyhold_http_request_new (const char *method, const char *url);
void keyhold_http_request_free (KeyholdHttpRequest *request);
/* Whether keyhold_http_request_add_header () takes this header. Refuses
 * names that are not RFC 9110 tokens, values holding CR, LF, NUL or other
 * control characters (HTAB is fine), the Authorization header (use
 * set_bearer), and the headers that frame the message or belong to the
 * connection (Host, Content-Length, Transfer-Encoding, Connection,
 * Keep-Alive, Upgrade, TE, Trailer, Expect, Proxy-Authorization). Pure:
 * callers that take headers now and send them later check them with it. */
gboolean keyhold_http_header_is_allowed (const char *name, const char *value);
/* Adds one "Name: value" header, or returns FALSE if
 * keyhold_http_header_is_allowed () refuses it. */
gboolean keyhold_http_request_add_header (KeyholdHttpRequest *request,
                                          const char *name,
                                          const char *value);
/* Attaches "Authorization: Bearer <token>" at send time. Takes a reference. */
void keyhold_http_request_set_bearer (KeyholdHttpRequest *request, KeyholdSecret *token);
/* An application/x-www-form-urlencoded body kept in guarded memory. Takes a
 * reference. A later set_form or set_body replaces the body; @content_type
 * of set_body may be NULL to send none. */
void keyhold_http_request_set_form (KeyholdHttpRequest *request, KeyholdSecret *form);
void keyhold_http_request_set_body (KeyholdHttpRequest *request,
                                    GBytes *body,
                                    const char *content_type);
/* 0 keeps the default for that limit. */
void keyhold_http_request_set_limits (KeyholdHttpRequest *request,
                                      guint connect_timeout_ms,
                                      guint total_timeout_ms,
                                      gsize max_response_bytes);

/* The request must reach the server at most once per send. libcurl sends a
 * request again by itself when a kept-alive connection it reused turns out
 * closed; for a refresh that would resend a token the server may already
 * have rotated. Such a request gets a connection of its own, not kept. */
void keyhold_http_request_set_send_once (KeyholdHttpRequest *request);

/* Takes ownership of @request. Cancelling @cancellable aborts the transfer
 * and completes with G_IO_ERROR_CANCELLED. @callback always runs from the
 * main context, never from inside this call. A request that cannot be sent
 * at all (bad URL, method, header or bearer token) fails with
 * KEYHOLD_HTTP_ERROR_INVALID. */
void keyhold_http_send_async (KeyholdHttp *http,
                              KeyholdHttpRequest *request,
                              GCancellable *cancellable,
                              GAsyncReadyCallback callback,
                              gpointer user_data);
KeyholdHttpResponse *keyhold_http_send_finish (KeyholdHttp *http,
                                               GAsyncResult *result,
                                               GError **error);

void keyhold_http_response_free (KeyholdHttpResponse *response);
/* The first value of header @name (case-insensitive), or NULL. */
const char *keyhold_http_response_get_header (const KeyholdHttpResponse *response,
                                              const char *name);
/* Retry-After (RFC 9110 §10.2.3, delay-seconds or HTTP-date) as seconds from
 * now, clamped to [0, 24 h]; -1 when absent or unparsable. */
gint64 keyhold_http_response_get_retry_after (const KeyholdHttpResponse *response);

/* Builds application/x-www-form-urlencoded bodies in guarded memory, so
 * refresh tokens and PKCE verifiers never land in ordinary heap strings. */
typedef struct _KeyholdHttpForm KeyholdHttpForm;

KeyholdHttpForm *keyhold_http_form_new (void);
void keyhold_http_form_add (KeyholdHttpForm *form, const char *name, const char *value);
void keyhold_http_form_add_secret (KeyholdHttpForm *form,
                                   const char *name,
                                   const KeyholdSecret *value);
/* Frees @form and returns the encoded body. */
KeyholdSecret *keyhold_http_form_end (KeyholdHttpForm *form);
void keyhold_http_form_free (KeyholdHttpForm *form);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdHttpRequest, keyhold_http_request_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdHttpResponse, keyhold_http_response_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdHttpForm, keyhold_http_form_free)

G_END_DECLS
