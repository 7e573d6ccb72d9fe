/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold/keyhold.h"
#include "keyhold-client-private.h"
#include "keyhold-dbus-private.h"
#include "keyhold-outbox-private.h"

/* Following the agent: which process owns its bus name, loading its object
 * tree and properties (again whenever the agent restarts), and routing its
 * signals to the account table and the client's own signals. */

static void
set_agent_owner (KeyholdClient *self, const char *owner)
{
  gboolean was_running = self->agent_owner != NULL;

  g_free (self->agent_owner);
  self->agent_owner = g_strdup (owner);
  if (was_running != (owner != NULL))
    keyhold_client_notify_agent_running (self);
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
  keyhold_client_notify_storage_error (self);
}

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
      keyhold_client_apply_managed_objects (self, load->objects);
      agent_properties = g_variant_get_child_value (reply, 0);
      set_storage_error (self, agent_properties);
      keyhold_client_ignore_older_signals (self);
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
load_agent (KeyholdClient *self,
            const char *destination,
            GCancellable *cancellable,
            GAsyncReadyCallback callback,
            gpointer user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_task_data (task, g_new0 (Load, 1), (GDestroyNotify) load_free);
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
void
keyhold_client_ignore_older_signals (KeyholdClient *self)
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

/* ---- the agent's signals ---- */

static void
on_name_owner_changed (GDBusConnection *connection,
                       const char *sender,
                       const char *object_path,
                       const char *interface_name,
                       const char *signal_name,
                       GVariant *parameters,
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
on_interfaces_changed (GDBusConnection *connection,
                       const char *sender,
                       const char *object_path,
                       const char *interface_name,
                       const char *signal_name,
                       GVariant *parameters,
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
        keyhold_client_put_account (self, path, account_properties);
    }
  else if (g_str_equal (signal_name, "InterfacesRemoved")
           && g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(oas)")))
    {
      g_autofree const char **interfaces = NULL;

      g_variant_get (parameters, "(&o^a&s)", &path, &interfaces);
      if (g_strv_contains (interfaces, KEYHOLD_ACCOUNT1_INTERFACE))
        keyhold_client_drop_account (self, path);
    }
}

static void
on_properties_changed (GDBusConnection *connection,
                       const char *sender,
                       const char *object_path,
                       const char *interface_name,
                       const char *signal_name,
                       GVariant *parameters,
                       gpointer user_data)
{
  KeyholdClient *self = user_data;
  const char *changed_interface;
  g_autoptr (GVariant) changed = NULL;

  /* The agent always sends new values; it never merely invalidates. */
  if (!is_from_agent (self, sender) || self->ignoring_signals
      || !g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sa{sv}as)")))
    return;

  g_variant_get (parameters, "(&s@a{sv}as)", &changed_interface, &changed, NULL);
  if (g_str_equal (changed_interface, KEYHOLD_AGENT1_INTERFACE)
      && g_str_equal (object_path, KEYHOLD_AGENT_PATH))
    set_storage_error (self, changed);
  else if (g_str_equal (changed_interface, KEYHOLD_ACCOUNT1_INTERFACE))
    keyhold_client_update_account (self, object_path, changed);
}

static void
on_outbox_item_changed (GDBusConnection *connection,
                        const char *sender,
                        const char *object_path,
                        const char *interface_name,
                        const char *signal_name,
                        GVariant *parameters,
                        gpointer user_data)
{
  KeyholdClient *self = user_data;
  const char *id, *state;
  gint32 status;

  if (!is_from_agent (self, sender) || !g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(ssi)")))
    return;

  g_variant_get (parameters, "(&s&si)", &id, &state, &status);
  keyhold_client_emit_outbox_item_changed (self, id, keyhold_outbox_state_from_string (state),
                                           status);
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

/* ---- starting and stopping ---- */

void
keyhold_client_follow_agent (KeyholdClient *self,
                             GCancellable *cancellable,
                             GAsyncReadyCallback callback,
                             gpointer user_data)
{
  subscribe_signals (self);
  load_agent (self, KEYHOLD_AGENT_BUS_NAME, cancellable, callback, user_data);
}

gboolean
keyhold_client_follow_agent_finish (KeyholdClient *self, GAsyncResult *result, GError **error)
{
  return load_agent_finish (self, result, error);
}

void
keyhold_client_stop_following_agent (KeyholdClient *self)
{
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
}

/* ---- what the client knows of the agent ---- */

/**
 * keyhold_client_get_agent_running:
 * @self: a #KeyholdClient
 *
 * Tells whether the agent runs.
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
