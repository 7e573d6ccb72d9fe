/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

#include "base/secret.h"

G_BEGIN_DECLS

/* JSON Web Signatures in compact serialization (RFC 7515 §7.1), verified
 * against a JSON Web Key Set (RFC 7517 §5). Only the algorithms OpenID
 * providers sign ID tokens with are accepted: RS256 (RFC 7518 §3.3, keys of
 * 2048 to 8192 bits) and EdDSA with Ed25519 keys (RFC 8037). "none", the
 * HMAC algorithms and everything else are refused, as are keys carried in
 * the JWS header itself (jwk, jku, x5u, x5c are ignored): only the key set
 * the caller fetched from the provider is trusted. */

#define KEYHOLD_JWS_ERROR (keyhold_jws_error_quark ())

typedef enum
{
  /* Not three base64url segments, too long, or a header that is not a JSON
   * object with a string "alg"; also a "crit" header (no extension is
   * understood) or a "typ" other than JWT. */
  KEYHOLD_JWS_ERROR_MALFORMED = 0,
  /* The algorithm is not RS256 or EdDSA, or the RSA key is too short or too
   * long. */
  KEYHOLD_JWS_ERROR_UNSUPPORTED_ALGORITHM = 1,
  /* No usable key in the set: the "kid" is unknown, there is no "kid" and
   * not exactly one candidate, or the chosen key's material is invalid.
   * The provider may have rotated its keys: fetching the set again once is
   * worthwhile. */
  KEYHOLD_JWS_ERROR_NO_KEY = 2,
  /* The signature does not verify with the chosen key. */
  KEYHOLD_JWS_ERROR_BAD_SIGNATURE = 3,
} KeyholdJwsError;

GQuark keyhold_jws_error_quark (void);

/* ID tokens are a few hundred bytes to a few KiB; anything larger is not
 * one, and refusing it early bounds every allocation below. */
#define KEYHOLD_JWS_MAX_LENGTH (16 * 1024)

/* Verifies @jws against the keys in @jwks (a parsed key set: an object with
 * a "keys" array) and returns its payload, still unparsed, in guarded
 * memory. Nothing in the payload has been looked at. */
KeyholdSecret *keyhold_jws_verify (const KeyholdSecret *jws, JsonNode *jwks, GError **error);

G_END_DECLS
