/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* JSON from the network (provider documents, token endpoint answers) goes
 * through here before json-glib sees it. json-glib's parser recurses once
 * per nesting level, so a body of a few hundred KiB of "[" overflows the
 * stack; the nesting depth is therefore bounded first. */

#define KEYHOLD_UNTRUSTED_JSON_ERROR (keyhold_untrusted_json_error_quark ())

typedef enum
{
  /* Not UTF-8, or not JSON. */
  KEYHOLD_UNTRUSTED_JSON_ERROR_SYNTAX = 0,
  /* Nested deeper than KEYHOLD_UNTRUSTED_JSON_MAX_DEPTH. */
  KEYHOLD_UNTRUSTED_JSON_ERROR_TOO_DEEP = 1,
  /* Valid JSON, but the root is not an object. */
  KEYHOLD_UNTRUSTED_JSON_ERROR_NOT_OBJECT = 2,
  /* A member has the wrong type. */
  KEYHOLD_UNTRUSTED_JSON_ERROR_WRONG_TYPE = 3,
} KeyholdUntrustedJsonError;

GQuark keyhold_untrusted_json_error_quark (void);

/* OAuth and discovery documents nest two or three levels; JWKS four. */
#define KEYHOLD_UNTRUSTED_JSON_MAX_DEPTH 32

/* Parses @length bytes of @data (no NUL needed) whose root must be an
 * object. Returns the root node. */
JsonNode *keyhold_untrusted_json_parse_object (const char *data, gsize length, GError **error);

/* Member accessors that treat an absent member and a JSON null alike (as
 * absent: *out is NULL / *out_present FALSE) and refuse any other type. */
gboolean keyhold_untrusted_json_get_string (JsonObject *object,
                                            const char *member,
                                            const char **out_value,
                                            GError **error);
/* An integral JSON number (3600 or 3600.0; not "3600"), clamped to
 * ±G_MAXINT32 * 1000 so that callers can add it to a time safely. */
gboolean keyhold_untrusted_json_get_integer (JsonObject *object,
                                             const char *member,
                                             gint64 *out_value,
                                             gboolean *out_present,
                                             GError **error);

/* Overwrites every string value under @node with zeros. json-glib copied
 * them out of the body while parsing; secrets among them must not linger
 * in freed heap memory once the tree is gone. */
void keyhold_untrusted_json_wipe_strings (JsonNode *node);

G_END_DECLS
