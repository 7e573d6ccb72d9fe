/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "net/http.h"

G_BEGIN_DECLS

/* OpenID Connect Discovery 1.0 / RFC 8414 authorization server metadata:
 * fetching, parsing and validating. Caching is the caller's job (it keeps
 * the document text so that start-up works offline). */

#define KEYHOLD_PROVIDER_ERROR (keyhold_provider_error_quark ())

typedef enum
{
  /* Not UTF-8 JSON, not an object, a member of the wrong type, or a
   * required member missing. */
  KEYHOLD_PROVIDER_ERROR_MALFORMED = 0,
  /* The document's "issuer" is not exactly the configured issuer
   * (RFC 8414 §3.3, OIDC Discovery §4.3): it may describe another provider. */
  KEYHOLD_PROVIDER_ERROR_ISSUER_MISMATCH = 1,
  /* The issuer or an endpoint breaks url-policy.h: not https (plain http is
   * accepted only on loopback, and for endpoints only when the issuer is
   * loopback http), credentials in the URL, a fragment, or a query in the
   * issuer. */
  KEYHOLD_PROVIDER_ERROR_INSECURE_URL = 2,
  /* The document exceeds KEYHOLD_PROVIDER_MAX_DOCUMENT_BYTES. */
  KEYHOLD_PROVIDER_ERROR_TOO_LARGE = 3,
  /* The server answered with a status other than 200. */
  KEYHOLD_PROVIDER_ERROR_HTTP_STATUS = 4,
} KeyholdProviderError;

GQuark keyhold_provider_error_quark (void);

/* Real discovery documents and key sets are a few KiB. */
#define KEYHOLD_PROVIDER_MAX_DOCUMENT_BYTES (256 * 1024)

typedef struct
{
  char *issuer;
  char *authorization_endpoint; /* NULL if absent */
  char *token_endpoint;
  char *device_authorization_endpoint; /* NULL if absent */
  char *revocation_endpoint;           /* NULL if absent */
  char *userinfo_endpoint;             /* NULL if absent */
  char *jwks_uri;
  /* RFC 9207: the provider puts "iss" in every authorization response. */
  gboolean authorization_response_iss_parameter_supported;
  GStrv code_challenge_methods_supported; /* NULL if absent */
} KeyholdProviderMetadata;

/* Parses @document (@length bytes, need not be NUL-terminated) and checks it
 * against @expected_issuer. Every endpoint URL is checked with
 * keyhold_url_policy_approve_endpoint () and kept in the form it returns,
 * the one to send requests to. */
KeyholdProviderMetadata *keyhold_provider_metadata_parse (const char *document,
                                                          gsize length,
                                                          const char *expected_issuer,
                                                          GError **error);
void keyhold_provider_metadata_free (KeyholdProviderMetadata *metadata);

/* TRUE when the provider advertises PKCE S256, or advertises nothing (many
 * providers support PKCE without saying so; only an explicit list that lacks
 * S256 means no). */
gboolean keyhold_provider_metadata_allows_pkce_s256 (const KeyholdProviderMetadata *metadata);

/* Checks that @document is a JSON Web Key Set: an object with a "keys"
 * array (RFC 7517 §5). The keys themselves are checked where they are used. */
gboolean keyhold_provider_jwks_validate (const char *document, gsize length, GError **error);

/* GETs @issuer + "/.well-known/openid-configuration". Transport failures
 * come back unchanged in the KEYHOLD_HTTP_ERROR domain, so that callers can
 * tell "offline" from "the provider said something wrong". */
void keyhold_provider_fetch_async (KeyholdHttp *http,
                                   const char *issuer,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data);
/* Returns the parsed metadata and, in @out_document, the document text for
 * the caller's cache. */
KeyholdProviderMetadata *keyhold_provider_fetch_finish (GAsyncResult *result,
                                                        char **out_document,
                                                        GError **error);

/* GETs the key set at @jwks_uri (taken from validated metadata). */
void keyhold_provider_fetch_jwks_async (KeyholdHttp *http,
                                        const char *jwks_uri,
                                        GCancellable *cancellable,
                                        GAsyncReadyCallback callback,
                                        gpointer user_data);
/* Returns the document text, validated by keyhold_provider_jwks_validate. */
char *keyhold_provider_fetch_jwks_finish (GAsyncResult *result, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdProviderMetadata, keyhold_provider_metadata_free)

G_END_DECLS
