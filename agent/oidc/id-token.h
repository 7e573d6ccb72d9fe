/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

#include "base/secret.h"

G_BEGIN_DECLS

/* OpenID Connect ID token validation (OIDC Core 1.0 §3.1.3.7): the JWS
 * signature against the provider's key set (see jws.h for the algorithms),
 * then the claims. */

#define KEYHOLD_ID_TOKEN_ERROR (keyhold_id_token_error_quark ())

typedef enum
{
  /* Not a compact JWS, or its header or claims are not JSON objects. */
  KEYHOLD_ID_TOKEN_ERROR_MALFORMED = 0,
  /* Signed with an algorithm or key size that is not accepted. */
  KEYHOLD_ID_TOKEN_ERROR_UNSUPPORTED_ALGORITHM = 1,
  /* No usable key in the key set (e.g. an unknown "kid"): the provider may
   * have rotated its keys, so the caller may fetch the set again, once. */
  KEYHOLD_ID_TOKEN_ERROR_NO_KEY = 2,
  KEYHOLD_ID_TOKEN_ERROR_BAD_SIGNATURE = 3,
  /* iss, aud, azp, exp, iat, nbf, nonce or sub is missing, malformed or
   * out of time; the message names the claim. */
  KEYHOLD_ID_TOKEN_ERROR_CLAIM = 4,
  /* A well-formed iss, aud, azp or sub names another issuer, client or
   * subject: the token speaks for someone else. The message names the
   * claim. */
  KEYHOLD_ID_TOKEN_ERROR_OTHER_IDENTITY = 5,
} KeyholdIdTokenError;

GQuark keyhold_id_token_error_quark (void);

typedef struct
{
  /* "iss" must be exactly this. */
  const char *issuer;
  /* "aud" (a string or an array) must contain this; "azp", when present or
   * when "aud" has several values, must be this. */
  const char *client_id;
  /* NULL when the request sent no nonce (device flow, refresh): "nonce" is
   * then not checked. Otherwise "nonce" must be present and equal. */
  const char *nonce;
  /* NULL, or the subject the account already has: a refreshed ID token
   * must keep it. */
  const char *subject;
  /* Unix seconds, from the caller's clock. */
  gint64 now;
  /* Allowed clock skew for "exp", "iat" and "nbf". */
  guint leeway_seconds;
} KeyholdIdTokenExpectations;

/* Verifies @id_token's signature with a key from @jwks (a parsed JSON Web
 * Key Set: an object with a "keys" array) and checks its claims against
 * @expect. Returns the claims (transfer full). Error messages never quote
 * the token or its claims. */
JsonObject *keyhold_id_token_validate (const KeyholdSecret *id_token,
                                       JsonNode *jwks,
                                       const KeyholdIdTokenExpectations *expect,
                                       GError **error);

G_END_DECLS
