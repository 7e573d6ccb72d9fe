/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <gcrypt.h>
#include <sodium.h>
#include <string.h>

#include "oidc/jws.h"
#include "base/untrusted-json.h"

/* RFC 7518 §3.3 sets the floor. The ceiling and the short public exponent
 * keep the cost of one verification small whatever the key set says. */
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192
#define RSA_MAX_EXPONENT_BYTES 4

/* clang-format 14 would put spaces around the hyphens of the quark name. */
/* clang-format off */
G_DEFINE_QUARK (keyhold-jws-error-quark, keyhold_jws_error)
/* clang-format on */

G_DEFINE_AUTO_CLEANUP_FREE_FUNC (gcry_sexp_t, gcry_sexp_release, NULL)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC (gcry_mpi_t, gcry_mpi_release, NULL)

/* A decoded segment or key member. The payload and the signature are parts
 * of a credential, so every decoded buffer is wiped before it is freed. */
typedef struct
{
  gsize capacity;
  gsize length;
  guint8 data[];
} Decoded;

static void
decoded_free (Decoded *decoded)
{
  if (decoded == NULL)
    return;
  sodium_memzero (decoded->data, decoded->capacity);
  g_free (decoded);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Decoded, decoded_free)

/* RFC 4648 §5 alphabet. */
static gboolean
is_base64url_text (const char *text, gsize length)
{
  for (gsize i = 0; i < length; i++)
    if (!g_ascii_isalnum (text[i]) && text[i] != '-' && text[i] != '_')
      return FALSE;
  return TRUE;
}

/* Strict base64url without padding, so that each token has exactly one
 * spelling. libsodium refuses non-zero trailing bits, but its decoder
 * ignores the high bit of each byte ('\xdf' reads as '_'), hence the
 * alphabet check first. */
static Decoded *
base64url_decode (const char *text, gsize length)
{
  gsize capacity = length / 4 * 3 + 2;
  g_autoptr (Decoded) decoded = NULL;

  if (!is_base64url_text (text, length))
    return NULL;
  decoded = g_malloc0 (sizeof (Decoded) + capacity);

  decoded->capacity = capacity;
  if (sodium_base642bin (decoded->data, decoded->capacity, text, length, NULL, &decoded->length,
                         NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING)
      != 0)
    return NULL;
  return g_steal_pointer (&decoded);
}

typedef struct
{
  Decoded *header;
  Decoded *payload;
  Decoded *signature;
  /* The signature covers the text up to the second dot, as received. */
  gsize signing_input_length;
} CompactJws;

static void
compact_jws_clear (CompactJws *jws)
{
  g_clear_pointer (&jws->header, decoded_free);
  g_clear_pointer (&jws->payload, decoded_free);
  g_clear_pointer (&jws->signature, decoded_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CompactJws, compact_jws_clear)

static gboolean
compact_jws_parse (const char *text, gsize length, CompactJws *out_jws, GError **error)
{
  const char *end = text + length;
  const char *first_dot;
  const char *second_dot = NULL;
  g_auto (CompactJws) jws = { 0 };

  if (length > KEYHOLD_JWS_MAX_LENGTH)
    {
      g_set_error (error, KEYHOLD_JWS_ERROR, KEYHOLD_JWS_ERROR_MALFORMED,
                   "the token is longer than %d bytes", KEYHOLD_JWS_MAX_LENGTH);
      return FALSE;
    }

  first_dot = memchr (text, '.', length);
  if (first_dot != NULL)
    second_dot = memchr (first_dot + 1, '.', (gsize) (end - first_dot - 1));
  if (second_dot == NULL || memchr (second_dot + 1, '.', (gsize) (end - second_dot - 1)) != NULL)
    {
      g_set_error_literal (error, KEYHOLD_JWS_ERROR, KEYHOLD_JWS_ERROR_MALFORMED,
                           "the token does not have three segments");
      return FALSE;
    }

  jws.header = base64url_decode (text, (gsize) (first_dot - text));
  jws.payload = base64url_decode (first_dot + 1, (gsize) (second_dot - first_dot - 1));
  jws.signature = base64url_decode (second_dot + 1, (gsize) (end - second_dot - 1));
  if (jws.header == NULL || jws.payload == NULL || jws.signature == NULL)
    {
      g_set_error_literal (error, KEYHOLD_JWS_ERROR, KEYHOLD_JWS_ERROR_MALFORMED,
                           "a segment of the token is not base64url");
      return FALSE;
    }
  jws.signing_input_length = (gsize) (second_dot - text);

  *out_jws = jws;
  jws = (CompactJws) { 0 };
  return TRUE;
}

typedef gboolean (*VerifyFunc) (JsonObject *key,
                                const char *signing_input,
                                gsize signing_input_length,
                                const Decoded *signature,
                                GError **error);

typedef struct
{
  const char *name;
  /* What a JWK must say to be a key for this algorithm. */
  const char *kty;
  const char *crv;
  VerifyFunc verify;
} Algorithm;

/* NULL when @member is absent, null, or not a string. */
static const char *
string_member (JsonObject *object, const char *member)
{
  const char *value = NULL;

  return keyhold_untrusted_json_get_string (object, member, &value, NULL) ? value : NULL;
}

static gboolean
member_equals (JsonObject *object, const char *member, const char *expected)
{
  const char *value = string_member (object, member);

  return value != NULL && strcmp (value, expected) == 0;
}

/* A member that is present but null or not a string is a mismatch, not an
 * absence: "use": 5 does not mean "any use". */
static gboolean
member_is_absent_or_equals (JsonObject *object, const char *member, const char *expected)
{
  return !json_object_has_member (object, member) || member_equals (object, member, expected);
}

static Decoded *
decode_member (JsonObject *object, const char *member)
{
  const char *text = string_member (object, member);

  return text != NULL ? base64url_decode (text, strlen (text)) : NULL;
}

static void
ensure_gcrypt_initialised (void)
{
  static gsize initialised = 0;

  if (!g_once_init_enter (&initialised))
    return;

  /* libgcrypt is set up once per process, and libsecret, which shares it,
   * may have done so already. Secure memory stays enabled although a public
   * key needs none: libsecret skips its own set-up when it finds ours, and
   * its key exchange allocates secure memory. */
  if (!gcry_control (GCRYCTL_INITIALIZATION_FINISHED_P))
    {
      if (gcry_check_version (GCRYPT_VERSION) == NULL)
        g_error ("libgcrypt is older than the version keyhold was built with");
      gcry_control (GCRYCTL_INITIALIZATION_FINISHED, 0);
    }
  g_once_init_leave (&initialised, 1);
}

static void
set_unusable_key (GError **error, const char *key_type)
{
  g_set_error (error, KEYHOLD_JWS_ERROR, KEYHOLD_JWS_ERROR_NO_KEY,
               "the provider's signing key is not a valid %s key", key_type);
}

/* An unsigned big-endian integer, as JWK and JWS encode them (RFC 7518
 * §2, "Base64urlUInt"). A leading zero octet is tolerated. */
static gcry_mpi_t
decode_unsigned (const Decoded *decoded, gsize max_bytes)
{
  gcry_mpi_t value = NULL;

  if (decoded == NULL || decoded->length == 0 || decoded->length > max_bytes + 1)
    return NULL;
  if (gcry_mpi_scan (&value, GCRYMPI_FMT_USG, decoded->data, decoded->length, NULL) != 0)
    return NULL;
  return value;
}

static gboolean
import_rsa_key (JsonObject *key, gcry_sexp_t *out_key, gsize *out_modulus_bytes, GError **error)
{
  g_autoptr (Decoded) n_bytes = decode_member (key, "n");
  g_autoptr (Decoded) e_bytes = decode_member (key, "e");
  g_auto (gcry_mpi_t) n = decode_unsigned (n_bytes, RSA_MAX_BITS / 8);
  g_auto (gcry_mpi_t) e = decode_unsigned (e_bytes, RSA_MAX_EXPONENT_BYTES);
  guint bits;

  if (n == NULL || e == NULL || !gcry_mpi_test_bit (e, 0) || gcry_mpi_get_nbits (e) < 2)
    {
      set_unusable_key (error, "RSA");
      return FALSE;
    }
  bits = gcry_mpi_get_nbits (n);
  if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS)
    {
      g_set_error (error, KEYHOLD_JWS_ERROR, KEYHOLD_JWS_ERROR_UNSUPPORTED_ALGORITHM,
                   "the provider's RSA key has %u bits; %d to %d are accepted", bits, RSA_MIN_BITS,
                   RSA_MAX_BITS);
      return FALSE;
    }
  if (gcry_sexp_build (out_key, NULL, "(public-key (rsa (n %m) (e %m)))", n, e) != 0)
    {
      set_unusable_key (error, "RSA");
      return FALSE;
    }
  *out_modulus_bytes = (bits + 7) / 8;
  return TRUE;
}

static void
set_bad_signature (GError **error)
{
  g_set_error_literal (error, KEYHOLD_JWS_ERROR, KEYHOLD_JWS_ERROR_BAD_SIGNATURE,
                       "the token's signature does not verify");
}

/* RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3). */
static gboolean
verify_rs256 (JsonObject *key,
              const char *signing_input,
              gsize signing_input_length,
              const Decoded *signature,
              GError **error)
{
  g_auto (gcry_sexp_t) public_key = NULL;
  g_auto (gcry_sexp_t) data = NULL;
  g_auto (gcry_sexp_t) signature_value = NULL;
  g_auto (gcry_mpi_t) s = NULL;
  gsize modulus_bytes;
  guint8 digest[32];

  ensure_gcrypt_initialised ();
  if (!import_rsa_key (key, &public_key, &modulus_bytes, error))
    return FALSE;

  /* RFC 8017 §8.2.2 step 1: the signature is exactly as long as the
   * modulus; libgcrypt alone would also take a shorter one. */
  if (signature->length != modulus_bytes
      || gcry_mpi_scan (&s, GCRYMPI_FMT_USG, signature->data, signature->length, NULL) != 0)
    {
      set_bad_signature (error);
      return FALSE;
    }

  gcry_md_hash_buffer (GCRY_MD_SHA256, digest, signing_input, signing_input_length);
  if (gcry_sexp_build (&data, NULL, "(data (flags pkcs1) (hash sha256 %b))", (int) sizeof digest,
                       digest)
          != 0
      || gcry_sexp_build (&signature_value, NULL, "(sig-val (rsa (s %m)))", s) != 0
      || gcry_pk_verify (signature_value, data, public_key) != 0)
    {
      set_bad_signature (error);
      return FALSE;
    }
  return TRUE;
}

/* EdDSA over Ed25519 (RFC 8037 §3.1). */
static gboolean
verify_ed25519 (JsonObject *key,
                const char *signing_input,
                gsize signing_input_length,
                const Decoded *signature,
                GError **error)
{
  g_autoptr (Decoded) public_key = decode_member (key, "x");

  if (public_key == NULL || public_key->length != crypto_sign_PUBLICKEYBYTES)
    {
      set_unusable_key (error, "Ed25519");
      return FALSE;
    }
  if (signature->length != crypto_sign_BYTES
      || crypto_sign_verify_detached (signature->data, (const guint8 *) signing_input,
                                      signing_input_length, public_key->data)
             != 0)
    {
      set_bad_signature (error);
      return FALSE;
    }
  return TRUE;
}

static const Algorithm algorithms[] = {
  { "RS256", "RSA", NULL, verify_rs256 },
  { "EdDSA", "OKP", "Ed25519", verify_ed25519 },
};

static const Algorithm *
find_algorithm (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (algorithms); i++)
    {
      if (strcmp (algorithms[i].name, name) == 0)
        return &algorithms[i];
    }
  return NULL;
}

/* RFC 7515 §4.1.9: "typ" is a media type, compared without regard to case,
 * with "application/" optional. Refusing other types keeps a provider's
 * access tokens or logout tokens from passing for ID tokens. */
static gboolean
type_is_jwt (const char *type)
{
  return g_ascii_strcasecmp (type, "JWT") == 0 || g_ascii_strcasecmp (type, "application/jwt") == 0;
}

static gboolean
read_header (JsonObject *header,
             const Algorithm **out_algorithm,
             const char **out_kid,
             GError **error)
{
  const char *name = NULL;
  const char *type = NULL;
  const char *kid = NULL;
  const Algorithm *algorithm;

  if (!keyhold_untrusted_json_get_string (header, "alg", &name, NULL) || name == NULL
      || !keyhold_untrusted_json_get_string (header, "kid", &kid, NULL)
      || !keyhold_untrusted_json_get_string (header, "typ", &type, NULL))
    {
      g_set_error_literal (error, KEYHOLD_JWS_ERROR, KEYHOLD_JWS_ERROR_MALFORMED,
                           "the token's header lacks \"alg\" or has a member of the wrong type");
      return FALSE;
    }
  algorithm = find_algorithm (name);
  if (algorithm == NULL)
    {
      /* The name is not quoted: it is whatever the sender chose to put in
       * a log line. */
      g_set_error_literal (error, KEYHOLD_JWS_ERROR, KEYHOLD_JWS_ERROR_UNSUPPORTED_ALGORITHM,
                           "the token is signed with an algorithm other than RS256 or EdDSA");
      return FALSE;
    }
  /* RFC 7515 §4.1.11: extensions listed in "crit" must be understood, and
   * this verifier understands none. */
  if (json_object_has_member (header, "crit"))
    {
      g_set_error_literal (error, KEYHOLD_JWS_ERROR, KEYHOLD_JWS_ERROR_MALFORMED,
                           "the token's header lists critical extensions");
      return FALSE;
    }
  if (type != NULL && !type_is_jwt (type))
    {
      g_set_error_literal (error, KEYHOLD_JWS_ERROR, KEYHOLD_JWS_ERROR_MALFORMED,
                           "the token's \"typ\" is not JWT");
      return FALSE;
    }
  *out_algorithm = algorithm;
  *out_kid = kid;
  return TRUE;
}

static gboolean
key_fits (JsonObject *key, const Algorithm *algorithm)
{
  return member_equals (key, "kty", algorithm->kty)
         && (algorithm->crv == NULL || member_equals (key, "crv", algorithm->crv))
         && member_is_absent_or_equals (key, "use", "sig")
         && member_is_absent_or_equals (key, "alg", algorithm->name);
}

static JsonArray *
key_set_keys (JsonNode *jwks)
{
  JsonNode *keys;

  if (!JSON_NODE_HOLDS_OBJECT (jwks))
    return NULL;
  keys = json_object_get_member (json_node_get_object (jwks), "keys");
  return keys != NULL && JSON_NODE_HOLDS_ARRAY (keys) ? json_node_get_array (keys) : NULL;
}

/* The key named by @kid, or without one the only key that fits (OIDC Core
 * §10.1 requires a "kid" whenever the set holds several). */
static JsonObject *
select_key (JsonNode *jwks, const Algorithm *algorithm, const char *kid, GError **error)
{
  JsonArray *keys = key_set_keys (jwks);
  JsonObject *only_fit = NULL;
  guint fits = 0;
  guint length = keys != NULL ? json_array_get_length (keys) : 0;

  for (guint i = 0; i < length; i++)
    {
      JsonNode *node = json_array_get_element (keys, i);
      JsonObject *key;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        continue;
      key = json_node_get_object (node);
      if (!key_fits (key, algorithm))
        continue;
      if (kid != NULL && member_equals (key, "kid", kid))
        return key;
      only_fit = key;
      fits++;
    }

  if (kid == NULL && fits == 1)
    return only_fit;

  if (kid != NULL)
    g_set_error_literal (error, KEYHOLD_JWS_ERROR, KEYHOLD_JWS_ERROR_NO_KEY,
                         "the provider's key set has no key with the token's \"kid\"");
  else
    g_set_error (error, KEYHOLD_JWS_ERROR, KEYHOLD_JWS_ERROR_NO_KEY,
                 "the token names no \"kid\" and the provider's key set has %u keys for %s", fits,
                 algorithm->name);
  return NULL;
}

KeyholdSecret *
keyhold_jws_verify (const KeyholdSecret *jws, JsonNode *jwks, GError **error)
{
  const char *text;
  g_auto (CompactJws) parsed = { 0 };
  g_autoptr (JsonNode) header = NULL;
  const Algorithm *algorithm;
  const char *kid;
  JsonObject *key;

  g_return_val_if_fail (jws != NULL, NULL);
  g_return_val_if_fail (jwks != NULL, NULL);

  text = keyhold_secret_get (jws);
  if (!compact_jws_parse (text, keyhold_secret_get_length (jws), &parsed, error))
    return NULL;

  header = keyhold_untrusted_json_parse_object ((const char *) parsed.header->data,
                                                parsed.header->length, NULL);
  if (header == NULL)
    {
      g_set_error_literal (error, KEYHOLD_JWS_ERROR, KEYHOLD_JWS_ERROR_MALFORMED,
                           "the token's header is not a JSON object");
      return NULL;
    }
  if (!read_header (json_node_get_object (header), &algorithm, &kid, error))
    return NULL;

  key = select_key (jwks, algorithm, kid, error);
  if (key == NULL)
    return NULL;
  if (!algorithm->verify (key, text, parsed.signing_input_length, parsed.signature, error))
    return NULL;

  return keyhold_secret_new (parsed.payload->data, parsed.payload->length);
}
