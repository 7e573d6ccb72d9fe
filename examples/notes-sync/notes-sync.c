/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <string.h>

#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <keyhold/keyhold.h>

/* notes-sync: a small offline-first app on libkeyhold.
 *
 * Notes live in a file on this computer, so saving never waits for the
 * network. Each change is handed to keyhold's outbox as a PUT of the note
 * to the account's API; the agent sends it when it can, with a fresh token,
 * and keeps the outcome. The app stores only the id of each note's last
 * queued change, and on every start asks the outbox which of its changes
 * have finished: results that arrived while it was closed are shown then. */

#define QUEUE "notes-sync"
#define MAX_NOTE_ID 64
#define LIST_PAGE 1000

typedef struct
{
  KeyholdClient *client;
  const char *account;
  GKeyFile *notes;
  char *path;
  /* Outbox item id → KeyholdOutboxItem, for this app's items. */
  GHashTable *items;
  /* While waiting: how many notes still have a change in flight. */
  guint in_flight;
  GMainLoop *loop;
} NotesSync;

static void
notes_sync_clear (NotesSync *app)
{
  g_clear_object (&app->client);
  g_clear_pointer (&app->notes, g_key_file_unref);
  g_clear_pointer (&app->path, g_free);
  g_clear_pointer (&app->items, g_hash_table_unref);
  g_clear_pointer (&app->loop, g_main_loop_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (NotesSync, notes_sync_clear)

/* ---- the local file ---- */

static gboolean
load_notes (NotesSync *app, GError **error)
{
  g_autoptr (GError) local_error = NULL;

  app->path = g_build_filename (g_get_user_data_dir (), "notes-sync", "notes.ini", NULL);
  app->notes = g_key_file_new ();
  if (g_key_file_load_from_file (app->notes, app->path, G_KEY_FILE_NONE, &local_error)
      || g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
    return TRUE;
  g_propagate_error (error, g_steal_pointer (&local_error));
  return FALSE;
}

static gboolean
save_notes (NotesSync *app, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (app->path);

  if (g_mkdir_with_parents (dir, 0700) < 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "cannot create %s: %s",
                   dir, g_strerror (errno));
      return FALSE;
    }
  return g_key_file_save_to_file (app->notes, app->path, error);
}

/* The file's groups are "note ID". */
static char *
note_group (const char *id)
{
  return g_strconcat ("note ", id, NULL);
}

static gboolean
is_valid_note_id (const char *id)
{
  gsize length = strlen (id);

  if (length == 0 || length > MAX_NOTE_ID)
    return FALSE;
  for (const char *p = id; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_')
      return FALSE;
  return TRUE;
}

/* The outcome of a note's last change, once it has one. */
static void
record_result (NotesSync *app, const char *group, KeyholdOutboxItem *item)
{
  g_autoptr (GEnumClass) states = g_type_class_ref (KEYHOLD_TYPE_OUTBOX_STATE);

  g_key_file_set_string (
      app->notes, group, "sync",
      g_enum_get_value (states, keyhold_outbox_item_get_state (item))->value_nick);
  g_key_file_set_integer (app->notes, group, "status", keyhold_outbox_item_get_status (item));
  g_key_file_set_string (app->notes, group, "reason", keyhold_outbox_item_get_reason (item));
  g_key_file_remove_key (app->notes, group, "item", NULL);
}

/* ---- sync states ---- */

static char *
describe (KeyholdOutboxState state, int status, const char *reason)
{
  switch (state)
    {
    case KEYHOLD_OUTBOX_STATE_PENDING:
      return g_strdup ("waiting to be sent");
    case KEYHOLD_OUTBOX_STATE_SENDING:
      return g_strdup ("sending");
    case KEYHOLD_OUTBOX_STATE_WAITING:
      return g_strdup ("waiting for you to sign in again");
    case KEYHOLD_OUTBOX_STATE_DONE:
      return g_strdup_printf ("synced (HTTP %d)", status);
    case KEYHOLD_OUTBOX_STATE_FAILED:
      if (status != 0)
        return g_strdup_printf ("failed (HTTP %d)", status);
      return g_strdup_printf ("failed: %s", reason);
    case KEYHOLD_OUTBOX_STATE_CANCELLED:
      return g_strdup ("cancelled");
    case KEYHOLD_OUTBOX_STATE_EXPIRED:
      return g_strdup_printf ("gave up: %s", reason);
    case KEYHOLD_OUTBOX_STATE_UNKNOWN:
    default:
      return g_strdup ("in an unknown state");
    }
}

static char *
describe_item (KeyholdOutboxItem *item)
{
  return describe (keyhold_outbox_item_get_state (item), keyhold_outbox_item_get_status (item),
                   keyhold_outbox_item_get_reason (item));
}

static char *
describe_note (NotesSync *app, const char *group)
{
  g_autofree char *item_id = g_key_file_get_string (app->notes, group, "item", NULL);
  g_autofree char *sync = g_key_file_get_string (app->notes, group, "sync", NULL);
  g_autofree char *reason = g_key_file_get_string (app->notes, group, "reason", NULL);
  g_autoptr (GEnumClass) states = NULL;
  KeyholdOutboxItem *item;
  GEnumValue *state;

  if (item_id != NULL && (item = g_hash_table_lookup (app->items, item_id)) != NULL)
    return describe_item (item);
  if (sync == NULL)
    return g_strdup ("not synced");

  states = g_type_class_ref (KEYHOLD_TYPE_OUTBOX_STATE);
  state = g_enum_get_value_by_nick (states, sync);
  return describe (state != NULL ? state->value : KEYHOLD_OUTBOX_STATE_UNKNOWN,
                   g_key_file_get_integer (app->notes, group, "status", NULL),
                   reason != NULL ? reason : "");
}

/* ---- the outbox ---- */

/* All of this app's items in its queue, page by page. */
static gboolean
fetch_items (NotesSync *app, GError **error)
{
  g_autofree char *after = NULL;

  app->items = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  for (;;)
    {
      g_autoptr (GError) local_error = NULL;
      g_autolist (KeyholdOutboxItem) page = keyhold_client_outbox_list_sync (
          app->client, app->account, QUEUE, NULL, 0, after, LIST_PAGE, NULL, &local_error);
      guint length = 0;

      if (local_error != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      for (GList *l = page; l != NULL; l = l->next, length++)
        g_hash_table_insert (app->items, g_strdup (keyhold_outbox_item_get_id (l->data)),
                             g_object_ref (l->data));
      if (length < LIST_PAGE)
        return TRUE;
      g_free (after);
      after = g_strdup (keyhold_outbox_item_get_id (g_list_last (page)->data));
    }
}

/* Changes that finished while the app was closed: shown once, then kept
 * as the note's sync state. An item the outbox no longer knows (results
 * are kept for a week) is reported as such. */
static gboolean
report_results_from_while_away (NotesSync *app, GError **error)
{
  g_auto (GStrv) groups = g_key_file_get_groups (app->notes, NULL);
  gboolean changed = FALSE;

  for (guint i = 0; groups[i] != NULL; i++)
    {
      g_autofree char *item_id = g_key_file_get_string (app->notes, groups[i], "item", NULL);
      KeyholdOutboxItem *item;
      g_autofree char *result = NULL;

      if (item_id == NULL)
        continue;
      item = g_hash_table_lookup (app->items, item_id);
      if (item != NULL && !keyhold_outbox_state_is_final (keyhold_outbox_item_get_state (item)))
        continue;

      if (item != NULL)
        {
          result = describe_item (item);
          record_result (app, groups[i], item);
        }
      else
        {
          result = g_strdup ("finished, but its result is no longer known");
          g_key_file_remove_key (app->notes, groups[i], "item", NULL);
        }
      g_print ("While you were away: %s %s\n", groups[i], result);
      changed = TRUE;
    }
  return !changed || save_notes (app, error);
}

static char *
note_body (const char *id, const char *text)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id");
  json_builder_add_string_value (builder, id);
  json_builder_set_member_name (builder, "text");
  json_builder_add_string_value (builder, text);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  return json_to_string (root, FALSE);
}

/* The account's first API origin is where its notes live. */
static char *
note_url (NotesSync *app, const char *id, GError **error)
{
  g_autoptr (KeyholdAccount) account = keyhold_client_lookup_account (app->client, app->account);
  g_auto (GStrv) origins = NULL;

  if (account == NULL)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NO_SUCH_ACCOUNT,
                   "keyhold has no account named \"%s\"", app->account);
      return NULL;
    }
  origins = keyhold_account_dup_api_origins (account);
  if (origins[0] == NULL)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "the account \"%s\" has no API origin", app->account);
      return NULL;
    }
  return g_strconcat (origins[0], "/api/notes/", id, NULL);
}

static char *
queue_change (NotesSync *app, const char *id, const char *text, GError **error)
{
  g_autofree char *url = note_url (app, id, error);
  g_autoptr (KeyholdOutboxRequest) request = NULL;
  g_autoptr (GBytes) body = NULL;
  char *json;

  if (url == NULL)
    return NULL;
  json = note_body (id, text);
  body = g_bytes_new_take (json, strlen (json));
  request = keyhold_outbox_request_new ("PUT", url);
  keyhold_outbox_request_add_header (request, "Content-Type", "application/json");
  keyhold_outbox_request_set_body (request, body);
  return keyhold_client_outbox_enqueue_sync (app->client, app->account, QUEUE, request, NULL,
                                             error);
}

/* ---- commands ---- */

static gboolean
set_note (NotesSync *app, const char *id, const char *text, GError **error)
{
  g_autofree char *group = note_group (id);
  g_autofree char *item_id = NULL;
  g_autoptr (GError) queue_error = NULL;

  if (!is_valid_note_id (id))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "a note id is 1 to %d letters, digits, \"-\" and \"_\"", MAX_NOTE_ID);
      return FALSE;
    }

  /* Saved first: the note is safe whether or not it can be queued. */
  g_key_file_set_string (app->notes, group, "text", text);
  g_key_file_remove_key (app->notes, group, "sync", NULL);
  g_key_file_remove_key (app->notes, group, "item", NULL);
  if (!save_notes (app, error))
    return FALSE;

  item_id = queue_change (app, id, text, &queue_error);
  if (item_id == NULL)
    {
      g_print ("Saved %s, but could not queue it for sync: %s\n", group, queue_error->message);
      return TRUE;
    }
  g_key_file_set_string (app->notes, group, "item", item_id);
  g_print ("Saved %s; it will be synced when possible.\n", group);
  return save_notes (app, error);
}

static void
list_notes (NotesSync *app)
{
  g_auto (GStrv) groups = g_key_file_get_groups (app->notes, NULL);

  if (groups[0] == NULL)
    g_print ("No notes yet. Add one with \"notes-sync set ID TEXT\".\n");
  for (guint i = 0; groups[i] != NULL; i++)
    {
      g_autofree char *text = g_key_file_get_string (app->notes, groups[i], "text", NULL);
      g_autofree char *state = describe_note (app, groups[i]);

      g_print ("%s: %s\n  %s\n", groups[i], state, text != NULL ? text : "");
    }
}

static char *
group_of_item (NotesSync *app, const char *item_id)
{
  g_auto (GStrv) groups = g_key_file_get_groups (app->notes, NULL);

  for (guint i = 0; groups[i] != NULL; i++)
    {
      g_autofree char *id = g_key_file_get_string (app->notes, groups[i], "item", NULL);

      if (g_strcmp0 (id, item_id) == 0)
        return g_strdup (groups[i]);
    }
  return NULL;
}

/* ItemChanged reaches every client; only this app's notes matter here. */
static void
on_item_changed (KeyholdClient *client,
                 const char *item_id,
                 KeyholdOutboxState state,
                 int status,
                 gpointer user_data)
{
  NotesSync *app = user_data;
  g_autofree char *group = NULL;
  g_autoptr (KeyholdOutboxItem) item = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *result = NULL;

  if (!keyhold_outbox_state_is_final (state) || (group = group_of_item (app, item_id)) == NULL)
    return;

  item = keyhold_client_outbox_get_sync (client, item_id, NULL, &error);
  if (item == NULL)
    {
      g_printerr ("notes-sync: cannot read the result for %s: %s\n", group, error->message);
      return;
    }
  result = describe_item (item);
  record_result (app, group, item);
  if (!save_notes (app, &error))
    g_printerr ("notes-sync: %s\n", error->message);
  g_print ("%s %s\n", group, result);
  if (--app->in_flight == 0)
    g_main_loop_quit (app->loop);
}

static gboolean
on_interrupt (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_CONTINUE;
}

/* Waits until every queued change has finished (or Ctrl-C). */
static void
wait_for_sync (NotesSync *app)
{
  g_auto (GStrv) groups = g_key_file_get_groups (app->notes, NULL);
  guint sigint_id;

  for (guint i = 0; groups[i] != NULL; i++)
    if (g_key_file_has_key (app->notes, groups[i], "item", NULL))
      app->in_flight++;
  if (app->in_flight == 0)
    return;

  g_print ("Waiting for %u change%s to sync%s\n", app->in_flight, app->in_flight == 1 ? "" : "s",
           g_get_charset (NULL) ? "…" : "...");
  app->loop = g_main_loop_new (NULL, FALSE);
  g_signal_connect (app->client, "outbox-item-changed", G_CALLBACK (on_item_changed), app);
  sigint_id = g_unix_signal_add (SIGINT, on_interrupt, app->loop);
  g_main_loop_run (app->loop);
  g_source_remove (sigint_id);
  g_signal_handlers_disconnect_by_data (app->client, app);
}

static int
run (NotesSync *app, GStrv args, GError **error)
{
  guint n_args = g_strv_length (args);
  const char *command = n_args > 1 ? args[1] : "list";

  if (g_str_equal (command, "set") && n_args == 4)
    return set_note (app, args[2], args[3], error) ? 0 : 1;
  if (g_str_equal (command, "list") && n_args <= 2)
    {
      list_notes (app);
      return 0;
    }
  if (g_str_equal (command, "wait") && n_args == 2)
    {
      wait_for_sync (app);
      list_notes (app);
      return 0;
    }

  g_printerr ("Usage: notes-sync [--account NAME] [set ID TEXT | list | wait]\n");
  return 2;
}

int
main (int argc, char **argv)
{
  g_autofree char *account = NULL;
  const GOptionEntry entries[] = {
    { "account", 'a', 0, G_OPTION_ARG_STRING, &account,
      "The keyhold account whose API keeps the notes (default: work)", "NAME" },
    G_OPTION_ENTRY_NULL,
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("[set ID TEXT | list | wait]");
  g_auto (GStrv) args = NULL;
  g_auto (NotesSync) app = { 0 };
  g_autoptr (GError) error = NULL;
  int status;

  setlocale (LC_ALL, "");
  g_option_context_set_summary (context, "Keep notes here and sync them through keyhold's outbox.");
  g_option_context_add_main_entries (context, entries, NULL);
  args = g_strdupv (argv);
  if (!g_option_context_parse_strv (context, &args, &error))
    {
      g_printerr ("notes-sync: %s\n", error->message);
      return 2;
    }
  app.account = account != NULL ? account : "work";

  if (!load_notes (&app, &error) || (app.client = keyhold_client_new_sync (NULL, &error)) == NULL
      || !fetch_items (&app, &error) || !report_results_from_while_away (&app, &error))
    {
      g_printerr ("notes-sync: %s\n", error->message);
      return 1;
    }

  status = run (&app, args, &error);
  if (error != NULL)
    g_printerr ("notes-sync: %s\n", error->message);
  return status;
}
