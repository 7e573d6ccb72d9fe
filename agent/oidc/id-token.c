/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <math.h>
#include <string.h>

#include "oidc/id-token.h"
#include "oidc/jws.h"
#include "base/untrusted-json.h"

/* OIDC Core §2: "sub" MUST NOT exceed 255 ASCII characters. */
#define SUBJECT_MAX_LENGTH 255

/* Dates are clamped to about 35000 years either side of 1970, so that
 * adding a leeway to one can never overflow. */
#define NUMERIC_DATE_LIMIT ((gint64) 1 << 40)

/* clang-format 14 would put spaces around the hyphens of the quark name. */
/* clang-format off */
G_DEFINE_QUARK (keyhold-id-token-error-quark, keyhold_id_token_error)
/* clang-format on */

static KeyholdIdTokenError
error_code_from_jws (const GError *jws_error)
{
  if (jws_error->domain != KEYHOLD_JWS_ERROR)
    return KEYHOLD_ID_TOKEN_ERROR_MALFORMED;

  switch ((KeyholdJwsError) jws_error->code)
    {
    case KEYHOLD_JWS_ERROR_UNSUPPORTED_ALGORITHM:
      return KEYHOLD_ID_TOKEN_ERROR_UNSUPPORTED_ALGORITHM;
    case KEYHOLD_JWS_ERROR_NO_KEY:
      return KEYHOLD_ID_TOKEN_ERROR_NO_KEY;
    case KEYHOLD_JWS_ERROR_BAD_SIGNATURE:
      return KEYHOLD_ID_TOKEN_ERROR_BAD_SIGNATURE;
    case KEYHOLD_JWS_ERROR_MALFORMED:
    default:
      return KEYHOLD_ID_TOKEN_ERROR_MALFORMED;
    }
}

static void
set_claim_error (GError **error, const char *claim, const char *problem)
{
  g_set_error (error, KEYHOLD_ID_TOKEN_ERROR, KEYHOLD_ID_TOKEN_ERROR_CLAIM,
               "the ID token's \"%s\" %s", claim, problem);
}

static void
set_identity_error (GError **error, const char *claim, const char *problem)
{
  g_set_error (error, KEYHOLD_ID_TOKEN_ERROR, KEYHOLD_ID_TOKEN_ERROR_OTHER_IDENTITY,
               "the ID token's \"%s\" %s", claim, problem);
}

/* NULL when the claim is absent, null, or not a string. */
static const char *
string_claim (JsonObject *claims, const char *name)
{
  const char *value = NULL;

  return keyhold_untrusted_json_get_string (claims, name, &value, NULL) ? value : NULL;
}

/* RFC 7519 §2 NumericDate: seconds since the epoch, possibly fractional. */
static gboolean
numeric_date_claim (JsonObject *claims, const char *name, gint64 *out_seconds)
{
  JsonNode *node = json_object_get_member (claims, name);
  double value;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;

  switch (json_node_get_value_type (node))
    {
    case G_TYPE_INT64:
      *out_seconds = CLAMP (json_node_get_int (node), -NUMERIC_DATE_LIMIT, NUMERIC_DATE_LIMIT);
      return TRUE;
    case G_TYPE_DOUBLE:
      value = json_node_get_double (node);
      if (!isfinite (value))
        return FALSE;
      *out_seconds = (gint64) CLAMP (floor (value), (double) -NUMERIC_DATE_LIMIT,
                                     (double) NUMERIC_DATE_LIMIT);
      return TRUE;
    default:
      return FALSE;
    }
}

static gboolean
check_issuer (JsonObject *claims, const char *issuer, GError **error)
{
  const char *iss = string_claim (claims, "iss");

  if (iss == NULL)
    {
      set_claim_error (error, "iss", "is missing or not a string");
      return FALSE;
    }
  if (strcmp (iss, issuer) != 0)
    {
      set_identity_error (error, "iss", "is not the provider's issuer");
      return FALSE;
    }
  return TRUE;
}

/* "aud" is a string or an array of strings (RFC 7519 §4.1.3). Returns
 * FALSE when it is neither; otherwise sets @out_found and @out_count. */
static gboolean
parse_audience (JsonNode *aud, const char *client_id, gboolean *out_found, guint *out_count)
{
  JsonArray *array;

  *out_found = FALSE;
  if (aud == NULL)
    return FALSE;
  if (JSON_NODE_HOLDS_VALUE (aud) && json_node_get_value_type (aud) == G_TYPE_STRING)
    {
      *out_count = 1;
      *out_found = strcmp (json_node_get_string (aud), client_id) == 0;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_ARRAY (aud))
    return FALSE;

  array = json_node_get_array (aud);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);

      if (!JSON_NODE_HOLDS_VALUE (element) || json_node_get_value_type (element) != G_TYPE_STRING)
        return FALSE;
      *out_found = *out_found || strcmp (json_node_get_string (element), client_id) == 0;
    }
  *out_count = json_array_get_length (array);
  return TRUE;
}

static gboolean
check_audience (JsonObject *claims, const char *client_id, GError **error)
{
  guint audiences = 0;
  gboolean found;
  const char *azp;

  if (!parse_audience (json_object_get_member (claims, "aud"), client_id, &found, &audiences))
    {
      set_claim_error (error, "aud", "is missing or not a string or an array of strings");
      return FALSE;
    }
  if (!found)
    {
      set_identity_error (error, "aud", "does not name this client");
      return FALSE;
    }

  /* OIDC Core §3.1.3.7 steps 4 and 5: with several audiences the token
   * must say which one it was issued to, and that must be us. */
  azp = string_claim (claims, "azp");
  if (json_object_has_member (claims, "azp") && azp == NULL)
    {
      set_claim_error (error, "azp", "is not a string");
      return FALSE;
    }
  if (azp != NULL && strcmp (azp, client_id) != 0)
    {
      set_identity_error (error, "azp", "is not this client");
      return FALSE;
    }
  if (audiences > 1 && azp == NULL)
    {
      set_claim_error (error, "azp", "is missing although \"aud\" has several values");
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_times (JsonObject *claims, gint64 now, gint64 leeway, GError **error)
{
  gint64 exp, iat, nbf;

  if (!numeric_date_claim (claims, "exp", &exp))
    {
      set_claim_error (error, "exp", "is missing or not a number");
      return FALSE;
    }
  if (exp + leeway <= now)
    {
      set_claim_error (error, "exp", "has passed: the token has expired");
      return FALSE;
    }
  if (!numeric_date_claim (claims, "iat", &iat))
    {
      set_claim_error (error, "iat", "is missing or not a number");
      return FALSE;
    }
  if (iat - leeway > now)
    {
      set_claim_error (error, "iat", "is in the future");
      return FALSE;
    }
  /* Optional in ID tokens, but binding when present (RFC 7519 §4.1.5). */
  if (json_object_has_member (claims, "nbf")
      && (!numeric_date_claim (claims, "nbf", &nbf) || nbf - leeway > now))
    {
      set_claim_error (error, "nbf", "is not a number or is in the future");
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_nonce (JsonObject *claims, const char *expected, GError **error)
{
  const char *nonce;

  /* Refreshed and device-flow ID tokens answer no request that carried a
   * nonce, so there is nothing to bind them to. */
  if (expected == NULL)
    return TRUE;

  nonce = string_claim (claims, "nonce");
  if (nonce == NULL || strcmp (nonce, expected) != 0)
    {
      set_claim_error (error, "nonce", "is missing or is not the one sent with the sign-in");
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_subject (JsonObject *claims, const char *expected, GError **error)
{
  const char *sub = string_claim (claims, "sub");

  if (sub == NULL || *sub == '\0' || strlen (sub) > SUBJECT_MAX_LENGTH)
    {
      set_claim_error (error, "sub", "is missing, empty, or longer than 255 characters");
      return FALSE;
    }
  if (expected != NULL && strcmp (sub, expected) != 0)
    {
      set_identity_error (error, "sub", "is not this account's subject");
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_claims (JsonObject *claims, const KeyholdIdTokenExpectations *expect, GError **error)
{
  return check_issuer (claims, expect->issuer, error)
         && check_audience (claims, expect->client_id, error)
         && check_times (claims, expect->now, expect->leeway_seconds, error)
         && check_nonce (claims, expect->nonce, error)
         && check_subject (claims, expect->subject, error);
}

JsonObject *
keyhold_id_token_validate (const KeyholdSecret *id_token,
                           JsonNode *jwks,
                           const KeyholdIdTokenExpectations *expect,
                           GError **error)
{
  g_autoptr (GError) jws_error = NULL;
  g_autoptr (KeyholdSecret) payload = NULL;
  g_autoptr (JsonNode) root = NULL;
  JsonObject *claims;

  g_return_val_if_fail (id_token != NULL, NULL);
  g_return_val_if_fail (jwks != NULL, NULL);
  g_return_val_if_fail (expect != NULL, NULL);
  g_return_val_if_fail (expect->issuer != NULL && expect->client_id != NULL, NULL);

  payload = keyhold_jws_verify (id_token, jwks, &jws_error);
  if (payload == NULL)
    {
      g_set_error_literal (error, KEYHOLD_ID_TOKEN_ERROR, error_code_from_jws (jws_error),
                           jws_error->message);
      return NULL;
    }

  root = keyhold_untrusted_json_parse_object (keyhold_secret_get (payload),
                                              keyhold_secret_get_length (payload), NULL);
  if (root == NULL)
    {
      g_set_error_literal (error, KEYHOLD_ID_TOKEN_ERROR, KEYHOLD_ID_TOKEN_ERROR_MALFORMED,
                           "the ID token's claims are not a JSON object");
      return NULL;
    }

  claims = json_node_get_object (root);
  if (!check_claims (claims, expect, error))
    return NULL;
  return json_object_ref (claims);
}
