/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include "keyhold-contract.h"
#include <libsecret/secret.h>
#include <string.h>

#include "harness.h"
#include "storage/keyring.h"

#define ISSUER_A "https://id.example.test"
#define ISSUER_B "https://other.example.test"

static KeyholdTestEnv *env;

/* The schema as a keyring browser or another program would know it: if the
 * module changed its name or attributes, existing items would be lost. */
static const SecretSchema independent_schema = {
  "org.keyhold.Secret",
  SECRET_SCHEMA_NONE,
  {
      { "kind", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { "account", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { "issuer", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { NULL, 0 },
  },
};

static void
start_env_with_keyring (void)
{
  env = keyhold_test_env_start (KEYHOLD_TEST_ENV_KEYRING);
}

static void
start_env_without_keyring (void)
{
  env = keyhold_test_env_start (0);
}

static void
stop_env (void)
{
  keyhold_test_env_stop (env);
}

/* ---- the async API, run to completion ---- */

static void
on_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **slot = user_data;

  *slot = g_object_ref (result);
}

static void
wait_for (GAsyncResult **slot)
{
  while (*slot == NULL)
    g_main_context_iteration (NULL, TRUE);
}

static gboolean
store (KeyholdKeyringKind kind,
       const char *account,
       const char *issuer,
       KeyholdSecret *secret,
       GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  keyhold_keyring_store_async (kind, account, issuer, secret, NULL, on_done, &result);
  wait_for (&result);
  return keyhold_keyring_store_finish (result, error);
}

static KeyholdSecret *
lookup_with (GCancellable *cancellable,
             KeyholdKeyringKind kind,
             const char *account,
             const char *issuer,
             GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  keyhold_keyring_lookup_async (kind, account, issuer, cancellable, on_done, &result);
  wait_for (&result);
  return keyhold_keyring_lookup_finish (result, error);
}

static KeyholdSecret *
lookup (KeyholdKeyringKind kind, const char *account, const char *issuer, GError **error)
{
  return lookup_with (NULL, kind, account, issuer, error);
}

static gboolean delete (KeyholdKeyringKind kind,
                        const char *account,
                        const char *issuer,
                        GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  keyhold_keyring_delete_async (kind, account, issuer, NULL, on_done, &result);
  wait_for (&result);
  return keyhold_keyring_delete_finish (result, error);
}

static void
store_token (const char *account, const char *issuer, const char *token)
{
  g_autoptr (KeyholdSecret) secret = keyhold_secret_new_from_string (token);
  g_autoptr (GError) error = NULL;

  ck_assert_msg (store (KEYHOLD_KEYRING_REFRESH_TOKEN, account, issuer, secret, &error),
                 "store failed: %s", error->message);
}

static void
assert_token (const char *account, const char *issuer, const char *expected)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdSecret) found = lookup (KEYHOLD_KEYRING_REFRESH_TOKEN, account, issuer, &error);

  ck_assert_msg (error == NULL, "lookup failed: %s", error ? error->message : "");
  ck_assert_ptr_nonnull (found);
  ck_assert_uint_eq (keyhold_secret_get_length (found), strlen (expected));
  ck_assert_str_eq (keyhold_secret_get (found), expected);
}

static void
assert_no_token (const char *account, const char *issuer)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdSecret) found = lookup (KEYHOLD_KEYRING_REFRESH_TOKEN, account, issuer, &error);

  ck_assert_msg (error == NULL, "lookup failed: %s", error ? error->message : "");
  ck_assert_ptr_null (found);
}

/* Items that the Secret Service itself reports, found without the module.
 * (Only libsecret's async calls: its sync wrappers leak under valgrind.) */
static GList *
search_items (const char *kind, const char *account, const char *issuer)
{
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (GError) error = NULL;
  GList *items;

  secret_password_search (&independent_schema, SECRET_SEARCH_ALL, NULL, on_done, &result, "kind",
                          kind, "account", account, "issuer", issuer, NULL);
  wait_for (&result);
  items = secret_password_search_finish (result, &error);
  ck_assert_msg (error == NULL, "search failed: %s", error ? error->message : "");
  return items;
}

/* What another program using the Secret Service reads. */
static char *
read_with_secret_tool (const char *account, const char *issuer)
{
  const char *argv[] = { "secret-tool", "lookup",        "xdg:schema", "org.keyhold.Secret",
                         "kind",        "refresh-token", "account",    account,
                         "issuer",      issuer,          NULL };
  g_autofree char *errors = NULL;
  char *output = NULL;
  int status = keyhold_test_env_run (env, argv, &output, &errors);

  ck_assert_msg (status == 0, "secret-tool failed (%d): %s", status, errors);
  return output;
}

/* ---- tests ---- */

START_TEST (test_store_then_lookup_returns_the_same_bytes)
{
  store_token ("alice", ISSUER_A, "rt-first-token");

  assert_token ("alice", ISSUER_A, "rt-first-token");
}
END_TEST

START_TEST (test_store_again_replaces_the_item)
{
  GList *items;

  store_token ("alice", ISSUER_A, "rt-old");
  store_token ("alice", ISSUER_A, "rt-new");

  assert_token ("alice", ISSUER_A, "rt-new");
  items = search_items ("refresh-token", "alice", ISSUER_A);
  ck_assert_uint_eq (g_list_length (items), 1);
  g_list_free_full (items, g_object_unref);
}
END_TEST

START_TEST (test_delete_removes_the_item)
{
  g_autoptr (GError) error = NULL;

  store_token ("alice", ISSUER_A, "rt-doomed");

  ck_assert (delete (KEYHOLD_KEYRING_REFRESH_TOKEN, "alice", ISSUER_A, &error));
  ck_assert_ptr_null (error);
  assert_no_token ("alice", ISSUER_A);
}
END_TEST

START_TEST (test_delete_of_a_missing_item_succeeds)
{
  g_autoptr (GError) error = NULL;

  ck_assert (delete (KEYHOLD_KEYRING_REFRESH_TOKEN, "nobody", ISSUER_A, &error));
  ck_assert_ptr_null (error);
}
END_TEST

START_TEST (test_lookup_of_a_missing_item_is_null_without_error)
{
  assert_no_token ("nobody", ISSUER_A);
}
END_TEST

START_TEST (test_accounts_issuers_and_kinds_do_not_collide)
{
  g_autoptr (KeyholdSecret) outbox_key = keyhold_secret_new_from_string ("outbox-key");
  g_autoptr (KeyholdSecret) found = NULL;
  g_autoptr (GError) error = NULL;

  store_token ("alice", ISSUER_A, "rt-alice-a");
  store_token ("bob", ISSUER_A, "rt-bob-a");
  store_token ("alice", ISSUER_B, "rt-alice-b");
  ck_assert (store (KEYHOLD_KEYRING_OUTBOX_KEY, "", "", outbox_key, &error));

  assert_token ("alice", ISSUER_A, "rt-alice-a");
  assert_token ("bob", ISSUER_A, "rt-bob-a");
  assert_token ("alice", ISSUER_B, "rt-alice-b");
  found = lookup (KEYHOLD_KEYRING_OUTBOX_KEY, "", "", &error);
  ck_assert_ptr_nonnull (found);
  ck_assert (keyhold_secret_equal (found, outbox_key));
  /* A refresh token is never found under the outbox key's kind. */
  assert_no_token ("", "");

  ck_assert (delete (KEYHOLD_KEYRING_REFRESH_TOKEN, "alice", ISSUER_A, &error));
  assert_no_token ("alice", ISSUER_A);
  assert_token ("bob", ISSUER_A, "rt-bob-a");
  assert_token ("alice", ISSUER_B, "rt-alice-b");
}
END_TEST

START_TEST (test_long_printable_token_survives)
{
  g_autofree char *token = g_malloc (8 * 1024 + 1);

  for (gsize i = 0; i < 8 * 1024; i++)
    token[i] = (char) ('!' + g_random_int_range (0, '~' - '!' + 1));
  token[8 * 1024] = '\0';

  store_token ("alice", ISSUER_A, token);

  assert_token ("alice", ISSUER_A, token);
}
END_TEST

START_TEST (test_binary_key_survives)
{
  /* The outbox key is raw random bytes, NULs included. */
  static const char raw[] = { 0x00, 0x01, (char) 0xff, 0x00, 0x7f, (char) 0x80, 0x00, 0x42 };
  g_autoptr (KeyholdSecret) key = keyhold_secret_new (raw, sizeof raw);
  g_autoptr (KeyholdSecret) found = NULL;
  g_autoptr (GError) error = NULL;

  ck_assert (store (KEYHOLD_KEYRING_OUTBOX_KEY, "", "", key, &error));
  found = lookup (KEYHOLD_KEYRING_OUTBOX_KEY, "", "", &error);

  ck_assert_ptr_nonnull (found);
  ck_assert_uint_eq (keyhold_secret_get_length (found), sizeof raw);
  ck_assert (keyhold_secret_equal (found, key));
}
END_TEST

START_TEST (test_item_is_in_the_login_keyring_of_gnome_keyring)
{
  g_autofree char *read_back = NULL;
  g_autofree char *label = NULL;
  GList *items;

  store_token ("carol", ISSUER_A, "rt-carol");

  read_back = read_with_secret_tool ("carol", ISSUER_A);
  ck_assert_str_eq (read_back, "rt-carol");
  items = search_items ("refresh-token", "carol", ISSUER_A);
  ck_assert_uint_eq (g_list_length (items), 1);
  label = secret_retrievable_get_label (items->data);
  ck_assert_str_eq (label, "keyhold refresh token for carol");
  ck_assert (G_IS_DBUS_PROXY (items->data));
  ck_assert (g_str_has_prefix (g_dbus_proxy_get_object_path (items->data),
                               "/org/freedesktop/secrets/collection/login/"));
  g_list_free_full (items, g_object_unref);
}
END_TEST

START_TEST (test_cancelled_lookup_reports_cancelled)
{
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdSecret) found = NULL;

  g_cancellable_cancel (cancellable);
  found = lookup_with (cancellable, KEYHOLD_KEYRING_REFRESH_TOKEN, "alice", ISSUER_A, &error);

  ck_assert_ptr_null (found);
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_CANCELLED));
}
END_TEST

START_TEST (test_missing_keyring_is_a_keyring_error)
{
  g_autoptr (KeyholdSecret) secret = keyhold_secret_new_from_string ("rt-nowhere");
  g_autoptr (KeyholdSecret) found = NULL;
  g_autoptr (GError) store_error = NULL;
  g_autoptr (GError) lookup_error = NULL;

  ck_assert (!store (KEYHOLD_KEYRING_REFRESH_TOKEN, "alice", ISSUER_A, secret, &store_error));
  found = lookup (KEYHOLD_KEYRING_REFRESH_TOKEN, "alice", ISSUER_A, &lookup_error);

  ck_assert (g_error_matches (store_error, KEYHOLD_ERROR, KEYHOLD_ERROR_KEYRING));
  ck_assert_ptr_null (found);
  ck_assert (g_error_matches (lookup_error, KEYHOLD_ERROR, KEYHOLD_ERROR_KEYRING));
  ck_assert_ptr_null (strstr (store_error->message, "rt-nowhere"));
}
END_TEST

/* Every test starts without any of our items; the keyring outlives the
 * forked test processes. */
static void
clear_keyring (void)
{
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (GError) error = NULL;

  secret_password_clear (&independent_schema, NULL, on_done, &result, NULL);
  wait_for (&result);
  secret_password_clear_finish (result, &error);
  ck_assert_msg (error == NULL, "clearing failed: %s", error ? error->message : "");
}

static Suite *
keyring_suite (void)
{
  Suite *suite = suite_create ("keyring");
  TCase *with_keyring = tcase_create ("with-keyring");
  TCase *without_keyring = tcase_create ("without-keyring");

  tcase_add_unchecked_fixture (with_keyring, start_env_with_keyring, stop_env);
  tcase_add_checked_fixture (with_keyring, clear_keyring, NULL);
  tcase_add_test (with_keyring, test_store_then_lookup_returns_the_same_bytes);
  tcase_add_test (with_keyring, test_store_again_replaces_the_item);
  tcase_add_test (with_keyring, test_delete_removes_the_item);
  tcase_add_test (with_keyring, test_delete_of_a_missing_item_succeeds);
  tcase_add_test (with_keyring, test_lookup_of_a_missing_item_is_null_without_error);
  tcase_add_test (with_keyring, test_accounts_issuers_and_kinds_do_not_collide);
  tcase_add_test (with_keyring, test_long_printable_token_survives);
  tcase_add_test (with_keyring, test_binary_key_survives);
  tcase_add_test (with_keyring, test_item_is_in_the_login_keyring_of_gnome_keyring);
  tcase_add_test (with_keyring, test_cancelled_lookup_reports_cancelled);
  suite_add_tcase (suite, with_keyring);

  tcase_add_unchecked_fixture (without_keyring, start_env_without_keyring, stop_env);
  tcase_add_test (without_keyring, test_missing_keyring_is_a_keyring_error);
  suite_add_tcase (suite, without_keyring);
  return suite;
}

int
main (void)
{
  SRunner *runner = srunner_create (keyring_suite ());
  int failed;

  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
