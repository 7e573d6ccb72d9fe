/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

#include "oidc/provider-cache.h"
#include "base/secret.h"

G_BEGIN_DECLS

/* Allowed difference between our clock and the provider's for "exp",
 * "iat" and "nbf" (ARCHITECTURE.md, "Token lifetime"). */
#define KEYHOLD_IDENTITY_CLOCK_SKEW_S 300

/* Validates an ID token from a sign-in or a refresh against the provider's
 * key set (fetched again once if the token names an unknown key, as after a
 * key rotation) and the OIDC Core §3.1.3.7 claim rules, allowing
 * KEYHOLD_IDENTITY_CLOCK_SKEW_S of difference between the provider's clock
 * and ours. @nonce is the one
 * sent with a browser sign-in, else NULL; @subject is the account's current
 * subject for a refresh (its "sub" must not change), else NULL.
 * @metadata must stay alive until the callback runs. */
void keyhold_identity_validate_async (KeyholdProviderCache *providers,
                                      const KeyholdProviderMetadata *metadata,
                                      KeyholdSecret *id_token,
                                      const char *client_id,
                                      const char *nonce,
                                      const char *subject,
                                      GCancellable *cancellable,
                                      GAsyncReadyCallback callback,
                                      gpointer user_data);

/* Why an ID token was not accepted, for a refresh to decide what it means
 * (ARCHITECTURE.md, "Token lifetime"). */
typedef enum
{
  KEYHOLD_IDENTITY_UNVERIFIED,     /* the key set could not be fetched */
  KEYHOLD_IDENTITY_INVALID,        /* malformed, badly signed, out of time */
  KEYHOLD_IDENTITY_OTHER_IDENTITY, /* names another issuer, client or subject */
} KeyholdIdentityFailure;

/* Errors are KEYHOLD_ERROR_PROVIDER_ERROR; @out_failure (nullable) says
 * which kind it was. */
JsonObject *keyhold_identity_validate_finish (GAsyncResult *result,
                                              KeyholdIdentityFailure *out_failure,
                                              GError **error);

/* The name to show for a subject: "name", else "email", else
 * "preferred_username", else "sub". */
const char *keyhold_identity_display_name (JsonObject *claims);

G_END_DECLS
