/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold/keyhold.h"
#include "keyhold-client-private.h"
#include "keyhold-dbus-private.h"
#include "keyhold-sync-private.h"

/* Signals for a sign-in whose StartSignIn reply has not arrived yet are
 * kept until it does; the agent sends a handful per sign-in at most. */
#define MAX_EARLY_SIGNALS 16

/* One sign-in, from StartSignIn to SignInFinished. The task holds one
 * reference to itself while the sign-in runs. Its signal subscriptions
 * live in the caller's thread-default context, so that a _sync sign-in,
 * which runs on a private one, sees them. */
typedef struct
{
  GDBusConnection *connection;
  char *name;
  /* The agent process that runs the sign-in, and its handle for it; both
   * NULL until StartSignIn answers. */
  char *agent;
  char *handle;
  guint agent_signals_id;
  guint owner_changed_id;
  GSource *cancel_source;
  gboolean cancelling;
  gboolean finished;
  /* Signals that came before the handle was known. */
  GPtrArray *early_signals;
} SignIn;

typedef struct
{
  char *sender;
  char *member;
  GVariant *parameters;
} EarlySignal;

static void
early_signal_free (EarlySignal *early)
{
  g_free (early->sender);
  g_free (early->member);
  g_variant_unref (early->parameters);
  g_free (early);
}

static void
sign_in_free (SignIn *sign_in)
{
  g_ptr_array_unref (sign_in->early_signals);
  g_clear_object (&sign_in->connection);
  g_free (sign_in->name);
  g_free (sign_in->agent);
  g_free (sign_in->handle);
  g_free (sign_in);
}

static void
stop_listening (SignIn *sign_in)
{
  if (sign_in->agent_signals_id != 0)
    g_dbus_connection_signal_unsubscribe (sign_in->connection, sign_in->agent_signals_id);
  if (sign_in->owner_changed_id != 0)
    g_dbus_connection_signal_unsubscribe (sign_in->connection, sign_in->owner_changed_id);
  sign_in->agent_signals_id = 0;
  sign_in->owner_changed_id = 0;
  if (sign_in->cancel_source != NULL)
    {
      g_source_destroy (sign_in->cancel_source);
      g_clear_pointer (&sign_in->cancel_source, g_source_unref);
    }
}

/* Ends the sign-in, once: @error (taken) or success. */
static void
finish (GTask *task, GError *error)
{
  SignIn *sign_in = g_task_get_task_data (task);

  if (sign_in->finished)
    {
      g_clear_error (&error);
      return;
    }

  sign_in->finished = TRUE;
  stop_listening (sign_in);
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

static void
on_account_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (KeyholdAccount) account
      = keyhold_client_read_account_finish (KEYHOLD_CLIENT (source), result, NULL);

  /* The sign-in itself succeeded; a stale account object is no reason to
   * say otherwise. */
  finish (task, NULL);
}

/* So that the account's properties (subject, state, ...) are those of the
 * new sign-in by the time the caller hears of it. */
static void
read_signed_in_account (GTask *task)
{
  SignIn *sign_in = g_task_get_task_data (task);

  keyhold_client_read_account (g_task_get_source_object (task), sign_in->name, NULL,
                               on_account_read, g_object_ref (task));
}

/* Says that the flow failed, as opposed to the request to start it. */
static GError *
sign_in_error (const char *error_name, const char *error_message)
{
  GError *error
      = keyhold_dbus_translate_error (g_dbus_error_new_for_dbus_error (error_name, error_message));

  g_prefix_error (&error, "sign-in failed: ");
  return error;
}

static void
handle_signal (GTask *task, const char *member, GVariant *parameters)
{
  SignIn *sign_in = g_task_get_task_data (task);
  const char *handle;

  if (g_str_equal (member, "SignInProgress")
      && g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sa{sv})")))
    {
      g_autoptr (GVariant) info = NULL;

      g_variant_get (parameters, "(&s@a{sv})", &handle, &info);
      if (g_str_equal (handle, sign_in->handle))
        keyhold_client_emit_sign_in_progress (g_task_get_source_object (task), sign_in->name, info);
    }
  else if (g_str_equal (member, "SignInFinished")
           && g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sss)")))
    {
      const char *error_name, *error_message;

      g_variant_get (parameters, "(&s&s&s)", &handle, &error_name, &error_message);
      if (!g_str_equal (handle, sign_in->handle))
        return;
      if (error_name[0] == '\0')
        read_signed_in_account (task);
      else
        finish (task, sign_in_error (error_name, error_message));
    }
}

static void
on_agent_signal (GDBusConnection *connection,
                 const char *sender,
                 const char *object_path,
                 const char *interface_name,
                 const char *signal_name,
                 GVariant *parameters,
                 gpointer user_data)
{
  GTask *task = user_data;
  SignIn *sign_in = g_task_get_task_data (task);

  if (sign_in->handle != NULL)
    {
      /* Only the process that started the sign-in can end it. */
      if (g_strcmp0 (sender, sign_in->agent) == 0)
        handle_signal (task, signal_name, parameters);
    }
  else if (sign_in->early_signals->len < MAX_EARLY_SIGNALS)
    {
      EarlySignal *early = g_new0 (EarlySignal, 1);

      early->sender = g_strdup (sender);
      early->member = g_strdup (signal_name);
      early->parameters = g_variant_ref (parameters);
      g_ptr_array_add (sign_in->early_signals, early);
    }
}

static void
on_owner_changed (GDBusConnection *connection,
                  const char *sender,
                  const char *object_path,
                  const char *interface_name,
                  const char *signal_name,
                  GVariant *parameters,
                  gpointer user_data)
{
  GTask *task = user_data;
  SignIn *sign_in = g_task_get_task_data (task);
  const char *name, *old_owner, *new_owner;

  g_variant_get (parameters, "(&s&s&s)", &name, &old_owner, &new_owner);
  if (sign_in->agent != NULL && g_str_equal (old_owner, sign_in->agent))
    finish (task, g_error_new_literal (KEYHOLD_ERROR, KEYHOLD_ERROR_AGENT_UNAVAILABLE,
                                       "the keyhold agent stopped during the sign-in"));
}

static void
on_cancel_sent (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply
      = keyhold_dbus_call_finish (G_DBUS_CONNECTION (source), result, &error);

  /* A sign-in that ended meanwhile has nothing left to cancel: either way
   * the caller asked to cancel. */
  finish (task,
          g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "the sign-in was cancelled"));
}

/* The flow runs in the agent, so cancelling means asking the agent to stop
 * it, and the sign-in ends only once the agent has. */
static void
cancel_in_agent (GTask *task)
{
  SignIn *sign_in = g_task_get_task_data (task);

  keyhold_dbus_call (sign_in->connection, KEYHOLD_AGENT_PATH, KEYHOLD_AGENT1_INTERFACE,
                     "CancelSignIn", g_variant_new ("(s)", sign_in->handle), "()", NULL,
                     on_cancel_sent, g_object_ref (task));
}

static gboolean
on_cancelled (GCancellable *cancellable, gpointer user_data)
{
  GTask *task = user_data;
  SignIn *sign_in = g_task_get_task_data (task);

  sign_in->cancelling = TRUE;
  g_clear_pointer (&sign_in->cancel_source, g_source_unref);
  /* Without a handle yet, on_started () cancels as soon as it has one. */
  if (sign_in->handle != NULL)
    cancel_in_agent (task);
  return G_SOURCE_REMOVE;
}

static void
replay_early_signals (GTask *task)
{
  SignIn *sign_in = g_task_get_task_data (task);
  g_autoptr (GPtrArray) early_signals = g_steal_pointer (&sign_in->early_signals);

  sign_in->early_signals = g_ptr_array_new ();
  for (guint i = 0; i < early_signals->len && !sign_in->finished; i++)
    {
      EarlySignal *early = g_ptr_array_index (early_signals, i);

      if (g_str_equal (early->sender, sign_in->agent))
        handle_signal (task, early->member, early->parameters);
    }
}

static void
on_started (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  SignIn *sign_in = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr (GVariant) reply
      = keyhold_dbus_call_with_sender_finish (result, "(s)", &sign_in->agent, &error);

  if (reply == NULL)
    {
      finish (task, error);
      return;
    }

  g_variant_get (reply, "(s)", &sign_in->handle);
  if (sign_in->cancelling)
    cancel_in_agent (task);
  else
    replay_early_signals (task);
}

static const char *
method_name (KeyholdSignInMethod method)
{
  g_autoptr (GEnumClass) methods = g_type_class_ref (KEYHOLD_TYPE_SIGN_IN_METHOD);
  GEnumValue *value = g_enum_get_value (methods, method);

  return value != NULL ? value->value_nick : "";
}

static void
follow_sign_in (GTask *task)
{
  SignIn *sign_in = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);

  sign_in->agent_signals_id = g_dbus_connection_signal_subscribe (
      sign_in->connection, KEYHOLD_AGENT_BUS_NAME, KEYHOLD_AGENT1_INTERFACE, NULL,
      KEYHOLD_AGENT_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_agent_signal, task, NULL);
  sign_in->owner_changed_id = g_dbus_connection_signal_subscribe (
      sign_in->connection, "org.freedesktop.DBus", "org.freedesktop.DBus", "NameOwnerChanged",
      "/org/freedesktop/DBus", KEYHOLD_AGENT_BUS_NAME, G_DBUS_SIGNAL_FLAGS_NONE, on_owner_changed,
      task, NULL);
  if (cancellable != NULL)
    {
      sign_in->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (sign_in->cancel_source, G_SOURCE_FUNC (on_cancelled), task, NULL);
      g_source_attach (sign_in->cancel_source, g_main_context_get_thread_default ());
    }
}

/**
 * keyhold_client_sign_in:
 * @self: a #KeyholdClient
 * @name: the account's local name
 * @method: how to sign in
 * @cancellable: (nullable): a #GCancellable; cancelling it stops the
 *   sign-in in the agent
 * @callback: (scope async): called when the sign-in has ended
 * @user_data: (closure): data for @callback
 *
 * Signs in to the account @name. The agent runs the flow; what the user
 * must do (open a page, enter a code) arrives through
 * #KeyholdClient::sign-in-progress. The operation ends when the user has
 * signed in, the provider or the user ended the flow, or @cancellable was
 * cancelled. At most one sign-in per account runs at a time
 * (%KEYHOLD_ERROR_BUSY).
 *
 * Since: 0.1
 */
void
keyhold_client_sign_in (KeyholdClient *self,
                        const char *name,
                        KeyholdSignInMethod method,
                        GCancellable *cancellable,
                        GAsyncReadyCallback callback,
                        gpointer user_data)
{
  GTask *task;
  SignIn *sign_in;

  g_return_if_fail (KEYHOLD_IS_CLIENT (self));
  g_return_if_fail (name != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, keyhold_client_sign_in);
  sign_in = g_new0 (SignIn, 1);
  sign_in->connection = g_object_ref (keyhold_client_get_connection (self));
  sign_in->name = g_strdup (name);
  sign_in->early_signals = g_ptr_array_new_with_free_func ((GDestroyNotify) early_signal_free);
  g_task_set_task_data (task, sign_in, (GDestroyNotify) sign_in_free);

  follow_sign_in (task);
  /* Not cancellable: a StartSignIn abandoned in flight could leave a flow
   * running in the agent; on_started () cancels it instead. */
  keyhold_dbus_call_with_sender (sign_in->connection, KEYHOLD_AGENT_BUS_NAME, KEYHOLD_AGENT_PATH,
                                 KEYHOLD_AGENT1_INTERFACE, "StartSignIn",
                                 g_variant_new ("(ssa{sv})", name, method_name (method), NULL),
                                 NULL, on_started, g_object_ref (task));
}

/**
 * keyhold_client_sign_in_finish:
 * @self: a #KeyholdClient
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError, or %NULL
 *
 * Finishes keyhold_client_sign_in().
 *
 * Returns: %TRUE when the user is signed in, %FALSE with @error set
 *   (%KEYHOLD_ERROR_SIGN_IN_FAILED, %KEYHOLD_ERROR_BUSY,
 *   %KEYHOLD_ERROR_NO_SUCH_ACCOUNT, %KEYHOLD_ERROR_AGENT_UNAVAILABLE when
 *   the agent stopped during the sign-in, %G_IO_ERROR_CANCELLED, …).
 *
 * Since: 0.1
 */
gboolean
keyhold_client_sign_in_finish (KeyholdClient *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == keyhold_client_sign_in, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * keyhold_client_sign_in_sync:
 * @self: a #KeyholdClient
 * @name: the account's local name
 * @method: how to sign in
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * The synchronous form of keyhold_client_sign_in().
 * #KeyholdClient::sign-in-progress is emitted during the call.
 *
 * Returns: %TRUE when the user is signed in, %FALSE with @error set.
 *
 * Since: 0.1
 */
gboolean
keyhold_client_sign_in_sync (KeyholdClient *self,
                             const char *name,
                             KeyholdSignInMethod method,
                             GCancellable *cancellable,
                             GError **error)
{
  g_auto (KeyholdSync) sync = { 0 };

  g_return_val_if_fail (KEYHOLD_IS_CLIENT (self), FALSE);

  keyhold_sync_begin (&sync);
  keyhold_client_sign_in (self, name, method, cancellable, keyhold_sync_done, &sync);
  return keyhold_client_sign_in_finish (self, keyhold_sync_wait (&sync), error);
}
