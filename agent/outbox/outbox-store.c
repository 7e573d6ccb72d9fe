/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <sqlite3.h>

#include "keyhold-contract.h"

#include "outbox/outbox-store.h"

/* The columns of a KeyholdOutboxItem, in the order read_item () reads
 * them. Each query reads the sealed request (up to a megabyte) and the
 * sealed response only if it needs them; NULL stands in for the others. */
#define ITEM_COLUMNS(request, response)                                                            \
  "id, owner, account, queue, subject, method, sealed_url, " request ", request_size, "            \
  "idempotency_key, state, attempts, created_ms, expires_ms, next_attempt_ms, status, " response   \
  ", reason, finished_ms"

/* Bit (1 << KeyholdOutboxState) of a stored state, for state filters. */
#define STATE_BIT                                                                                  \
  "(1 << CASE state WHEN 'pending' THEN 0 WHEN 'waiting' THEN 2 WHEN 'done' THEN 3"                \
  " WHEN 'failed' THEN 4 WHEN 'cancelled' THEN 5 WHEN 'expired' THEN 6 END)"

typedef enum
{
  STMT_GET_FINGERPRINT,
  STMT_SET_FINGERPRINT,
  STMT_INSERT,
  STMT_CHANGE_LOOKUP,
  STMT_CHANGE,
  STMT_GET,
  STMT_SEQ_OF,
  STMT_LIST,
  STMT_HEAD,
  STMT_REQUEST,
  STMT_QUEUES,
  STMT_OVERDUE,
  STMT_DELETE_FINISHED,
  N_STATEMENTS
} StatementId;

static const char *const statement_sql[N_STATEMENTS] = {
  [STMT_GET_FINGERPRINT] = "SELECT fingerprint FROM outbox_key WHERE id = 1",
  [STMT_SET_FINGERPRINT] = "INSERT INTO outbox_key (id, fingerprint) VALUES (1, ?1)"
                           " ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint",
  [STMT_INSERT] = "INSERT INTO outbox_items (id, owner, account, queue, subject, method,"
                  " sealed_url, sealed_request, request_size, idempotency_key, state,"
                  " created_ms, expires_ms)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11, ?12)",
  [STMT_CHANGE_LOOKUP] = "SELECT owner, request_size, finished_ms IS NULL"
                         " FROM outbox_items WHERE id = ?1",
  /* A finished item's request is never sent again: it goes, and with
   * secure_delete its pages are zeroed. */
  [STMT_CHANGE] = "UPDATE outbox_items SET state = ?2, attempts = ?3, next_attempt_ms = ?4,"
                  " status = ?5, sealed_response = coalesce (?6, sealed_response), reason = ?7,"
                  " finished_ms = ?8,"
                  " sealed_request = CASE WHEN ?8 IS NULL THEN sealed_request ELSE x'' END"
                  " WHERE id = ?1 AND finished_ms IS NULL",
  [STMT_GET]
  = "SELECT " ITEM_COLUMNS ("NULL", "sealed_response") " FROM outbox_items WHERE id = ?1",
  [STMT_SEQ_OF] = "SELECT seq FROM outbox_items WHERE id = ?1 AND owner = ?2",
  [STMT_LIST] = "SELECT " ITEM_COLUMNS (
      "NULL",
      "NULL") " FROM outbox_items"
              " WHERE owner = ?1 AND seq > ?2"
              " AND (?3 IS NULL OR account = ?3) AND (?4 IS NULL OR queue = ?4)"
              " AND (?6 = 0 OR ?6 & " STATE_BIT " != 0)"
              " ORDER BY seq LIMIT ?5",
  /* "finished_ms IS NULL" matches the partial index outbox_items_by_queue,
   * so the head is one index lookup however long the queue is. */
  [STMT_HEAD]
  = "SELECT " ITEM_COLUMNS ("NULL",
                            "NULL") " FROM outbox_items"
                                    " WHERE account = ?1 AND queue = ?2 AND finished_ms IS NULL"
                                    " ORDER BY seq LIMIT 1",
  [STMT_REQUEST] = "SELECT sealed_request FROM outbox_items WHERE id = ?1 AND finished_ms IS NULL",
  [STMT_QUEUES] = "SELECT DISTINCT account, queue FROM outbox_items WHERE finished_ms IS NULL",
  [STMT_OVERDUE] = "SELECT id FROM outbox_items WHERE finished_ms IS NULL AND expires_ms <= ?1"
                   " ORDER BY expires_ms LIMIT ?2",
  [STMT_DELETE_FINISHED] = "DELETE FROM outbox_items WHERE seq IN (SELECT seq FROM outbox_items"
                           " WHERE finished_ms IS NOT NULL AND finished_ms < ?1 LIMIT ?2)",
};

typedef struct
{
  guint items;
  guint64 bytes;
} Usage;

typedef enum
{
  WRITE_INSERT,
  WRITE_CHANGE,
} WriteKind;

typedef struct
{
  WriteKind kind;
  GTask *task;
  /* WRITE_INSERT */
  KeyholdOutboxItem *item;
  /* WRITE_CHANGE */
  char *id;
  KeyholdOutboxChange change;
  /* Set while the write runs: the owner whose usage it changes. */
  char *owner;
  guint64 charge;
  GError *error;
} Write;

struct _KeyholdOutboxStore
{
  sqlite3 *db;
  sqlite3_stmt *statements[N_STATEMENTS];
  KeyholdOutboxQuota quota;
  /* owner -> Usage of its unfinished items, including inserts not yet
   * committed, so that a burst cannot slip past the quota. */
  GHashTable *usage;
  /* The sum over all owners. */
  Usage total;
  GQueue writes;
  GSource *flush_source;
};

/* Resetting a statement on every way out of a function keeps it from
 * holding a read transaction open, which would stall WAL checkpoints, and
 * from keeping pointers to bound data that is about to be freed. */
typedef sqlite3_stmt ResetStatement;

static void
reset_statement (sqlite3_stmt *statement)
{
  sqlite3_reset (statement);
  sqlite3_clear_bindings (statement);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ResetStatement, reset_statement)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

static gboolean
set_sqlite_error (GError **error, KeyholdOutboxStore *store, const char *action)
{
  g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE, "%s: %s", action,
               sqlite3_errmsg (store->db));
  return FALSE;
}

static ResetStatement *
use_statement (KeyholdOutboxStore *store, StatementId id)
{
  sqlite3_stmt *statement = store->statements[id];

  reset_statement (statement);
  return statement;
}

static gboolean
exec_sql (KeyholdOutboxStore *store, const char *sql, GError **error)
{
  if (sqlite3_exec (store->db, sql, NULL, NULL, NULL) == SQLITE_OK)
    return TRUE;
  return set_sqlite_error (error, store, "Could not write the outbox");
}

/* ---- states and items ---------------------------------------------------- */

static const char *const state_names[KEYHOLD_OUTBOX_N_STATES] = {
  [KEYHOLD_OUTBOX_STATE_PENDING] = "pending", [KEYHOLD_OUTBOX_STATE_SENDING] = "sending",
  [KEYHOLD_OUTBOX_STATE_WAITING] = "waiting", [KEYHOLD_OUTBOX_STATE_DONE] = "done",
  [KEYHOLD_OUTBOX_STATE_FAILED] = "failed",   [KEYHOLD_OUTBOX_STATE_CANCELLED] = "cancelled",
  [KEYHOLD_OUTBOX_STATE_EXPIRED] = "expired",
};

const char *
keyhold_outbox_state_to_string (KeyholdOutboxState state)
{
  g_return_val_if_fail ((guint) state < KEYHOLD_OUTBOX_N_STATES, NULL);

  return state_names[state];
}

gboolean
keyhold_outbox_state_from_string (const char *string, KeyholdOutboxState *out_state)
{
  for (guint state = 0; state < KEYHOLD_OUTBOX_N_STATES; state++)
    if (g_strcmp0 (string, state_names[state]) == 0)
      {
        *out_state = state;
        return TRUE;
      }
  return FALSE;
}

gboolean
keyhold_outbox_state_is_finished (KeyholdOutboxState state)
{
  return state == KEYHOLD_OUTBOX_STATE_DONE || state == KEYHOLD_OUTBOX_STATE_FAILED
         || state == KEYHOLD_OUTBOX_STATE_CANCELLED || state == KEYHOLD_OUTBOX_STATE_EXPIRED;
}

void
keyhold_outbox_item_free (KeyholdOutboxItem *item)
{
  if (item == NULL)
    return;
  g_free (item->id);
  g_free (item->owner);
  g_free (item->account);
  g_free (item->queue);
  g_free (item->subject);
  g_free (item->method);
  g_clear_pointer (&item->sealed_url, g_bytes_unref);
  g_clear_pointer (&item->sealed_request, g_bytes_unref);
  g_free (item->idempotency_key);
  g_clear_pointer (&item->sealed_response, g_bytes_unref);
  g_free (item->reason);
  g_free (item);
}

static char *
column_text (sqlite3_stmt *statement, int column)
{
  const char *text = (const char *) sqlite3_column_text (statement, column);

  return g_strdup (text != NULL ? text : "");
}

static GBytes *
column_blob (sqlite3_stmt *statement, int column)
{
  if (sqlite3_column_type (statement, column) == SQLITE_NULL)
    return NULL;
  return g_bytes_new (sqlite3_column_blob (statement, column),
                      sqlite3_column_bytes (statement, column));
}

/* The row at @statement, in the order of ITEM_COLUMNS. */
static KeyholdOutboxItem *
read_item (KeyholdOutboxStore *store, sqlite3_stmt *statement, GError **error)
{
  g_autoptr (KeyholdOutboxItem) item = g_new0 (KeyholdOutboxItem, 1);
  g_autofree char *state = NULL;

  item->id = column_text (statement, 0);
  item->owner = column_text (statement, 1);
  item->account = column_text (statement, 2);
  item->queue = column_text (statement, 3);
  item->subject = column_text (statement, 4);
  item->method = column_text (statement, 5);
  item->sealed_url = column_blob (statement, 6);
  item->sealed_request = column_blob (statement, 7);
  item->request_size = (gsize) MAX (sqlite3_column_int64 (statement, 8), 0);
  item->idempotency_key = column_text (statement, 9);
  state = column_text (statement, 10);
  item->attempts = (guint) CLAMP (sqlite3_column_int64 (statement, 11), 0, G_MAXUINT);
  item->created_ms = sqlite3_column_int64 (statement, 12);
  item->expires_ms = sqlite3_column_int64 (statement, 13);
  item->next_attempt_ms = sqlite3_column_int64 (statement, 14);
  item->status = sqlite3_column_int (statement, 15);
  item->sealed_response = column_blob (statement, 16);
  item->reason = column_text (statement, 17);
  item->finished_ms = sqlite3_column_int64 (statement, 18);

  if (item->sealed_url == NULL || !keyhold_outbox_state_from_string (state, &item->state)
      || item->state == KEYHOLD_OUTBOX_STATE_SENDING)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE,
                   "Outbox item %s is damaged in the database", item->id);
      return NULL;
    }
  return g_steal_pointer (&item);
}

/* ---- opening -------------------------------------------------------------- */

static void
usage_charge (KeyholdOutboxStore *store, const char *owner, guint64 charge)
{
  Usage *usage = g_hash_table_lookup (store->usage, owner);

  if (usage == NULL)
    {
      usage = g_new0 (Usage, 1);
      g_hash_table_insert (store->usage, g_strdup (owner), usage);
    }
  usage->items++;
  usage->bytes += charge;
  store->total.items++;
  store->total.bytes += charge;
}

static void
usage_release (KeyholdOutboxStore *store, const char *owner, guint64 charge)
{
  Usage *usage = g_hash_table_lookup (store->usage, owner);

  if (usage == NULL)
    return;
  store->total.items = store->total.items > 0 ? store->total.items - 1 : 0;
  store->total.bytes = store->total.bytes > charge ? store->total.bytes - charge : 0;
  usage->items = usage->items > 0 ? usage->items - 1 : 0;
  usage->bytes = usage->bytes > charge ? usage->bytes - charge : 0;
  if (usage->items == 0)
    g_hash_table_remove (store->usage, owner);
}

static guint64
item_charge (gsize request_size)
{
  return (guint64) request_size + KEYHOLD_OUTBOX_ITEM_OVERHEAD_BYTES;
}

/* Once at start: afterwards every insert and finish keeps the counts. */
static gboolean
load_usage (KeyholdOutboxStore *store, GError **error)
{
  g_autoptr (sqlite3_stmt) statement = NULL;
  int result;

  if (sqlite3_prepare_v2 (store->db,
                          "SELECT owner, count (*), total (request_size) FROM outbox_items"
                          " WHERE finished_ms IS NULL GROUP BY owner",
                          -1, &statement, NULL)
      != SQLITE_OK)
    return set_sqlite_error (error, store, "Could not read the outbox");

  while ((result = sqlite3_step (statement)) == SQLITE_ROW)
    {
      Usage *usage = g_new0 (Usage, 1);

      usage->items = (guint) sqlite3_column_int64 (statement, 1);
      usage->bytes = (guint64) sqlite3_column_double (statement, 2)
                     + (guint64) usage->items * KEYHOLD_OUTBOX_ITEM_OVERHEAD_BYTES;
      store->total.items += usage->items;
      store->total.bytes += usage->bytes;
      g_hash_table_insert (store->usage, column_text (statement, 0), usage);
    }
  if (result != SQLITE_DONE)
    return set_sqlite_error (error, store, "Could not read the outbox");
  return TRUE;
}

KeyholdOutboxStore *
keyhold_outbox_store_new (KeyholdStore *keyhold_store,
                          const KeyholdOutboxQuota *quota,
                          GError **error)
{
  g_autoptr (KeyholdOutboxStore) store = NULL;

  g_return_val_if_fail (keyhold_store != NULL, NULL);
  g_return_val_if_fail (quota != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  store = g_new0 (KeyholdOutboxStore, 1);
  store->db = keyhold_store_get_db (keyhold_store);
  store->quota = *quota;
  store->usage = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_queue_init (&store->writes);

  for (guint i = 0; i < N_STATEMENTS; i++)
    if (sqlite3_prepare_v3 (store->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                            &store->statements[i], NULL)
        != SQLITE_OK)
      {
        set_sqlite_error (error, store, "Could not prepare the outbox's queries");
        return NULL;
      }
  if (!load_usage (store, error))
    return NULL;
  return g_steal_pointer (&store);
}

/* ---- the key's fingerprint ------------------------------------------------ */

GBytes *
keyhold_outbox_store_get_key_fingerprint (KeyholdOutboxStore *store, GError **error)
{
  g_autoptr (ResetStatement) statement = use_statement (store, STMT_GET_FINGERPRINT);
  int result = sqlite3_step (statement);

  if (result == SQLITE_DONE)
    return NULL;
  if (result != SQLITE_ROW)
    {
      set_sqlite_error (error, store, "Could not read the outbox key's fingerprint");
      return NULL;
    }
  return column_blob (statement, 0);
}

gboolean
keyhold_outbox_store_set_key_fingerprint (KeyholdOutboxStore *store,
                                          GBytes *fingerprint,
                                          GError **error)
{
  g_autoptr (ResetStatement) statement = use_statement (store, STMT_SET_FINGERPRINT);
  gsize length;
  const void *data = g_bytes_get_data (fingerprint, &length);

  if (sqlite3_bind_blob (statement, 1, data, (int) length, SQLITE_STATIC) != SQLITE_OK
      || sqlite3_step (statement) != SQLITE_DONE)
    return set_sqlite_error (error, store, "Could not save the outbox key's fingerprint");
  return TRUE;
}

/* ---- group-committed writes ---------------------------------------------- */

static void
write_free (Write *write)
{
  g_clear_object (&write->task);
  g_clear_pointer (&write->item, keyhold_outbox_item_free);
  g_free (write->id);
  g_clear_pointer (&write->change.sealed_response, g_bytes_unref);
  g_free ((char *) write->change.reason);
  g_free (write->owner);
  g_clear_error (&write->error);
  g_free (write);
}

static gboolean
bind_bytes (sqlite3_stmt *statement, int index, GBytes *bytes)
{
  gsize length;
  const void *data;

  if (bytes == NULL)
    return sqlite3_bind_null (statement, index) == SQLITE_OK;
  data = g_bytes_get_data (bytes, &length);
  /* A zero-length blob, not NULL, even when @data is NULL. */
  return sqlite3_bind_blob64 (statement, index, data != NULL ? data : "", length, SQLITE_STATIC)
         == SQLITE_OK;
}

static gboolean
bind_text (sqlite3_stmt *statement, int index, const char *text)
{
  return sqlite3_bind_text (statement, index, text, -1, SQLITE_STATIC) == SQLITE_OK;
}

static gboolean
run_insert (KeyholdOutboxStore *store, Write *write, GError **error)
{
  g_autoptr (ResetStatement) statement = use_statement (store, STMT_INSERT);
  KeyholdOutboxItem *item = write->item;

  if (!bind_text (statement, 1, item->id) || !bind_text (statement, 2, item->owner)
      || !bind_text (statement, 3, item->account) || !bind_text (statement, 4, item->queue)
      || !bind_text (statement, 5, item->subject) || !bind_text (statement, 6, item->method)
      || !bind_bytes (statement, 7, item->sealed_url)
      || !bind_bytes (statement, 8, item->sealed_request)
      || sqlite3_bind_int64 (statement, 9, (sqlite3_int64) item->request_size) != SQLITE_OK
      || !bind_text (statement, 10, item->idempotency_key)
      || sqlite3_bind_int64 (statement, 11, item->created_ms) != SQLITE_OK
      || sqlite3_bind_int64 (statement, 12, item->expires_ms) != SQLITE_OK
      || sqlite3_step (statement) != SQLITE_DONE)
    return set_sqlite_error (error, store, "Could not queue the item");
  return TRUE;
}

/* Finds the item's owner and charge, and whether it is still unfinished. */
static gboolean
look_up_for_change (KeyholdOutboxStore *store, Write *write, GError **error)
{
  g_autoptr (ResetStatement) statement = use_statement (store, STMT_CHANGE_LOOKUP);
  int result;

  if (!bind_text (statement, 1, write->id))
    return set_sqlite_error (error, store, "Could not read the outbox");
  result = sqlite3_step (statement);
  if (result == SQLITE_DONE)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NOT_FOUND, "There is no item %s", write->id);
      return FALSE;
    }
  if (result != SQLITE_ROW)
    return set_sqlite_error (error, store, "Could not read the outbox");
  if (sqlite3_column_int (statement, 2) == 0)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "Item %s has already finished", write->id);
      return FALSE;
    }
  write->owner = column_text (statement, 0);
  write->charge = item_charge ((gsize) MAX (sqlite3_column_int64 (statement, 1), 0));
  return TRUE;
}

static gboolean
run_change (KeyholdOutboxStore *store, Write *write, GError **error)
{
  g_autoptr (ResetStatement) statement = NULL;
  const KeyholdOutboxChange *change = &write->change;
  gint64 finished_ms = g_get_real_time () / 1000;

  if (!look_up_for_change (store, write, error))
    return FALSE;

  statement = use_statement (store, STMT_CHANGE);
  if (!bind_text (statement, 1, write->id)
      || !bind_text (statement, 2, keyhold_outbox_state_to_string (change->state))
      || sqlite3_bind_int64 (statement, 3, change->attempts) != SQLITE_OK
      || sqlite3_bind_int64 (statement, 4, change->next_attempt_ms) != SQLITE_OK
      || sqlite3_bind_int (statement, 5, change->status) != SQLITE_OK
      || !bind_bytes (statement, 6, change->sealed_response)
      || !bind_text (statement, 7, change->reason)
      || (keyhold_outbox_state_is_finished (change->state)
              ? sqlite3_bind_int64 (statement, 8, finished_ms)
              : sqlite3_bind_null (statement, 8))
             != SQLITE_OK
      || sqlite3_step (statement) != SQLITE_DONE)
    return set_sqlite_error (error, store, "Could not update the item");
  return TRUE;
}

static void
run_write (KeyholdOutboxStore *store, Write *write)
{
  if (write->kind == WRITE_INSERT)
    run_insert (store, write, &write->error);
  else
    run_change (store, write, &write->error);
}

/* Runs every write in one transaction. A failed write leaves the others
 * alone (SQLite undoes just that statement), unless the failure ended the
 * transaction itself (a full disk, an I/O error): then none counts. */
static GError *
run_batch (KeyholdOutboxStore *store, GQueue *batch)
{
  GError *error = NULL;

  if (!exec_sql (store, "BEGIN IMMEDIATE", &error))
    return error;
  for (GList *link = batch->head; link != NULL; link = link->next)
    {
      run_write (store, link->data);
      if (sqlite3_get_autocommit (store->db))
        {
          set_sqlite_error (&error, store, "Could not write the outbox");
          return error;
        }
    }
  if (exec_sql (store, "COMMIT", &error))
    return NULL;
  sqlite3_exec (store->db, "ROLLBACK", NULL, NULL, NULL);
  return error;
}

static void
complete_write (KeyholdOutboxStore *store, Write *write, const GError *batch_error)
{
  const GError *error = batch_error != NULL ? batch_error : write->error;

  if (error != NULL)
    {
      if (write->kind == WRITE_INSERT)
        usage_release (store, write->item->owner, item_charge (write->item->request_size));
      g_task_return_error (write->task, g_error_copy (error));
      return;
    }
  if (write->kind == WRITE_CHANGE && keyhold_outbox_state_is_finished (write->change.state))
    usage_release (store, write->owner, write->charge);
  g_task_return_boolean (write->task, TRUE);
}

static void
flush_writes (KeyholdOutboxStore *store)
{
  GQueue batch = store->writes;
  g_autoptr (GError) batch_error = NULL;
  Write *write;

  g_queue_init (&store->writes);
  if (g_queue_is_empty (&batch))
    return;
  batch_error = run_batch (store, &batch);
  while ((write = g_queue_pop_head (&batch)) != NULL)
    {
      complete_write (store, write, batch_error);
      write_free (write);
    }
}

static gboolean
on_flush (gpointer user_data)
{
  KeyholdOutboxStore *store = user_data;

  g_clear_pointer (&store->flush_source, g_source_unref);
  flush_writes (store);
  return G_SOURCE_REMOVE;
}

/* At default priority, not idle priority: a steady stream of D-Bus calls
 * must not starve the commit. GLib dispatches sources attached while
 * dispatching only in the next iteration, so every write asked for in this
 * one lands in the same transaction. */
static void
queue_write (KeyholdOutboxStore *store, Write *write)
{
  g_queue_push_tail (&store->writes, write);
  if (store->flush_source != NULL)
    return;
  store->flush_source = g_idle_source_new ();
  g_source_set_priority (store->flush_source, G_PRIORITY_DEFAULT);
  g_source_set_callback (store->flush_source, on_flush, store, NULL);
  g_source_set_static_name (store->flush_source, "keyhold outbox group commit");
  g_source_attach (store->flush_source, g_main_context_get_thread_default ());
}

static GTask *
new_write_task (gpointer source_tag,
                GCancellable *cancellable,
                GAsyncReadyCallback callback,
                gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  return task;
}

static gboolean
fits (guint items, guint64 bytes, guint max_items, guint64 max_bytes, guint64 charge)
{
  return items < max_items && charge <= max_bytes && bytes <= max_bytes - charge;
}

static gboolean
check_quota (KeyholdOutboxStore *store, const char *owner, guint64 charge, GError **error)
{
  Usage *usage = g_hash_table_lookup (store->usage, owner);
  guint items = usage != NULL ? usage->items : 0;
  guint64 bytes = usage != NULL ? usage->bytes : 0;

  if (!fits (items, bytes, store->quota.max_items, store->quota.max_bytes, charge))
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_QUOTA_EXCEEDED,
                   "The application has too much unsent work queued (at most %u items and "
                   "%" G_GUINT64_FORMAT " MiB)",
                   store->quota.max_items, store->quota.max_bytes / (1024 * 1024));
      return FALSE;
    }
  if (!fits (store->total.items, store->total.bytes, store->quota.max_total_items,
             store->quota.max_total_bytes, charge))
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_QUOTA_EXCEEDED,
                   "The applications together have too much unsent work queued (at most %u "
                   "items and %" G_GUINT64_FORMAT " MiB); try again once some of it is sent",
                   store->quota.max_total_items, store->quota.max_total_bytes / (1024 * 1024));
      return FALSE;
    }
  return TRUE;
}

void
keyhold_outbox_store_insert_async (KeyholdOutboxStore *store,
                                   KeyholdOutboxItem *item,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  g_autoptr (KeyholdOutboxItem) owned_item = item;
  GError *error = NULL;
  Write *write;

  g_return_if_fail (store != NULL);
  g_return_if_fail (item != NULL && item->sealed_url != NULL && item->sealed_request != NULL);

  task = new_write_task (keyhold_outbox_store_insert_async, cancellable, callback, user_data);
  if (!check_quota (store, item->owner, item_charge (item->request_size), &error))
    {
      g_task_return_error (task, error);
      return;
    }
  usage_charge (store, item->owner, item_charge (item->request_size));

  write = g_new0 (Write, 1);
  write->kind = WRITE_INSERT;
  write->task = g_steal_pointer (&task);
  write->item = g_steal_pointer (&owned_item);
  queue_write (store, write);
}

gboolean
keyhold_outbox_store_insert_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_async_result_is_tagged (result, keyhold_outbox_store_insert_async),
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

void
keyhold_outbox_store_change_async (KeyholdOutboxStore *store,
                                   const char *id,
                                   const KeyholdOutboxChange *change,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data)
{
  Write *write;

  g_return_if_fail (store != NULL);
  g_return_if_fail (id != NULL);
  g_return_if_fail (change != NULL && change->state != KEYHOLD_OUTBOX_STATE_SENDING);

  write = g_new0 (Write, 1);
  write->kind = WRITE_CHANGE;
  write->task
      = new_write_task (keyhold_outbox_store_change_async, cancellable, callback, user_data);
  write->id = g_strdup (id);
  write->change = *change;
  if (change->sealed_response != NULL)
    write->change.sealed_response = g_bytes_ref (change->sealed_response);
  write->change.reason = g_strdup (change->reason != NULL ? change->reason : "");
  queue_write (store, write);
}

gboolean
keyhold_outbox_store_change_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_async_result_is_tagged (result, keyhold_outbox_store_change_async),
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

void
keyhold_outbox_store_free (KeyholdOutboxStore *store)
{
  if (store == NULL)
    return;

  if (store->flush_source != NULL)
    {
      g_source_destroy (store->flush_source);
      g_clear_pointer (&store->flush_source, g_source_unref);
    }
  flush_writes (store);
  for (guint i = 0; i < N_STATEMENTS; i++)
    sqlite3_finalize (store->statements[i]);
  g_hash_table_unref (store->usage);
  g_free (store);
}

/* ---- reads ----------------------------------------------------------------- */

KeyholdOutboxItem *
keyhold_outbox_store_get (KeyholdOutboxStore *store, const char *id, GError **error)
{
  g_autoptr (ResetStatement) statement = use_statement (store, STMT_GET);
  int result;

  if (!bind_text (statement, 1, id))
    {
      set_sqlite_error (error, store, "Could not read the outbox");
      return NULL;
    }
  result = sqlite3_step (statement);
  if (result == SQLITE_ROW)
    return read_item (store, statement, error);
  if (result == SQLITE_DONE)
    g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NOT_FOUND, "There is no item %s", id);
  else
    set_sqlite_error (error, store, "Could not read the outbox");
  return NULL;
}

/* 0, the start, when @after_id is NULL. */
static gboolean
seq_of (KeyholdOutboxStore *store,
        const char *owner,
        const char *after_id,
        gint64 *out_seq,
        GError **error)
{
  g_autoptr (ResetStatement) statement = NULL;
  int result;

  if (after_id == NULL)
    {
      *out_seq = 0;
      return TRUE;
    }
  statement = use_statement (store, STMT_SEQ_OF);
  if (!bind_text (statement, 1, after_id) || !bind_text (statement, 2, owner))
    return set_sqlite_error (error, store, "Could not read the outbox");
  result = sqlite3_step (statement);
  if (result == SQLITE_DONE)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NOT_FOUND, "There is no item %s", after_id);
      return FALSE;
    }
  if (result != SQLITE_ROW)
    return set_sqlite_error (error, store, "Could not read the outbox");
  *out_seq = sqlite3_column_int64 (statement, 0);
  return TRUE;
}

/* Steps @statement to the end, collecting one item per row. */
static GPtrArray *
read_items (KeyholdOutboxStore *store, sqlite3_stmt *statement, GError **error)
{
  g_autoptr (GPtrArray) items
      = g_ptr_array_new_with_free_func ((GDestroyNotify) keyhold_outbox_item_free);
  int result;

  while ((result = sqlite3_step (statement)) == SQLITE_ROW)
    {
      KeyholdOutboxItem *item = read_item (store, statement, error);

      if (item == NULL)
        return NULL;
      g_ptr_array_add (items, item);
    }
  if (result != SQLITE_DONE)
    {
      set_sqlite_error (error, store, "Could not read the outbox");
      return NULL;
    }
  return g_steal_pointer (&items);
}

GPtrArray *
keyhold_outbox_store_list (KeyholdOutboxStore *store,
                           const char *owner,
                           const char *account,
                           const char *queue,
                           guint state_mask,
                           const char *after_id,
                           guint limit,
                           GError **error)
{
  g_autoptr (ResetStatement) statement = NULL;
  gint64 after_seq;

  if (!seq_of (store, owner, after_id, &after_seq, error))
    return NULL;

  statement = use_statement (store, STMT_LIST);
  if (!bind_text (statement, 1, owner) || sqlite3_bind_int64 (statement, 2, after_seq) != SQLITE_OK
      || !bind_text (statement, 3, account) || !bind_text (statement, 4, queue)
      || sqlite3_bind_int64 (statement, 5, limit) != SQLITE_OK
      || sqlite3_bind_int (statement, 6, (int) state_mask) != SQLITE_OK)
    {
      set_sqlite_error (error, store, "Could not read the outbox");
      return NULL;
    }
  return read_items (store, statement, error);
}

KeyholdOutboxItem *
keyhold_outbox_store_get_head (KeyholdOutboxStore *store,
                               const char *account,
                               const char *queue,
                               GError **error)
{
  g_autoptr (ResetStatement) statement = use_statement (store, STMT_HEAD);
  int result;

  if (!bind_text (statement, 1, account) || !bind_text (statement, 2, queue))
    {
      set_sqlite_error (error, store, "Could not read the outbox");
      return NULL;
    }
  result = sqlite3_step (statement);
  if (result == SQLITE_ROW)
    return read_item (store, statement, error);
  if (result != SQLITE_DONE)
    set_sqlite_error (error, store, "Could not read the outbox");
  return NULL;
}

GBytes *
keyhold_outbox_store_get_request (KeyholdOutboxStore *store, const char *id, GError **error)
{
  g_autoptr (ResetStatement) statement = use_statement (store, STMT_REQUEST);
  GBytes *request;
  int result;

  if (!bind_text (statement, 1, id))
    {
      set_sqlite_error (error, store, "Could not read the outbox");
      return NULL;
    }
  result = sqlite3_step (statement);
  if (result == SQLITE_ROW && (request = column_blob (statement, 0)) != NULL)
    return request;
  if (result == SQLITE_ROW || result == SQLITE_DONE)
    g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NOT_FOUND, "There is no unfinished item %s",
                 id);
  else
    set_sqlite_error (error, store, "Could not read the outbox");
  return NULL;
}

GPtrArray *
keyhold_outbox_store_list_queues (KeyholdOutboxStore *store, GError **error)
{
  g_autoptr (ResetStatement) statement = use_statement (store, STMT_QUEUES);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  int result;

  while ((result = sqlite3_step (statement)) == SQLITE_ROW)
    {
      g_ptr_array_add (names, column_text (statement, 0));
      g_ptr_array_add (names, column_text (statement, 1));
    }
  if (result != SQLITE_DONE)
    {
      set_sqlite_error (error, store, "Could not read the outbox");
      return NULL;
    }
  return g_steal_pointer (&names);
}

GPtrArray *
keyhold_outbox_store_list_overdue (KeyholdOutboxStore *store,
                                   gint64 now_ms,
                                   guint limit,
                                   GError **error)
{
  g_autoptr (ResetStatement) statement = use_statement (store, STMT_OVERDUE);
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  int result;

  if (sqlite3_bind_int64 (statement, 1, now_ms) != SQLITE_OK
      || sqlite3_bind_int64 (statement, 2, limit) != SQLITE_OK)
    {
      set_sqlite_error (error, store, "Could not read the outbox");
      return NULL;
    }
  while ((result = sqlite3_step (statement)) == SQLITE_ROW)
    g_ptr_array_add (ids, column_text (statement, 0));
  if (result != SQLITE_DONE)
    {
      set_sqlite_error (error, store, "Could not read the outbox");
      return NULL;
    }
  return g_steal_pointer (&ids);
}

gboolean
keyhold_outbox_store_delete_finished (KeyholdOutboxStore *store,
                                      gint64 before_ms,
                                      guint limit,
                                      guint *out_deleted,
                                      GError **error)
{
  g_autoptr (ResetStatement) statement = use_statement (store, STMT_DELETE_FINISHED);

  if (sqlite3_bind_int64 (statement, 1, before_ms) != SQLITE_OK
      || sqlite3_bind_int64 (statement, 2, limit) != SQLITE_OK
      || sqlite3_step (statement) != SQLITE_DONE)
    return set_sqlite_error (error, store, "Could not delete old outbox items");
  if (out_deleted != NULL)
    *out_deleted = (guint) sqlite3_changes (store->db);
  return TRUE;
}
