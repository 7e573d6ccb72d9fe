/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Which URLs keyhold talks to. Every URL must be absolute http(s) with a
 * host and no user information; plain http is accepted only for a loopback
 * host (127.0.0.0/8, ::1 or "localhost"), where nothing crosses a network
 * (RFC 8252 §8.3). Hosts are limited to IP literals and DNS names, so that a
 * host keyhold checks is the host libcurl connects to.
 *
 * Malformed URLs fail with KEYHOLD_ERROR_INVALID_ARGUMENT. Messages name
 * the part that is wrong but never repeat the URL, which may carry data. */

/* Longer URLs are refused before they are parsed. */
#define KEYHOLD_URL_POLICY_MAX_LENGTH 8192

/* An OpenID Connect / RFC 8414 issuer identifier: additionally no query and
 * no fragment. */
gboolean keyhold_url_policy_check_issuer (const char *url, GError **error);

/* The origin "scheme://host[:port]" of @url: scheme and host in lower case,
 * international names in their ASCII (punycode) form, IPv6 addresses in
 * canonical form inside brackets, the scheme's default port left out.
 * Path, query and fragment are ignored. */
char *keyhold_url_policy_origin (const char *url, GError **error);

/* The functions that approve a URL for a request return it in the one
 * form that may be handed to libcurl: the host as the ASCII name (or
 * canonical IP address) that was checked, the scheme's default port left
 * out, path, query and fragment unchanged. Sending the URL as the caller
 * wrote it would let libcurl translate an international host by other
 * rules than the check did, and connect elsewhere. */

/* @url if its origin is one of @allowed_origins, which must be origins as
 * returned by keyhold_url_policy_origin (). An origin not in the list fails
 * with KEYHOLD_ERROR_ACCESS_DENIED. */
char *keyhold_url_policy_approve (const char *url,
                                  const char *const *allowed_origins,
                                  GError **error);

/* An endpoint URL from @issuer's discovery metadata: https, no fragment
 * (RFC 6749 §3.1), a query is allowed. Plain loopback http is accepted
 * only while @issuer itself is plain loopback http, as in a local test
 * provider. */
char *keyhold_url_policy_approve_endpoint (const char *endpoint_url,
                                           const char *issuer,
                                           GError **error);

G_END_DECLS
