/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <gcrypt.h>
#include <sodium.h>
#include <string.h>

#include "oidc/id-token.h"

#define ISSUER "https://issuer.example"
#define CLIENT_ID "keyhold-desktop"
#define NONCE "n-0S6_WzA2Mj"
#define SUBJECT "248289761001"
#define NOW ((gint64) 1700000000)
#define LEEWAY 120

#define RS256_HEADER "{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"typ\":\"JWT\"}"
#define EDDSA_HEADER "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\"}"
#define WEAK_RS256_HEADER "{\"alg\":\"RS256\",\"kid\":\"rsa-weak\"}"

/* Keys are made once, in the parent process, before check forks the tests:
 * a 2048-bit RSA key takes a while to generate, under valgrind even more. */
typedef struct
{
  gcry_sexp_t private_key;
  gsize modulus_bytes;
  char *n;
  char *e;
} RsaKey;

static RsaKey rsa_key;
static RsaKey weak_rsa_key;
static guint8 ed_public_key[crypto_sign_PUBLICKEYBYTES];
static guint8 ed_secret_key[crypto_sign_SECRETKEYBYTES];

typedef enum
{
  SIGN_RS256,
  SIGN_WEAK_RS256,
  SIGN_EDDSA,
  SIGN_NOTHING,
} Signer;

static char *
base64url (const void *data, gsize length)
{
  gsize size = sodium_base64_ENCODED_LEN (length, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  char *text = g_malloc (size);

  return sodium_bin2base64 (text, size, data, length, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static char *
base64url_string (const char *text)
{
  return base64url (text, strlen (text));
}

static char *
rsa_key_member (gcry_sexp_t key, const char *name)
{
  gcry_sexp_t list = gcry_sexp_find_token (key, name, 0);
  gcry_mpi_t value = gcry_sexp_nth_mpi (list, 1, GCRYMPI_FMT_USG);
  unsigned char *bytes = NULL;
  size_t length = 0;
  char *encoded;

  g_assert_cmpint (gcry_mpi_aprint (GCRYMPI_FMT_USG, &bytes, &length, value), ==, 0);
  encoded = base64url (bytes, length);
  gcry_free (bytes);
  gcry_mpi_release (value);
  gcry_sexp_release (list);
  return encoded;
}

/* Runs in main (), outside any test, hence g_assert. */
static void
rsa_key_generate (RsaKey *key, unsigned int bits)
{
  gcry_sexp_t parameters = NULL;
  gcry_sexp_t pair = NULL;
  gcry_sexp_t public_key;

  g_assert_cmpint (gcry_sexp_build (&parameters, NULL, "(genkey (rsa (nbits %u)))", bits), ==, 0);
  g_assert_cmpint (gcry_pk_genkey (&pair, parameters), ==, 0);
  public_key = gcry_sexp_find_token (pair, "public-key", 0);
  key->private_key = gcry_sexp_find_token (pair, "private-key", 0);
  key->modulus_bytes = bits / 8;
  key->n = rsa_key_member (public_key, "n");
  key->e = rsa_key_member (public_key, "e");
  gcry_sexp_release (public_key);
  gcry_sexp_release (pair);
  gcry_sexp_release (parameters);
}

static void
rsa_key_clear (RsaKey *key)
{
  gcry_sexp_release (key->private_key);
  g_free (key->n);
  g_free (key->e);
}

/* PKCS #1 v1.5 over SHA-256, left-padded to the modulus length as RFC 7518
 * §3.3 requires. */
static char *
rsa_sign (const RsaKey *key, const char *input)
{
  guint8 digest[32];
  g_autofree guint8 *padded = g_malloc0 (key->modulus_bytes);
  gcry_sexp_t data = NULL;
  gcry_sexp_t signature = NULL;
  gcry_sexp_t s_list;
  gcry_mpi_t s;
  size_t written = 0;

  gcry_md_hash_buffer (GCRY_MD_SHA256, digest, input, strlen (input));
  ck_assert_int_eq (gcry_sexp_build (&data, NULL, "(data (flags pkcs1) (hash sha256 %b))",
                                     (int) sizeof digest, digest),
                    0);
  ck_assert_int_eq (gcry_pk_sign (&signature, data, key->private_key), 0);
  s_list = gcry_sexp_find_token (signature, "s", 0);
  s = gcry_sexp_nth_mpi (s_list, 1, GCRYMPI_FMT_USG);
  ck_assert_int_eq (gcry_mpi_print (GCRYMPI_FMT_USG, padded, key->modulus_bytes, &written, s), 0);
  memmove (padded + key->modulus_bytes - written, padded, written);
  memset (padded, 0, key->modulus_bytes - written);
  gcry_mpi_release (s);
  gcry_sexp_release (s_list);
  gcry_sexp_release (signature);
  gcry_sexp_release (data);
  return base64url (padded, key->modulus_bytes);
}

static char *
ed25519_sign (const char *input)
{
  guint8 signature[crypto_sign_BYTES];

  crypto_sign_detached (signature, NULL, (const guint8 *) input, strlen (input), ed_secret_key);
  return base64url (signature, sizeof signature);
}

static char *
sign (Signer signer, const char *input)
{
  switch (signer)
    {
    case SIGN_RS256:
      return rsa_sign (&rsa_key, input);
    case SIGN_WEAK_RS256:
      return rsa_sign (&weak_rsa_key, input);
    case SIGN_EDDSA:
      return ed25519_sign (input);
    case SIGN_NOTHING:
    default:
      return g_strdup ("");
    }
}

static char *
make_token (const char *header_json, const char *claims_json, Signer signer)
{
  g_autofree char *header = base64url_string (header_json);
  g_autofree char *claims = base64url_string (claims_json);
  g_autofree char *signing_input = g_strconcat (header, ".", claims, NULL);
  g_autofree char *signature = sign (signer, signing_input);

  return g_strconcat (signing_input, ".", signature, NULL);
}

static const char *
header_for (Signer signer)
{
  switch (signer)
    {
    case SIGN_EDDSA:
      return EDDSA_HEADER;
    case SIGN_WEAK_RS256:
      return WEAK_RS256_HEADER;
    case SIGN_RS256:
    case SIGN_NOTHING:
    default:
      return RS256_HEADER;
    }
}

static JsonObject *
valid_claims (void)
{
  JsonObject *claims = json_object_new ();

  json_object_set_string_member (claims, "iss", ISSUER);
  json_object_set_string_member (claims, "aud", CLIENT_ID);
  json_object_set_int_member (claims, "exp", NOW + 600);
  json_object_set_int_member (claims, "iat", NOW - 5);
  json_object_set_string_member (claims, "nonce", NONCE);
  json_object_set_string_member (claims, "sub", SUBJECT);
  json_object_set_string_member (claims, "name", "Ada Lovelace");
  return claims;
}

static char *
object_to_json (JsonObject *object)
{
  g_autoptr (JsonNode) node = json_node_init_object (json_node_alloc (), object);

  return json_to_string (node, FALSE);
}

static char *
token_with_claims (JsonObject *claims, Signer signer)
{
  g_autofree char *claims_json = object_to_json (claims);

  return make_token (header_for (signer), claims_json, signer);
}

static char *
valid_token (Signer signer)
{
  g_autoptr (JsonObject) claims = valid_claims ();

  return token_with_claims (claims, signer);
}

/* The set a provider publishes, plus entries a careful client must step
 * over: junk, a key for encryption, a key of an unknown type. */
static JsonNode *
test_jwks (void)
{
  g_autofree char *x = base64url (ed_public_key, sizeof ed_public_key);
  g_autofree char *text = g_strdup_printf (
      "{\"keys\":["
      "\"junk\",{\"kty\":7},"
      "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec-1\",\"x\":\"AA\",\"y\":\"AA\"},"
      "{\"kty\":\"RSA\",\"kid\":\"enc-1\",\"use\":\"enc\",\"n\":\"%s\",\"e\":\"%s\"},"
      "{\"kty\":\"RSA\",\"kid\":\"rsa-1\",\"use\":\"sig\",\"alg\":\"RS256\","
      "\"n\":\"%s\",\"e\":\"%s\"},"
      "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed-1\",\"use\":\"sig\",\"alg\":\"EdDSA\","
      "\"x\":\"%s\"},"
      "{\"kty\":\"RSA\",\"kid\":\"rsa-weak\",\"n\":\"%s\",\"e\":\"%s\"},"
      "{\"kty\":\"RSA\",\"kid\":\"rsa-ps\",\"alg\":\"PS256\",\"n\":\"%s\",\"e\":\"%s\"},"
      "{\"kty\":\"RSA\",\"kid\":\"rsa-bad\",\"n\":\"not base64!\",\"e\":\"AQAB\"}"
      "]}",
      rsa_key.n, rsa_key.e, rsa_key.n, rsa_key.e, x, weak_rsa_key.n, weak_rsa_key.e, rsa_key.n,
      rsa_key.e);

  return json_from_string (text, NULL);
}

static KeyholdIdTokenExpectations
expectations (void)
{
  return (KeyholdIdTokenExpectations) {
    .issuer = ISSUER,
    .client_id = CLIENT_ID,
    .nonce = NONCE,
    .subject = NULL,
    .now = NOW,
    .leeway_seconds = LEEWAY,
  };
}

static JsonObject *
validate_bytes_with (const char *token,
                     gsize length,
                     JsonNode *jwks,
                     const KeyholdIdTokenExpectations *expect,
                     GError **error)
{
  g_autoptr (KeyholdSecret) secret = keyhold_secret_new (token, length);

  return keyhold_id_token_validate (secret, jwks, expect, error);
}

static JsonObject *
validate (const char *token, const KeyholdIdTokenExpectations *expect, GError **error)
{
  g_autoptr (JsonNode) jwks = test_jwks ();

  return validate_bytes_with (token, strlen (token), jwks, expect, error);
}

static void
assert_accepted (const char *token, const KeyholdIdTokenExpectations *expect)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) claims = validate (token, expect, &error);

  ck_assert_msg (claims != NULL, "rejected: %s", error->message);
  ck_assert_str_eq (json_object_get_string_member (claims, "iss"), ISSUER);
}

/* The message must name @claim (when given) and must not repeat the token:
 * callers log it. */
static void
assert_rejected (const char *token,
                 const KeyholdIdTokenExpectations *expect,
                 KeyholdIdTokenError code,
                 const char *claim)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) claims = validate (token, expect, &error);
  const char *dot = strchr (token, '.');
  g_autofree char *header_segment = g_strndup (token, dot != NULL ? (gsize) (dot - token) : 12);

  ck_assert_ptr_null (claims);
  ck_assert_msg (g_error_matches (error, KEYHOLD_ID_TOKEN_ERROR, (gint) code),
                 "expected code %d, got %s %d: %s", code, g_quark_to_string (error->domain),
                 error->code, error->message);
  if (claim != NULL)
    {
      g_autofree char *quoted = g_strdup_printf ("\"%s\"", claim);
      ck_assert_msg (strstr (error->message, quoted) != NULL, "%s not named in: %s", claim,
                     error->message);
    }
  if (strlen (header_segment) >= 8)
    ck_assert_ptr_null (strstr (error->message, header_segment));
  ck_assert_ptr_null (strstr (error->message, SUBJECT));
}

static void
assert_claims_rejected (JsonObject *claims, const char *claim)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autofree char *token = token_with_claims (claims, SIGN_EDDSA);

  assert_rejected (token, &expect, KEYHOLD_ID_TOKEN_ERROR_CLAIM, claim);
}

/* Well-formed, but for another issuer, client or subject. */
static void
assert_other_identity (JsonObject *claims, const char *claim)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autofree char *token = token_with_claims (claims, SIGN_EDDSA);

  assert_rejected (token, &expect, KEYHOLD_ID_TOKEN_ERROR_OTHER_IDENTITY, claim);
}

static void
assert_claims_accepted (JsonObject *claims)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autofree char *token = token_with_claims (claims, SIGN_EDDSA);

  assert_accepted (token, &expect);
}

START_TEST (test_valid_rs256)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autofree char *token = valid_token (SIGN_RS256);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) claims = validate (token, &expect, &error);

  ck_assert_msg (claims != NULL, "rejected: %s", error ? error->message : "");
  ck_assert_str_eq (json_object_get_string_member (claims, "sub"), SUBJECT);
  ck_assert_str_eq (json_object_get_string_member (claims, "name"), "Ada Lovelace");
}
END_TEST

START_TEST (test_valid_eddsa)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autofree char *token = valid_token (SIGN_EDDSA);

  assert_accepted (token, &expect);
}
END_TEST

START_TEST (test_refresh_expectations)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autoptr (JsonObject) claims = valid_claims ();
  g_autofree char *token = NULL;

  json_object_remove_member (claims, "nonce");
  token = token_with_claims (claims, SIGN_RS256);
  expect.nonce = NULL;
  expect.subject = SUBJECT;
  assert_accepted (token, &expect);

  expect.subject = "someone-else";
  assert_rejected (token, &expect, KEYHOLD_ID_TOKEN_ERROR_OTHER_IDENTITY, "sub");
}
END_TEST

START_TEST (test_key_chosen_without_kid)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autoptr (JsonObject) claims = valid_claims ();
  g_autofree char *claims_json = object_to_json (claims);
  g_autofree char *eddsa = make_token ("{\"alg\":\"EdDSA\"}", claims_json, SIGN_EDDSA);
  g_autofree char *rs256 = make_token ("{\"alg\":\"RS256\"}", claims_json, SIGN_RS256);

  /* One Ed25519 key in the set: it is the key. Several RSA keys: none is. */
  assert_accepted (eddsa, &expect);
  assert_rejected (rs256, &expect, KEYHOLD_ID_TOKEN_ERROR_NO_KEY, "kid");
}
END_TEST

START_TEST (test_unknown_or_unusable_key)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autoptr (JsonObject) claims = valid_claims ();
  g_autofree char *claims_json = object_to_json (claims);
  static const char *const headers[] = {
    "{\"alg\":\"RS256\",\"kid\":\"rsa-2\"}",
    "{\"alg\":\"RS256\",\"kid\":\"RSA-1\"}",
    /* Right key material, but published for encryption or for PS256. */
    "{\"alg\":\"RS256\",\"kid\":\"enc-1\"}",
    "{\"alg\":\"RS256\",\"kid\":\"rsa-ps\"}",
    /* A kid naming a key of another type. */
    "{\"alg\":\"RS256\",\"kid\":\"ed-1\"}",
    "{\"alg\":\"EdDSA\",\"kid\":\"rsa-1\"}",
    "{\"alg\":\"RS256\",\"kid\":\"ec-1\"}",
    "{\"alg\":\"RS256\",\"kid\":\"rsa-bad\"}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (headers); i++)
    {
      Signer signer = strstr (headers[i], "EdDSA") != NULL ? SIGN_EDDSA : SIGN_RS256;
      g_autofree char *token = make_token (headers[i], claims_json, signer);

      assert_rejected (token, &expect, KEYHOLD_ID_TOKEN_ERROR_NO_KEY, NULL);
    }
}
END_TEST

START_TEST (test_key_set_shape)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autofree char *token = valid_token (SIGN_EDDSA);
  static const char *const sets[] = { "{}", "{\"keys\":{}}", "{\"keys\":[]}", "[]", "\"keys\"" };

  for (guint i = 0; i < G_N_ELEMENTS (sets); i++)
    {
      g_autoptr (JsonNode) jwks = json_from_string (sets[i], NULL);
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonObject) claims
          = validate_bytes_with (token, strlen (token), jwks, &expect, &error);

      ck_assert_ptr_null (claims);
      ck_assert (g_error_matches (error, KEYHOLD_ID_TOKEN_ERROR, KEYHOLD_ID_TOKEN_ERROR_NO_KEY));
    }
}
END_TEST

/* Replaces the claims segment of a token signed for @signer with the
 * encoding of other claims. */
static char *
token_with_swapped_claims (Signer signer)
{
  g_autofree char *token = valid_token (signer);
  g_auto (GStrv) parts = g_strsplit (token, ".", -1);
  g_autoptr (JsonObject) other = valid_claims ();
  g_autofree char *other_json = NULL;

  json_object_set_string_member (other, "sub", "admin");
  other_json = object_to_json (other);
  g_free (parts[1]);
  parts[1] = base64url_string (other_json);
  return g_strjoinv (".", parts);
}

/* Flips one bit in the middle of the signature. */
static char *
token_with_damaged_signature (Signer signer)
{
  char *token = valid_token (signer);
  char *signature = strrchr (token, '.') + 1;
  char *c = signature + strlen (signature) / 2;

  *c = *c == 'A' ? 'B' : 'A';
  return token;
}

/* Drops the signature's last byte. */
static char *
token_with_short_signature (Signer signer)
{
  g_autofree char *token = valid_token (signer);
  char *signature = strrchr (token, '.') + 1;
  guint8 bytes[512];
  gsize length = 0;
  g_autofree char *shorter = NULL;

  ck_assert_int_eq (sodium_base642bin (bytes, sizeof bytes, signature, strlen (signature), NULL,
                                       &length, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                    0);
  shorter = base64url (bytes, length - 1);
  *signature = '\0';
  return g_strconcat (token, shorter, NULL);
}

START_TEST (test_bad_signatures)
{
  KeyholdIdTokenExpectations expect = expectations ();
  static const Signer signers[] = { SIGN_RS256, SIGN_EDDSA };

  for (guint i = 0; i < G_N_ELEMENTS (signers); i++)
    {
      g_autofree char *swapped = token_with_swapped_claims (signers[i]);
      g_autofree char *damaged = token_with_damaged_signature (signers[i]);
      g_autofree char *short_signature = token_with_short_signature (signers[i]);
      g_autofree char *unsigned_token = make_token (header_for (signers[i]), "{}", SIGN_NOTHING);

      assert_rejected (swapped, &expect, KEYHOLD_ID_TOKEN_ERROR_BAD_SIGNATURE, NULL);
      assert_rejected (damaged, &expect, KEYHOLD_ID_TOKEN_ERROR_BAD_SIGNATURE, NULL);
      assert_rejected (short_signature, &expect, KEYHOLD_ID_TOKEN_ERROR_BAD_SIGNATURE, NULL);
      assert_rejected (unsigned_token, &expect, KEYHOLD_ID_TOKEN_ERROR_BAD_SIGNATURE, NULL);
    }
}
END_TEST

START_TEST (test_signed_by_other_key)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autoptr (JsonObject) claims = valid_claims ();
  g_autofree char *claims_json = object_to_json (claims);
  /* Signed with the 1024-bit key, but naming the 2048-bit one. */
  g_autofree char *token = make_token (RS256_HEADER, claims_json, SIGN_WEAK_RS256);

  assert_rejected (token, &expect, KEYHOLD_ID_TOKEN_ERROR_BAD_SIGNATURE, NULL);
}
END_TEST

START_TEST (test_unsupported_algorithms)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autoptr (JsonObject) claims = valid_claims ();
  g_autofree char *claims_json = object_to_json (claims);
  static const char *const headers[] = {
    "{\"alg\":\"none\"}",
    "{\"alg\":\"none\",\"kid\":\"rsa-1\"}",
    "{\"alg\":\"HS256\",\"kid\":\"rsa-1\"}",
    "{\"alg\":\"HS512\"}",
    "{\"alg\":\"RS512\",\"kid\":\"rsa-1\"}",
    "{\"alg\":\"PS256\",\"kid\":\"rsa-1\"}",
    "{\"alg\":\"ES256\",\"kid\":\"ec-1\"}",
    "{\"alg\":\"rs256\",\"kid\":\"rsa-1\"}",
    "{\"alg\":\"\"}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (headers); i++)
    {
      g_autofree char *unsigned_token = make_token (headers[i], claims_json, SIGN_NOTHING);
      g_autofree char *signed_token = make_token (headers[i], claims_json, SIGN_RS256);

      assert_rejected (unsigned_token, &expect, KEYHOLD_ID_TOKEN_ERROR_UNSUPPORTED_ALGORITHM, NULL);
      assert_rejected (signed_token, &expect, KEYHOLD_ID_TOKEN_ERROR_UNSUPPORTED_ALGORITHM, NULL);
    }
}
END_TEST

START_TEST (test_short_rsa_key_rejected)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autofree char *token = valid_token (SIGN_WEAK_RS256);

  assert_rejected (token, &expect, KEYHOLD_ID_TOKEN_ERROR_UNSUPPORTED_ALGORITHM, NULL);
}
END_TEST

START_TEST (test_issuer)
{
  g_autoptr (JsonObject) wrong = valid_claims ();
  g_autoptr (JsonObject) trailing_slash = valid_claims ();
  g_autoptr (JsonObject) missing = valid_claims ();
  g_autoptr (JsonObject) not_string = valid_claims ();

  json_object_set_string_member (wrong, "iss", "https://evil.example");
  json_object_set_string_member (trailing_slash, "iss", ISSUER "/");
  json_object_remove_member (missing, "iss");
  json_object_set_int_member (not_string, "iss", 1);
  assert_other_identity (wrong, "iss");
  assert_other_identity (trailing_slash, "iss");
  assert_claims_rejected (missing, "iss");
  assert_claims_rejected (not_string, "iss");
}
END_TEST

static JsonArray *string_array (const char *first, ...) G_GNUC_NULL_TERMINATED;

static JsonArray *
string_array (const char *first, ...)
{
  JsonArray *array = json_array_new ();
  va_list args;

  va_start (args, first);
  for (const char *s = first; s != NULL; s = va_arg (args, const char *))
    json_array_add_string_element (array, s);
  va_end (args);
  return array;
}

START_TEST (test_audience)
{
  g_autoptr (JsonObject) other = valid_claims ();
  g_autoptr (JsonObject) missing = valid_claims ();
  g_autoptr (JsonObject) array_without_us = valid_claims ();
  g_autoptr (JsonObject) array_with_junk = valid_claims ();
  g_autoptr (JsonObject) empty_array = valid_claims ();
  g_autoptr (JsonObject) array_of_us = valid_claims ();

  json_object_set_string_member (other, "aud", "another-client");
  json_object_remove_member (missing, "aud");
  json_object_set_array_member (array_without_us, "aud", string_array ("a", "b", NULL));
  json_object_set_array_member (array_with_junk, "aud", string_array (CLIENT_ID, NULL));
  json_array_add_int_element (json_object_get_array_member (array_with_junk, "aud"), 3);
  json_object_set_array_member (empty_array, "aud", json_array_new ());
  json_object_set_array_member (array_of_us, "aud", string_array (CLIENT_ID, NULL));

  assert_other_identity (other, "aud");
  assert_claims_rejected (missing, "aud");
  assert_other_identity (array_without_us, "aud");
  assert_claims_rejected (array_with_junk, "aud");
  assert_other_identity (empty_array, "aud");
  assert_claims_accepted (array_of_us);
}
END_TEST

START_TEST (test_authorized_party)
{
  g_autoptr (JsonObject) several_with_azp = valid_claims ();
  g_autoptr (JsonObject) several_without_azp = valid_claims ();
  g_autoptr (JsonObject) several_other_azp = valid_claims ();
  g_autoptr (JsonObject) single_other_azp = valid_claims ();
  g_autoptr (JsonObject) single_own_azp = valid_claims ();

  json_object_set_array_member (several_with_azp, "aud",
                                string_array ("api.example", CLIENT_ID, NULL));
  json_object_set_string_member (several_with_azp, "azp", CLIENT_ID);
  json_object_set_array_member (several_without_azp, "aud",
                                string_array (CLIENT_ID, "api.example", NULL));
  json_object_set_array_member (several_other_azp, "aud",
                                string_array (CLIENT_ID, "api.example", NULL));
  json_object_set_string_member (several_other_azp, "azp", "api.example");
  json_object_set_string_member (single_other_azp, "azp", "another-client");
  json_object_set_string_member (single_own_azp, "azp", CLIENT_ID);

  assert_claims_accepted (several_with_azp);
  assert_claims_rejected (several_without_azp, "azp");
  assert_other_identity (several_other_azp, "azp");
  assert_other_identity (single_other_azp, "azp");
  assert_claims_accepted (single_own_azp);
}
END_TEST

START_TEST (test_expiry)
{
  g_autoptr (JsonObject) expired = valid_claims ();
  g_autoptr (JsonObject) within_leeway = valid_claims ();
  g_autoptr (JsonObject) at_leeway = valid_claims ();
  g_autoptr (JsonObject) missing = valid_claims ();
  g_autoptr (JsonObject) as_string = valid_claims ();
  g_autoptr (JsonObject) fractional = valid_claims ();
  g_autoptr (JsonObject) huge = valid_claims ();

  json_object_set_int_member (expired, "exp", NOW - LEEWAY - 1);
  json_object_set_int_member (within_leeway, "exp", NOW - LEEWAY + 1);
  json_object_set_int_member (at_leeway, "exp", NOW - LEEWAY);
  json_object_remove_member (missing, "exp");
  json_object_set_string_member (as_string, "exp", "1700000600");
  json_object_set_double_member (fractional, "exp", (double) NOW + 30.5);
  json_object_set_int_member (huge, "exp", G_MAXINT64);

  assert_claims_rejected (expired, "exp");
  assert_claims_accepted (within_leeway);
  assert_claims_rejected (at_leeway, "exp");
  assert_claims_rejected (missing, "exp");
  assert_claims_rejected (as_string, "exp");
  assert_claims_accepted (fractional);
  assert_claims_accepted (huge);
}
END_TEST

START_TEST (test_expiry_follows_callers_clock)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autofree char *token = valid_token (SIGN_EDDSA);

  expect.now = NOW + 600 + LEEWAY;
  assert_rejected (token, &expect, KEYHOLD_ID_TOKEN_ERROR_CLAIM, "exp");
  expect.now = NOW + 600 + LEEWAY - 1;
  assert_accepted (token, &expect);
  expect.leeway_seconds = 0;
  assert_rejected (token, &expect, KEYHOLD_ID_TOKEN_ERROR_CLAIM, "exp");
}
END_TEST

START_TEST (test_issued_at)
{
  g_autoptr (JsonObject) future = valid_claims ();
  g_autoptr (JsonObject) within_leeway = valid_claims ();
  g_autoptr (JsonObject) missing = valid_claims ();
  g_autoptr (JsonObject) huge_negative = valid_claims ();

  json_object_set_int_member (future, "iat", NOW + LEEWAY + 1);
  json_object_set_int_member (within_leeway, "iat", NOW + LEEWAY);
  json_object_remove_member (missing, "iat");
  json_object_set_int_member (huge_negative, "iat", G_MININT64);

  assert_claims_rejected (future, "iat");
  assert_claims_accepted (within_leeway);
  assert_claims_rejected (missing, "iat");
  assert_claims_accepted (huge_negative);
}
END_TEST

START_TEST (test_not_before)
{
  g_autoptr (JsonObject) future = valid_claims ();
  g_autoptr (JsonObject) past = valid_claims ();
  g_autoptr (JsonObject) not_number = valid_claims ();

  json_object_set_int_member (future, "nbf", NOW + LEEWAY + 1);
  json_object_set_int_member (past, "nbf", NOW - 5);
  json_object_set_boolean_member (not_number, "nbf", TRUE);

  assert_claims_rejected (future, "nbf");
  assert_claims_accepted (past);
  assert_claims_rejected (not_number, "nbf");
}
END_TEST

START_TEST (test_nonce)
{
  KeyholdIdTokenExpectations without_nonce = expectations ();
  g_autoptr (JsonObject) missing = valid_claims ();
  g_autoptr (JsonObject) other = valid_claims ();
  g_autoptr (JsonObject) prefix = valid_claims ();
  g_autoptr (JsonObject) not_string = valid_claims ();
  g_autofree char *token_with_other = NULL;

  json_object_remove_member (missing, "nonce");
  json_object_set_string_member (other, "nonce", "replayed");
  json_object_set_string_member (prefix, "nonce", "n-0S6");
  json_object_set_int_member (not_string, "nonce", 7);

  assert_claims_rejected (missing, "nonce");
  assert_claims_rejected (other, "nonce");
  assert_claims_rejected (prefix, "nonce");
  assert_claims_rejected (not_string, "nonce");

  /* Without a nonce in the request, the claim is not looked at. */
  without_nonce.nonce = NULL;
  token_with_other = token_with_claims (other, SIGN_EDDSA);
  assert_accepted (token_with_other, &without_nonce);
}
END_TEST

START_TEST (test_subject)
{
  g_autoptr (JsonObject) missing = valid_claims ();
  g_autoptr (JsonObject) empty = valid_claims ();
  g_autoptr (JsonObject) too_long = valid_claims ();
  g_autoptr (JsonObject) longest = valid_claims ();
  g_autoptr (JsonObject) not_string = valid_claims ();
  g_autofree char *long_subject = g_strnfill (256, 'x');

  json_object_remove_member (missing, "sub");
  json_object_set_string_member (empty, "sub", "");
  json_object_set_string_member (too_long, "sub", long_subject);
  json_object_set_int_member (not_string, "sub", 248289761001);

  assert_claims_rejected (missing, "sub");
  assert_claims_rejected (empty, "sub");
  assert_claims_rejected (too_long, "sub");
  assert_claims_rejected (not_string, "sub");

  long_subject[255] = '\0';
  json_object_set_string_member (longest, "sub", long_subject);
  assert_claims_accepted (longest);
}
END_TEST

START_TEST (test_malformed_structure)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autofree char *valid = valid_token (SIGN_EDDSA);
  g_autofree char *two_segments = g_strndup (valid, strrchr (valid, '.') - valid);
  g_autofree char *four_segments = g_strconcat (valid, ".", NULL);
  g_autofree char *padded = g_strconcat (valid, "==", NULL);
  g_autofree char *standard_alphabet = g_strdup (valid);
  g_autofree char *with_space = g_strconcat (" ", valid, NULL);
  g_autofree char *five_segments = g_strconcat (valid, ".a.b", NULL);
  static const char *const literal[] = {
    "", ".", "..", "...", "a.b.c", "e30.e30", "e30.e30.e30.e30",
  };

  standard_alphabet[3] = '+';
  assert_rejected (two_segments, &expect, KEYHOLD_ID_TOKEN_ERROR_MALFORMED, NULL);
  assert_rejected (four_segments, &expect, KEYHOLD_ID_TOKEN_ERROR_MALFORMED, NULL);
  assert_rejected (five_segments, &expect, KEYHOLD_ID_TOKEN_ERROR_MALFORMED, NULL);
  assert_rejected (padded, &expect, KEYHOLD_ID_TOKEN_ERROR_MALFORMED, NULL);
  assert_rejected (standard_alphabet, &expect, KEYHOLD_ID_TOKEN_ERROR_MALFORMED, NULL);
  assert_rejected (with_space, &expect, KEYHOLD_ID_TOKEN_ERROR_MALFORMED, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (literal); i++)
    assert_rejected (literal[i], &expect, KEYHOLD_ID_TOKEN_ERROR_MALFORMED, NULL);
}
END_TEST

START_TEST (test_non_canonical_base64)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autofree char *token = valid_token (SIGN_EDDSA);
  char *last = token + strlen (token) - 1;

  /* 64 bytes take 86 characters, the last of which carries four spare
   * bits; setting one spells the same bytes differently, which must not
   * pass. */
  ck_assert_int_eq (strlen (strrchr (token, '.') + 1), 86);
  ck_assert (*last == 'A' || *last == 'Q' || *last == 'g' || *last == 'w');
  *last = *last + 1;
  assert_rejected (token, &expect, KEYHOLD_ID_TOKEN_ERROR_MALFORMED, NULL);
}
END_TEST

/* libsodium's decoder ignores the high bit of each byte, so "\xc1" would
 * read as "A": a second spelling of the same signature. */
START_TEST (test_high_bit_characters_rejected)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autofree char *token = valid_token (SIGN_EDDSA);
  char *signature = strrchr (token, '.') + 1;

  signature[3] = (char) (signature[3] | 0x80);
  assert_rejected (token, &expect, KEYHOLD_ID_TOKEN_ERROR_MALFORMED, NULL);
}
END_TEST

START_TEST (test_malformed_header)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autoptr (JsonObject) claims = valid_claims ();
  g_autofree char *claims_json = object_to_json (claims);
  g_autofree char *deep = g_strnfill (5000, '[');
  static const char *const headers[] = {
    "",
    "not json",
    "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\"",
    "[\"EdDSA\"]",
    "\"EdDSA\"",
    "null",
    "{}",
    "{\"kid\":\"ed-1\"}",
    "{\"alg\":null,\"kid\":\"ed-1\"}",
    "{\"alg\":5,\"kid\":\"ed-1\"}",
    "{\"alg\":[\"EdDSA\"],\"kid\":\"ed-1\"}",
    "{\"alg\":\"EdDSA\",\"kid\":5}",
    "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\",\"typ\":{}}",
    "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\",\"typ\":\"at+jwt\"}",
    "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\",\"crit\":[\"exp\"],\"exp\":1}",
    "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\",\"crit\":[]}",
    "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\"}\xff",
  };

  for (guint i = 0; i < G_N_ELEMENTS (headers); i++)
    {
      g_autofree char *token = make_token (headers[i], claims_json, SIGN_EDDSA);

      assert_rejected (token, &expect, KEYHOLD_ID_TOKEN_ERROR_MALFORMED, NULL);
    }
  {
    g_autofree char *token = make_token (deep, claims_json, SIGN_EDDSA);

    assert_rejected (token, &expect, KEYHOLD_ID_TOKEN_ERROR_MALFORMED, NULL);
  }
}
END_TEST

START_TEST (test_header_variants_accepted)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autoptr (JsonObject) claims = valid_claims ();
  g_autofree char *claims_json = object_to_json (claims);
  static const char *const headers[] = {
    "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\",\"typ\":\"jwt\"}",
    "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\",\"typ\":\"application/JWT\"}",
    /* A key in the header is ignored; only the key set counts. */
    "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\",\"jku\":\"https://evil.example/jwks\","
    "\"jwk\":{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}}",
    /* The last of duplicate names counts (RFC 7515 §4). */
    "{\"alg\":\"none\",\"alg\":\"EdDSA\",\"kid\":\"ed-1\"}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (headers); i++)
    {
      g_autofree char *token = make_token (headers[i], claims_json, SIGN_EDDSA);

      assert_accepted (token, &expect);
    }
}
END_TEST

START_TEST (test_malformed_claims)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autofree char *deep = g_strnfill (5000, '{');
  static const char *const payloads[] = {
    "", "[]", "\"claims\"", "{\"sub\":", "{\"sub\":\"a\"} trailing",
  };

  for (guint i = 0; i < G_N_ELEMENTS (payloads); i++)
    {
      g_autofree char *token = make_token (EDDSA_HEADER, payloads[i], SIGN_EDDSA);

      assert_rejected (token, &expect, KEYHOLD_ID_TOKEN_ERROR_MALFORMED, NULL);
    }
  {
    g_autofree char *token = make_token (EDDSA_HEADER, deep, SIGN_EDDSA);

    assert_rejected (token, &expect, KEYHOLD_ID_TOKEN_ERROR_MALFORMED, NULL);
  }
}
END_TEST

/* JSON text is one value (RFC 8259 §2). json-glib 1.6 takes "{...}{...}" and
 * returns the first object: a second reading of the same token. */
START_TEST (test_second_json_value_rejected)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autoptr (JsonObject) claims = valid_claims ();
  g_autofree char *claims_json = object_to_json (claims);
  g_autofree char *two_claims = g_strconcat (claims_json, "{\"sub\":\"admin\"}", NULL);
  g_autofree char *two_headers = g_strconcat (EDDSA_HEADER, " [\"none\"]", NULL);
  g_autofree char *claims_token = make_token (EDDSA_HEADER, two_claims, SIGN_EDDSA);
  g_autofree char *header_token = make_token (two_headers, claims_json, SIGN_EDDSA);

  assert_rejected (claims_token, &expect, KEYHOLD_ID_TOKEN_ERROR_MALFORMED, NULL);
  assert_rejected (header_token, &expect, KEYHOLD_ID_TOKEN_ERROR_MALFORMED, NULL);
}
END_TEST

START_TEST (test_size_limit)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autoptr (JsonObject) claims = valid_claims ();
  g_autofree char *filler = g_strnfill (16 * 1024, 'x');
  g_autofree char *token = NULL;
  g_autofree char *huge = g_strnfill (1024 * 1024, 'A');

  json_object_set_string_member (claims, "name", filler);
  token = token_with_claims (claims, SIGN_EDDSA);
  assert_rejected (token, &expect, KEYHOLD_ID_TOKEN_ERROR_MALFORMED, NULL);
  assert_rejected (huge, &expect, KEYHOLD_ID_TOKEN_ERROR_MALFORMED, NULL);

  /* Just under the limit is still a token. */
  filler[11 * 1024] = '\0';
  json_object_set_string_member (claims, "name", filler);
  g_free (token);
  token = token_with_claims (claims, SIGN_EDDSA);
  ck_assert_uint_lt (strlen (token), 16 * 1024);
  assert_accepted (token, &expect);
}
END_TEST

/* Random edits: bit flips, overwrites with bytes that matter to the
 * parsers, insertions, deletions, duplicated runs, truncation. */
static void
mutate (GRand *rand, GString *text)
{
  static const char interesting[] = { '.',  '"',    '{',    '}', '[', ']', '\\', ',', ':',
                                      '\0', '\xff', '\xc3', '-', '_', '=', 'A',  '0', 'e' };
  guint edits = (guint) g_rand_int_range (rand, 1, 5);

  for (guint i = 0; i < edits; i++)
    {
      gsize position = text->len > 0 ? (gsize) g_rand_int_range (rand, 0, (gint32) text->len) : 0;
      gsize wanted_run = (gsize) g_rand_int_range (rand, 1, 64);
      gsize run = MIN (wanted_run, text->len - position);
      char interesting_byte = interesting[g_rand_int_range (rand, 0, sizeof interesting)];
      char any_byte = (char) g_rand_int_range (rand, 0, 256);
      char byte = g_rand_boolean (rand) ? interesting_byte : any_byte;

      switch (g_rand_int_range (rand, 0, 6))
        {
        case 0:
          if (text->len > 0)
            text->str[position] ^= (char) (1 << g_rand_int_range (rand, 0, 8));
          break;
        case 1:
          if (text->len > 0)
            text->str[position] = byte;
          break;
        case 2:
          g_string_insert_len (text, (gssize) position, &byte, 1);
          break;
        case 3:
          g_string_erase (text, (gssize) position, (gssize) run);
          break;
        case 4:
          {
            g_autofree char *copy = g_strndup (text->str + position, run);

            g_string_insert_len (text, (gssize) position, copy, (gssize) run);
          }
          break;
        default:
          g_string_truncate (text, position);
          break;
        }
    }
}

static void
check_outcome (JsonObject *claims, GError *error)
{
  ck_assert ((claims != NULL) != (error != NULL));
  if (error != NULL)
    ck_assert_msg (error->domain == KEYHOLD_ID_TOKEN_ERROR && error->code >= 0
                       && error->code <= (gint) KEYHOLD_ID_TOKEN_ERROR_OTHER_IDENTITY,
                   "unexpected error %s %d", g_quark_to_string (error->domain), error->code);
}

/* A changed token text never verifies: libsodium's base64url decoding and
 * both signature schemes leave a token exactly one valid spelling. */
static void
run_token_mutation (GRand *rand, const char *original, JsonNode *jwks)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autoptr (GString) text = g_string_new (original);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) claims = NULL;

  mutate (rand, text);
  claims = validate_bytes_with (text->str, text->len, jwks, &expect, &error);
  check_outcome (claims, error);
  if (claims != NULL)
    ck_assert_msg (text->len == strlen (original) && memcmp (text->str, original, text->len) == 0,
                   "a changed token was accepted");
}

/* Correctly signed tokens around mutated JSON reach the header and claims
 * parsers and the claim checks. */
static void
run_json_mutation (GRand *rand,
                   const char *header,
                   const char *claims_json,
                   gboolean mutate_header,
                   JsonNode *jwks)
{
  KeyholdIdTokenExpectations expect = expectations ();
  g_autoptr (GString) text = g_string_new (mutate_header ? header : claims_json);
  g_autofree char *token = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) claims = NULL;

  mutate (rand, text);
  /* make_token takes C strings: stop at the first NUL a mutation made. */
  token = make_token (mutate_header ? text->str : header, mutate_header ? claims_json : text->str,
                      SIGN_EDDSA);
  claims = validate_bytes_with (token, strlen (token), jwks, &expect, &error);
  check_outcome (claims, error);
}

START_TEST (test_random_mutations)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (0x6b657968);
  g_autoptr (JsonNode) jwks = test_jwks ();
  g_autoptr (JsonObject) claims = valid_claims ();
  g_autofree char *claims_json = NULL;
  g_autofree char *rs256 = valid_token (SIGN_RS256);
  g_autofree char *eddsa = valid_token (SIGN_EDDSA);

  json_object_set_array_member (claims, "aud", string_array (CLIENT_ID, "api.example", NULL));
  json_object_set_string_member (claims, "azp", CLIENT_ID);
  claims_json = object_to_json (claims);

  for (guint i = 0; i < 2000; i++)
    {
      switch (i % 4)
        {
        case 0:
          run_token_mutation (rand, rs256, jwks);
          break;
        case 1:
          run_token_mutation (rand, eddsa, jwks);
          break;
        case 2:
          run_json_mutation (rand, EDDSA_HEADER, claims_json, TRUE, jwks);
          break;
        default:
          run_json_mutation (rand, EDDSA_HEADER, claims_json, FALSE, jwks);
          break;
        }
    }
}
END_TEST

static Suite *
id_token_suite (void)
{
  Suite *suite = suite_create ("id-token");
  TCase *signature = tcase_create ("signature");
  TCase *claims = tcase_create ("claims");
  TCase *malformed = tcase_create ("malformed");

  tcase_add_test (signature, test_valid_rs256);
  tcase_add_test (signature, test_valid_eddsa);
  tcase_add_test (signature, test_key_chosen_without_kid);
  tcase_add_test (signature, test_unknown_or_unusable_key);
  tcase_add_test (signature, test_key_set_shape);
  tcase_add_test (signature, test_bad_signatures);
  tcase_add_test (signature, test_signed_by_other_key);
  tcase_add_test (signature, test_unsupported_algorithms);
  tcase_add_test (signature, test_short_rsa_key_rejected);
  suite_add_tcase (suite, signature);

  tcase_add_test (claims, test_refresh_expectations);
  tcase_add_test (claims, test_issuer);
  tcase_add_test (claims, test_audience);
  tcase_add_test (claims, test_authorized_party);
  tcase_add_test (claims, test_expiry);
  tcase_add_test (claims, test_expiry_follows_callers_clock);
  tcase_add_test (claims, test_issued_at);
  tcase_add_test (claims, test_not_before);
  tcase_add_test (claims, test_nonce);
  tcase_add_test (claims, test_subject);
  suite_add_tcase (suite, claims);

  tcase_add_test (malformed, test_malformed_structure);
  tcase_add_test (malformed, test_non_canonical_base64);
  tcase_add_test (malformed, test_high_bit_characters_rejected);
  tcase_add_test (malformed, test_malformed_header);
  tcase_add_test (malformed, test_header_variants_accepted);
  tcase_add_test (malformed, test_malformed_claims);
  tcase_add_test (malformed, test_second_json_value_rejected);
  tcase_add_test (malformed, test_size_limit);
  tcase_add_test (malformed, test_random_mutations);
  suite_add_tcase (suite, malformed);
  return suite;
}

int
main (void)
{
  SRunner *runner;
  int failed;

  /* The first libgcrypt call an application makes; the module under test
   * finishes the initialisation itself. */
  gcry_check_version (NULL);
  if (sodium_init () < 0)
    return 1;
  rsa_key_generate (&rsa_key, 2048);
  rsa_key_generate (&weak_rsa_key, 1024);
  crypto_sign_keypair (ed_public_key, ed_secret_key);

  runner = srunner_create (id_token_suite ());
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);

  rsa_key_clear (&rsa_key);
  rsa_key_clear (&weak_rsa_key);
  return failed == 0 ? 0 : 1;
}
