/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "net/http.h"
#include "oidc/oauth.h"
#include "oidc/provider.h"

G_BEGIN_DECLS

/* A whole device authorization grant (RFC 8628) as one operation: ask for a
 * device code, show the user where to go (through @progress), then poll the
 * token endpoint at the provider's interval (5 s more for good after each
 * slow_down) until the user approves, denies, or time runs out.
 *
 * Errors:
 * - KEYHOLD_ERROR_SIGN_IN_FAILED: the user or provider denied the sign-in
 *   (access_denied).
 * - KEYHOLD_ERROR_TIMED_OUT: the device code expired (expired_token) or its
 *   expires_in passed without an answer.
 * - KEYHOLD_ERROR_PROVIDER_ERROR: the provider has no device authorization
 *   endpoint.
 * - KEYHOLD_OAUTH_ERROR_* / KEYHOLD_HTTP_ERROR_*: any other refusal, or a
 *   transport failure that persisted over several polls, unchanged.
 * - G_IO_ERROR_CANCELLED. */

/* Called once, when the user has something to do. @authorization is valid
 * for the duration of the call. */
typedef void (*KeyholdDeviceSignInProgress) (const KeyholdDeviceAuthorization *authorization,
                                             gpointer user_data);

/* Polling gives up after this many transport failures or 5xx answers in a
 * row. */
#define KEYHOLD_DEVICE_SIGN_IN_MAX_TRANSIENT_FAILURES 3
/* RFC 8628 §3.5 */
#define KEYHOLD_DEVICE_SIGN_IN_SLOW_DOWN_STEP_S 5

/* @progress_data must stay valid until @callback runs. @scope may be NULL. */
void keyhold_device_sign_in_async (KeyholdHttp *http,
                                   const KeyholdProviderMetadata *metadata,
                                   const char *client_id,
                                   const char *scope,
                                   KeyholdDeviceSignInProgress progress,
                                   gpointer progress_data,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data);
KeyholdTokenResponse *keyhold_device_sign_in_finish (GAsyncResult *result, GError **error);

G_END_DECLS
