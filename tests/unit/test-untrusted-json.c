/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <string.h>

#include "base/untrusted-json.h"

#define INTEGER_LIMIT ((gint64) G_MAXINT32 * 1000)

static JsonNode *
parse (const char *text, GError **error)
{
  return keyhold_untrusted_json_parse_object (text, strlen (text), error);
}

static void
assert_parsed (const char *text)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = parse (text, &error);

  ck_assert_msg (root != NULL, "refused %s: %s", text, error != NULL ? error->message : "");
  ck_assert (JSON_NODE_HOLDS_OBJECT (root));
}

static void
assert_refused_bytes (const char *data, gsize length, KeyholdUntrustedJsonError code)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = keyhold_untrusted_json_parse_object (data, length, &error);

  ck_assert_ptr_null (root);
  ck_assert_msg (g_error_matches (error, KEYHOLD_UNTRUSTED_JSON_ERROR, (gint) code),
                 "expected code %d, got %s", code, error != NULL ? error->message : "no error");
}

static void
assert_refused (const char *text, KeyholdUntrustedJsonError code)
{
  assert_refused_bytes (text, strlen (text), code);
}

/* @depth nested arrays inside the root object: the root counts as one. */
static char *
nested_arrays (guint depth)
{
  GString *text = g_string_new ("{\"a\":");

  for (guint i = 1; i < depth; i++)
    g_string_append_c (text, '[');
  for (guint i = 1; i < depth; i++)
    g_string_append_c (text, ']');
  g_string_append_c (text, '}');
  return g_string_free (text, FALSE);
}

START_TEST (test_object_parsed)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = parse (" {\"access_token\":\"abc\",\"expires_in\":3600,"
                                     "\"scope\":[\"a\",\"b\"],\"x\":{\"y\":null}}\r\n",
                                     &error);
  JsonObject *object;

  ck_assert_ptr_nonnull (root);
  ck_assert_ptr_null (error);
  object = json_node_get_object (root);
  ck_assert_str_eq (json_object_get_string_member (object, "access_token"), "abc");
  ck_assert_int_eq (json_object_get_int_member (object, "expires_in"), 3600);
  ck_assert_uint_eq (json_array_get_length (json_object_get_array_member (object, "scope")), 2);
  assert_parsed ("{}");
}
END_TEST

/* Only @length bytes count; no NUL is needed and what follows is ignored. */
START_TEST (test_length_bounds_the_input)
{
  static const char data[] = "{\"a\":\"b\"}garbage{";
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = keyhold_untrusted_json_parse_object (data, 9, &error);
  char unterminated[2] = { '{', '}' };
  g_autoptr (JsonNode) small = keyhold_untrusted_json_parse_object (unterminated, 2, &error);

  ck_assert_ptr_nonnull (root);
  ck_assert_str_eq (json_object_get_string_member (json_node_get_object (root), "a"), "b");
  ck_assert_ptr_nonnull (small);
  /* One byte short of the closing brace. */
  assert_refused_bytes (data, 8, KEYHOLD_UNTRUSTED_JSON_ERROR_SYNTAX);
}
END_TEST

START_TEST (test_not_utf8_refused)
{
  /* A lone continuation byte, an overlong '/', a truncated sequence, a
   * surrogate encoded in UTF-8. */
  assert_refused ("{\"a\":\"\x80\"}", KEYHOLD_UNTRUSTED_JSON_ERROR_SYNTAX);
  assert_refused ("{\"a\":\"\xc0\xaf\"}", KEYHOLD_UNTRUSTED_JSON_ERROR_SYNTAX);
  assert_refused ("{\"a\":\"\xe2\x82\"}", KEYHOLD_UNTRUSTED_JSON_ERROR_SYNTAX);
  assert_refused ("{\"a\":\"\xed\xa0\x80\"}", KEYHOLD_UNTRUSTED_JSON_ERROR_SYNTAX);
  /* An embedded NUL inside the length is not text either. */
  assert_refused_bytes ("{\"a\":\"\0\"}", 9, KEYHOLD_UNTRUSTED_JSON_ERROR_SYNTAX);
  assert_parsed ("{\"a\":\"caf\xc3\xa9 \xf0\x9f\x94\x91\"}");
}
END_TEST

START_TEST (test_not_json_refused)
{
  static const char *const texts[] = {
    "{",
    "{\"a\"}",
    "{\"a\":}",
    "{\"a\":1,}",
    "{a:1}",
    "{\"a\":tru}",
    "{\"a\":[1,2}",
    /* json-glib alone takes these. */
    "{'a':1}",
    "{\"a\":'x'}",
    "{/* c */\"a\":1}",
    "{\"a\":1}\n// c",
  };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    assert_refused (texts[i], KEYHOLD_UNTRUSTED_JSON_ERROR_SYNTAX);
}
END_TEST

START_TEST (test_root_must_be_one_object)
{
  static const char *const texts[] = {
    "",
    "   ",
    "[]",
    "[{}]",
    "1",
    "\"{}\"",
    "null",
    "true",
    /* json-glib alone would take the first value of these and leak the
     * rest. */
    "{}{}",
    "{} {\"a\":1}",
    "{}[]",
    "{}1",
    "{} x",
    "[]{}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    assert_refused (texts[i], KEYHOLD_UNTRUSTED_JSON_ERROR_NOT_OBJECT);
}
END_TEST

START_TEST (test_depth_limit)
{
  g_autofree char *deepest = nested_arrays (KEYHOLD_UNTRUSTED_JSON_MAX_DEPTH);
  g_autofree char *too_deep = nested_arrays (KEYHOLD_UNTRUSTED_JSON_MAX_DEPTH + 1);
  GString *objects = g_string_new (NULL);
  g_autofree char *deep_objects = NULL;

  assert_parsed (deepest);
  assert_refused (too_deep, KEYHOLD_UNTRUSTED_JSON_ERROR_TOO_DEEP);

  /* Objects count as arrays do. */
  for (guint i = 0; i <= KEYHOLD_UNTRUSTED_JSON_MAX_DEPTH; i++)
    g_string_append (objects, "{\"a\":");
  g_string_append (objects, "1");
  for (guint i = 0; i <= KEYHOLD_UNTRUSTED_JSON_MAX_DEPTH; i++)
    g_string_append_c (objects, '}');
  deep_objects = g_string_free (objects, FALSE);
  assert_refused (deep_objects, KEYHOLD_UNTRUSTED_JSON_ERROR_TOO_DEEP);
}
END_TEST

/* The input that made the bound necessary: json-glib recurses per level. */
START_TEST (test_huge_nesting_refused_without_recursion)
{
  gsize length = 512 * 1024;
  g_autofree char *text = g_malloc (length);

  text[0] = '{';
  text[1] = '"';
  text[2] = 'a';
  text[3] = '"';
  text[4] = ':';
  memset (text + 5, '[', length - 5);
  assert_refused_bytes (text, length, KEYHOLD_UNTRUSTED_JSON_ERROR_TOO_DEEP);
}
END_TEST

/* json-glib's scanner reads 'single-quoted' strings and C comments, where
 * a '"' does not open a string: the depth count must not be thrown off by
 * one, or deep nesting reaches json-glib's recursion after all. */
static char *
nesting_behind (const char *prefix, guint depth)
{
  GString *text = g_string_new ("{");

  g_string_append (text, prefix);
  g_string_append (text, "\"a\":");
  for (guint i = 0; i < depth; i++)
    g_string_append_c (text, '[');
  for (guint i = 0; i < depth; i++)
    g_string_append_c (text, ']');
  g_string_append (text, ",\"b\":\"\"}");
  return g_string_free (text, FALSE);
}

START_TEST (test_quote_tricks_cannot_hide_nesting)
{
  static const char *const prefixes[] = { "'\"':1,", "/* \" */", "/*\"*/'\"':1," };

  for (guint i = 0; i < G_N_ELEMENTS (prefixes); i++)
    {
      g_autofree char *shallow = nesting_behind (prefixes[i], 2);
      g_autofree char *deep = nesting_behind (prefixes[i], 300000);

      assert_refused (deep, KEYHOLD_UNTRUSTED_JSON_ERROR_SYNTAX);
      assert_refused (shallow, KEYHOLD_UNTRUSTED_JSON_ERROR_SYNTAX);
    }
}
END_TEST

/* Brackets inside strings are text, including after an escaped quote. */
START_TEST (test_brackets_in_strings_do_not_nest)
{
  GString *text = g_string_new ("{\"a\":\"\\\"");
  g_autofree char *many = NULL;

  for (guint i = 0; i < 4 * KEYHOLD_UNTRUSTED_JSON_MAX_DEPTH; i++)
    g_string_append (text, "[{");
  g_string_append (text, "\\\\\",\"b\":\"}}}\"}");
  many = g_string_free (text, FALSE);
  assert_parsed (many);

  /* A closing bracket in a string does not end the root early. */
  assert_parsed ("{\"a\":\"}\",\"b\":1}");
  assert_parsed ("{\"}{\":\"][\"}");
}
END_TEST

/* json-glib's message may quote the offending token, which can be part of
 * a credential. */
START_TEST (test_syntax_error_does_not_quote_input)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = parse ("{\"refresh_token\":\"s3cr3t-value\" s3cr3t-bare}", &error);

  ck_assert_ptr_null (root);
  ck_assert (
      g_error_matches (error, KEYHOLD_UNTRUSTED_JSON_ERROR, KEYHOLD_UNTRUSTED_JSON_ERROR_SYNTAX));
  ck_assert_ptr_null (strstr (error->message, "s3cr3t"));
}
END_TEST

static JsonNode *
members (void)
{
  g_autoptr (GError) error = NULL;
  JsonNode *root = parse ("{\"s\":\"text\",\"empty\":\"\",\"null\":null,\"int\":3600,"
                          "\"negative\":-5,\"double\":3600.0,\"fraction\":3600.5,"
                          "\"quoted\":\"3600\",\"bool\":true,\"object\":{},\"array\":[1],"
                          "\"huge\":1e300,\"tiny\":-1e300,\"int64\":9223372036854775807,"
                          "\"min64\":-9223372036854775807,\"at_limit\":2147483647000}",
                          &error);

  ck_assert_msg (root != NULL, "%s", error != NULL ? error->message : "");
  return root;
}

START_TEST (test_get_string)
{
  g_autoptr (JsonNode) root = members ();
  JsonObject *object = json_node_get_object (root);
  static const char *const wrong[] = { "int", "double", "bool", "object", "array" };
  const char *value = "unset";

  ck_assert (keyhold_untrusted_json_get_string (object, "s", &value, NULL));
  ck_assert_str_eq (value, "text");
  ck_assert (keyhold_untrusted_json_get_string (object, "empty", &value, NULL));
  ck_assert_str_eq (value, "");

  /* Absent and null read alike, as absent. */
  value = "unset";
  ck_assert (keyhold_untrusted_json_get_string (object, "missing", &value, NULL));
  ck_assert_ptr_null (value);
  value = "unset";
  ck_assert (keyhold_untrusted_json_get_string (object, "null", &value, NULL));
  ck_assert_ptr_null (value);

  for (guint i = 0; i < G_N_ELEMENTS (wrong); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *quoted = g_strdup_printf ("\"%s\"", wrong[i]);

      ck_assert (!keyhold_untrusted_json_get_string (object, wrong[i], &value, &error));
      ck_assert (g_error_matches (error, KEYHOLD_UNTRUSTED_JSON_ERROR,
                                  KEYHOLD_UNTRUSTED_JSON_ERROR_WRONG_TYPE));
      ck_assert_msg (strstr (error->message, quoted) != NULL, "%s", error->message);
    }
}
END_TEST

static gint64
get_integer (JsonObject *object, const char *member)
{
  g_autoptr (GError) error = NULL;
  gint64 value = 42;
  gboolean present = FALSE;

  ck_assert_msg (keyhold_untrusted_json_get_integer (object, member, &value, &present, &error),
                 "%s: %s", member, error != NULL ? error->message : "");
  ck_assert (present);
  return value;
}

START_TEST (test_get_integer)
{
  g_autoptr (JsonNode) root = members ();
  JsonObject *object = json_node_get_object (root);
  static const char *const wrong[] = { "fraction", "quoted", "bool", "s", "object", "array" };
  static const char *const absent[] = { "missing", "null" };

  ck_assert_int_eq (get_integer (object, "int"), 3600);
  ck_assert_int_eq (get_integer (object, "negative"), -5);
  ck_assert_int_eq (get_integer (object, "double"), 3600);
  ck_assert_int_eq (get_integer (object, "at_limit"), INTEGER_LIMIT);
  /* Clamped, so that now + value cannot overflow. */
  ck_assert_int_eq (get_integer (object, "huge"), INTEGER_LIMIT);
  ck_assert_int_eq (get_integer (object, "tiny"), -INTEGER_LIMIT);
  ck_assert_int_eq (get_integer (object, "int64"), INTEGER_LIMIT);
  ck_assert_int_eq (get_integer (object, "min64"), -INTEGER_LIMIT);

  for (guint i = 0; i < G_N_ELEMENTS (absent); i++)
    {
      gint64 value = 42;
      gboolean present = TRUE;

      ck_assert (keyhold_untrusted_json_get_integer (object, absent[i], &value, &present, NULL));
      ck_assert (!present);
      ck_assert_int_eq (value, 0);
    }

  for (guint i = 0; i < G_N_ELEMENTS (wrong); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *quoted = g_strdup_printf ("\"%s\"", wrong[i]);
      gint64 value = 42;
      gboolean present = FALSE;

      ck_assert (!keyhold_untrusted_json_get_integer (object, wrong[i], &value, &present, &error));
      ck_assert (g_error_matches (error, KEYHOLD_UNTRUSTED_JSON_ERROR,
                                  KEYHOLD_UNTRUSTED_JSON_ERROR_WRONG_TYPE));
      ck_assert_msg (strstr (error->message, quoted) != NULL, "%s", error->message);
    }
}
END_TEST

START_TEST (test_wipe_strings)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = parse ("{\"access_token\":\"top-secret\",\"n\":7,"
                                     "\"nested\":{\"list\":[\"in-array\",{\"deep\":\"x\"}]}}",
                                     &error);
  JsonObject *object = json_node_get_object (root);
  JsonArray *list
      = json_object_get_array_member (json_object_get_object_member (object, "nested"), "list");
  const char *token = json_object_get_string_member (object, "access_token");
  const char *in_array = json_array_get_string_element (list, 0);
  const char *deep
      = json_object_get_string_member (json_array_get_object_element (list, 1), "deep");
  static const char zeros[16] = { 0 };

  keyhold_untrusted_json_wipe_strings (root);

  /* The same buffers, now all zeros over their former length. */
  ck_assert_int_eq (memcmp (token, zeros, strlen ("top-secret")), 0);
  ck_assert_int_eq (memcmp (in_array, zeros, strlen ("in-array")), 0);
  ck_assert_int_eq (memcmp (deep, zeros, 1), 0);
  /* Other values stay. */
  ck_assert_int_eq (json_object_get_int_member (object, "n"), 7);
}
END_TEST

int
main (void)
{
  Suite *suite = suite_create ("untrusted-json");
  TCase *tcase = tcase_create ("untrusted-json");
  SRunner *runner;
  int failed;

  tcase_add_test (tcase, test_object_parsed);
  tcase_add_test (tcase, test_length_bounds_the_input);
  tcase_add_test (tcase, test_not_utf8_refused);
  tcase_add_test (tcase, test_not_json_refused);
  tcase_add_test (tcase, test_root_must_be_one_object);
  tcase_add_test (tcase, test_depth_limit);
  tcase_add_test (tcase, test_huge_nesting_refused_without_recursion);
  tcase_add_test (tcase, test_brackets_in_strings_do_not_nest);
  tcase_add_test (tcase, test_quote_tricks_cannot_hide_nesting);
  tcase_add_test (tcase, test_syntax_error_does_not_quote_input);
  tcase_add_test (tcase, test_get_string);
  tcase_add_test (tcase, test_get_integer);
  tcase_add_test (tcase, test_wipe_strings);
  suite_add_tcase (suite, tcase);
  runner = srunner_create (suite);
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
