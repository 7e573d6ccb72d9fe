/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>

#include "keyhold-contract.h"

#include "outbox/outbox-store.h"

#define OWNER "/usr/bin/notes"
#define OTHER_OWNER "flatpak:org.example.Other"
#define HOUR_MS ((gint64) 60 * 60 * 1000)

static char *tmpdir;
static char *db_path;
static KeyholdStore *keyhold_store;
static guint item_counter;

static const KeyholdOutboxQuota roomy = { 1000, 100 * 1024 * 1024, 1000, 100 * 1024 * 1024 };

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
open_keyhold_store (void)
{
  g_autoptr (GError) error = NULL;

  keyhold_store = keyhold_store_open (db_path, &error);
  ck_assert_msg (keyhold_store != NULL, "%s", error ? error->message : "");
}

static void
setup (void)
{
  tmpdir = g_dir_make_tmp ("keyhold-test-outbox-store-XXXXXX", NULL);
  ck_assert_ptr_nonnull (tmpdir);
  db_path = g_build_filename (tmpdir, "keyhold.db", NULL);
  open_keyhold_store ();
  item_counter = 0;
}

static void
teardown (void)
{
  g_clear_pointer (&keyhold_store, keyhold_store_close);
  remove_tree (tmpdir);
  g_clear_pointer (&tmpdir, g_free);
  g_clear_pointer (&db_path, g_free);
}

static KeyholdOutboxStore *
open_outbox (const KeyholdOutboxQuota *quota)
{
  g_autoptr (GError) error = NULL;
  KeyholdOutboxStore *store = keyhold_outbox_store_new (keyhold_store, quota, &error);

  ck_assert_msg (store != NULL, "%s", error ? error->message : "");
  return store;
}

static KeyholdOutboxItem *
new_item (const char *owner, const char *queue, gsize request_size)
{
  KeyholdOutboxItem *item = g_new0 (KeyholdOutboxItem, 1);
  gint64 now_ms = g_get_real_time () / 1000;

  item->id = g_strdup_printf ("item-%03u", ++item_counter);
  item->owner = g_strdup (owner);
  item->account = g_strdup ("work");
  item->queue = g_strdup (queue);
  item->subject = g_strdup ("user-1");
  item->method = g_strdup ("POST");
  item->sealed_url = g_bytes_new_static ("sealed-url", 10);
  item->sealed_request = g_bytes_new_take (g_malloc0 (request_size), request_size);
  item->request_size = request_size;
  item->idempotency_key = g_strdup_printf ("key-%u", item_counter);
  item->created_ms = now_ms;
  item->expires_ms = now_ms + HOUR_MS;
  return item;
}

typedef struct
{
  guint pending;
  GPtrArray *errors; /* one per completed write, NULL for success */
} Completions;

static void
on_inserted (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Completions *completions = user_data;
  GError *error = NULL;

  keyhold_outbox_store_insert_finish (result, &error);
  g_ptr_array_add (completions->errors, error);
  completions->pending--;
}

static void
on_changed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Completions *completions = user_data;
  GError *error = NULL;

  keyhold_outbox_store_change_finish (result, &error);
  g_ptr_array_add (completions->errors, error);
  completions->pending--;
}

static void
free_error (gpointer error)
{
  if (error != NULL)
    g_error_free (error);
}

static void
completions_init (Completions *completions)
{
  completions->pending = 0;
  completions->errors = g_ptr_array_new_with_free_func (free_error);
}

static void
wait_for (Completions *completions)
{
  while (completions->pending > 0)
    g_main_context_iteration (NULL, TRUE);
}

static void
assert_all_succeeded (Completions *completions)
{
  for (guint i = 0; i < completions->errors->len; i++)
    ck_assert_msg (completions->errors->pdata[i] == NULL, "write %u failed: %s", i,
                   ((GError *) completions->errors->pdata[i])->message);
}

/* Inserts and waits; returns the id. */
static char *
insert (KeyholdOutboxStore *store, KeyholdOutboxItem *item)
{
  Completions completions;
  char *id = g_strdup (item->id);

  completions_init (&completions);
  completions.pending = 1;
  keyhold_outbox_store_insert_async (store, item, NULL, on_inserted, &completions);
  wait_for (&completions);
  assert_all_succeeded (&completions);
  g_ptr_array_unref (completions.errors);
  return id;
}

static GError *
change (KeyholdOutboxStore *store,
        const char *id,
        KeyholdOutboxState state,
        int status,
        GBytes *response)
{
  KeyholdOutboxChange change = { state, 1, 0, status, response, "because" };
  Completions completions;
  GError *error;

  completions_init (&completions);
  completions.pending = 1;
  keyhold_outbox_store_change_async (store, id, &change, NULL, on_changed, &completions);
  wait_for (&completions);
  error = g_steal_pointer (&completions.errors->pdata[0]);
  g_ptr_array_unref (completions.errors);
  return error;
}

static void
change_ok (KeyholdOutboxStore *store, const char *id, KeyholdOutboxState state)
{
  g_autoptr (GError) error = change (store, id, state, 200, NULL);

  ck_assert_msg (error == NULL, "%s", error ? error->message : "");
}

/* What another process would see: a connection of its own. */
static int
query_int (const char *sql)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *statement = NULL;
  int value;

  ck_assert_int_eq (sqlite3_open_v2 (db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  ck_assert_int_eq (sqlite3_prepare_v2 (db, sql, -1, &statement, NULL), SQLITE_OK);
  ck_assert_int_eq (sqlite3_step (statement), SQLITE_ROW);
  value = sqlite3_column_int (statement, 0);
  sqlite3_finalize (statement);
  sqlite3_close (db);
  return value;
}

static int
count_rows_independently (void)
{
  return query_int ("SELECT count (*) FROM outbox_items");
}

static void
on_inserted_count_rows (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Completions *completions = user_data;
  GError *error = NULL;

  keyhold_outbox_store_insert_finish (result, &error);
  g_ptr_array_add (completions->errors, error);
  completions->pending--;
  /* Every write of the batch is already visible to another connection,
   * i.e. committed, when the first completion runs. */
  ck_assert_int_eq (count_rows_independently (), 16);
}

START_TEST (test_concurrent_inserts_commit_together)
{
  g_autoptr (KeyholdOutboxStore) store = open_outbox (&roomy);
  Completions completions;

  completions_init (&completions);
  for (guint i = 0; i < 16; i++)
    {
      completions.pending++;
      keyhold_outbox_store_insert_async (store, new_item (OWNER, "q", 100), NULL,
                                         on_inserted_count_rows, &completions);
    }
  /* Nothing is written before the main loop turns. */
  ck_assert_int_eq (count_rows_independently (), 0);
  wait_for (&completions);
  assert_all_succeeded (&completions);
  ck_assert_uint_eq (completions.errors->len, 16);
  g_ptr_array_unref (completions.errors);
}
END_TEST

START_TEST (test_get_returns_what_was_inserted)
{
  g_autoptr (KeyholdOutboxStore) store = open_outbox (&roomy);
  KeyholdOutboxItem *item = new_item (OWNER, "q", 5);
  gint64 created_ms = item->created_ms;
  g_autofree char *id = insert (store, item);
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdOutboxItem) stored = keyhold_outbox_store_get (store, id, &error);

  ck_assert_msg (stored != NULL, "%s", error ? error->message : "");
  ck_assert_str_eq (stored->owner, OWNER);
  ck_assert_str_eq (stored->account, "work");
  ck_assert_str_eq (stored->queue, "q");
  ck_assert_str_eq (stored->subject, "user-1");
  ck_assert_str_eq (stored->method, "POST");
  ck_assert_str_eq (stored->idempotency_key, "key-1");
  ck_assert_int_eq (stored->state, KEYHOLD_OUTBOX_STATE_PENDING);
  ck_assert_int_eq (stored->created_ms, created_ms);
  ck_assert_int_eq (stored->expires_ms, created_ms + HOUR_MS);
  ck_assert_uint_eq (stored->request_size, 5);
  ck_assert_uint_eq (stored->attempts, 0);
  ck_assert_int_eq (stored->finished_ms, 0);
  ck_assert_uint_eq (g_bytes_get_size (stored->sealed_url), 10);
  /* Get leaves the (large) sealed request out. */
  ck_assert_ptr_null (stored->sealed_request);
  ck_assert_ptr_null (stored->sealed_response);
}
END_TEST

START_TEST (test_get_unknown_is_not_found)
{
  g_autoptr (KeyholdOutboxStore) store = open_outbox (&roomy);
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdOutboxItem) item = keyhold_outbox_store_get (store, "nope", &error);

  ck_assert_ptr_null (item);
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NOT_FOUND));
}
END_TEST

START_TEST (test_head_is_fifo_per_queue)
{
  g_autoptr (KeyholdOutboxStore) store = open_outbox (&roomy);
  g_autofree char *a1 = insert (store, new_item (OWNER, "a", 1));
  g_autofree char *b1 = insert (store, new_item (OWNER, "b", 1));
  g_autofree char *a2 = insert (store, new_item (OWNER, "a", 1));
  g_autoptr (KeyholdOutboxItem) head = NULL;
  g_autoptr (GError) error = NULL;

  head = keyhold_outbox_store_get_head (store, "work", "a", &error);
  ck_assert_str_eq (head->id, a1);
  /* The head leaves its sealed request on disk until it is sent. */
  ck_assert_ptr_null (head->sealed_request);
  {
    g_autoptr (GBytes) request = keyhold_outbox_store_get_request (store, head->id, &error);

    ck_assert_uint_eq (g_bytes_get_size (request), 1);
  }
  g_clear_pointer (&head, keyhold_outbox_item_free);

  change_ok (store, a1, KEYHOLD_OUTBOX_STATE_DONE);
  head = keyhold_outbox_store_get_head (store, "work", "a", &error);
  ck_assert_str_eq (head->id, a2);
  g_clear_pointer (&head, keyhold_outbox_item_free);

  /* A waiting head still holds its place. */
  change_ok (store, a2, KEYHOLD_OUTBOX_STATE_WAITING);
  head = keyhold_outbox_store_get_head (store, "work", "a", &error);
  ck_assert_str_eq (head->id, a2);
  ck_assert_int_eq (head->state, KEYHOLD_OUTBOX_STATE_WAITING);
  g_clear_pointer (&head, keyhold_outbox_item_free);

  change_ok (store, a2, KEYHOLD_OUTBOX_STATE_CANCELLED);
  head = keyhold_outbox_store_get_head (store, "work", "a", &error);
  ck_assert_ptr_null (head);
  ck_assert_ptr_null (error);

  head = keyhold_outbox_store_get_head (store, "work", "b", &error);
  ck_assert_str_eq (head->id, b1);
}
END_TEST

START_TEST (test_change_records_outcome)
{
  g_autoptr (KeyholdOutboxStore) store = open_outbox (&roomy);
  g_autofree char *id = insert (store, new_item (OWNER, "q", 1));
  g_autoptr (GBytes) response = g_bytes_new_static ("sealed-response", 15);
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdOutboxItem) item = NULL;
  gint64 before_ms = g_get_real_time () / 1000;

  error = change (store, id, KEYHOLD_OUTBOX_STATE_PENDING, 503, response);
  ck_assert_ptr_null (error);
  /* NULL keeps the response stored before. */
  error = change (store, id, KEYHOLD_OUTBOX_STATE_FAILED, 422, NULL);
  ck_assert_ptr_null (error);

  item = keyhold_outbox_store_get (store, id, &error);
  ck_assert_int_eq (item->state, KEYHOLD_OUTBOX_STATE_FAILED);
  ck_assert_int_eq (item->status, 422);
  ck_assert_str_eq (item->reason, "because");
  ck_assert_uint_eq (item->attempts, 1);
  ck_assert_int_ge (item->finished_ms, before_ms);
  ck_assert (g_bytes_equal (item->sealed_response, response));
  /* The request of a finished item is gone. */
  ck_assert_int_eq (query_int ("SELECT length (sealed_request) FROM outbox_items"), 0);
}
END_TEST

START_TEST (test_finished_items_do_not_change)
{
  g_autoptr (KeyholdOutboxStore) store = open_outbox (&roomy);
  g_autofree char *id = insert (store, new_item (OWNER, "q", 1));
  g_autoptr (GError) again = NULL;
  g_autoptr (GError) missing = NULL;
  g_autoptr (KeyholdOutboxItem) item = NULL;

  change_ok (store, id, KEYHOLD_OUTBOX_STATE_CANCELLED);
  again = change (store, id, KEYHOLD_OUTBOX_STATE_DONE, 200, NULL);
  ck_assert (g_error_matches (again, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT));
  missing = change (store, "nope", KEYHOLD_OUTBOX_STATE_DONE, 200, NULL);
  ck_assert (g_error_matches (missing, KEYHOLD_ERROR, KEYHOLD_ERROR_NOT_FOUND));

  item = keyhold_outbox_store_get (store, id, NULL);
  ck_assert_int_eq (item->state, KEYHOLD_OUTBOX_STATE_CANCELLED);
}
END_TEST

/* A cancel and an outcome that cross in one batch: the first wins, the
 * second fails alone, and the batch still commits. */
START_TEST (test_failed_write_does_not_spoil_batch)
{
  g_autoptr (KeyholdOutboxStore) store = open_outbox (&roomy);
  g_autofree char *id = insert (store, new_item (OWNER, "q", 1));
  KeyholdOutboxChange cancel = { KEYHOLD_OUTBOX_STATE_CANCELLED, 0, 0, 0, NULL, "" };
  KeyholdOutboxChange done = { KEYHOLD_OUTBOX_STATE_DONE, 1, 0, 200, NULL, "" };
  Completions completions;
  g_autoptr (KeyholdOutboxItem) item = NULL;
  KeyholdOutboxItem *other = new_item (OWNER, "q", 1);
  g_autofree char *other_id = g_strdup (other->id);

  completions_init (&completions);
  completions.pending = 3;
  keyhold_outbox_store_change_async (store, id, &cancel, NULL, on_changed, &completions);
  keyhold_outbox_store_change_async (store, id, &done, NULL, on_changed, &completions);
  keyhold_outbox_store_insert_async (store, other, NULL, on_inserted, &completions);
  wait_for (&completions);

  ck_assert_ptr_null (completions.errors->pdata[0]);
  ck_assert (g_error_matches (completions.errors->pdata[1], KEYHOLD_ERROR,
                              KEYHOLD_ERROR_INVALID_ARGUMENT));
  ck_assert_ptr_null (completions.errors->pdata[2]);
  g_ptr_array_unref (completions.errors);

  item = keyhold_outbox_store_get (store, id, NULL);
  ck_assert_int_eq (item->state, KEYHOLD_OUTBOX_STATE_CANCELLED);
  g_clear_pointer (&item, keyhold_outbox_item_free);
  item = keyhold_outbox_store_get (store, other_id, NULL);
  ck_assert_ptr_nonnull (item);
}
END_TEST

static GPtrArray *
list (KeyholdOutboxStore *store,
      const char *owner,
      const char *account,
      const char *queue,
      guint mask,
      const char *after,
      guint limit)
{
  g_autoptr (GError) error = NULL;
  GPtrArray *items
      = keyhold_outbox_store_list (store, owner, account, queue, mask, after, limit, &error);

  ck_assert_msg (items != NULL, "%s", error ? error->message : "");
  return items;
}

static const char *
id_at (GPtrArray *items, guint index)
{
  return ((KeyholdOutboxItem *) items->pdata[index])->id;
}

START_TEST (test_list_scopes_filters_and_pages)
{
  g_autoptr (KeyholdOutboxStore) store = open_outbox (&roomy);
  g_autofree char *a1 = insert (store, new_item (OWNER, "a", 1));
  g_autofree char *other = insert (store, new_item (OTHER_OWNER, "a", 1));
  g_autofree char *b1 = insert (store, new_item (OWNER, "b", 1));
  g_autofree char *a2 = insert (store, new_item (OWNER, "a", 1));
  g_autoptr (GPtrArray) all = NULL, queue_a = NULL, done = NULL, page1 = NULL, page2 = NULL;
  g_autoptr (GPtrArray) others = NULL;
  g_autoptr (GError) error = NULL;

  change_ok (store, b1, KEYHOLD_OUTBOX_STATE_DONE);

  all = list (store, OWNER, NULL, NULL, 0, NULL, 100);
  ck_assert_uint_eq (all->len, 3);
  ck_assert_str_eq (id_at (all, 0), a1);
  ck_assert_str_eq (id_at (all, 1), b1);
  ck_assert_str_eq (id_at (all, 2), a2);
  /* Lists never carry the sealed request or response. */
  ck_assert_ptr_null (((KeyholdOutboxItem *) all->pdata[1])->sealed_response);

  queue_a = list (store, OWNER, "work", "a", 0, NULL, 100);
  ck_assert_uint_eq (queue_a->len, 2);

  done = list (store, OWNER, NULL, NULL, 1 << KEYHOLD_OUTBOX_STATE_DONE, NULL, 100);
  ck_assert_uint_eq (done->len, 1);
  ck_assert_str_eq (id_at (done, 0), b1);

  page1 = list (store, OWNER, NULL, NULL, 0, NULL, 2);
  ck_assert_uint_eq (page1->len, 2);
  page2 = list (store, OWNER, NULL, NULL, 0, id_at (page1, 1), 2);
  ck_assert_uint_eq (page2->len, 1);
  ck_assert_str_eq (id_at (page2, 0), a2);

  others = list (store, OTHER_OWNER, NULL, NULL, 0, NULL, 100);
  ck_assert_uint_eq (others->len, 1);
  ck_assert_str_eq (id_at (others, 0), other);

  /* Paging from another owner's item reveals nothing. */
  ck_assert_ptr_null (keyhold_outbox_store_list (store, OWNER, NULL, NULL, 0, other, 10, &error));
  ck_assert (g_error_matches (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NOT_FOUND));
}
END_TEST

START_TEST (test_list_queues)
{
  g_autoptr (KeyholdOutboxStore) store = open_outbox (&roomy);
  g_autofree char *a1 = insert (store, new_item (OWNER, "a", 1));
  g_autofree char *b1 = insert (store, new_item (OWNER, "b", 1));
  g_autofree char *a2 = insert (store, new_item (OTHER_OWNER, "a", 1));
  g_autoptr (GPtrArray) names = NULL;

  change_ok (store, b1, KEYHOLD_OUTBOX_STATE_DONE);
  names = keyhold_outbox_store_list_queues (store, NULL);
  ck_assert_uint_eq (names->len, 2);
  ck_assert_str_eq (names->pdata[0], "work");
  ck_assert_str_eq (names->pdata[1], "a");
}
END_TEST

START_TEST (test_overdue_and_retention)
{
  g_autoptr (KeyholdOutboxStore) store = open_outbox (&roomy);
  KeyholdOutboxItem *old = new_item (OWNER, "a", 1);
  g_autofree char *fresh = NULL, *old_id = NULL, *finished = NULL;
  g_autoptr (GPtrArray) overdue = NULL;
  gint64 now_ms = g_get_real_time () / 1000;
  guint deleted = 99;
  g_autoptr (KeyholdOutboxItem) kept = NULL;

  old->expires_ms = now_ms - 1;
  old_id = insert (store, old);
  fresh = insert (store, new_item (OWNER, "a", 1));
  finished = insert (store, new_item (OWNER, "b", 1));

  overdue = keyhold_outbox_store_list_overdue (store, now_ms, 10, NULL);
  ck_assert_uint_eq (overdue->len, 1);
  ck_assert_str_eq (overdue->pdata[0], old_id);

  change_ok (store, finished, KEYHOLD_OUTBOX_STATE_DONE);
  /* Retention not over yet: nothing goes. */
  ck_assert (keyhold_outbox_store_delete_finished (store, now_ms - HOUR_MS, 10, &deleted, NULL));
  ck_assert_uint_eq (deleted, 0);
  /* Over: only the finished item goes, never an unfinished one. */
  ck_assert (keyhold_outbox_store_delete_finished (store, now_ms + HOUR_MS, 10, &deleted, NULL));
  ck_assert_uint_eq (deleted, 1);
  ck_assert_int_eq (count_rows_independently (), 2);
  kept = keyhold_outbox_store_get (store, old_id, NULL);
  ck_assert_ptr_nonnull (kept);
}
END_TEST

static GError *
try_insert (KeyholdOutboxStore *store, KeyholdOutboxItem *item)
{
  Completions completions;
  GError *error;

  completions_init (&completions);
  completions.pending = 1;
  keyhold_outbox_store_insert_async (store, item, NULL, on_inserted, &completions);
  wait_for (&completions);
  error = g_steal_pointer (&completions.errors->pdata[0]);
  g_ptr_array_unref (completions.errors);
  return error;
}

START_TEST (test_quota_counts_items)
{
  const KeyholdOutboxQuota three = { 3, 1024 * 1024, 1000, 1024 * 1024 };
  g_autoptr (KeyholdOutboxStore) store = open_outbox (&three);
  g_autofree char *first = insert (store, new_item (OWNER, "q", 1));
  g_autofree char *second = insert (store, new_item (OWNER, "q", 1));
  g_autofree char *third = insert (store, new_item (OWNER, "q", 1));
  g_autoptr (GError) over = try_insert (store, new_item (OWNER, "q", 1));
  g_autoptr (GError) other_owner = try_insert (store, new_item (OTHER_OWNER, "q", 1));
  g_autoptr (GError) after_finish = NULL;

  ck_assert (g_error_matches (over, KEYHOLD_ERROR, KEYHOLD_ERROR_QUOTA_EXCEEDED));
  /* The quota is per owner. */
  ck_assert_ptr_null (other_owner);
  /* Finished items no longer count. */
  change_ok (store, first, KEYHOLD_OUTBOX_STATE_DONE);
  after_finish = try_insert (store, new_item (OWNER, "q", 1));
  ck_assert_ptr_null (after_finish);
}
END_TEST

/* Many owners, each within its own quota, cannot go past the total. */
START_TEST (test_quota_counts_all_owners_together)
{
  const KeyholdOutboxQuota shared
      = { 1000, 1024 * 1024, 3, 3 * (1000 + KEYHOLD_OUTBOX_ITEM_OVERHEAD_BYTES) };
  g_autoptr (KeyholdOutboxStore) store = open_outbox (&shared);
  g_autofree char *first = insert (store, new_item (OWNER, "q", 1000));
  g_autofree char *second = insert (store, new_item (OTHER_OWNER, "q", 1));
  g_autoptr (GError) too_big = try_insert (store, new_item ("third", "q", 2000));
  g_autofree char *third = insert (store, new_item ("third", "q", 1));
  g_autoptr (GError) too_many = try_insert (store, new_item ("fourth", "q", 1));
  g_autoptr (GError) after_restart = NULL, after_finish = NULL;

  ck_assert (g_error_matches (too_big, KEYHOLD_ERROR, KEYHOLD_ERROR_QUOTA_EXCEEDED));
  ck_assert (g_error_matches (too_many, KEYHOLD_ERROR, KEYHOLD_ERROR_QUOTA_EXCEEDED));
  ck_assert_ptr_nonnull (strstr (too_many->message, "together"));

  /* A restarted agent counts what is on disk; finished items no longer
   * count. */
  g_clear_pointer (&store, keyhold_outbox_store_free);
  store = open_outbox (&shared);
  after_restart = try_insert (store, new_item ("fourth", "q", 1));
  ck_assert (g_error_matches (after_restart, KEYHOLD_ERROR, KEYHOLD_ERROR_QUOTA_EXCEEDED));
  change_ok (store, first, KEYHOLD_OUTBOX_STATE_CANCELLED);
  after_finish = try_insert (store, new_item ("fourth", "q", 1));
  ck_assert_ptr_null (after_finish);
}
END_TEST

START_TEST (test_quota_counts_bytes_across_restart)
{
  const KeyholdOutboxQuota small
      = { 1000, 3 * (1000 + KEYHOLD_OUTBOX_ITEM_OVERHEAD_BYTES), 1000, 1024 * 1024 };
  g_autoptr (KeyholdOutboxStore) store = open_outbox (&small);
  g_autofree char *first = insert (store, new_item (OWNER, "q", 1000));
  g_autofree char *second = insert (store, new_item (OWNER, "q", 1000));
  g_autoptr (GError) over = NULL, fits = NULL;

  /* A burst in one iteration cannot slip past: the reservation counts
   * before the commit. */
  {
    Completions completions;

    completions_init (&completions);
    completions.pending = 2;
    keyhold_outbox_store_insert_async (store, new_item (OWNER, "q", 1000), NULL, on_inserted,
                                       &completions);
    keyhold_outbox_store_insert_async (store, new_item (OWNER, "q", 1000), NULL, on_inserted,
                                       &completions);
    wait_for (&completions);
    ck_assert_uint_eq (completions.errors->len, 2);
    ck_assert ((completions.errors->pdata[0] == NULL) != (completions.errors->pdata[1] == NULL));
    g_ptr_array_unref (completions.errors);
  }

  /* A restarted agent counts what is on disk. */
  g_clear_pointer (&store, keyhold_outbox_store_free);
  store = open_outbox (&small);
  over = try_insert (store, new_item (OWNER, "q", 1));
  ck_assert (g_error_matches (over, KEYHOLD_ERROR, KEYHOLD_ERROR_QUOTA_EXCEEDED));
  change_ok (store, second, KEYHOLD_OUTBOX_STATE_EXPIRED);
  fits = try_insert (store, new_item (OWNER, "q", 1000));
  ck_assert_ptr_null (fits);
}
END_TEST

START_TEST (test_key_fingerprint)
{
  g_autoptr (KeyholdOutboxStore) store = open_outbox (&roomy);
  g_autoptr (GBytes) fingerprint = g_bytes_new_static ("0123456789abcdef", 16);
  g_autoptr (GBytes) other = g_bytes_new_static ("fedcba9876543210", 16);
  g_autoptr (GBytes) none = NULL, stored = NULL;
  g_autoptr (GError) error = NULL;

  none = keyhold_outbox_store_get_key_fingerprint (store, &error);
  ck_assert_ptr_null (none);
  ck_assert_ptr_null (error);
  ck_assert (keyhold_outbox_store_set_key_fingerprint (store, fingerprint, &error));
  ck_assert (keyhold_outbox_store_set_key_fingerprint (store, other, &error));
  stored = keyhold_outbox_store_get_key_fingerprint (store, &error);
  ck_assert (g_bytes_equal (stored, other));
}
END_TEST

START_TEST (test_values_are_data_not_sql)
{
  g_autoptr (KeyholdOutboxStore) store = open_outbox (&roomy);
  const char *owner = "/tmp/x'); DROP TABLE outbox_items; --";
  g_autofree char *id = insert (store, new_item (owner, "q'\"", 1));
  g_autoptr (GPtrArray) items = list (store, owner, NULL, "q'\"", 0, NULL, 10);

  ck_assert_uint_eq (items->len, 1);
  ck_assert_str_eq (id_at (items, 0), id);
  ck_assert_int_eq (count_rows_independently (), 1);
}
END_TEST

/* Writes still waiting for the main loop when the store closes are
 * committed, not lost. */
START_TEST (test_free_commits_waiting_writes)
{
  KeyholdOutboxStore *store = open_outbox (&roomy);
  Completions completions;

  completions_init (&completions);
  completions.pending = 1;
  keyhold_outbox_store_insert_async (store, new_item (OWNER, "q", 1), NULL, on_inserted,
                                     &completions);
  keyhold_outbox_store_free (store);
  wait_for (&completions);
  assert_all_succeeded (&completions);
  g_ptr_array_unref (completions.errors);
  ck_assert_int_eq (count_rows_independently (), 1);
}
END_TEST

static Suite *
outbox_store_suite (void)
{
  Suite *suite = suite_create ("outbox-store");
  TCase *writes = tcase_create ("writes");
  TCase *reads = tcase_create ("reads");
  TCase *quota = tcase_create ("quota");

  tcase_add_checked_fixture (writes, setup, teardown);
  tcase_add_test (writes, test_concurrent_inserts_commit_together);
  tcase_add_test (writes, test_change_records_outcome);
  tcase_add_test (writes, test_finished_items_do_not_change);
  tcase_add_test (writes, test_failed_write_does_not_spoil_batch);
  tcase_add_test (writes, test_key_fingerprint);
  tcase_add_test (writes, test_values_are_data_not_sql);
  tcase_add_test (writes, test_free_commits_waiting_writes);
  suite_add_tcase (suite, writes);

  tcase_add_checked_fixture (reads, setup, teardown);
  tcase_add_test (reads, test_get_returns_what_was_inserted);
  tcase_add_test (reads, test_get_unknown_is_not_found);
  tcase_add_test (reads, test_head_is_fifo_per_queue);
  tcase_add_test (reads, test_list_scopes_filters_and_pages);
  tcase_add_test (reads, test_list_queues);
  tcase_add_test (reads, test_overdue_and_retention);
  suite_add_tcase (suite, reads);

  tcase_add_checked_fixture (quota, setup, teardown);
  tcase_add_test (quota, test_quota_counts_items);
  tcase_add_test (quota, test_quota_counts_bytes_across_restart);
  tcase_add_test (quota, test_quota_counts_all_owners_together);
  suite_add_tcase (suite, quota);
  return suite;
}

int
main (void)
{
  SRunner *runner = srunner_create (outbox_store_suite ());
  int failed;

  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
