/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The rules for an Account1.GetAccessToken request, shared by the account
 * (main loop) and the bus layer's fast path (GDBus's worker thread), so
 * that both accept, key and bound a request exactly alike. Pure functions:
 * safe on any thread. */

/* Default min_validity when the caller passes 0, or half the token's
 * lifetime if that is less (ARCHITECTURE.md, "Token lifetime"). */
#define KEYHOLD_TOKEN_DEFAULT_MIN_VALIDITY_S 60
/* Longest min_validity a caller may ask for. */
#define KEYHOLD_TOKEN_MAX_MIN_VALIDITY_S (24 * 60 * 60)
/* Most scopes one request may name. */
#define KEYHOLD_TOKEN_MAX_SCOPES 32

/* Checks a request's arguments: scopes are RFC 6749 §3.3 scope tokens (at
 * most KEYHOLD_TOKEN_MAX_SCOPES), the audience an absolute URI without
 * fragment (RFC 8707 §2) or "", min_validity within bounds. */
gboolean keyhold_token_request_validate (const char *const *scopes,
                                         const char *audience,
                                         guint min_validity_s,
                                         GError **error);

/* The cache key of a request: "" for the account's own scopes and no
 * audience; otherwise the sorted, de-duplicated scopes joined by spaces,
 * then a newline and the audience. Requests that differ only in scope order or
 * repetition share a key, and so a token. */
char *keyhold_token_request_key (const char *const *scopes, const char *audience);

/* @min_validity_s as asked, in microseconds; 0 means the default for a
 * token that lives @lifetime_us: KEYHOLD_TOKEN_DEFAULT_MIN_VALIDITY_S or
 * half of @lifetime_us, whichever is less. A fixed default would make a
 * fresh token from a provider whose tokens live 20 s unusable. */
gint64 keyhold_token_request_min_validity_us (guint min_validity_s, gint64 lifetime_us);

G_END_DECLS
