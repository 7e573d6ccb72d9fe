/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold/keyhold.h"
#include "keyhold-client-private.h"
#include "keyhold-sync-private.h"

/* The KeyholdClient object: its type, construction, properties, signals
 * and teardown. What it does is in the other keyhold-client-*.c files; see
 * keyhold-client-private.h. */

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

static void keyhold_client_async_initable_init (GAsyncInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (KeyholdClient,
                               keyhold_client,
                               G_TYPE_OBJECT,
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

/* ---- for the other keyhold-client-*.c files ---- */

GDBusConnection *
keyhold_client_get_connection (KeyholdClient *self)
{
  return self->connection;
}

void
keyhold_client_emit_account_added (KeyholdClient *self, KeyholdAccount *account)
{
  g_signal_emit (self, signals[SIGNAL_ACCOUNT_ADDED], 0, account);
}

void
keyhold_client_emit_account_removed (KeyholdClient *self, KeyholdAccount *account)
{
  g_signal_emit (self, signals[SIGNAL_ACCOUNT_REMOVED], 0, account);
}

void
keyhold_client_emit_sign_in_progress (KeyholdClient *self, const char *name, GVariant *info)
{
  g_signal_emit (self, signals[SIGNAL_SIGN_IN_PROGRESS], 0, name, info);
}

void
keyhold_client_emit_outbox_item_changed (KeyholdClient *self,
                                         const char *id,
                                         KeyholdOutboxState state,
                                         int status)
{
  g_signal_emit (self, signals[SIGNAL_OUTBOX_ITEM_CHANGED], 0, id, state, status);
}

void
keyhold_client_notify_agent_running (KeyholdClient *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_AGENT_RUNNING]);
}

void
keyhold_client_notify_storage_error (KeyholdClient *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STORAGE_ERROR]);
}

gpointer
keyhold_client_propagate (KeyholdClient *self,
                          GAsyncResult *result,
                          gpointer source_tag,
                          GError **error)
{
  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == source_tag, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- construction ---- */

static void
on_following_agent (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GError *error = NULL;

  if (!keyhold_client_follow_agent_finish (KEYHOLD_CLIENT (source), result, &error))
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

  keyhold_client_follow_agent (self, cancellable, on_following_agent, g_steal_pointer (&task));
}

static void
keyhold_client_init_async (GAsyncInitable *initable,
                           int io_priority,
                           GCancellable *cancellable,
                           GAsyncReadyCallback callback,
                           gpointer user_data)
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
 * Finishes keyhold_client_new().
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

  keyhold_client_stop_following_agent (self);
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
