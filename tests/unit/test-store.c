/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyhold-contract.h"

#include "storage/store.h"

#define ISSUER "https://id.example.com"

static char *tmpdir;
static char *db_path;

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
  tmpdir = g_dir_make_tmp ("keyhold-test-store-XXXXXX", NULL);
  ck_assert_ptr_nonnull (tmpdir);
  db_path = g_build_filename (tmpdir, "data", "keyhold", "keyhold.db", NULL);
}

static void
teardown (void)
{
  remove_tree (tmpdir);
  g_clear_pointer (&tmpdir, g_free);
  g_clear_pointer (&db_path, g_free);
}

static KeyholdStore *
open_store (void)
{
  g_autoptr (GError) error = NULL;
  KeyholdStore *store = keyhold_store_open (db_path, &error);

  ck_assert_msg (store != NULL, "%s", error ? error->message : "");
  return store;
}

static char *
query_text (KeyholdStore *store, const char *sql)
{
  sqlite3_stmt *statement = NULL;
  char *text;

  ck_assert_int_eq (sqlite3_prepare_v2 (keyhold_store_get_db (store), sql, -1, &statement, NULL),
                    SQLITE_OK);
  ck_assert_int_eq (sqlite3_step (statement), SQLITE_ROW);
  text = g_strdup ((const char *) sqlite3_column_text (statement, 0));
  sqlite3_finalize (statement);
  return text;
}

static guint
file_mode (const char *path)
{
  struct stat info;

  ck_assert_int_eq (g_stat (path, &info), 0);
  return info.st_mode & 07777;
}

START_TEST (test_open_creates_private_files)
{
  g_autoptr (KeyholdStore) store = open_store ();
  g_autofree char *directory = g_path_get_dirname (db_path);
  g_autofree char *wal = g_strconcat (db_path, "-wal", NULL);

  ck_assert_uint_eq (file_mode (directory), 0700);
  ck_assert_uint_eq (file_mode (db_path), 0600);
  /* A write creates the WAL file, which must be as private. */
  ck_assert (keyhold_store_put_provider_metadata (store, ISSUER, "{}", 1, NULL));
  ck_assert_uint_eq (file_mode (wal), 0600);
}
END_TEST

START_TEST (test_open_makes_existing_file_private)
{
  g_autofree char *directory = g_path_get_dirname (db_path);
  g_autoptr (KeyholdStore) store = NULL;

  ck_assert_int_eq (g_mkdir_with_parents (directory, 0755), 0);
  ck_assert (g_file_set_contents (db_path, "", 0, NULL));
  ck_assert_int_eq (g_chmod (db_path, 0644), 0);
  store = open_store ();
  ck_assert_uint_eq (file_mode (db_path), 0600);
}
END_TEST

START_TEST (test_pragmas)
{
  g_autoptr (KeyholdStore) store = open_store ();
  g_autofree char *journal_mode = query_text (store, "PRAGMA journal_mode");
  g_autofree char *synchronous = query_text (store, "PRAGMA synchronous");
  g_autofree char *foreign_keys = query_text (store, "PRAGMA foreign_keys");
  g_autofree char *secure_delete = query_text (store, "PRAGMA secure_delete");
  g_autofree char *user_version = query_text (store, "PRAGMA user_version");
  g_autofree char *tables
      = query_text (store, "SELECT group_concat(name, ',') FROM"
                           " (SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name)");

  ck_assert_str_eq (journal_mode, "wal");
  ck_assert_str_eq (synchronous, "2"); /* FULL */
  ck_assert_str_eq (foreign_keys, "1");
  ck_assert_str_eq (secure_delete, "1");
  /* Later migrations add tables; the first one's must all be there. */
  ck_assert_int_ge (atoi (user_version), 1);
  ck_assert_ptr_nonnull (strstr (tables, "account_identity"));
  ck_assert_ptr_nonnull (strstr (tables, "provider_jwks"));
  ck_assert_ptr_nonnull (strstr (tables, "provider_metadata"));
}
END_TEST

START_TEST (test_provider_documents)
{
  g_autoptr (KeyholdStore) store = open_store ();
  g_autoptr (GError) error = NULL;
  g_autofree char *metadata = NULL;
  g_autofree char *jwks = NULL;
  g_autofree char *replaced = NULL;
  g_autofree char *missing = NULL;
  gint64 fetched_at = 0;

  ck_assert (
      keyhold_store_put_provider_metadata (store, ISSUER, "{\"issuer\":\"x\"}", 1000, &error));
  ck_assert (keyhold_store_put_provider_jwks (store, ISSUER, "{\"keys\":[]}", 2000, &error));
  ck_assert_ptr_null (error);

  metadata = keyhold_store_get_provider_metadata (store, ISSUER, &fetched_at, &error);
  ck_assert_str_eq (metadata, "{\"issuer\":\"x\"}");
  ck_assert_int_eq (fetched_at, 1000);
  jwks = keyhold_store_get_provider_jwks (store, ISSUER, &fetched_at, &error);
  ck_assert_str_eq (jwks, "{\"keys\":[]}");
  ck_assert_int_eq (fetched_at, 2000);

  ck_assert (keyhold_store_put_provider_metadata (store, ISSUER, "{\"v\":2}", 3000, &error));
  replaced = keyhold_store_get_provider_metadata (store, ISSUER, NULL, &error);
  ck_assert_str_eq (replaced, "{\"v\":2}");

  fetched_at = 42;
  missing
      = keyhold_store_get_provider_jwks (store, "https://other.example.com", &fetched_at, &error);
  ck_assert_ptr_null (missing);
  ck_assert_ptr_null (error);
  ck_assert_int_eq (fetched_at, 42);
}
END_TEST

START_TEST (test_identity)
{
  g_autoptr (KeyholdStore) store = open_store ();
  g_autoptr (GError) error = NULL;
  g_autofree char *issuer = NULL;
  g_autofree char *subject = NULL;
  g_autofree char *claims = NULL;
  g_autofree char *updated_claims = NULL;
  char *untouched = (char *) "untouched";

  ck_assert (!keyhold_store_get_identity (store, "work", &untouched, NULL, NULL, &error));
  ck_assert_ptr_null (error);
  ck_assert_str_eq (untouched, "untouched");

  ck_assert (keyhold_store_put_identity (store, "work", ISSUER, "user-1",
                                         "{\"sub\":\"user-1\",\"name\":\"Ann\"}", &error));
  ck_assert (keyhold_store_get_identity (store, "work", &issuer, &subject, &claims, &error));
  ck_assert_str_eq (issuer, ISSUER);
  ck_assert_str_eq (subject, "user-1");
  ck_assert_str_eq (claims, "{\"sub\":\"user-1\",\"name\":\"Ann\"}");

  ck_assert (keyhold_store_put_identity (store, "work", ISSUER, "user-1", "{\"v\":2}", &error));
  ck_assert (keyhold_store_get_identity (store, "work", NULL, NULL, &updated_claims, &error));
  ck_assert_str_eq (updated_claims, "{\"v\":2}");
  ck_assert (!keyhold_store_get_identity (store, "home", NULL, NULL, NULL, &error));
  ck_assert_ptr_null (error);

  ck_assert (keyhold_store_delete_identity (store, "work", &error));
  ck_assert (!keyhold_store_get_identity (store, "work", NULL, NULL, NULL, &error));
  ck_assert_ptr_null (error);
  ck_assert (keyhold_store_delete_identity (store, "work", &error));
}
END_TEST

START_TEST (test_values_are_data_not_sql)
{
  g_autoptr (KeyholdStore) store = open_store ();
  const char *hostile = "x'); DROP TABLE account_identity; --";
  g_autofree char *subject = NULL;

  ck_assert (keyhold_store_put_identity (store, hostile, ISSUER, hostile, "{}", NULL));
  ck_assert (keyhold_store_get_identity (store, hostile, NULL, &subject, NULL, NULL));
  ck_assert_str_eq (subject, hostile);
}
END_TEST

START_TEST (test_reopen_keeps_data)
{
  g_autofree char *claims = NULL;
  g_autofree char *metadata = NULL;
  gint64 fetched_at = 0;

  {
    g_autoptr (KeyholdStore) store = open_store ();

    ck_assert (keyhold_store_put_identity (store, "work", ISSUER, "s", "{\"a\":1}", NULL));
    ck_assert (keyhold_store_put_provider_metadata (store, ISSUER, "{}", 77, NULL));
  }
  {
    g_autoptr (KeyholdStore) store = open_store ();
    g_autofree char *user_version = query_text (store, "PRAGMA user_version");

    /* Reopening migrates nothing twice: the version stays at the newest. */
    ck_assert_int_ge (atoi (user_version), 1);
    ck_assert (keyhold_store_get_identity (store, "work", NULL, NULL, &claims, NULL));
    ck_assert_str_eq (claims, "{\"a\":1}");
    metadata = keyhold_store_get_provider_metadata (store, ISSUER, &fetched_at, NULL);
    ck_assert_str_eq (metadata, "{}");
    ck_assert_int_eq (fetched_at, 77);
  }
}
END_TEST

static GBytes *
read_bytes (const char *path)
{
  char *contents = NULL;
  gsize length = 0;

  ck_assert (g_file_get_contents (path, &contents, &length, NULL));
  return g_bytes_new_take (contents, length);
}

/* Opening must fail with a STORAGE error and leave every byte in place. */
static void
assert_open_refused (const char *expected_in_message)
{
  g_autoptr (GBytes) before = read_bytes (db_path);
  g_autoptr (GBytes) after = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdStore) store = keyhold_store_open (db_path, &error);
  g_autofree char *wal = g_strconcat (db_path, "-wal", NULL);

  ck_assert_ptr_null (store);
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE));
  ck_assert_msg (strstr (error->message, db_path) != NULL, "“%s” lacks the path", error->message);
  ck_assert_msg (strstr (error->message, expected_in_message) != NULL, "“%s” lacks “%s”",
                 error->message, expected_in_message);

  after = read_bytes (db_path);
  ck_assert (g_bytes_equal (before, after));
  ck_assert (!g_file_test (wal, G_FILE_TEST_EXISTS));
}

static void
write_db_file (const void *contents, gsize length)
{
  g_autofree char *directory = g_path_get_dirname (db_path);

  ck_assert_int_eq (g_mkdir_with_parents (directory, 0700), 0);
  ck_assert (g_file_set_contents (db_path, contents, length, NULL));
}

static GByteArray *
garbage_after (const char *prefix, gsize prefix_length)
{
  GByteArray *garbage = g_byte_array_new ();
  g_autoptr (GRand) rand = g_rand_new_with_seed (1234);

  g_byte_array_append (garbage, (const guint8 *) prefix, prefix_length);
  for (guint i = 0; i < 8192; i++)
    {
      guint8 byte = g_rand_int_range (rand, 0, 256);

      g_byte_array_append (garbage, &byte, 1);
    }
  return garbage;
}

START_TEST (test_garbage_file_left_alone)
{
  const char text[] = "this is not a database";
  g_autoptr (GByteArray) garbage = garbage_after (text, sizeof text - 1);

  write_db_file (garbage->data, garbage->len);
  assert_open_refused ("not a keyhold database");
}
END_TEST

/* Gets past the header check, so SQLite itself has to notice. */
START_TEST (test_garbage_after_sqlite_header_left_alone)
{
  const char magic[] = "SQLite format 3";
  g_autoptr (GByteArray) garbage = garbage_after (magic, sizeof magic);

  write_db_file (garbage->data, garbage->len);
  assert_open_refused ("not a database");
}
END_TEST

START_TEST (test_tiny_garbage_file_left_alone)
{
  write_db_file ("x", 1);
  assert_open_refused ("keyhold database");
}
END_TEST

/* A database big enough to span many pages, closed cleanly so that
 * everything is in the main file. */
static gsize
write_real_database (void)
{
  g_autoptr (KeyholdStore) store = open_store ();
  g_autofree char *document = g_strnfill (3000, 'd');
  struct stat info;

  for (guint i = 0; i < 200; i++)
    {
      g_autofree char *issuer = g_strdup_printf ("https://issuer%u.example.com", i);

      ck_assert (keyhold_store_put_provider_metadata (store, issuer, document, i, NULL));
    }
  g_clear_pointer (&store, keyhold_store_close);
  ck_assert_int_eq (g_stat (db_path, &info), 0);
  return info.st_size;
}

START_TEST (test_truncated_database_refused)
{
  gsize size = write_real_database ();

  ck_assert_uint_gt (size, 100000);
  ck_assert_int_eq (truncate (db_path, size / 2 + 123), 0);
  assert_open_refused ("damaged");
}
END_TEST

START_TEST (test_header_only_database_refused)
{
  write_real_database ();
  ck_assert_int_eq (truncate (db_path, 60), 0);
  assert_open_refused ("keyhold database");
}
END_TEST

START_TEST (test_damaged_page_refused)
{
  gsize size = write_real_database ();
  g_autoptr (GBytes) bytes = read_bytes (db_path);
  g_autofree guint8 *damaged = g_memdup2 (g_bytes_get_data (bytes, NULL), size);

  /* Scribble over the middle of the file, past the schema page. */
  memset (damaged + size / 2, 0xa5, 4096);
  ck_assert (g_file_set_contents (db_path, (const char *) damaged, size, NULL));
  assert_open_refused ("damaged");
}
END_TEST

START_TEST (test_newer_schema_refused)
{
  sqlite3 *db = NULL;

  {
    g_autoptr (KeyholdStore) store = open_store ();
  }
  ck_assert_int_eq (sqlite3_open (db_path, &db), SQLITE_OK);
  ck_assert_int_eq (sqlite3_exec (db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
  ck_assert_int_eq (sqlite3_close (db), SQLITE_OK);

  assert_open_refused ("newer");
}
END_TEST

START_TEST (test_other_programs_database_refused)
{
  g_autofree char *directory = g_path_get_dirname (db_path);
  sqlite3 *db = NULL;

  ck_assert_int_eq (g_mkdir_with_parents (directory, 0700), 0);
  ck_assert_int_eq (sqlite3_open (db_path, &db), SQLITE_OK);
  ck_assert_int_eq (sqlite3_exec (db,
                                  "CREATE TABLE notes (body TEXT);"
                                  "INSERT INTO notes VALUES ('x')",
                                  NULL, NULL, NULL),
                    SQLITE_OK);
  ck_assert_int_eq (sqlite3_close (db), SQLITE_OK);

  assert_open_refused ("other program");
}
END_TEST

START_TEST (test_symlink_refused)
{
  g_autofree char *real = g_build_filename (tmpdir, "real.db", NULL);
  g_autofree char *directory = g_path_get_dirname (db_path);
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdStore) store = NULL;

  ck_assert_int_eq (g_mkdir_with_parents (directory, 0700), 0);
  ck_assert_int_eq (symlink (real, db_path), 0);
  store = keyhold_store_open (db_path, &error);
  ck_assert_ptr_null (store);
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE));
  ck_assert (!g_file_test (real, G_FILE_TEST_EXISTS));
}
END_TEST

START_TEST (test_directory_refused)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdStore) store = NULL;

  ck_assert_int_eq (g_mkdir_with_parents (db_path, 0700), 0);
  store = keyhold_store_open (db_path, &error);
  ck_assert_ptr_null (store);
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE));
}
END_TEST

START_TEST (test_default_path)
{
  g_autofree char *path = keyhold_store_default_path ();
  g_autofree char *expected
      = g_build_filename (g_get_user_data_dir (), "keyhold", "keyhold.db", NULL);

  ck_assert_str_eq (path, expected);
  keyhold_store_close (NULL);
}
END_TEST

static Suite *
store_suite (void)
{
  Suite *suite = suite_create ("store");
  TCase *open = tcase_create ("open");
  TCase *data = tcase_create ("data");
  TCase *damage = tcase_create ("damage");

  tcase_add_checked_fixture (open, setup, teardown);
  tcase_add_test (open, test_open_creates_private_files);
  tcase_add_test (open, test_open_makes_existing_file_private);
  tcase_add_test (open, test_pragmas);
  tcase_add_test (open, test_symlink_refused);
  tcase_add_test (open, test_directory_refused);
  tcase_add_test (open, test_default_path);
  suite_add_tcase (suite, open);

  tcase_add_checked_fixture (data, setup, teardown);
  tcase_add_test (data, test_provider_documents);
  tcase_add_test (data, test_identity);
  tcase_add_test (data, test_values_are_data_not_sql);
  tcase_add_test (data, test_reopen_keeps_data);
  suite_add_tcase (suite, data);

  tcase_add_checked_fixture (damage, setup, teardown);
  tcase_add_test (damage, test_garbage_file_left_alone);
  tcase_add_test (damage, test_garbage_after_sqlite_header_left_alone);
  tcase_add_test (damage, test_tiny_garbage_file_left_alone);
  tcase_add_test (damage, test_truncated_database_refused);
  tcase_add_test (damage, test_header_only_database_refused);
  tcase_add_test (damage, test_damaged_page_refused);
  tcase_add_test (damage, test_newer_schema_refused);
  tcase_add_test (damage, test_other_programs_database_refused);
  suite_add_tcase (suite, damage);
  return suite;
}

int
main (void)
{
  SRunner *runner = srunner_create (store_suite ());
  int failed;

  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
