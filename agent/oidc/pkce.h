/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "base/secret.h"

G_BEGIN_DECLS

/* Proof Key for Code Exchange (RFC 7636) with the S256 method only, plus the
 * other one-time values of an authorization request. Every value carries 256
 * bits from libsodium's RNG, encoded as unpadded base64url (43 characters). */

/* A fresh code_verifier. It proves possession of the authorization code, so
 * it is a secret. */
KeyholdSecret *keyhold_pkce_new_verifier (void);

/* code_challenge = BASE64URL(SHA256(ASCII(code_verifier))) (RFC 7636 §4.2). */
char *keyhold_pkce_challenge_s256 (const KeyholdSecret *verifier);

/* The `state` parameter binding a redirect to the request that caused it
 * (RFC 6749 §10.12). It travels in the browser's address bar, so it is a
 * nonce rather than a secret. */
char *keyhold_pkce_new_state (void);

/* The OpenID Connect `nonce` binding an ID token to this request. */
char *keyhold_pkce_new_nonce (void);

G_END_DECLS
