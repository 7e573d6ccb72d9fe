/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* OAuth 2.0 syntax rules (RFC 6749 Appendix A), in one place for the
 * accounts file and token requests. Pure functions. */

/* Longest scope token we accept; RFC 6749 sets no limit. */
#define KEYHOLD_SCOPE_MAX_LENGTH 128

/* RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), at most
 * KEYHOLD_SCOPE_MAX_LENGTH bytes. */
gboolean keyhold_oauth_syntax_is_scope_token (const char *scope);

G_END_DECLS
