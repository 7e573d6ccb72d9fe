/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold/keyhold.h"
#include "keyhold-account-private.h"
#include "keyhold-client-private.h"
#include "keyhold-dbus-private.h"
#include "keyhold-outbox-private.h"
#include "keyhold-sync-private.h"

/**
 * KeyholdClient:
 *
 * A connection to the keyhold agent on the session bus: its accounts, the
 * operations that manage them, and the outbox.
 *
 * Create one with keyhold_client_new() or keyhold_client_new_sync(). If
 * the agent is not running, the bus starts it (when its D-Bus activation
 * file is installed); if it cannot, creating the client fails with
 * %KEYHOLD_ERROR_AGENT_UNAVAILABLE.
 *
 * The client follows the agent: it keeps the list of accounts and their
 * properties current, and when the agent restarts it reloads them into the
 * same #KeyholdAccount objects. Its signals and property notifications are
 * emitted in the thread-default main context of the thread that created
 * it, which must be running for them to arrive; create it in the thread
 * that runs (or will run) that context.
 *
 * Errors from its operations are %KEYHOLD_ERROR codes, translated from the
 * agent's `org.keyhold.Error.*` names; failures of the bus itself keep
 * their #G_IO_ERROR or #G_DBUS_ERROR codes, and a cancelled operation
 * fails with %G_IO_ERROR_CANCELLED.
 *
 * Since: 0.1
 */
struct _KeyholdClient
{
  GObject parent_instance;

  /* Where the client's signals are delivered. */
  GMainContext *context;
  GDBusConnection *connection;
  /* The unique bus name of the agent process, NULL while none runs. Only
   * its signals are believed. */
  char *agent_owner;
  /* org.keyhold.Agent1.StorageError. */
  char *storage_error;
  guint subscriptions[5];
  /* Object path → KeyholdAccount. */
  GHashTable *accounts;
  GCancellable *reload_cancellable;
  /* See ignore_older_signals (). */
  gboolean ignoring_signals;
  GSource *resync_source;
};

static void keyhold_client_async_initable_init (GAsyncInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (KeyholdClient, keyhold_client, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_INITABLE,
                                                      keyhold_client_async_initable_init))

enum
{
  PROP_0,
  PROP_AGENT_RUNNING,
  PROP_STORAGE_ERROR,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum
{
  SIGNAL_ACCOUNT_ADDED,
  SIGNAL_ACCOUNT_REMOVED,
  SIGNAL_SIGN_IN_PROGRESS,
  SIGNAL_OUTBOX_ITEM_CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

GDBusConnection *
keyhold_client_get_connection (KeyholdClient *self)
{
  return self->connection;
}

void
keyhold_client_emit_sign_in_progress (KeyholdClient *self, const char *name, GVariant *info)
{
  g_signal_emit (self, signals[SIGNAL_SIGN_IN_PROGRESS], 0, name, info);
}

gpointer
keyhold_client_propagate (KeyholdClient *self, GAsyncResult *result, gpointer source_tag,
                          GError **error)
{
  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == source_tag, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- the account table ---- */

static KeyholdAccount *
add_or_update_account (KeyholdClient *self, const char *object_path, GVariant *properties_dict)
{
  KeyholdAccount *account = g_hash_table_lookup (self->accounts, object_path);

  if (account != NULL)
    {
      keyhold_account_update (account, properties_dict);
      return account;
    }

  account = keyhold_account_new (self->connection, object_path, properties_dict);
  g_hash_table_insert (self->accounts, g_strdup (object_path), account);
  g_signal_emit (self, signals[SIGNAL_ACCOUNT_ADDED], 0, account);
  return account;
}

static void
remove_account (KeyholdClient *self, const char *object_path)
{
  g_autofree char *key = NULL;
  g_autoptr (KeyholdAccount) account = NULL;

  if (!g_hash_table_steal_extended (self->accounts, object_path, (gpointer *)&key,
                                    (gpointer *)&account))
    return;
  g_signal_emit (self, signals[SIGNAL_ACCOUNT_REMOVED], 0, account);
}

/* Takes the agent's whole object tree (a{oa{sa{sv}}}): accounts it has are
 * added or updated, accounts it lacks are removed. */
static void
apply_managed_objects (KeyholdClient *self, GVariant *objects)
{
  g_autoptr (GHashTable) listed = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GPtrArray) gone = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  GVariantIter objects_iter;
  const char *object_path;
  GVariant *interfaces;
  gpointer key;

  g_variant_iter_init (&objects_iter, objects);
  while (g_variant_iter_next (&objects_iter, "{&o@a{sa{sv}}}", &object_path, &interfaces))
    {
      g_autoptr (GVariant) account_properties
          = g_variant_lookup_value (interfaces, KEYHOLD_ACCOUNT1_INTERFACE, G_VARIANT_TYPE_VARDICT);

      if (account_properties != NULL)
        {
          add_or_update_account (self, object_path, account_properties);
          g_hash_table_add (listed, (gpointer)object_path);
        }
      g_variant_unref (interfaces);
    }

  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_hash_table_contains (listed, key))
      g_ptr_array_add (gone, g_strdup (key));
  for (guint i = 0; i < gone->len; i++)
    remove_account (self, g_ptr_array_index (gone, i));
}

/* ---- following the agent ---- */

static void
set_agent_owner (KeyholdClient *self, const char *owner)
{
  gboolean was_running = self->agent_owner != NULL;

  g_free (self->agent_owner);
  self->agent_owner = g_strdup (owner);
  if (was_running != (owner != NULL))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_AGENT_RUNNING]);
}

static gboolean
is_from_agent (KeyholdClient *self, const char *sender)
{
  return self->agent_owner != NULL && g_strcmp0 (sender, self->agent_owner) == 0;
}

static void
set_storage_error (KeyholdClient *self, GVariant *agent_properties)
{
  const char *storage_error;

  if (!g_variant_lookup (agent_properties, "StorageError", "&s", &storage_error)
      || g_strcmp0 (storage_error, self->storage_error) == 0)
    return;

  g_free (self->storage_error);
  self->storage_error = g_strdup (storage_error);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STORAGE_ERROR]);
}

static void ignore_older_signals (KeyholdClient *self);

/* Loading the agent's state: its object tree, then the manager's own
 * properties, both from the process that answered first. */
typedef struct
{
  char *agent;
  GVariant *objects;
} Load;

static void
load_free (Load *load)
{
  g_free (load->agent);
  g_clear_pointer (&load->objects, g_variant_unref);
  g_free (load);
}

static void
on_agent_properties_loaded (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  KeyholdClient *self = g_task_get_source_object (task);
  Load *load = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr (GVariant) reply
      = keyhold_dbus_call_with_sender_finish (result, "(a{sv})", NULL, &error);
  g_autoptr (GVariant) agent_properties = NULL;

  if (reply == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  /* NameOwnerChanged for a process the bus has just started may still be
   * on its way; it then finds this owner already set. An answer from an
   * agent that has been replaced meanwhile is dropped. */
  if (self->agent_owner == NULL || g_str_equal (self->agent_owner, load->agent))
    {
      set_agent_owner (self, load->agent);
      apply_managed_objects (self, load->objects);
      agent_properties = g_variant_get_child_value (reply, 0);
      set_storage_error (self, agent_properties);
      ignore_older_signals (self);
    }
  g_task_return_boolean (task, TRUE);
}

static void
on_objects_loaded (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  KeyholdClient *self = g_task_get_source_object (task);
  Load *load = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  GError *error = NULL;
  g_autoptr (GVariant) reply
      = keyhold_dbus_call_with_sender_finish (result, "(a{oa{sa{sv}}})", &load->agent, &error);

  if (reply == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  load->objects = g_variant_get_child_value (reply, 0);
  keyhold_dbus_call_with_sender (self->connection, load->agent, KEYHOLD_AGENT_PATH,
                                 "org.freedesktop.DBus.Properties", "GetAll",
                                 g_variant_new ("(s)", KEYHOLD_AGENT1_INTERFACE), cancellable,
                                 on_agent_properties_loaded, g_steal_pointer (&task));
}

/* @destination is the well-known name, which starts the agent if it is not
 * running, or one agent process's unique name. */
static void
load_agent (KeyholdClient *self, const char *destination, GCancellable *cancellable,
            GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_task_data (task, g_new0 (Load, 1), (GDestroyNotify)load_free);
  keyhold_dbus_call_with_sender (self->connection, destination, KEYHOLD_AGENT_PATH,
                                 KEYHOLD_OBJECT_MANAGER_INTERFACE, "GetManagedObjects", NULL,
                                 cancellable, on_objects_loaded, task);
}

static gboolean
load_agent_finish (KeyholdClient *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
on_reloaded (GObject *source, GAsyncResult *result, gpointer user_data)
{
  /* A failure means this agent went away already; the next one to appear
   * starts another reload. */
  load_agent_finish (KEYHOLD_CLIENT (source), result, NULL);
}

/* Asks the new agent process itself, by its unique name, so that the
 * answer cannot come from another one. */
static void
reload (KeyholdClient *self)
{
  g_cancellable_cancel (self->reload_cancellable);
  g_clear_object (&self->reload_cancellable);
  self->reload_cancellable = g_cancellable_new ();
  load_agent (self, self->agent_owner, self->reload_cancellable, on_reloaded, NULL);
}

static gboolean
on_resync (gpointer user_data)
{
  KeyholdClient *self = user_data;

  g_clear_pointer (&self->resync_source, g_source_unref);
  self->ignoring_signals = FALSE;
  if (self->agent_owner != NULL)
    reload (self);
  return G_SOURCE_REMOVE;
}

/* The agent's signals reach the client in its own context, in order; a
 * _sync call reads the agent's state on a private context instead. Once it
 * has applied what it read, the signals still queued in the client's
 * context are older than that, and applying them would undo it. So they
 * are ignored until a source queued behind them runs, which then reads the
 * agent's state again, in order with everything that follows. */
static void
ignore_older_signals (KeyholdClient *self)
{
  g_autoptr (GMainContext) current = g_main_context_ref_thread_default ();

  if (current == self->context)
    return;

  /* A source queued by an earlier call sits in front of signals that are
   * older than this state too: queue a new one at the end. */
  if (self->resync_source != NULL)
    {
      g_source_destroy (self->resync_source);
      g_source_unref (self->resync_source);
    }
  self->ignoring_signals = TRUE;
  self->resync_source = g_idle_source_new ();
  g_source_set_priority (self->resync_source, G_PRIORITY_DEFAULT);
  g_source_set_callback (self->resync_source, on_resync, self, NULL);
  g_source_attach (self->resync_source, self->context);
}

static void
on_name_owner_changed (GDBusConnection *connection, const char *sender, const char *object_path,
                       const char *interface_name, const char *signal_name, GVariant *parameters,
                       gpointer user_data)
{
  KeyholdClient *self = user_data;
  const char *name, *old_owner, *new_owner;

  g_variant_get (parameters, "(&s&s&s)", &name, &old_owner, &new_owner);

  /* Accounts outlive the agent process: they keep their last values and
   * their calls start the agent again. */
  if (new_owner[0] == '\0')
    {
      g_cancellable_cancel (self->reload_cancellable);
      set_agent_owner (self, NULL);
      return;
    }

  if (g_strcmp0 (new_owner, self->agent_owner) == 0)
    return;
  set_agent_owner (self, new_owner);
  reload (self);
}

static void
on_interfaces_changed (GDBusConnection *connection, const char *sender, const char *object_path,
                       const char *interface_name, const char *signal_name, GVariant *parameters,
                       gpointer user_data)
{
  KeyholdClient *self = user_data;
  const char *path;

  if (!is_from_agent (self, sender) || self->ignoring_signals)
    return;

  if (g_str_equal (signal_name, "InterfacesAdded")
      && g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(oa{sa{sv}})")))
    {
      g_autoptr (GVariant) interfaces = NULL;
      g_autoptr (GVariant) account_properties = NULL;

      g_variant_get (parameters, "(&o@a{sa{sv}})", &path, &interfaces);
      account_properties
          = g_variant_lookup_value (interfaces, KEYHOLD_ACCOUNT1_INTERFACE, G_VARIANT_TYPE_VARDICT);
      if (account_properties != NULL)
        add_or_update_account (self, path, account_properties);
    }
  else if (g_str_equal (signal_name, "InterfacesRemoved")
           && g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(oas)")))
    {
      g_autofree const char **interfaces = NULL;

      g_variant_get (parameters, "(&o^a&s)", &path, &interfaces);
      if (g_strv_contains (interfaces, KEYHOLD_ACCOUNT1_INTERFACE))
        remove_account (self, path);
    }
}

static void
on_properties_changed (GDBusConnection *connection, const char *sender, const char *object_path,
                       const char *interface_name, const char *signal_name, GVariant *parameters,
                       gpointer user_data)
{
  KeyholdClient *self = user_data;
  const char *changed_interface;
  g_autoptr (GVariant) changed = NULL;
  KeyholdAccount *account;

  /* The agent always sends new values; it never merely invalidates. */
  if (!is_from_agent (self, sender) || self->ignoring_signals
      || !g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sa{sv}as)")))
    return;

  g_variant_get (parameters, "(&s@a{sv}as)", &changed_interface, &changed, NULL);
  if (g_str_equal (changed_interface, KEYHOLD_AGENT1_INTERFACE)
      && g_str_equal (object_path, KEYHOLD_AGENT_PATH))
    set_storage_error (self, changed);
  else if (g_str_equal (changed_interface, KEYHOLD_ACCOUNT1_INTERFACE)
           && (account = g_hash_table_lookup (self->accounts, object_path)) != NULL)
    keyhold_account_update (account, changed);
}

static void
on_outbox_item_changed (GDBusConnection *connection, const char *sender, const char *object_path,
                        const char *interface_name, const char *signal_name, GVariant *parameters,
                        gpointer user_data)
{
  KeyholdClient *self = user_data;
  const char *id, *state;
  gint32 status;

  if (!is_from_agent (self, sender) || !g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(ssi)")))
    return;

  g_variant_get (parameters, "(&s&si)", &id, &state, &status);
  g_signal_emit (self, signals[SIGNAL_OUTBOX_ITEM_CHANGED], 0, id,
                 keyhold_outbox_state_from_string (state), status);
}

/* The bus matches the well-known name for us, but a unicast signal skips
 * the bus's matching, so every handler also checks the sender against the
 * agent's unique name. Signals are delivered in the thread-default main
 * context of the moment of subscribing: the client's context, also when
 * keyhold_client_new_sync () runs this on its private one. */
static void
subscribe_signals (KeyholdClient *self)
{
  g_autoptr (GMainContext) current = g_main_context_ref_thread_default ();
  gboolean switch_context = current != self->context;

  if (switch_context)
    g_main_context_push_thread_default (self->context);
  self->subscriptions[0] = g_dbus_connection_signal_subscribe (
      self->connection, "org.freedesktop.DBus", "org.freedesktop.DBus", "NameOwnerChanged",
      "/org/freedesktop/DBus", KEYHOLD_AGENT_BUS_NAME, G_DBUS_SIGNAL_FLAGS_NONE,
      on_name_owner_changed, self, NULL);
  self->subscriptions[1] = g_dbus_connection_signal_subscribe (
      self->connection, KEYHOLD_AGENT_BUS_NAME, KEYHOLD_OBJECT_MANAGER_INTERFACE, NULL,
      KEYHOLD_AGENT_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_interfaces_changed, self, NULL);
  self->subscriptions[2] = g_dbus_connection_signal_subscribe (
      self->connection, KEYHOLD_AGENT_BUS_NAME, "org.freedesktop.DBus.Properties",
      "PropertiesChanged", NULL, KEYHOLD_ACCOUNT1_INTERFACE, G_DBUS_SIGNAL_FLAGS_NONE,
      on_properties_changed, self, NULL);
  self->subscriptions[4] = g_dbus_connection_signal_subscribe (
      self->connection, KEYHOLD_AGENT_BUS_NAME, "org.freedesktop.DBus.Properties",
      "PropertiesChanged", KEYHOLD_AGENT_PATH, KEYHOLD_AGENT1_INTERFACE, G_DBUS_SIGNAL_FLAGS_NONE,
      on_properties_changed, self, NULL);
  self->subscriptions[3] = g_dbus_connection_signal_subscribe (
      self->connection, KEYHOLD_AGENT_BUS_NAME, KEYHOLD_OUTBOX1_INTERFACE, "ItemChanged",
      KEYHOLD_AGENT_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_outbox_item_changed, self, NULL);
  if (switch_context)
    g_main_context_pop_thread_default (self->context);
}

/* ---- construction ---- */

static void
on_first_load (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GError *error = NULL;

  if (!load_agent_finish (KEYHOLD_CLIENT (source), result, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
on_bus (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  KeyholdClient *self = g_task_get_source_object (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  GError *error = NULL;

  self->connection = g_bus_get_finish (result, &error);
  if (self->connection == NULL)
    {
      g_prefix_error (&error, "cannot connect to the session bus: ");
      g_task_return_error (task, error);
      return;
    }

  subscribe_signals (self);
  load_agent (self, KEYHOLD_AGENT_BUS_NAME, cancellable, on_first_load, g_steal_pointer (&task));
}

static void
keyhold_client_init_async (GAsyncInitable *initable, int io_priority, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (initable, cancellable, callback, user_data);

  g_task_set_source_tag (task, keyhold_client_init_async);
  g_task_set_priority (task, io_priority);
  g_bus_get (G_BUS_TYPE_SESSION, cancellable, on_bus, task);
}

static gboolean
keyhold_client_init_finish (GAsyncInitable *initable, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, initable), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
keyhold_client_async_initable_init (GAsyncInitableIface *iface)
{
  iface->init_async = keyhold_client_init_async;
  iface->init_finish = keyhold_client_init_finish;
}

/**
 * keyhold_client_new:
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the client is ready
 * @user_data: (closure): data for @callback
 *
 * Connects to the keyhold agent, starting it if needed, and loads its
 * accounts. The client belongs to the thread-default main context of the
 * caller.
 *
 * Since: 0.1
 */
void
keyhold_client_new (GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_async_initable_new_async (KEYHOLD_TYPE_CLIENT, G_PRIORITY_DEFAULT, cancellable, callback,
                              user_data, NULL);
}

/**
 * keyhold_client_new_finish:
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError, or %NULL
 *
 * Returns: (transfer full): the client, or %NULL with @error set
 *   (%KEYHOLD_ERROR_AGENT_UNAVAILABLE when the agent neither runs nor can
 *   be started).
 *
 * Since: 0.1
 */
KeyholdClient *
keyhold_client_new_finish (GAsyncResult *result, GError **error)
{
  g_autoptr (GObject) source = g_async_result_get_source_object (result);
  GObject *client = g_async_initable_new_finish (G_ASYNC_INITABLE (source), result, error);

  return client != NULL ? KEYHOLD_CLIENT (client) : NULL;
}

/**
 * keyhold_client_new_sync:
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * The synchronous form of keyhold_client_new().
 *
 * Returns: (transfer full): the client, or %NULL with @error set.
 *
 * Since: 0.1
 */
KeyholdClient *
keyhold_client_new_sync (GCancellable *cancellable, GError **error)
{
  /* Created before the private context is pushed, so that it belongs to
   * the caller's. */
  g_autoptr (KeyholdClient) self = g_object_new (KEYHOLD_TYPE_CLIENT, NULL);
  g_auto (KeyholdSync) sync = { 0 };

  keyhold_sync_begin (&sync);
  g_async_initable_init_async (G_ASYNC_INITABLE (self), G_PRIORITY_DEFAULT, cancellable,
                               keyhold_sync_done, &sync);
  if (!g_async_initable_init_finish (G_ASYNC_INITABLE (self), keyhold_sync_wait (&sync), error))
    return NULL;
  return g_steal_pointer (&self);
}

/* ---- accounts ---- */

/**
 * keyhold_client_get_agent_running:
 * @self: a #KeyholdClient
 *
 * Returns: %TRUE while an agent process owns `org.keyhold.Agent`.
 *
 * Since: 0.1
 */
gboolean
keyhold_client_get_agent_running (KeyholdClient *self)
{
  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), FALSE);

  return self->agent_owner != NULL;
}

/**
 * keyhold_client_get_storage_error:
 * @self: a #KeyholdClient
 *
 * Why the agent's database or the outbox's key cannot be used right now
 * (a damaged or foreign database file, a key missing from the keyring), or
 * "" when all is well. The agent never repairs or deletes the data itself.
 *
 * Returns: (transfer none): the problem, or "".
 *
 * Since: 0.1
 */
const char *
keyhold_client_get_storage_error (KeyholdClient *self)
{
  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), NULL);

  return self->storage_error;
}

static int
compare_account_names (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (keyhold_account_get_name ((KeyholdAccount *)a),
                    keyhold_account_get_name ((KeyholdAccount *)b));
}

static gpointer
copy_object (gconstpointer object, gpointer user_data)
{
  return g_object_ref ((gpointer)object);
}

/**
 * keyhold_client_get_accounts:
 * @self: a #KeyholdClient
 *
 * Returns: (transfer full) (element-type KeyholdAccount): the accounts, in
 *   name order.
 *
 * Since: 0.1
 */
GList *
keyhold_client_get_accounts (KeyholdClient *self)
{
  g_autoptr (GList) accounts = NULL;

  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), NULL);

  accounts = g_list_sort (g_hash_table_get_values (self->accounts), compare_account_names);
  return g_list_copy_deep (accounts, copy_object, NULL);
}

/**
 * keyhold_client_lookup_account:
 * @self: a #KeyholdClient
 * @name: an account's local name
 *
 * Returns: (transfer full) (nullable): the account named @name, or %NULL
 *   if there is none.
 *
 * Since: 0.1
 */
KeyholdAccount *
keyhold_client_lookup_account (KeyholdClient *self, const char *name)
{
  GHashTableIter iter;
  gpointer account;

  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);

  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, NULL, &account))
    if (g_strcmp0 (keyhold_account_get_name (account), name) == 0)
      return g_object_ref (account);
  return NULL;
}

static GVariant *
account_settings (const char *issuer, const char *client_id, const char *const *scopes,
                  const char *const *api_origins)
{
  g_auto (GVariantBuilder) settings = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&settings, "{sv}", "issuer", g_variant_new_string (issuer));
  g_variant_builder_add (&settings, "{sv}", "client_id", g_variant_new_string (client_id));
  /* Without scopes the agent's default applies. */
  if (scopes != NULL)
    g_variant_builder_add (&settings, "{sv}", "scopes", g_variant_new_strv (scopes, -1));
  g_variant_builder_add (&settings, "{sv}", "api_origins",
                         g_variant_new_strv (api_origins, api_origins != NULL ? -1 : 0));
  return g_variant_builder_end (&settings);
}

static void
on_account_properties (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  KeyholdClient *self = g_task_get_source_object (task);
  const char *object_path = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr (GVariant) reply
      = keyhold_dbus_call_finish (G_DBUS_CONNECTION (source), result, &error);
  g_autoptr (GVariant) properties_dict = NULL;
  KeyholdAccount *account;

  if (reply == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  properties_dict = g_variant_get_child_value (reply, 0);
  account = add_or_update_account (self, object_path, properties_dict);
  ignore_older_signals (self);
  g_task_return_pointer (task, g_object_ref (account), g_object_unref);
}

/* Reads the account's properties now and returns the account through
 * @task (taken). The agent announces property changes (and new objects)
 * from an idle callback, after the reply or signal of the operation that
 * made them, and a _sync call does not dispatch them at all: an operation
 * that changes an account reads it back before it reports success. */
static void
read_account (KeyholdClient *self, const char *object_path, GTask *task)
{
  g_task_set_task_data (task, g_strdup (object_path), g_free);
  keyhold_dbus_call (self->connection, object_path, "org.freedesktop.DBus.Properties", "GetAll",
                     g_variant_new ("(s)", KEYHOLD_ACCOUNT1_INTERFACE), "(a{sv})",
                     g_task_get_cancellable (task), on_account_properties, task);
}

void
keyhold_client_read_account (KeyholdClient *self, const char *name, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (KeyholdAccount) account = keyhold_client_lookup_account (self, name);
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  if (account == NULL)
    {
      g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_NO_SUCH_ACCOUNT,
                               "no account named \"%s\"", name);
      g_object_unref (task);
      return;
    }
  read_account (self, keyhold_account_get_object_path (account), task);
}

KeyholdAccount *
keyhold_client_read_account_finish (KeyholdClient *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
on_account_added (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  KeyholdClient *self = g_task_get_source_object (task);
  GError *error = NULL;
  g_autoptr (GVariant) reply
      = keyhold_dbus_call_finish (G_DBUS_CONNECTION (source), result, &error);
  const char *object_path;

  if (reply == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  g_variant_get (reply, "(&o)", &object_path);
  read_account (self, object_path, g_steal_pointer (&task));
}

/**
 * keyhold_client_add_account:
 * @self: a #KeyholdClient
 * @name: a short local name: 1 to 64 of `A-Z a-z 0-9 . _ -`
 * @issuer: the provider's issuer URL (https, or http on a loopback host)
 * @client_id: the client_id registered with the provider for keyhold
 * @scopes: (nullable) (array zero-terminated=1): the scopes to request at
 *   sign-in, or %NULL for the agent's default ("openid")
 * @api_origins: (nullable) (array zero-terminated=1): the only origins
 *   this account's tokens may ever be sent to
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the account exists
 * @user_data: (closure): data for @callback
 *
 * Adds an account to the agent's configuration. Sign in to it next with
 * keyhold_client_sign_in().
 *
 * Since: 0.1
 */
void
keyhold_client_add_account (KeyholdClient *self, const char *name, const char *issuer,
                            const char *client_id, const char *const *scopes,
                            const char *const *api_origins, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task;

  g_return_if_fail (KEYHOLD_IS_CLIENT (self));
  g_return_if_fail (name != NULL && issuer != NULL && client_id != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, keyhold_client_add_account);
  keyhold_dbus_call (
      self->connection, KEYHOLD_AGENT_PATH, KEYHOLD_AGENT1_INTERFACE, "AddAccount",
      g_variant_new ("(s@a{sv})", name, account_settings (issuer, client_id, scopes, api_origins)),
      "(o)", cancellable, on_account_added, task);
}

/**
 * keyhold_client_add_account_finish:
 * @self: a #KeyholdClient
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError, or %NULL
 *
 * Returns: (transfer full): the new account, or %NULL with @error set
 *   (%KEYHOLD_ERROR_INVALID_ARGUMENT, %KEYHOLD_ERROR_ALREADY_EXISTS,
 *   %KEYHOLD_ERROR_QUOTA_EXCEEDED, …).
 *
 * Since: 0.1
 */
KeyholdAccount *
keyhold_client_add_account_finish (KeyholdClient *self, GAsyncResult *result, GError **error)
{
  return keyhold_client_propagate (self, result, keyhold_client_add_account, error);
}

/**
 * keyhold_client_add_account_sync:
 * @self: a #KeyholdClient
 * @name: a short local name
 * @issuer: the provider's issuer URL
 * @client_id: the client_id registered with the provider for keyhold
 * @scopes: (nullable) (array zero-terminated=1): the scopes to request at
 *   sign-in, or %NULL for the agent's default
 * @api_origins: (nullable) (array zero-terminated=1): the only origins
 *   this account's tokens may ever be sent to
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * The synchronous form of keyhold_client_add_account().
 *
 * Returns: (transfer full): the new account, or %NULL with @error set.
 *
 * Since: 0.1
 */
KeyholdAccount *
keyhold_client_add_account_sync (KeyholdClient *self, const char *name, const char *issuer,
                                 const char *client_id, const char *const *scopes,
                                 const char *const *api_origins, GCancellable *cancellable,
                                 GError **error)
{
  g_auto (KeyholdSync) sync = { 0 };

  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), NULL);

  keyhold_sync_begin (&sync);
  keyhold_client_add_account (self, name, issuer, client_id, scopes, api_origins, cancellable,
                              keyhold_sync_done, &sync);
  return keyhold_client_add_account_finish (self, keyhold_sync_wait (&sync), error);
}

/**
 * keyhold_client_remove_account:
 * @self: a #KeyholdClient
 * @name: the account's local name
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the account is gone
 * @user_data: (closure): data for @callback
 *
 * Signs the account out (revoking at the provider when possible), deletes
 * its keyring item and removes it from the agent's configuration.
 *
 * Since: 0.1
 */
void
keyhold_client_remove_account (KeyholdClient *self, const char *name, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task;

  g_return_if_fail (KEYHOLD_IS_CLIENT (self));
  g_return_if_fail (name != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, keyhold_client_remove_account);
  keyhold_dbus_call_for_task (self->connection, KEYHOLD_AGENT_PATH, KEYHOLD_AGENT1_INTERFACE,
                              "RemoveAccount", g_variant_new ("(s)", name), "()", task);
}

/**
 * keyhold_client_remove_account_finish:
 * @self: a #KeyholdClient
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError, or %NULL
 *
 * Returns: %TRUE once removed, %FALSE with @error set
 *   (%KEYHOLD_ERROR_NO_SUCH_ACCOUNT, …).
 *
 * Since: 0.1
 */
gboolean
keyhold_client_remove_account_finish (KeyholdClient *self, GAsyncResult *result, GError **error)
{
  g_autoptr (GVariant) reply
      = keyhold_client_propagate (self, result, keyhold_client_remove_account, error);

  return reply != NULL;
}

/**
 * keyhold_client_remove_account_sync:
 * @self: a #KeyholdClient
 * @name: the account's local name
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * The synchronous form of keyhold_client_remove_account().
 *
 * Returns: %TRUE once removed, %FALSE with @error set.
 *
 * Since: 0.1
 */
gboolean
keyhold_client_remove_account_sync (KeyholdClient *self, const char *name,
                                    GCancellable *cancellable, GError **error)
{
  g_auto (KeyholdSync) sync = { 0 };

  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), FALSE);

  keyhold_sync_begin (&sync);
  keyhold_client_remove_account (self, name, cancellable, keyhold_sync_done, &sync);
  return keyhold_client_remove_account_finish (self, keyhold_sync_wait (&sync), error);
}

/* ---- the object ---- */

static void
keyhold_client_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  KeyholdClient *self = KEYHOLD_CLIENT (object);

  switch (id)
    {
      case PROP_AGENT_RUNNING:
        g_value_set_boolean (value, keyhold_client_get_agent_running (self));
        break;
      case PROP_STORAGE_ERROR:
        g_value_set_string (value, self->storage_error);
        break;
      default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
    }
}

static void
keyhold_client_dispose (GObject *object)
{
  KeyholdClient *self = KEYHOLD_CLIENT (object);

  for (guint i = 0; i < G_N_ELEMENTS (self->subscriptions); i++)
    if (self->subscriptions[i] != 0)
      {
        g_dbus_connection_signal_unsubscribe (self->connection, self->subscriptions[i]);
        self->subscriptions[i] = 0;
      }
  if (self->reload_cancellable != NULL)
    g_cancellable_cancel (self->reload_cancellable);
  g_clear_object (&self->reload_cancellable);
  if (self->resync_source != NULL)
    g_source_destroy (self->resync_source);
  g_clear_pointer (&self->resync_source, g_source_unref);
  g_hash_table_remove_all (self->accounts);
  G_OBJECT_CLASS (keyhold_client_parent_class)->dispose (object);
}

static void
keyhold_client_finalize (GObject *object)
{
  KeyholdClient *self = KEYHOLD_CLIENT (object);

  g_hash_table_unref (self->accounts);
  g_clear_object (&self->connection);
  g_clear_pointer (&self->agent_owner, g_free);
  g_clear_pointer (&self->storage_error, g_free);
  g_main_context_unref (self->context);
  G_OBJECT_CLASS (keyhold_client_parent_class)->finalize (object);
}

static void
keyhold_client_init (KeyholdClient *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->storage_error = g_strdup ("");
  self->accounts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
}

static void
keyhold_client_class_init (KeyholdClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = keyhold_client_get_property;
  object_class->dispose = keyhold_client_dispose;
  object_class->finalize = keyhold_client_finalize;

  /**
   * KeyholdClient:agent-running:
   *
   * Whether an agent process owns `org.keyhold.Agent`. It goes %FALSE when
   * the agent exits (it may stop when idle) and %TRUE again when it is
   * back, started by a call or by hand.
   *
   * Since: 0.1
   */
  properties[PROP_AGENT_RUNNING]
      = g_param_spec_boolean ("agent-running", NULL, "Whether the agent runs", FALSE,
                              G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * KeyholdClient:storage-error:
   *
   * Why the agent's database or the outbox's key cannot be used, or "".
   *
   * Since: 0.1
   */
  properties[PROP_STORAGE_ERROR]
      = g_param_spec_string ("storage-error", NULL, "What is wrong with the agent's storage", "",
                             G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * KeyholdClient::account-added:
   * @self: the client
   * @account: the new account
   *
   * An account appeared in the agent's configuration.
   *
   * Since: 0.1
   */
  signals[SIGNAL_ACCOUNT_ADDED]
      = g_signal_new ("account-added", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 1, KEYHOLD_TYPE_ACCOUNT);
  /**
   * KeyholdClient::account-removed:
   * @self: the client
   * @account: the account that is gone
   *
   * An account was removed from the agent's configuration. A restart of
   * the agent removes nothing.
   *
   * Since: 0.1
   */
  signals[SIGNAL_ACCOUNT_REMOVED]
      = g_signal_new ("account-removed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, NULL, G_TYPE_NONE, 1, KEYHOLD_TYPE_ACCOUNT);
  /**
   * KeyholdClient::sign-in-progress:
   * @self: the client
   * @name: the account being signed in to
   * @info: what the user must do, an `a{sv}` dictionary: for the device
   *   flow "verification_uri", "user_code", maybe
   *   "verification_uri_complete" (all strings) and "expires_in" (u); for
   *   the browser flow "authorization_url" (s), the page to open.
   *
   * Emitted during keyhold_client_sign_in() (in the caller's context), for
   * the sign-ins this client started only. The caller shows the code or
   * opens the page: the agent may run outside the graphical session.
   *
   * Since: 0.1
   */
  signals[SIGNAL_SIGN_IN_PROGRESS]
      = g_signal_new ("sign-in-progress", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_VARIANT);
  /**
   * KeyholdClient::outbox-item-changed:
   * @self: the client
   * @id: the item's id
   * @state: its new state
   * @status: the HTTP status of the last response, 0 if none
   *
   * An outbox item changed state. The agent announces this to every
   * client, so ids of other applications' items appear too; reading an
   * item with keyhold_client_outbox_get() is limited to its owner.
   *
   * Since: 0.1
   */
  signals[SIGNAL_OUTBOX_ITEM_CHANGED] = g_signal_new (
      "outbox-item-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
      G_TYPE_NONE, 3, G_TYPE_STRING, KEYHOLD_TYPE_OUTBOX_STATE, G_TYPE_INT);
}
