/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "net/http.h"
#include "base/secret.h"

G_BEGIN_DECLS

/* Token endpoint grants: refresh (RFC 6749 §6), authorization code with PKCE
 * (RFC 6749 §4.1.3, RFC 7636), device authorization (RFC 8628), and token
 * revocation (RFC 7009). The client is public: it authenticates with its
 * client_id only.
 *
 * Errors: an answer from the provider becomes a KEYHOLD_OAUTH_ERROR; a
 * transport failure comes back unchanged as a KEYHOLD_HTTP_ERROR (callers
 * tell "offline" from "rejected" by the domain, and a refresh that ended in
 * KEYHOLD_HTTP_ERROR_ANSWER_LOST may have been processed by the server). An
 * answer larger than KEYHOLD_OAUTH_MAX_RESPONSE_BYTES is cut off by the HTTP
 * layer and comes back as KEYHOLD_HTTP_ERROR_TOO_LARGE. Cancellation gives
 * G_IO_ERROR_CANCELLED. */

#define KEYHOLD_OAUTH_ERROR (keyhold_oauth_error_quark ())

typedef enum
{
  /* RFC 6749 §5.2 */
  KEYHOLD_OAUTH_ERROR_INVALID_GRANT = 0,
  KEYHOLD_OAUTH_ERROR_INVALID_CLIENT = 1,
  KEYHOLD_OAUTH_ERROR_INVALID_REQUEST = 2,
  KEYHOLD_OAUTH_ERROR_INVALID_SCOPE = 3,
  KEYHOLD_OAUTH_ERROR_UNAUTHORIZED_CLIENT = 4,
  KEYHOLD_OAUTH_ERROR_UNSUPPORTED_GRANT_TYPE = 5,
  /* RFC 8628 §3.5 */
  KEYHOLD_OAUTH_ERROR_ACCESS_DENIED = 6,
  KEYHOLD_OAUTH_ERROR_EXPIRED_TOKEN = 7,
  KEYHOLD_OAUTH_ERROR_AUTHORIZATION_PENDING = 8,
  KEYHOLD_OAUTH_ERROR_SLOW_DOWN = 9,
  /* "temporarily_unavailable" or "server_error", HTTP 408, 425, 429 or any
   * 5xx: a transient failure that changes no sign-in state. */
  KEYHOLD_OAUTH_ERROR_TEMPORARILY_UNAVAILABLE = 10,
  /* The answer breaks the protocol: not JSON, a required member missing, a
   * token_type other than Bearer, an unexpected HTTP status. */
  KEYHOLD_OAUTH_ERROR_MALFORMED_RESPONSE = 11,
  /* Any other error code (the code is in the message). */
  KEYHOLD_OAUTH_ERROR_OTHER = 12,
  /* HTTP 400, 401 or 403 without an RFC 6749 §5.2 error body: a refusal
   * that does not say why. Some servers (Glewlwyd) answer a revoked or
   * reused refresh token this way. */
  KEYHOLD_OAUTH_ERROR_REFUSED_WITHOUT_REASON = 13,
} KeyholdOAuthError;

GQuark keyhold_oauth_error_quark (void);

/* Every request: connect within 10 s, finish within 30 s, except a refresh
 * (below). Token and device
 * authorization answers are well under 16 KiB even with a large ID token;
 * 64 KiB leaves room without letting a provider fill memory. */
#define KEYHOLD_OAUTH_CONNECT_TIMEOUT_MS 10000
#define KEYHOLD_OAUTH_TOTAL_TIMEOUT_MS 30000
/* A refresh request is not abandoned while its connection lives: a provider
 * that stalls, then rotates the refresh token and answers, must be heard,
 * because the old token is spent once it rotates (ARCHITECTURE.md, "Token
 * lifetime"). Callers do not wait this long; TCP keepalive (http.h) notices
 * a dead peer well before. */
#define KEYHOLD_OAUTH_REFRESH_TIMEOUT_MS (5 * 60 * 1000)
#define KEYHOLD_OAUTH_MAX_RESPONSE_BYTES (64 * 1024)
/* An access or refresh token longer than this is refused as malformed. */
#define KEYHOLD_OAUTH_MAX_TOKEN_BYTES (16 * 1024)
/* Used when a token response lacks expires_in: short enough that a token
 * the server meant to be short-lived is not used for long. */
#define KEYHOLD_OAUTH_DEFAULT_EXPIRES_IN_S 300
/* Larger expires_in values are clamped: nothing valid lives longer. */
#define KEYHOLD_OAUTH_MAX_EXPIRES_IN_S (365 * 24 * 3600)

typedef struct
{
  KeyholdSecret *access_token;
  KeyholdSecret *refresh_token; /* NULL if the response has none */
  KeyholdSecret *id_token;      /* NULL if the response has none */
  char *scope;                  /* NULL if absent (RFC 6749 §5.1: as requested) */
  /* Wall clock (g_get_real_time () scale): when the request was sent plus
   * expires_in (RFC 6749 §5.1), or plus
   * KEYHOLD_OAUTH_DEFAULT_EXPIRES_IN_S when expires_in was missing. */
  gint64 expires_at_us;
  /* When the request was sent; with expires_at_us it gives the lifetime
   * that proactive refreshes are planned from. */
  gint64 sent_at_us;
  gboolean expires_in_missing;
} KeyholdTokenResponse;

void keyhold_token_response_free (KeyholdTokenResponse *response);

/* RFC 8628 §3.2 */
typedef struct
{
  KeyholdSecret *device_code;
  char *user_code;
  char *verification_uri;
  char *verification_uri_complete; /* NULL if absent */
  guint expires_in;                /* seconds, 1 .. KEYHOLD_OAUTH_MAX_DEVICE_EXPIRES_IN_S */
  guint interval;                  /* seconds between polls, 1 .. expires_in */
} KeyholdDeviceAuthorization;

#define KEYHOLD_OAUTH_DEFAULT_DEVICE_INTERVAL_S 5
/* A sign-in waiting longer than this for the user has been forgotten. */
#define KEYHOLD_OAUTH_MAX_DEVICE_EXPIRES_IN_S 3600

void keyhold_device_authorization_free (KeyholdDeviceAuthorization *authorization);

/* Pure parsers of one answer (status and body), exposed for tests. */

/* A token endpoint answer: 200 with an RFC 6749 §5.1 body becomes a
 * KeyholdTokenResponse; anything else an error as described by
 * keyhold_oauth_set_error_from_answer (). @sent_at_real_us is when the
 * request was sent. */
KeyholdTokenResponse *keyhold_oauth_parse_token_response (guint status,
                                                          const char *body,
                                                          gsize length,
                                                          gint64 sent_at_real_us,
                                                          GError **error);

/* A device authorization answer (RFC 8628 §3.2). */
KeyholdDeviceAuthorization *keyhold_oauth_parse_device_authorization (guint status,
                                                                      const char *body,
                                                                      gsize length,
                                                                      GError **error);

/* Sets @error for an answer that is not a success: 408, 425, 429 and 5xx
 * give TEMPORARILY_UNAVAILABLE; other 4xx with an RFC 6749 §5.2 JSON body
 * give the matching code, with the error and its sanitised
 * error_description in the message; 400, 401 and 403 without one give
 * REFUSED_WITHOUT_REASON; anything else gives MALFORMED_RESPONSE. */
void keyhold_oauth_set_error_from_answer (guint status,
                                          const char *body,
                                          gsize length,
                                          GError **error);

/* Provider text (error codes, descriptions) made fit for an error message:
 * printable ASCII only, at most 200 characters. */
char *keyhold_oauth_sanitize_provider_text (const char *text);

/* Refresh (RFC 6749 §6). @scope and @resource (RFC 8707) may be NULL. */
void keyhold_oauth_refresh_async (KeyholdHttp *http,
                                  const char *token_endpoint,
                                  const char *client_id,
                                  KeyholdSecret *refresh_token,
                                  const char *scope,
                                  const char *resource,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data);
/* @out_retry_after_s is set on every return, failures included (that is
 * when it matters): the server's Retry-After in seconds, or -1. */
KeyholdTokenResponse *keyhold_oauth_refresh_finish (GAsyncResult *result,
                                                    gint64 *out_retry_after_s,
                                                    GError **error);

/* Authorization code exchange with the PKCE verifier (RFC 7636 §4.5).
 * @redirect_uri must be the one sent in the authorization request. */
void keyhold_oauth_exchange_code_async (KeyholdHttp *http,
                                        const char *token_endpoint,
                                        const char *client_id,
                                        KeyholdSecret *code,
                                        const char *redirect_uri,
                                        KeyholdSecret *code_verifier,
                                        GCancellable *cancellable,
                                        GAsyncReadyCallback callback,
                                        gpointer user_data);
KeyholdTokenResponse *keyhold_oauth_exchange_code_finish (GAsyncResult *result, GError **error);

/* Device authorization request (RFC 8628 §3.1). @scope may be NULL. */
void keyhold_oauth_request_device_authorization_async (KeyholdHttp *http,
                                                       const char *device_authorization_endpoint,
                                                       const char *client_id,
                                                       const char *scope,
                                                       GCancellable *cancellable,
                                                       GAsyncReadyCallback callback,
                                                       gpointer user_data);
KeyholdDeviceAuthorization *keyhold_oauth_request_device_authorization_finish (GAsyncResult *result,
                                                                               GError **error);

/* One device access token request (RFC 8628 §3.4). While the user has not
 * finished, it fails with AUTHORIZATION_PENDING or SLOW_DOWN; it ends with
 * ACCESS_DENIED or EXPIRED_TOKEN. */
void keyhold_oauth_poll_device_token_async (KeyholdHttp *http,
                                            const char *token_endpoint,
                                            const char *client_id,
                                            KeyholdSecret *device_code,
                                            GCancellable *cancellable,
                                            GAsyncReadyCallback callback,
                                            gpointer user_data);
KeyholdTokenResponse *keyhold_oauth_poll_device_token_finish (GAsyncResult *result, GError **error);

/* Revokes a refresh token (RFC 7009 §2.1, token_type_hint=refresh_token).
 * Succeeds on HTTP 200, which the server also sends for a token it no
 * longer knows (§2.2). */
void keyhold_oauth_revoke_async (KeyholdHttp *http,
                                 const char *revocation_endpoint,
                                 const char *client_id,
                                 KeyholdSecret *refresh_token,
                                 GCancellable *cancellable,
                                 GAsyncReadyCallback callback,
                                 gpointer user_data);
gboolean keyhold_oauth_revoke_finish (GAsyncResult *result, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdTokenResponse, keyhold_token_response_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdDeviceAuthorization, keyhold_device_authorization_free)

G_END_DECLS
