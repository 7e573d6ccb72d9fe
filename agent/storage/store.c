/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyhold-contract.h"

#include "storage/store.h"

/* Rides out a checkpoint by another connection (the old agent during
 * --replace) without stalling the main loop noticeably. */
#define BUSY_TIMEOUT_MS 250

#define MIN_PAGE_SIZE 512

/* Migration N (1-based) takes the schema from user_version N - 1 to N, in
 * one transaction. Append only: a released migration never changes, since
 * databases out there have already run it. */
static const char *const migrations[] = {
  /* 1: provider cache and account identities */
  "CREATE TABLE provider_metadata ("
  "  issuer TEXT PRIMARY KEY,"
  "  document TEXT NOT NULL,"
  "  fetched_at INTEGER NOT NULL);"
  "CREATE TABLE provider_jwks ("
  "  issuer TEXT PRIMARY KEY,"
  "  document TEXT NOT NULL,"
  "  fetched_at INTEGER NOT NULL);"
  "CREATE TABLE account_identity ("
  "  account TEXT PRIMARY KEY,"
  "  issuer TEXT NOT NULL,"
  "  subject TEXT NOT NULL,"
  "  claims TEXT NOT NULL,"
  "  updated_at INTEGER NOT NULL);",
  /* 2: the outbox (agent/outbox-store.c); times in Unix milliseconds */
  "CREATE TABLE outbox_key ("
  "  id INTEGER PRIMARY KEY CHECK (id = 1),"
  "  fingerprint BLOB NOT NULL);"
  "CREATE TABLE outbox_items ("
  "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  id TEXT NOT NULL UNIQUE,"
  "  owner TEXT NOT NULL,"
  "  account TEXT NOT NULL,"
  "  queue TEXT NOT NULL,"
  "  subject TEXT NOT NULL,"
  "  method TEXT NOT NULL,"
  "  sealed_url BLOB NOT NULL,"
  "  sealed_request BLOB NOT NULL,"
  "  request_size INTEGER NOT NULL,"
  "  idempotency_key TEXT NOT NULL,"
  "  state TEXT NOT NULL CHECK (state IN"
  "    ('pending', 'waiting', 'done', 'failed', 'cancelled', 'expired')),"
  "  attempts INTEGER NOT NULL DEFAULT 0,"
  "  created_ms INTEGER NOT NULL,"
  "  expires_ms INTEGER NOT NULL,"
  "  next_attempt_ms INTEGER NOT NULL DEFAULT 0,"
  "  status INTEGER NOT NULL DEFAULT 0,"
  "  sealed_response BLOB,"
  "  reason TEXT NOT NULL DEFAULT '',"
  "  finished_ms INTEGER,"
  "  CHECK ((finished_ms IS NULL) = (state IN ('pending', 'waiting'))));"
  "CREATE INDEX outbox_items_by_queue ON outbox_items (account, queue, seq)"
  "  WHERE finished_ms IS NULL;"
  "CREATE INDEX outbox_items_by_expiry ON outbox_items (expires_ms)"
  "  WHERE finished_ms IS NULL;"
  "CREATE INDEX outbox_items_by_finish ON outbox_items (finished_ms)"
  "  WHERE finished_ms IS NOT NULL;"
  "CREATE INDEX outbox_items_by_owner ON outbox_items (owner, seq);",
};

#define SCHEMA_VERSION ((int) G_N_ELEMENTS (migrations))

struct _KeyholdStore
{
  sqlite3 *db;
};

/* The two provider document tables differ only in name. */
typedef struct
{
  const char *description;
  const char *put_sql;
  const char *get_sql;
} DocumentTable;

static const DocumentTable provider_metadata_table = {
  "provider metadata",
  "INSERT INTO provider_metadata (issuer, document, fetched_at) VALUES (?1, ?2, ?3)"
  " ON CONFLICT (issuer) DO UPDATE"
  " SET document = excluded.document, fetched_at = excluded.fetched_at",
  "SELECT document, fetched_at FROM provider_metadata WHERE issuer = ?1",
};

static const DocumentTable provider_jwks_table = {
  "provider key set",
  "INSERT INTO provider_jwks (issuer, document, fetched_at) VALUES (?1, ?2, ?3)"
  " ON CONFLICT (issuer) DO UPDATE"
  " SET document = excluded.document, fetched_at = excluded.fetched_at",
  "SELECT document, fetched_at FROM provider_jwks WHERE issuer = ?1",
};

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

static gboolean G_GNUC_PRINTF (3, 4)
    set_sqlite_error (GError **error, sqlite3 *db, const char *format, ...)
{
  g_autofree char *action = NULL;
  va_list args;

  va_start (args, format);
  action = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE, "%s: %s", action, sqlite3_errmsg (db));
  return FALSE;
}

static gboolean G_GNUC_PRINTF (3, 4)
    set_errno_error (GError **error, int saved_errno, const char *format, ...)
{
  g_autofree char *action = NULL;
  va_list args;

  va_start (args, format);
  action = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE, "%s: %s", action,
               g_strerror (saved_errno));
  return FALSE;
}

/* ---- opening ------------------------------------------------------------ */

char *
keyhold_store_default_path (void)
{
  return g_build_filename (g_get_user_data_dir (), "keyhold", "keyhold.db", NULL);
}

/* SQLite takes any file shorter than one page for a new, empty database and
 * would write over it, so only an empty file counts as new (SQLite file
 * format §1.3: the 16-byte header string, pages of at least 512 bytes). */
static gboolean
check_file_header (int fd, const struct stat *info, const char *path, GError **error)
{
  static const char magic[16] = "SQLite format 3";
  char header[sizeof magic];

  if (info->st_size == 0)
    return TRUE;
  if (info->st_size >= MIN_PAGE_SIZE && pread (fd, header, sizeof header, 0) == sizeof header
      && memcmp (header, magic, sizeof magic) == 0)
    return TRUE;
  g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE,
               "%s is not a keyhold database (it lacks the SQLite header); it was left as it is",
               path);
  return FALSE;
}

/* Creating the file here rather than in SQLite is what makes it 0600
 * whatever the umask; SQLite gives its -wal and -shm files the same mode. */
static gboolean
prepare_file (const char *path, GError **error)
{
  g_autofree char *directory = g_path_get_dirname (path);
  struct stat info;
  int fd;

  if (g_mkdir_with_parents (directory, 0700) != 0)
    return set_errno_error (error, errno, "Could not create %s", directory);

  fd = g_open (path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
  if (fd < 0)
    return set_errno_error (error, errno, "Could not open %s", path);
  if (fstat (fd, &info) != 0 || !S_ISREG (info.st_mode))
    {
      close (fd);
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE, "%s is not a regular file", path);
      return FALSE;
    }
  if (!check_file_header (fd, &info, path, error))
    {
      close (fd);
      return FALSE;
    }
  /* Identity claims are personal data; a copy restored with loose
   * permissions is made private again. */
  if ((info.st_mode & 0077) != 0 && fchmod (fd, 0600) != 0)
    {
      int saved_errno = errno;

      close (fd);
      return set_errno_error (error, saved_errno, "Could not make %s private", path);
    }
  close (fd);
  return TRUE;
}

static gboolean
exec_sql (KeyholdStore *store, const char *sql, GError **error)
{
  if (sqlite3_exec (store->db, sql, NULL, NULL, NULL) == SQLITE_OK)
    return TRUE;
  return set_sqlite_error (error, store->db, "Could not set up the database");
}

static sqlite3_stmt *
prepare (KeyholdStore *store, const char *sql, GError **error)
{
  sqlite3_stmt *statement = NULL;

  if (sqlite3_prepare_v2 (store->db, sql, -1, &statement, NULL) != SQLITE_OK)
    {
      set_sqlite_error (error, store->db, "Could not query the database");
      return NULL;
    }
  return statement;
}

/* Reads before anything is written: a file that is not a healthy database
 * must be left exactly as it was. */
static gboolean
check_integrity (KeyholdStore *store, const char *path, GError **error)
{
  g_autoptr (sqlite3_stmt) statement = NULL;
  const char *problem;

  if (sqlite3_prepare_v2 (store->db, "PRAGMA quick_check(1)", -1, &statement, NULL) != SQLITE_OK
      || sqlite3_step (statement) != SQLITE_ROW)
    problem = sqlite3_errmsg (store->db);
  else
    problem = (const char *) sqlite3_column_text (statement, 0);
  if (g_strcmp0 (problem, "ok") == 0)
    return TRUE;

  g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE,
               "%s is damaged or not a keyhold database (%s); it was left as it is", path,
               problem != NULL ? problem : "the integrity check gave no answer");
  return FALSE;
}

static gboolean
read_schema_version (KeyholdStore *store, int *out_version, GError **error)
{
  g_autoptr (sqlite3_stmt) statement = prepare (store, "PRAGMA user_version", error);

  if (statement == NULL)
    return FALSE;
  if (sqlite3_step (statement) != SQLITE_ROW)
    return set_sqlite_error (error, store->db, "Could not read the database's schema version");
  *out_version = sqlite3_column_int (statement, 0);
  return TRUE;
}

/* A newer keyhold may have changed the meaning of tables this one knows;
 * writing to them could destroy what it stored. */
static gboolean
check_schema_version (int version, const char *path, GError **error)
{
  if (version >= 0 && version <= SCHEMA_VERSION)
    return TRUE;
  g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE,
               "%s has schema version %d, but this keyhold knows only up to %d; it was "
               "probably written by a newer keyhold and was left as it is",
               path, version, SCHEMA_VERSION);
  return FALSE;
}

static gboolean
has_tables (KeyholdStore *store, gboolean *out_has_tables, GError **error)
{
  g_autoptr (sqlite3_stmt) statement
      = prepare (store, "SELECT 1 FROM sqlite_schema LIMIT 1", error);
  int result;

  if (statement == NULL)
    return FALSE;
  result = sqlite3_step (statement);
  if (result != SQLITE_ROW && result != SQLITE_DONE)
    return set_sqlite_error (error, store->db, "Could not read the database's schema");
  *out_has_tables = result == SQLITE_ROW;
  return TRUE;
}

/* Runs before the first write. Version 0 is only ever an empty file that
 * keyhold just created; with tables in it, it is some other program's
 * database that ended up at our path. */
static gboolean
check_schema (KeyholdStore *store, const char *path, GError **error)
{
  gboolean other_tables = FALSE;
  int version = 0;

  if (!read_schema_version (store, &version, error) || !check_schema_version (version, path, error)
      || !has_tables (store, &other_tables, error))
    return FALSE;
  if (version == 0 && other_tables)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE,
                   "%s is a database of some other program; it was left as it is", path);
      return FALSE;
    }
  return TRUE;
}

static gboolean
configure_connection (KeyholdStore *store, GError **error)
{
  /* Any mode but "wal" comes back where the file system cannot share
   * memory (network file systems); the rollback journal with
   * synchronous=FULL is just as durable there, only slower. */
  return exec_sql (store, "PRAGMA journal_mode = WAL", error)
         && exec_sql (store, "PRAGMA synchronous = FULL", error)
         && exec_sql (store, "PRAGMA foreign_keys = ON", error)
         && exec_sql (store, "PRAGMA secure_delete = ON", error);
}

static gboolean
migrate_one_step (KeyholdStore *store, const char *path, gboolean *out_done, GError **error)
{
  g_autofree char *set_version = NULL;
  int version = 0;

  if (!read_schema_version (store, &version, error) || !check_schema_version (version, path, error))
    return FALSE;
  if (version == SCHEMA_VERSION)
    {
      *out_done = TRUE;
      return TRUE;
    }

  if (sqlite3_exec (store->db, migrations[version], NULL, NULL, NULL) != SQLITE_OK)
    return set_sqlite_error (error, store->db, "Could not update the database to schema version %d",
                             version + 1);
  set_version = g_strdup_printf ("PRAGMA user_version = %d", version + 1);
  if (!exec_sql (store, set_version, error))
    return FALSE;
  *out_done = FALSE;
  return TRUE;
}

/* The version is read again inside the write transaction, so two agents
 * starting at once cannot both run a migration. */
static gboolean
apply_next_migration (KeyholdStore *store, const char *path, gboolean *out_done, GError **error)
{
  if (!exec_sql (store, "BEGIN IMMEDIATE", error))
    return FALSE;
  if (migrate_one_step (store, path, out_done, error) && exec_sql (store, "COMMIT", error))
    return TRUE;
  sqlite3_exec (store->db, "ROLLBACK", NULL, NULL, NULL);
  return FALSE;
}

static gboolean
migrate (KeyholdStore *store, const char *path, GError **error)
{
  gboolean done = FALSE;

  while (!done)
    if (!apply_next_migration (store, path, &done, error))
      return FALSE;
  return TRUE;
}

KeyholdStore *
keyhold_store_open (const char *path, GError **error)
{
  g_autoptr (KeyholdStore) store = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!prepare_file (path, error))
    return NULL;

  store = g_new0 (KeyholdStore, 1);
  if (sqlite3_open_v2 (path, &store->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL)
      != SQLITE_OK)
    {
      set_sqlite_error (error, store->db, "Could not open %s", path);
      return NULL;
    }
  /* Refuse schema tricks (writable_schema, functions in views or triggers)
   * that a tampered file could otherwise use. */
  sqlite3_db_config (store->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
  sqlite3_db_config (store->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
  sqlite3_busy_timeout (store->db, BUSY_TIMEOUT_MS);

  if (!check_integrity (store, path, error) || !check_schema (store, path, error)
      || !configure_connection (store, error) || !migrate (store, path, error))
    return NULL;
  return g_steal_pointer (&store);
}

void
keyhold_store_close (KeyholdStore *store)
{
  if (store == NULL)
    return;
  /* _v2: a statement the outbox forgot to finalize delays the close
   * instead of leaking the connection. */
  sqlite3_close_v2 (store->db);
  g_free (store);
}

sqlite3 *
keyhold_store_get_db (KeyholdStore *store)
{
  g_return_val_if_fail (store != NULL, NULL);

  return store->db;
}

/* ---- provider documents -------------------------------------------------- */

static gboolean
put_document (KeyholdStore *store,
              const DocumentTable *table,
              const char *issuer,
              const char *document,
              gint64 fetched_at,
              GError **error)
{
  g_autoptr (sqlite3_stmt) statement = NULL;

  g_return_val_if_fail (store != NULL, FALSE);
  g_return_val_if_fail (issuer != NULL, FALSE);
  g_return_val_if_fail (document != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  statement = prepare (store, table->put_sql, error);
  if (statement == NULL)
    return FALSE;
  if (sqlite3_bind_text (statement, 1, issuer, -1, SQLITE_STATIC) != SQLITE_OK
      || sqlite3_bind_text (statement, 2, document, -1, SQLITE_STATIC) != SQLITE_OK
      || sqlite3_bind_int64 (statement, 3, fetched_at) != SQLITE_OK
      || sqlite3_step (statement) != SQLITE_DONE)
    return set_sqlite_error (error, store->db, "Could not save the %s", table->description);
  return TRUE;
}

/* Copies a text column; NULL only when SQLite ran out of memory, as every
 * column read here is NOT NULL. */
static char *
dup_column (sqlite3_stmt *statement, int column)
{
  return g_strdup ((const char *) sqlite3_column_text (statement, column));
}

static char *
get_document (KeyholdStore *store,
              const DocumentTable *table,
              const char *issuer,
              gint64 *out_fetched_at,
              GError **error)
{
  g_autoptr (sqlite3_stmt) statement = NULL;
  g_autofree char *document = NULL;
  int result;

  g_return_val_if_fail (store != NULL, NULL);
  g_return_val_if_fail (issuer != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  statement = prepare (store, table->get_sql, error);
  if (statement == NULL)
    return NULL;
  if (sqlite3_bind_text (statement, 1, issuer, -1, SQLITE_STATIC) != SQLITE_OK)
    {
      set_sqlite_error (error, store->db, "Could not read the %s", table->description);
      return NULL;
    }
  result = sqlite3_step (statement);
  if (result == SQLITE_DONE)
    return NULL;
  if (result != SQLITE_ROW || (document = dup_column (statement, 0)) == NULL)
    {
      set_sqlite_error (error, store->db, "Could not read the %s", table->description);
      return NULL;
    }
  if (out_fetched_at != NULL)
    *out_fetched_at = sqlite3_column_int64 (statement, 1);
  return g_steal_pointer (&document);
}

gboolean
keyhold_store_put_provider_metadata (KeyholdStore *store,
                                     const char *issuer,
                                     const char *document,
                                     gint64 fetched_at,
                                     GError **error)
{
  return put_document (store, &provider_metadata_table, issuer, document, fetched_at, error);
}

char *
keyhold_store_get_provider_metadata (KeyholdStore *store,
                                     const char *issuer,
                                     gint64 *out_fetched_at,
                                     GError **error)
{
  return get_document (store, &provider_metadata_table, issuer, out_fetched_at, error);
}

gboolean
keyhold_store_put_provider_jwks (KeyholdStore *store,
                                 const char *issuer,
                                 const char *document,
                                 gint64 fetched_at,
                                 GError **error)
{
  return put_document (store, &provider_jwks_table, issuer, document, fetched_at, error);
}

char *
keyhold_store_get_provider_jwks (KeyholdStore *store,
                                 const char *issuer,
                                 gint64 *out_fetched_at,
                                 GError **error)
{
  return get_document (store, &provider_jwks_table, issuer, out_fetched_at, error);
}

/* ---- account identities -------------------------------------------------- */

gboolean
keyhold_store_put_identity (KeyholdStore *store,
                            const char *account,
                            const char *issuer,
                            const char *subject,
                            const char *claims_json,
                            GError **error)
{
  g_autoptr (sqlite3_stmt) statement = NULL;

  g_return_val_if_fail (store != NULL, FALSE);
  g_return_val_if_fail (account != NULL, FALSE);
  g_return_val_if_fail (issuer != NULL, FALSE);
  g_return_val_if_fail (subject != NULL, FALSE);
  g_return_val_if_fail (claims_json != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  statement = prepare (store,
                       "INSERT INTO account_identity"
                       " (account, issuer, subject, claims, updated_at)"
                       " VALUES (?1, ?2, ?3, ?4, ?5)"
                       " ON CONFLICT (account) DO UPDATE"
                       " SET issuer = excluded.issuer, subject = excluded.subject,"
                       " claims = excluded.claims, updated_at = excluded.updated_at",
                       error);
  if (statement == NULL)
    return FALSE;
  if (sqlite3_bind_text (statement, 1, account, -1, SQLITE_STATIC) != SQLITE_OK
      || sqlite3_bind_text (statement, 2, issuer, -1, SQLITE_STATIC) != SQLITE_OK
      || sqlite3_bind_text (statement, 3, subject, -1, SQLITE_STATIC) != SQLITE_OK
      || sqlite3_bind_text (statement, 4, claims_json, -1, SQLITE_STATIC) != SQLITE_OK
      || sqlite3_bind_int64 (statement, 5, g_get_real_time () / G_USEC_PER_SEC) != SQLITE_OK
      || sqlite3_step (statement) != SQLITE_DONE)
    return set_sqlite_error (error, store->db, "Could not save the account's identity");
  return TRUE;
}

gboolean
keyhold_store_get_identity (KeyholdStore *store,
                            const char *account,
                            char **out_issuer,
                            char **out_subject,
                            char **out_claims_json,
                            GError **error)
{
  g_autoptr (sqlite3_stmt) statement = NULL;
  g_autofree char *issuer = NULL;
  g_autofree char *subject = NULL;
  g_autofree char *claims_json = NULL;
  int result;

  g_return_val_if_fail (store != NULL, FALSE);
  g_return_val_if_fail (account != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  statement = prepare (
      store, "SELECT issuer, subject, claims FROM account_identity WHERE account = ?1", error);
  if (statement == NULL)
    return FALSE;
  if (sqlite3_bind_text (statement, 1, account, -1, SQLITE_STATIC) != SQLITE_OK)
    return set_sqlite_error (error, store->db, "Could not read the account's identity");
  result = sqlite3_step (statement);
  if (result == SQLITE_DONE)
    return FALSE;
  if (result != SQLITE_ROW || (issuer = dup_column (statement, 0)) == NULL
      || (subject = dup_column (statement, 1)) == NULL
      || (claims_json = dup_column (statement, 2)) == NULL)
    return set_sqlite_error (error, store->db, "Could not read the account's identity");

  if (out_issuer != NULL)
    *out_issuer = g_steal_pointer (&issuer);
  if (out_subject != NULL)
    *out_subject = g_steal_pointer (&subject);
  if (out_claims_json != NULL)
    *out_claims_json = g_steal_pointer (&claims_json);
  return TRUE;
}

gboolean
keyhold_store_delete_identity (KeyholdStore *store, const char *account, GError **error)
{
  g_autoptr (sqlite3_stmt) statement = NULL;

  g_return_val_if_fail (store != NULL, FALSE);
  g_return_val_if_fail (account != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  statement = prepare (store, "DELETE FROM account_identity WHERE account = ?1", error);
  if (statement == NULL)
    return FALSE;
  if (sqlite3_bind_text (statement, 1, account, -1, SQLITE_STATIC) != SQLITE_OK
      || sqlite3_step (statement) != SQLITE_DONE)
    return set_sqlite_error (error, store->db, "Could not delete the account's identity");
  return TRUE;
}
