/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "net/http.h"
#include "oidc/oauth.h"
#include "oidc/provider.h"

G_BEGIN_DECLS

/* Browser sign-in for a native app (RFC 8252): an authorization code grant
 * with PKCE S256 (RFC 7636), redirected to a one-shot listener on
 * http://127.0.0.1:<ephemeral port>/callback.
 *
 * Any local user can connect to the listener, so only a request that
 * carries this sign-in's `state` (RFC 6749 §10.12), which only the
 * provider's redirect knows, can end the wait. Requests for other paths get
 * 404, and requests for /callback without the right `state` (or that cannot
 * be read) get 400 with an error page; both are ignored and the listener
 * keeps waiting. How long it waits is bounded by the deadline
 * (KEYHOLD_BROWSER_SIGN_IN_TIMEOUT_S) and how many connections it reads at
 * once by a fixed cap, however many bad requests arrive; bad requests are
 * not counted towards ending the sign-in, since such a count would hand the
 * other user back the power to end it.
 *
 * The request with the right `state` ends the wait and closes the listener.
 * Its `iss` must be the issuer when present, and must be present when the
 * provider advertises authorization_response_iss_parameter_supported
 * (RFC 9207). The code is then exchanged with the PKCE verifier.
 *
 * Errors:
 * - KEYHOLD_ERROR_SIGN_IN_FAILED: the redirect carried an error (its
 *   sanitised code is in the message), a wrong or missing iss, or no
 *   code.
 * - KEYHOLD_ERROR_TIMED_OUT: no redirect within
 *   KEYHOLD_BROWSER_SIGN_IN_TIMEOUT_S.
 * - KEYHOLD_ERROR_PROVIDER_ERROR: the provider has no authorization
 *   endpoint, or says it does not support PKCE S256.
 * - KEYHOLD_OAUTH_ERROR_* / KEYHOLD_HTTP_ERROR_*: the code exchange failed.
 * - G_IO_ERROR_*: the listener could not be opened; G_IO_ERROR_CANCELLED. */

#define KEYHOLD_BROWSER_SIGN_IN_TIMEOUT_S 600
#define KEYHOLD_BROWSER_SIGN_IN_CALLBACK_PATH "/callback"

/* Called once, before keyhold_browser_sign_in_async () returns, with the URL
 * to open in the user's browser. */
typedef void (*KeyholdBrowserSignInProgress) (const char *authorization_url, gpointer user_data);

/* @progress_data must stay valid until @progress has been called. @scope may
 * be NULL. */
void keyhold_browser_sign_in_async (KeyholdHttp *http,
                                    const KeyholdProviderMetadata *metadata,
                                    const char *client_id,
                                    const char *scope,
                                    KeyholdBrowserSignInProgress progress,
                                    gpointer progress_data,
                                    GCancellable *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer user_data);
/* @out_nonce receives the nonce sent in the authorization request; the ID
 * token's "nonce" claim must equal it (OIDC Core §3.1.3.7). */
KeyholdTokenResponse *keyhold_browser_sign_in_finish (GAsyncResult *result,
                                                      char **out_nonce,
                                                      GError **error);

G_END_DECLS
