/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <math.h>
#include <sodium.h>
#include <string.h>

#include "base/untrusted-json.h"

#define INTEGER_LIMIT ((gint64) G_MAXINT32 * 1000)

/* clang-format 14 would put spaces around the hyphens of the quark name. */
/* clang-format off */
G_DEFINE_QUARK (keyhold-untrusted-json-error-quark, keyhold_untrusted_json_error)
/* clang-format on */

typedef enum
{
  STRUCTURE_OK,
  STRUCTURE_NOT_JSON,
  STRUCTURE_TOO_DEEP,
  STRUCTURE_NOT_ONE_OBJECT,
} Structure;

/* Outside string literals, JSON text holds only structure, whitespace,
 * numbers and the literals true, false and null. json-glib's scanner also
 * takes 'single-quoted' strings and C comments; a '"' inside one of those
 * would make the count below skip brackets that json-glib then nests. */
static gboolean
is_json_text_outside_strings (char c)
{
  return g_ascii_isalnum (c) || strchr ("{}[]:,\"-+.", c) != NULL;
}

/* Counts bracket nesting outside string literals, and checks that the text
 * is one object and nothing else: json-glib 1.6 takes "{...}{...}" or
 * "1 [2]" as JSON, returns the first value and leaks the others. This is
 * not a parser: it only has to be exact for valid JSON, and any input it
 * misjudges is one json-glib rejects anyway, or one with a character that
 * no JSON has outside a string, which is refused here. */
static Structure
check_structure (const char *data, gsize length)
{
  gboolean in_string = FALSE;
  gboolean root_closed = FALSE;
  guint depth = 0;

  for (gsize i = 0; i < length; i++)
    {
      char c = data[i];

      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            in_string = FALSE;
        }
      else if (g_ascii_isspace (c))
        continue;
      else if (c == '\0' || !is_json_text_outside_strings (c))
        return STRUCTURE_NOT_JSON;
      else if (depth == 0 && (root_closed || c != '{'))
        return STRUCTURE_NOT_ONE_OBJECT;
      else if (c == '"')
        in_string = TRUE;
      else if (c == '[' || c == '{')
        {
          if (++depth > KEYHOLD_UNTRUSTED_JSON_MAX_DEPTH)
            return STRUCTURE_TOO_DEEP;
        }
      else if (c == ']' || c == '}')
        root_closed = --depth == 0;
    }
  return STRUCTURE_OK;
}

JsonNode *
keyhold_untrusted_json_parse_object (const char *data, gsize length, GError **error)
{
  g_autoptr (JsonParser) parser = NULL;
  JsonNode *root;

  if (length > G_MAXSSIZE || !g_utf8_validate (data, (gssize) length, NULL))
    {
      g_set_error_literal (error, KEYHOLD_UNTRUSTED_JSON_ERROR, KEYHOLD_UNTRUSTED_JSON_ERROR_SYNTAX,
                           "not UTF-8 text");
      return NULL;
    }
  switch (check_structure (data, length))
    {
    case STRUCTURE_NOT_JSON:
      g_set_error_literal (error, KEYHOLD_UNTRUSTED_JSON_ERROR, KEYHOLD_UNTRUSTED_JSON_ERROR_SYNTAX,
                           "not valid JSON");
      return NULL;
    case STRUCTURE_TOO_DEEP:
      g_set_error (error, KEYHOLD_UNTRUSTED_JSON_ERROR, KEYHOLD_UNTRUSTED_JSON_ERROR_TOO_DEEP,
                   "JSON nested deeper than %d levels", KEYHOLD_UNTRUSTED_JSON_MAX_DEPTH);
      return NULL;
    case STRUCTURE_NOT_ONE_OBJECT:
      g_set_error_literal (error, KEYHOLD_UNTRUSTED_JSON_ERROR,
                           KEYHOLD_UNTRUSTED_JSON_ERROR_NOT_OBJECT, "JSON is not one object");
      return NULL;
    case STRUCTURE_OK:
    default:
      break;
    }

  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, data, (gssize) length, NULL))
    {
      /* json-glib's message can quote the unexpected token, which may be
       * part of a secret; it stays out of the error. */
      g_set_error_literal (error, KEYHOLD_UNTRUSTED_JSON_ERROR, KEYHOLD_UNTRUSTED_JSON_ERROR_SYNTAX,
                           "not valid JSON");
      return NULL;
    }

  root = json_parser_steal_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      if (root != NULL)
        {
          keyhold_untrusted_json_wipe_strings (root);
          json_node_unref (root);
        }
      g_set_error_literal (error, KEYHOLD_UNTRUSTED_JSON_ERROR,
                           KEYHOLD_UNTRUSTED_JSON_ERROR_NOT_OBJECT, "JSON is not an object");
      return NULL;
    }
  return root;
}

static gboolean
get_present_member (JsonObject *object, const char *member, JsonNode **out_node)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return FALSE;
  *out_node = node;
  return TRUE;
}

static void
set_wrong_type (GError **error, const char *member, const char *expected)
{
  g_set_error (error, KEYHOLD_UNTRUSTED_JSON_ERROR, KEYHOLD_UNTRUSTED_JSON_ERROR_WRONG_TYPE,
               "\"%s\" is not %s", member, expected);
}

gboolean
keyhold_untrusted_json_get_string (JsonObject *object,
                                   const char *member,
                                   const char **out_value,
                                   GError **error)
{
  JsonNode *node;

  if (!get_present_member (object, member, &node))
    {
      *out_value = NULL;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      set_wrong_type (error, member, "a string");
      return FALSE;
    }
  *out_value = json_node_get_string (node);
  return TRUE;
}

static gboolean
node_get_integer (JsonNode *node, gint64 *out_value)
{
  GType type;
  double value;

  if (!JSON_NODE_HOLDS_VALUE (node))
    return FALSE;

  type = json_node_get_value_type (node);
  if (type == G_TYPE_INT64)
    {
      *out_value = CLAMP (json_node_get_int (node), -INTEGER_LIMIT, INTEGER_LIMIT);
      return TRUE;
    }
  if (type != G_TYPE_DOUBLE)
    return FALSE;

  /* Some servers serialise every number as a double ("3600.0"). */
  value = json_node_get_double (node);
  if (!isfinite (value) || value != floor (value))
    return FALSE;
  *out_value = (gint64) CLAMP (value, (double) -INTEGER_LIMIT, (double) INTEGER_LIMIT);
  return TRUE;
}

gboolean
keyhold_untrusted_json_get_integer (JsonObject *object,
                                    const char *member,
                                    gint64 *out_value,
                                    gboolean *out_present,
                                    GError **error)
{
  JsonNode *node;
  gint64 value;

  if (!get_present_member (object, member, &node))
    {
      *out_value = 0;
      *out_present = FALSE;
      return TRUE;
    }
  if (!node_get_integer (node, &value))
    {
      set_wrong_type (error, member, "an integer");
      return FALSE;
    }
  *out_value = value;
  *out_present = TRUE;
  return TRUE;
}

static void
wipe_object_member (JsonObject *object, const char *member, JsonNode *node, gpointer user_data)
{
  keyhold_untrusted_json_wipe_strings (node);
}

static void
wipe_array_element (JsonArray *array, guint index, JsonNode *node, gpointer user_data)
{
  keyhold_untrusted_json_wipe_strings (node);
}

void
keyhold_untrusted_json_wipe_strings (JsonNode *node)
{
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_OBJECT:
      json_object_foreach_member (json_node_get_object (node), wipe_object_member, NULL);
      break;
    case JSON_NODE_ARRAY:
      json_array_foreach_element (json_node_get_array (node), wipe_array_element, NULL);
      break;
    case JSON_NODE_VALUE:
      if (json_node_get_value_type (node) == G_TYPE_STRING)
        {
          /* json-glib owns this heap copy; zeroing it in place is the only
           * way to reach it before json_node_unref () frees it. */
          char *value = (char *) json_node_get_string (node);
          sodium_memzero (value, strlen (value));
        }
      break;
    case JSON_NODE_NULL:
    default:
      break;
    }
}
