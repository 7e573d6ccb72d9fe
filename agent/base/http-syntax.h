/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The syntax rules of RFC 9110 that requests are checked against, in one
 * place: the HTTP module refuses what breaks them at send time, and the
 * outbox refuses the same at enqueue time. Pure functions of their
 * arguments. */

/* RFC 9110 §5.6.2 tchar: "!#$%&'*+-.^_`|~", digits and ASCII letters. */
gboolean keyhold_http_syntax_is_tchar (char c);

/* RFC 9110 §5.6.2 token: one or more tchars. What header names and
 * methods are made of. */
gboolean keyhold_http_syntax_is_token (const char *string);

/* RFC 9110 §5.5 field-value: visible characters, obs-text, SP and HTAB;
 * no other control character (CR, LF, DEL...). The empty value is fine. */
gboolean keyhold_http_syntax_is_field_value (const char *string);

G_END_DECLS
