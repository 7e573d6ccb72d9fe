/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <sodium.h>

#include "oidc/pkce.h"

/* 32 bytes is the RFC 7636 §4.1 recommendation for the verifier; state and
 * nonce use the same amount, far above guessing range. */
#define RANDOM_VALUE_BYTES 32

static void
encode_base64url (char *out, gsize out_size, const unsigned char *bytes, gsize length)
{
  sodium_bin2base64 (out, out_size, bytes, length, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static char *
new_random_value (void)
{
  unsigned char bytes[RANDOM_VALUE_BYTES];
  char encoded[sodium_base64_ENCODED_LEN (RANDOM_VALUE_BYTES,
                                          sodium_base64_VARIANT_URLSAFE_NO_PADDING)];

  if (sodium_init () < 0)
    g_error ("libsodium could not be initialised");
  randombytes_buf (bytes, sizeof bytes);
  encode_base64url (encoded, sizeof encoded, bytes, sizeof bytes);
  return g_strdup (encoded);
}

KeyholdSecret *
keyhold_pkce_new_verifier (void)
{
  g_autoptr (KeyholdSecret) bytes = keyhold_secret_new_random (RANDOM_VALUE_BYTES);
  char encoded[sodium_base64_ENCODED_LEN (RANDOM_VALUE_BYTES,
                                          sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  KeyholdSecret *verifier;

  encode_base64url (encoded, sizeof encoded, (const unsigned char *) keyhold_secret_get (bytes),
                    keyhold_secret_get_length (bytes));
  verifier = keyhold_secret_new_from_string (encoded);
  /* The stack copy would otherwise outlive this call. */
  sodium_memzero (encoded, sizeof encoded);
  return verifier;
}

char *
keyhold_pkce_challenge_s256 (const KeyholdSecret *verifier)
{
  unsigned char digest[crypto_hash_sha256_BYTES];
  char encoded[sodium_base64_ENCODED_LEN (crypto_hash_sha256_BYTES,
                                          sodium_base64_VARIANT_URLSAFE_NO_PADDING)];

  crypto_hash_sha256 (digest, (const unsigned char *) keyhold_secret_get (verifier),
                      keyhold_secret_get_length (verifier));
  encode_base64url (encoded, sizeof encoded, digest, sizeof digest);
  return g_strdup (encoded);
}

char *
keyhold_pkce_new_state (void)
{
  return new_random_value ();
}

char *
keyhold_pkce_new_nonce (void)
{
  return new_random_value ();
}
