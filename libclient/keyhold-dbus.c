/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold-contract.h"
#include "keyhold-dbus-private.h"

#define KEYHOLD_ERROR_NAME_PREFIX "org.keyhold.Error."

static gboolean
is_agent_missing (const GError *error)
{
  return g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN)
         || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER);
}

static gboolean
is_agent_start_failure (const GError *error)
{
  return error->domain == G_DBUS_ERROR && error->code >= G_DBUS_ERROR_SPAWN_EXEC_FAILED
         && error->code <= G_DBUS_ERROR_SPAWN_FAILED;
}

GError *
keyhold_dbus_translate_error (GError *error)
{
  g_autofree char *remote_name = g_dbus_error_get_remote_error (error);
  GError *translated;

  if (is_agent_missing (error))
    translated = g_error_new_literal (KEYHOLD_ERROR, KEYHOLD_ERROR_AGENT_UNAVAILABLE,
                                      "the keyhold agent is not running");
  else if (g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY))
    translated = g_error_new_literal (KEYHOLD_ERROR, KEYHOLD_ERROR_AGENT_UNAVAILABLE,
                                      "the keyhold agent stopped before it answered");
  else if (is_agent_start_failure (error))
    {
      g_dbus_error_strip_remote_error (error);
      translated = g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_AGENT_UNAVAILABLE,
                                "the keyhold agent could not be started: %s", error->message);
    }
  else if (remote_name != NULL && g_str_has_prefix (remote_name, KEYHOLD_ERROR_NAME_PREFIX))
    {
      /* A name from a newer agent that this library has no code for is
       * still a keyhold error. */
      if (error->domain != KEYHOLD_ERROR)
        {
          error->domain = KEYHOLD_ERROR;
          error->code = KEYHOLD_ERROR_FAILED;
        }
      g_dbus_error_strip_remote_error (error);
      return error;
    }
  else
    return error;

  g_error_free (error);
  return translated;
}

GVariant *
keyhold_dbus_call_finish (GDBusConnection *connection, GAsyncResult *result, GError **error)
{
  GError *local_error = NULL;
  GVariant *reply = g_dbus_connection_call_finish (connection, result, &local_error);

  if (reply == NULL)
    g_propagate_error (error, keyhold_dbus_translate_error (local_error));
  return reply;
}

void
keyhold_dbus_call (GDBusConnection *connection,
                   const char *object_path,
                   const char *interface_name,
                   const char *method,
                   GVariant *parameters,
                   const char *reply_type,
                   GCancellable *cancellable,
                   GAsyncReadyCallback callback,
                   gpointer user_data)
{
  /* GDBus decodes org.keyhold.Error.* names into KEYHOLD_ERROR codes only
   * once the domain is registered. */
  keyhold_error_quark ();
  g_dbus_connection_call (connection, KEYHOLD_AGENT_BUS_NAME, object_path, interface_name, method,
                          parameters, G_VARIANT_TYPE (reply_type), G_DBUS_CALL_FLAGS_NONE,
                          KEYHOLD_CALL_TIMEOUT_MS, cancellable, callback, user_data);
}

static void
return_reply (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GError *error = NULL;
  GVariant *reply = keyhold_dbus_call_finish (G_DBUS_CONNECTION (source), result, &error);

  if (reply == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, reply, (GDestroyNotify) g_variant_unref);
}

void
keyhold_dbus_call_for_task (GDBusConnection *connection,
                            const char *object_path,
                            const char *interface_name,
                            const char *method,
                            GVariant *parameters,
                            const char *reply_type,
                            GTask *task)
{
  keyhold_dbus_call (connection, object_path, interface_name, method, parameters, reply_type,
                     g_task_get_cancellable (task), return_reply, task);
}

static void
return_reply_message (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GError *error = NULL;
  g_autoptr (GDBusMessage) reply = g_dbus_connection_send_message_with_reply_finish (
      G_DBUS_CONNECTION (source), result, &error);

  if (reply != NULL && g_dbus_message_to_gerror (reply, &error))
    g_clear_object (&reply);
  if (reply == NULL)
    g_task_return_error (task, keyhold_dbus_translate_error (error));
  else
    g_task_return_pointer (task, g_steal_pointer (&reply), g_object_unref);
}

void
keyhold_dbus_call_with_sender (GDBusConnection *connection,
                               const char *destination,
                               const char *object_path,
                               const char *interface_name,
                               const char *method,
                               GVariant *parameters,
                               GCancellable *cancellable,
                               GAsyncReadyCallback callback,
                               gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr (GDBusMessage) message
      = g_dbus_message_new_method_call (destination, object_path, interface_name, method);

  keyhold_error_quark ();
  g_task_set_source_tag (task, keyhold_dbus_call_with_sender);
  g_dbus_message_set_body (message, parameters);
  g_dbus_connection_send_message_with_reply (connection, message, G_DBUS_SEND_MESSAGE_FLAGS_NONE,
                                             KEYHOLD_CALL_TIMEOUT_MS, NULL, cancellable,
                                             return_reply_message, task);
}

GVariant *
keyhold_dbus_call_with_sender_finish (GAsyncResult *result,
                                      const char *reply_type,
                                      char **out_sender,
                                      GError **error)
{
  g_autoptr (GDBusMessage) reply = g_task_propagate_pointer (G_TASK (result), error);
  GVariant *body;

  if (reply == NULL)
    return NULL;

  body = g_dbus_message_get_body (reply);
  if (body == NULL || !g_variant_is_of_type (body, G_VARIANT_TYPE (reply_type)))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "the keyhold agent answered with a reply of type %s, not %s",
                   body != NULL ? g_variant_get_type_string (body) : "()", reply_type);
      return NULL;
    }

  if (out_sender != NULL)
    *out_sender = g_strdup (g_dbus_message_get_sender (reply));
  return g_variant_ref (body);
}
