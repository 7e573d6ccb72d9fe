/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <stdarg.h>
#include <string.h>

#include "agent-client.h"

#define TEST_CLIENT_ID "test-client"

char *
keyhold_test_account_path (const char *name)
{
  return keyhold_contract_account_path (name);
}

static char *
cli_path (void)
{
  return g_build_filename (g_getenv ("KEYHOLD_BUILD_DIR"), "examples", "keyhold", NULL);
}

static void
run_cli_or_die (KeyholdTestEnv *env, const char *const *argv, const char *expect_in_stdout)
{
  g_autofree char *out = NULL, *err = NULL;
  int status = keyhold_test_env_run (env, argv, &out, &err);

  if (status != 0 || (expect_in_stdout != NULL && strstr (out, expect_in_stdout) == NULL))
    g_error ("`keyhold %s %s` failed with %d\nstdout: %s\nstderr: %s", argv[1], argv[2], status,
             out, err);
}

void
keyhold_test_add_account (KeyholdTestEnv *env, const char *name)
{
  g_autofree char *cli = cli_path ();
  const char *issuer = keyhold_test_env_get_issuer (env);
  const char *argv[] = { cli,           "account",      "add",          name,   "--issuer", issuer,
                         "--client-id", TEST_CLIENT_ID, "--api-origin", issuer, NULL };

  run_cli_or_die (env, argv, NULL);
}

int
keyhold_test_run_cli (KeyholdTestEnv *env, char **out_stdout, char **out_stderr, ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  va_list args;

  g_ptr_array_add (argv, cli_path ());
  va_start (args, out_stderr);
  for (const char *arg = va_arg (args, const char *); arg != NULL;
       arg = va_arg (args, const char *))
    g_ptr_array_add (argv, g_strdup (arg));
  va_end (args);
  g_ptr_array_add (argv, NULL);
  return keyhold_test_env_run (env, (const char *const *) argv->pdata, out_stdout, out_stderr);
}

void
keyhold_test_login (KeyholdTestEnv *env, const char *name)
{
  g_autofree char *cli = cli_path ();
  const char *argv[] = { cli, "login", name, NULL };

  run_cli_or_die (env, argv, "Signed in");
}

char *
keyhold_test_get_token (KeyholdTestEnv *env,
                        const char *name,
                        const char *const *scopes,
                        const char *audience,
                        guint min_validity,
                        gint64 *out_expires_at,
                        GError **error)
{
  static const char *const no_scopes[] = { NULL };
  g_autofree char *path = keyhold_test_account_path (name);
  g_autoptr (GVariant) reply = NULL;
  char *token = NULL;
  gint64 expires_at = 0;

  reply = g_dbus_connection_call_sync (
      keyhold_test_env_get_bus (env), KEYHOLD_AGENT_BUS_NAME, path, KEYHOLD_ACCOUNT1_INTERFACE,
      "GetAccessToken",
      g_variant_new ("(^as&su)", scopes != NULL ? scopes : no_scopes,
                     audience != NULL ? audience : "", min_validity),
      G_VARIANT_TYPE ("(sx)"), G_DBUS_CALL_FLAGS_NONE, 60000, NULL, error);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(sx)", &token, &expires_at);
  if (out_expires_at != NULL)
    *out_expires_at = expires_at;
  return token;
}

GVariant *
keyhold_test_account_property (KeyholdTestEnv *env, const char *name, const char *property)
{
  g_autofree char *path = keyhold_test_account_path (name);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  GVariant *value;

  reply = g_dbus_connection_call_sync (keyhold_test_env_get_bus (env), KEYHOLD_AGENT_BUS_NAME, path,
                                       "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", KEYHOLD_ACCOUNT1_INTERFACE, property),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, 20000, NULL,
                                       &error);
  if (reply == NULL)
    g_error ("Could not read %s of %s: %s", property, name, error->message);
  g_variant_get (reply, "(v)", &value);
  return value;
}

char *
keyhold_test_account_state (KeyholdTestEnv *env, const char *name)
{
  g_autoptr (GVariant) state = keyhold_test_account_property (env, name, "State");

  return g_variant_dup_string (state, NULL);
}

char *
keyhold_test_keyring_refresh_token (KeyholdTestEnv *env, const char *name)
{
  /* An independent reader of the real keyring, matching the attributes the
   * agent's schema uses; secret-tool rather than libsecret's *_sync calls,
   * which leak in Debian 12's libsecret. */
  const char *argv[] = { "secret-tool", "lookup", "kind",   "refresh-token",
                         "account",     name,     "issuer", keyhold_test_env_get_issuer (env),
                         NULL };
  g_autofree char *out = NULL;

  if (keyhold_test_env_run (env, argv, &out, NULL) != 0 || *out == '\0')
    return NULL;
  return g_steal_pointer (&out);
}

guint
keyhold_test_count_token_requests (KeyholdTestEnv *env, const char *grant_type)
{
  g_autoptr (JsonNode) log = keyhold_test_env_mock (env, "GET", "/log?target=token", NULL);
  JsonArray *entries = json_object_get_array_member (json_node_get_object (log), "entries");
  guint count = 0;

  for (guint i = 0; i < json_array_get_length (entries); i++)
    {
      JsonObject *entry = json_array_get_object_element (entries, i);
      JsonObject *form = json_object_get_object_member (entry, "form");

      if (form != NULL && json_object_has_member (form, "grant_type")
          && g_strcmp0 (json_object_get_string_member (form, "grant_type"), grant_type) == 0)
        count++;
    }
  return count;
}

void
keyhold_test_mock_post (KeyholdTestEnv *env, const char *path, const char *json)
{
  g_autoptr (JsonNode) reply = keyhold_test_env_mock (env, "POST", path, json);
}

gboolean
keyhold_test_mock_token_is_valid (KeyholdTestEnv *env, const char *access_token)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonNode) request = NULL, reply = NULL;
  g_autofree char *body = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "access_token");
  json_builder_add_string_value (builder, access_token);
  json_builder_end_object (builder);
  request = json_builder_get_root (builder);
  body = json_to_string (request, FALSE);
  reply = keyhold_test_env_mock (env, "POST", "/check-token", body);
  return json_object_get_boolean_member (json_node_get_object (reply), "valid");
}

const char *
keyhold_test_error_name (const GError *error)
{
  static char name[256];
  g_autofree char *remote = NULL;

  remote = g_dbus_error_get_remote_error (error);
  g_strlcpy (name, remote != NULL ? remote : "", sizeof name);
  return name;
}
