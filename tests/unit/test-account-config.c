/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "keyhold-contract.h"

#include "storage/account-config.h"

#define ISSUER "https://id.example.com/realms/main"

static char *tmpdir;

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static void
setup (void)
{
  tmpdir = g_dir_make_tmp ("keyhold-test-config-XXXXXX", NULL);
  ck_assert_ptr_nonnull (tmpdir);
}

static void
teardown (void)
{
  remove_tree (tmpdir);
  g_clear_pointer (&tmpdir, g_free);
}

static char *
tmp_path (const char *name)
{
  return g_build_filename (tmpdir, name, NULL);
}

static char *
write_file (const char *contents, gssize length)
{
  char *path = tmp_path ("accounts.conf");

  ck_assert (g_file_set_contents (path, contents, length, NULL));
  return path;
}

static KeyholdAccountConfig *
new_account (const char *name, const char *const *scopes, const char *const *api_origins)
{
  g_autoptr (GError) error = NULL;
  KeyholdAccountConfig *account
      = keyhold_account_config_new (name, ISSUER, "keyhold-desktop", scopes, api_origins, &error);

  ck_assert_msg (account != NULL, "%s", error ? error->message : "");
  return account;
}

static void
assert_strv_eq (char **actual, const char *const *expected)
{
  g_autofree char *actual_joined = g_strjoinv ("|", actual);
  g_autofree char *expected_joined = g_strjoinv ("|", (char **) expected);

  ck_assert_str_eq (actual_joined, expected_joined);
}

/* ---- KeyholdAccountConfig ------------------------------------------------ */

START_TEST (test_new_normalises)
{
  const char *const scopes[] = { "profile", "email", NULL };
  const char *const origins[]
      = { "HTTPS://API.Example.com:443/v1", "http://127.0.0.1:8080/x", NULL };
  g_autoptr (KeyholdAccountConfig) account = new_account ("work.main_1-x", scopes, origins);

  ck_assert_str_eq (account->name, "work.main_1-x");
  ck_assert_str_eq (account->issuer, ISSUER);
  ck_assert_str_eq (account->client_id, "keyhold-desktop");
  assert_strv_eq (account->scopes, (const char *const[]) { "openid", "profile", "email", NULL });
  assert_strv_eq (account->api_origins, (const char *const[]) { "https://api.example.com",
                                                                "http://127.0.0.1:8080", NULL });
}
END_TEST

START_TEST (test_new_defaults)
{
  const char *const empty[] = { NULL };
  const char *const with_openid[] = { "email", "openid", NULL };
  g_autoptr (KeyholdAccountConfig) from_null = new_account ("a", NULL, NULL);
  g_autoptr (KeyholdAccountConfig) from_empty = new_account ("b", empty, empty);
  g_autoptr (KeyholdAccountConfig) kept = new_account ("c", with_openid, NULL);

  assert_strv_eq (from_null->scopes, (const char *const[]) { "openid", NULL });
  ck_assert_ptr_nonnull (from_null->api_origins);
  ck_assert_ptr_null (from_null->api_origins[0]);
  assert_strv_eq (from_empty->scopes, (const char *const[]) { "openid", NULL });
  ck_assert_ptr_null (from_empty->api_origins[0]);
  assert_strv_eq (kept->scopes, with_openid);
}
END_TEST

static void
assert_invalid (const char *name,
                const char *issuer,
                const char *client_id,
                const char *const *scopes,
                const char *const *origins,
                const char *field)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdAccountConfig) account
      = keyhold_account_config_new (name, issuer, client_id, scopes, origins, &error);

  ck_assert_msg (account == NULL, "accepted an invalid %s", field);
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT));
  ck_assert_msg (g_str_has_prefix (error->message, field), "“%s” does not start with %s",
                 error->message, field);
}

START_TEST (test_new_rejects_bad_names)
{
  g_autofree char *too_long = g_strnfill (KEYHOLD_ACCOUNT_NAME_MAX_LENGTH + 1, 'a');
  g_autofree char *longest = g_strnfill (KEYHOLD_ACCOUNT_NAME_MAX_LENGTH, 'a');
  const char *const bad[] = { "", too_long, "a b", "a/b", "a\nb", "ä", "[x]", "a;b" };
  g_autoptr (KeyholdAccountConfig) ok = new_account (longest, NULL, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    assert_invalid (bad[i], ISSUER, "c", NULL, NULL, "name");
}
END_TEST

START_TEST (test_new_rejects_bad_issuers)
{
  assert_invalid ("a", "http://id.example.com", "c", NULL, NULL, "issuer");
  assert_invalid ("a", "https://id.example.com/?x=1", "c", NULL, NULL, "issuer");
  assert_invalid ("a", "id.example.com", "c", NULL, NULL, "issuer");
  assert_invalid ("a", "", "c", NULL, NULL, "issuer");
}
END_TEST

START_TEST (test_new_rejects_bad_client_ids)
{
  g_autofree char *too_long = g_strnfill (KEYHOLD_CLIENT_ID_MAX_LENGTH + 1, 'c');
  g_autofree char *longest = g_strnfill (KEYHOLD_CLIENT_ID_MAX_LENGTH, 'c');
  g_autoptr (KeyholdAccountConfig) ok
      = keyhold_account_config_new ("a", ISSUER, longest, NULL, NULL, NULL);
  const char *const bad[] = { "", too_long, "tab\there", "new\nline", "caf\xc3\xa9", "\x7f" };

  ck_assert_ptr_nonnull (ok);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    assert_invalid ("a", ISSUER, bad[i], NULL, NULL, "client_id");
}
END_TEST

START_TEST (test_new_rejects_bad_scopes)
{
  g_autofree char *too_long = g_strnfill (KEYHOLD_SCOPE_MAX_LENGTH + 1, 's');
  const char *const bad[] = { "", "two words", "quo\"te", "back\\slash", "caf\xc3\xa9", too_long };
  const char *const twice[] = { "email", "profile", "email", NULL };
  const char *const openid_twice[] = { "openid", "openid", NULL };
  const char *const odd_but_valid[] = { "https://api.example.com/read", "a;b,c!#$%&'()*+", NULL };
  g_autoptr (KeyholdAccountConfig) ok = new_account ("a", odd_but_valid, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    assert_invalid ("a", ISSUER, "c", (const char *const[]) { "email", bad[i], NULL }, NULL,
                    "scopes");
  assert_invalid ("a", ISSUER, "c", twice, NULL, "scopes");
  assert_invalid ("a", ISSUER, "c", openid_twice, NULL, "scopes");
}
END_TEST

/* { "<prefix>0<suffix>", "<prefix>1<suffix>", ... } */
static GStrv
numbered_list (const char *prefix, const char *suffix, guint count)
{
  GPtrArray *list = g_ptr_array_new_null_terminated (count, g_free, TRUE);

  for (guint i = 0; i < count; i++)
    g_ptr_array_add (list, g_strdup_printf ("%s%u%s", prefix, i, suffix));
  return (GStrv) g_ptr_array_free (list, FALSE);
}

START_TEST (test_new_limits_scopes)
{
  g_auto (GStrv) most_without_openid = numbered_list ("scope", "", KEYHOLD_MAX_SCOPES - 1);
  g_auto (GStrv) too_many_without_openid = numbered_list ("scope", "", KEYHOLD_MAX_SCOPES);
  g_auto (GStrv) too_many = numbered_list ("scope", "", KEYHOLD_MAX_SCOPES + 1);
  g_autoptr (KeyholdAccountConfig) ok
      = new_account ("a", (const char *const *) most_without_openid, NULL);

  ck_assert_uint_eq (g_strv_length (ok->scopes), KEYHOLD_MAX_SCOPES);
  assert_invalid ("a", ISSUER, "c", (const char *const *) too_many_without_openid, NULL, "scopes");
  g_free (too_many[0]);
  too_many[0] = g_strdup ("openid");
  assert_invalid ("a", ISSUER, "c", (const char *const *) too_many, NULL, "scopes");
}
END_TEST

START_TEST (test_new_rejects_bad_origins)
{
  g_auto (GStrv) most = numbered_list ("https://api", ".example.com", KEYHOLD_MAX_API_ORIGINS);
  g_auto (GStrv) too_many
      = numbered_list ("https://api", ".example.com", KEYHOLD_MAX_API_ORIGINS + 1);
  const char *const same_origin[]
      = { "https://api.example.com", "HTTPS://API.example.com:443/v2", NULL };
  const char *const bad[] = { "http://api.example.com", "https://user@api.example.com", "api",
                              "ftp://api.example.com" };
  g_autoptr (KeyholdAccountConfig) ok = new_account ("a", NULL, (const char *const *) most);

  ck_assert_uint_eq (g_strv_length (ok->api_origins), KEYHOLD_MAX_API_ORIGINS);
  assert_invalid ("a", ISSUER, "c", NULL, (const char *const *) too_many, "api_origins");
  assert_invalid ("a", ISSUER, "c", NULL, same_origin, "api_origins");
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    assert_invalid ("a", ISSUER, "c", NULL, (const char *const[]) { bad[i], NULL }, "api_origins");
}
END_TEST

START_TEST (test_copy)
{
  const char *const scopes[] = { "email", NULL };
  const char *const origins[] = { "https://api.example.com", NULL };
  g_autoptr (KeyholdAccountConfig) account = new_account ("a", scopes, origins);
  g_autoptr (KeyholdAccountConfig) copy = keyhold_account_config_copy (account);

  ck_assert_ptr_ne (copy, account);
  ck_assert_ptr_ne (copy->name, account->name);
  ck_assert_str_eq (copy->name, account->name);
  ck_assert_str_eq (copy->issuer, account->issuer);
  ck_assert_str_eq (copy->client_id, account->client_id);
  assert_strv_eq (copy->scopes, (const char *const *) account->scopes);
  assert_strv_eq (copy->api_origins, (const char *const *) account->api_origins);
  keyhold_account_config_free (NULL);
}
END_TEST

/* ---- KeyholdConfig ------------------------------------------------------- */

START_TEST (test_missing_file_is_empty)
{
  g_autofree char *path = tmp_path ("no-such-dir/accounts.conf");
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdConfig) config = keyhold_config_load (path, &error);
  g_autoptr (GPtrArray) accounts = NULL;

  ck_assert_msg (config != NULL, "%s", error ? error->message : "");
  accounts = keyhold_config_list (config);
  ck_assert_uint_eq (accounts->len, 0);
  ck_assert_ptr_null (keyhold_config_lookup (config, "a"));
  ck_assert (!g_file_test (path, G_FILE_TEST_EXISTS));
}
END_TEST

START_TEST (test_round_trip)
{
  g_autofree char *path = tmp_path ("keyhold/accounts.conf");
  g_autoptr (KeyholdConfig) config = keyhold_config_load (path, NULL);
  g_autoptr (KeyholdConfig) reloaded = NULL;
  g_autoptr (GPtrArray) accounts = NULL;
  g_autoptr (GError) error = NULL;
  const char *const scopes[] = { "email", "a;b,c", "offline_access", NULL };
  const char *const origins[] = { "https://api.example.com", "http://[::1]:8080", NULL };
  const KeyholdAccountConfig *work;

  ck_assert (keyhold_config_add (config, new_account ("work", scopes, origins), NULL));
  ck_assert (keyhold_config_add (config,
                                 keyhold_account_config_new ("home", "http://localhost:5556/dex",
                                                             " spaced client ", NULL, NULL, NULL),
                                 NULL));
  ck_assert (keyhold_config_add (config, new_account ("alpha", NULL, NULL), NULL));
  ck_assert (keyhold_config_save (config, &error));
  ck_assert_ptr_null (error);

  reloaded = keyhold_config_load (path, &error);
  ck_assert_msg (reloaded != NULL, "%s", error ? error->message : "");
  accounts = keyhold_config_list (reloaded);
  ck_assert_uint_eq (accounts->len, 3);
  ck_assert_str_eq (((KeyholdAccountConfig *) accounts->pdata[0])->name, "alpha");
  ck_assert_str_eq (((KeyholdAccountConfig *) accounts->pdata[1])->name, "home");
  ck_assert_str_eq (((KeyholdAccountConfig *) accounts->pdata[2])->name, "work");

  work = keyhold_config_lookup (reloaded, "work");
  ck_assert_str_eq (work->issuer, ISSUER);
  ck_assert_str_eq (work->client_id, "keyhold-desktop");
  assert_strv_eq (work->scopes,
                  (const char *const[]) { "openid", "email", "a;b,c", "offline_access", NULL });
  assert_strv_eq (work->api_origins, origins);
  ck_assert_str_eq (keyhold_config_lookup (reloaded, "home")->client_id, " spaced client ");
  ck_assert_str_eq (keyhold_config_lookup (reloaded, "home")->issuer, "http://localhost:5556/dex");
}
END_TEST

START_TEST (test_remove_and_save)
{
  g_autofree char *path = tmp_path ("accounts.conf");
  g_autoptr (KeyholdConfig) config = keyhold_config_load (path, NULL);
  g_autoptr (KeyholdConfig) reloaded = NULL;
  g_autoptr (GError) error = NULL;

  ck_assert (keyhold_config_add (config, new_account ("a", NULL, NULL), NULL));
  ck_assert (keyhold_config_add (config, new_account ("b", NULL, NULL), NULL));
  ck_assert (keyhold_config_save (config, NULL));
  ck_assert (keyhold_config_remove (config, "a", &error));
  ck_assert_ptr_null (keyhold_config_lookup (config, "a"));
  ck_assert (!keyhold_config_remove (config, "a", &error));
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NO_SUCH_ACCOUNT));
  ck_assert (keyhold_config_save (config, NULL));

  reloaded = keyhold_config_load (path, NULL);
  ck_assert_ptr_null (keyhold_config_lookup (reloaded, "a"));
  ck_assert_ptr_nonnull (keyhold_config_lookup (reloaded, "b"));
}
END_TEST

static guint
file_mode (const char *path)
{
  struct stat info;

  ck_assert_int_eq (g_stat (path, &info), 0);
  return info.st_mode & 07777;
}

START_TEST (test_permissions)
{
  g_autofree char *directory = tmp_path ("config/keyhold");
  g_autofree char *path = g_build_filename (directory, "accounts.conf", NULL);
  g_autoptr (KeyholdConfig) config = keyhold_config_load (path, NULL);
  g_autofree char *loose_path = tmp_path ("loose.conf");
  g_autoptr (KeyholdConfig) loose = NULL;

  ck_assert (keyhold_config_add (config, new_account ("a", NULL, NULL), NULL));
  ck_assert (keyhold_config_save (config, NULL));
  ck_assert_uint_eq (file_mode (directory), 0700);
  ck_assert_uint_eq (file_mode (path), 0600);

  /* A file someone made world-readable is replaced by a private one. */
  ck_assert (g_file_set_contents (loose_path, "", 0, NULL));
  ck_assert_int_eq (g_chmod (loose_path, 0644), 0);
  loose = keyhold_config_load (loose_path, NULL);
  ck_assert (keyhold_config_save (loose, NULL));
  ck_assert_uint_eq (file_mode (loose_path), 0600);
}
END_TEST

START_TEST (test_save_failure)
{
  g_autofree char *blocker = tmp_path ("file");
  g_autofree char *path = g_build_filename (blocker, "keyhold", "accounts.conf", NULL);
  g_autoptr (KeyholdConfig) config = NULL;
  g_autoptr (GError) error = NULL;

  config = keyhold_config_load (path, NULL);
  ck_assert_ptr_nonnull (config);
  /* A file where the directory should go. */
  ck_assert (g_file_set_contents (blocker, "x", 1, NULL));
  ck_assert (!keyhold_config_save (config, &error));
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE));
}
END_TEST

START_TEST (test_add_errors)
{
  g_autofree char *path = tmp_path ("accounts.conf");
  g_autoptr (KeyholdConfig) config = keyhold_config_load (path, NULL);
  g_autoptr (GError) error = NULL;

  ck_assert (keyhold_config_add (config, new_account ("a", NULL, NULL), NULL));
  ck_assert (!keyhold_config_add (config, new_account ("a", NULL, NULL), &error));
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_ALREADY_EXISTS));
  g_clear_error (&error);

  for (guint i = 1; i < KEYHOLD_CONFIG_MAX_ACCOUNTS; i++)
    {
      g_autofree char *name = g_strdup_printf ("account-%u", i);

      ck_assert (keyhold_config_add (config, new_account (name, NULL, NULL), NULL));
    }
  ck_assert (!keyhold_config_add (config, new_account ("one-too-many", NULL, NULL), &error));
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_QUOTA_EXCEEDED));
  ck_assert_ptr_null (keyhold_config_lookup (config, "one-too-many"));
}
END_TEST

static void
assert_load_fails (const char *contents, gssize length, const char *expected_in_message)
{
  g_autofree char *path = write_file (contents, length);
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  gsize before_length, after_length;
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdConfig) config = NULL;

  ck_assert (g_file_get_contents (path, &before, &before_length, NULL));
  config = keyhold_config_load (path, &error);
  ck_assert_msg (config == NULL, "loaded: %s", contents);
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE));
  ck_assert_msg (strstr (error->message, path) != NULL, "“%s” lacks the path", error->message);
  ck_assert_msg (strstr (error->message, expected_in_message) != NULL, "“%s” lacks “%s”",
                 error->message, expected_in_message);
  ck_assert (g_utf8_validate (error->message, -1, NULL));

  ck_assert (g_file_get_contents (path, &after, &after_length, NULL));
  ck_assert_uint_eq (before_length, after_length);
  ck_assert_mem_eq (before, after, before_length);
}

#define GOOD "[account good]\nissuer=" ISSUER "\nclient_id=c\n"

START_TEST (test_corrupt_files)
{
  assert_load_fails (GOOD "this is not a key file line\n", -1, "this is not a key file line");
  assert_load_fails ("issuer=" ISSUER "\n" GOOD, -1, "group");
  assert_load_fails (GOOD "[account bad]\nissuer=" ISSUER "\n", -1, "[account bad]");
  assert_load_fails (GOOD "[account bad]\nclient_id=c\n", -1, "issuer");
  assert_load_fails (GOOD "[account bad]\nissuer=http://id.example.com\nclient_id=c\n", -1,
                     "[account bad]: issuer");
  assert_load_fails (GOOD "[account bad one]\nissuer=" ISSUER "\nclient_id=c\n", -1, "name");
  assert_load_fails (GOOD "[account bad]\nissuer=" ISSUER "\nclient_id=c\nscope=email\n", -1,
                     "unknown key “scope”");
  assert_load_fails (GOOD "[account bad]\nissuer=" ISSUER "\nclient_id=c\nclient_id=d\n", -1,
                     "more than once");
  assert_load_fails (GOOD "[account bad]\nissuer=" ISSUER "\nclient_id=c\nscopes=email;a b\n", -1,
                     "scopes: entry 2:");
  assert_load_fails (GOOD "[account bad]\nissuer=" ISSUER "\nclient_id=c\napi_origins=http://x\n",
                     -1, "api_origins");
  assert_load_fails (GOOD "[settings]\nx=1\n", -1, "[settings]");
  assert_load_fails (GOOD "[account bad]\nissuer=" ISSUER "\nclient_id=\xff\n", -1,
                     "[account bad]");
  assert_load_fails (GOOD "[account b\xff]\nissuer=" ISSUER "\nclient_id=c\n", -1, "name");
  assert_load_fails (GOOD "[account bad]\nissuer=" ISSUER "\nclient_id=c\\q\n", -1,
                     "[account bad]");
}
END_TEST

START_TEST (test_nul_byte_does_not_hide_accounts)
{
  const char contents[] = GOOD "\0[account hidden]\nissuer=" ISSUER "\nclient_id=c\n";

  assert_load_fails (contents, sizeof contents - 1, "NUL");
}
END_TEST

START_TEST (test_size_limits)
{
  g_autoptr (GString) contents = g_string_new (GOOD);
  g_autoptr (KeyholdConfig) config = NULL;
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;

  /* Just under the limit is fine... */
  while (contents->len < KEYHOLD_CONFIG_MAX_FILE_SIZE - 100)
    g_string_append (contents, "# padding padding padding padding padding padding padding\n");
  path = write_file (contents->str, contents->len);
  config = keyhold_config_load (path, &error);
  ck_assert_msg (config != NULL, "%s", error ? error->message : "");
  ck_assert_ptr_nonnull (keyhold_config_lookup (config, "good"));

  /* ...over it is not. */
  while (contents->len <= KEYHOLD_CONFIG_MAX_FILE_SIZE)
    g_string_append (contents, "# padding\n");
  assert_load_fails (contents->str, contents->len, "1 MiB");
}
END_TEST

START_TEST (test_account_count_limit)
{
  g_autoptr (GString) contents = g_string_new ("");
  g_autoptr (KeyholdConfig) config = NULL;
  g_autofree char *path = NULL;

  for (guint i = 0; i < KEYHOLD_CONFIG_MAX_ACCOUNTS; i++)
    g_string_append_printf (contents, "[account a%u]\nissuer=%s\nclient_id=c\n", i, ISSUER);
  path = write_file (contents->str, contents->len);
  config = keyhold_config_load (path, NULL);
  ck_assert_ptr_nonnull (config);

  g_string_append_printf (contents, "[account one-more]\nissuer=%s\nclient_id=c\n", ISSUER);
  assert_load_fails (contents->str, contents->len, "256");
}
END_TEST

START_TEST (test_not_a_regular_file)
{
  g_autofree char *directory = tmp_path ("dir.conf");
  g_autofree char *fifo = tmp_path ("fifo.conf");
  g_autoptr (GError) error = NULL;

  ck_assert_int_eq (g_mkdir (directory, 0700), 0);
  ck_assert_ptr_null (keyhold_config_load (directory, &error));
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE));
  g_clear_error (&error);

  /* Must fail at once rather than wait for a writer. */
  ck_assert_int_eq (mkfifo (fifo, 0600), 0);
  ck_assert_ptr_null (keyhold_config_load (fifo, &error));
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE));
}
END_TEST

START_TEST (test_hand_written_file)
{
  const char contents[] = "# my accounts\n"
                          "[account work]\n"
                          "issuer = " ISSUER "\n"
                          "client_id = desktop\n"
                          "scopes = email;profile;\n"
                          "api_origins = https://API.example.com:443;https://files.example.com/v1\n"
                          "\n"
                          "[account local]\n"
                          "issuer=http://127.0.0.1:9000\n"
                          "client_id=test\n"
                          "scopes=\n";
  g_autofree char *path = write_file (contents, -1);
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdConfig) config = keyhold_config_load (path, &error);
  const KeyholdAccountConfig *work;

  ck_assert_msg (config != NULL, "%s", error ? error->message : "");
  work = keyhold_config_lookup (config, "work");
  ck_assert_str_eq (work->client_id, "desktop");
  assert_strv_eq (work->scopes, (const char *const[]) { "openid", "email", "profile", NULL });
  assert_strv_eq (work->api_origins, (const char *const[]) { "https://api.example.com",
                                                             "https://files.example.com", NULL });
  assert_strv_eq (keyhold_config_lookup (config, "local")->scopes,
                  (const char *const[]) { "openid", NULL });
}
END_TEST

START_TEST (test_default_path)
{
  g_autofree char *path = keyhold_config_default_path ();
  g_autofree char *expected
      = g_build_filename (g_get_user_config_dir (), "keyhold", "accounts.conf", NULL);

  ck_assert_str_eq (path, expected);
}
END_TEST

static Suite *
config_suite (void)
{
  Suite *suite = suite_create ("account-config");
  TCase *accounts = tcase_create ("account");
  TCase *file = tcase_create ("file");

  tcase_add_test (accounts, test_new_normalises);
  tcase_add_test (accounts, test_new_defaults);
  tcase_add_test (accounts, test_new_rejects_bad_names);
  tcase_add_test (accounts, test_new_rejects_bad_issuers);
  tcase_add_test (accounts, test_new_rejects_bad_client_ids);
  tcase_add_test (accounts, test_new_rejects_bad_scopes);
  tcase_add_test (accounts, test_new_limits_scopes);
  tcase_add_test (accounts, test_new_rejects_bad_origins);
  tcase_add_test (accounts, test_copy);
  suite_add_tcase (suite, accounts);

  tcase_add_checked_fixture (file, setup, teardown);
  tcase_add_test (file, test_missing_file_is_empty);
  tcase_add_test (file, test_round_trip);
  tcase_add_test (file, test_remove_and_save);
  tcase_add_test (file, test_permissions);
  tcase_add_test (file, test_save_failure);
  tcase_add_test (file, test_add_errors);
  tcase_add_test (file, test_corrupt_files);
  tcase_add_test (file, test_nul_byte_does_not_hide_accounts);
  tcase_add_test (file, test_size_limits);
  tcase_add_test (file, test_account_count_limit);
  tcase_add_test (file, test_not_a_regular_file);
  tcase_add_test (file, test_hand_written_file);
  tcase_add_test (file, test_default_path);
  suite_add_tcase (suite, file);
  return suite;
}

int
main (void)
{
  SRunner *runner = srunner_create (config_suite ());
  int failed;

  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
