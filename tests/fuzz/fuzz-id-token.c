/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for keyhold_id_token_validate (). Not built by meson
 * yet; build it by hand with clang -fsanitize=fuzzer,address,undefined
 * against agent/oidc/id-token.c, jws.c, base/untrusted-json.c and
 * base/secret.c.
 *
 * The first input byte picks what the rest is: an even byte makes it the
 * token text itself (splitting, base64url, header, key choice, signature);
 * an odd byte makes it the claims JSON of a token signed with the key in
 * the key set, so that the claims parser and checks see fuzzed input too. */
#include "config.h"

#include <sodium.h>
#include <string.h>

#include "oidc/id-token.h"

static JsonNode *jwks;
static guint8 signing_key[crypto_sign_SECRETKEYBYTES];

static char *
base64url (const void *data, gsize length)
{
  gsize size = sodium_base64_ENCODED_LEN (length, sodium_base64_VARIANT_URLSAFE_NO_PADDING);

  return sodium_bin2base64 (g_malloc (size), size, data, length,
                            sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* An Ed25519 key from a fixed seed, and a 2048-bit RSA "modulus" that is
 * no real key: RS256 tokens get as far as the signature check. */
static void
set_up_key_set (void)
{
  guint8 seed[crypto_sign_SEEDBYTES] = { 0 };
  guint8 public_key[crypto_sign_PUBLICKEYBYTES];
  guint8 modulus[256];
  g_autofree char *x = NULL;
  g_autofree char *n = NULL;
  g_autofree char *text = NULL;

  if (sodium_init () < 0)
    g_error ("libsodium could not be initialised");
  crypto_sign_seed_keypair (public_key, signing_key, seed);
  memset (modulus, 0xc5, sizeof modulus);
  x = base64url (public_key, sizeof public_key);
  n = base64url (modulus, sizeof modulus);
  text = g_strdup_printf ("{\"keys\":["
                          "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed-1\",\"x\":\"%s\"},"
                          "{\"kty\":\"RSA\",\"kid\":\"rsa-1\",\"n\":\"%s\",\"e\":\"AQAB\"}]}",
                          x, n);
  jwks = json_from_string (text, NULL);
}

static KeyholdSecret *
token_signed_around (const guint8 *claims, gsize length)
{
  static const char header[] = "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\"}";
  g_autofree char *header_b64 = base64url (header, strlen (header));
  g_autofree char *claims_b64 = base64url (claims, length);
  g_autofree char *input = g_strconcat (header_b64, ".", claims_b64, NULL);
  guint8 signature[crypto_sign_BYTES];
  g_autofree char *signature_b64 = NULL;
  g_autofree char *token = NULL;

  crypto_sign_detached (signature, NULL, (const guint8 *) input, strlen (input), signing_key);
  signature_b64 = base64url (signature, sizeof signature);
  token = g_strconcat (input, ".", signature_b64, NULL);
  return keyhold_secret_new (token, strlen (token));
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const KeyholdIdTokenExpectations expect = {
    .issuer = "https://issuer.example",
    .client_id = "keyhold-desktop",
    .nonce = "n-0S6_WzA2Mj",
    .now = 1700000000,
    .leeway_seconds = 120,
  };
  g_autoptr (KeyholdSecret) token = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) claims = NULL;

  if (jwks == NULL)
    set_up_key_set ();
  if (size == 0 || size > 64 * 1024)
    return 0;

  if (data[0] & 1)
    token = token_signed_around (data + 1, size - 1);
  else
    token = keyhold_secret_new (data + 1, size - 1);
  claims = keyhold_id_token_validate (token, jwks, &expect, &error);
  g_assert ((claims == NULL) == (error != NULL));
  return 0;
}
