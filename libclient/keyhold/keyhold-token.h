/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(KEYHOLD_INSIDE) && !defined(KEYHOLD_COMPILATION)
#error "Only <keyhold/keyhold.h> can be included directly."
#endif

#include <glib-object.h>

#include <keyhold/keyhold-visibility.h>

G_BEGIN_DECLS

/**
 * KeyholdToken:
 *
 * An access token and the time it expires.
 *
 * The token's text lives in locked memory (libsodium's guarded allocation)
 * that is wiped when the last reference goes, so it never sits in an
 * ordinary heap string of the library. Two copies are outside the
 * library's control: GDBus's message buffers hold the token briefly while
 * the reply is decoded, and a program that copies the text (a bound
 * language's string, an HTTP library's header list) owns that copy. Keep a
 * #KeyholdToken only as long as the request that needs it, and ask again
 * for the next one: the agent caches tokens, so that is cheap.
 *
 * Since: 0.1
 */
typedef struct _KeyholdToken KeyholdToken;

#define KEYHOLD_TYPE_TOKEN (keyhold_token_get_type ())

KEYHOLD_PUBLIC
GType keyhold_token_get_type (void) G_GNUC_CONST;

KEYHOLD_PUBLIC
KeyholdToken *keyhold_token_ref (KeyholdToken *self);
KEYHOLD_PUBLIC
void keyhold_token_unref (KeyholdToken *self);

KEYHOLD_PUBLIC
const char *keyhold_token_get_value (KeyholdToken *self);
KEYHOLD_PUBLIC
gint64 keyhold_token_get_expires_at (KeyholdToken *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdToken, keyhold_token_unref)

G_END_DECLS
