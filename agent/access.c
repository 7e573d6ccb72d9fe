/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <unistd.h>

#include <keyhold/keyhold-error.h>

#include "access.h"

/* Enough for every process of a desktop session; past it the cache starts
 * over rather than grow without bound. */
#define MAX_CACHED_CALLERS 4096

typedef enum
{
  CALLER_UNKNOWN,
  CALLER_ALLOWED,
  CALLER_DENIED,
} CallerVerdict;

struct _KeyholdAccess
{
  GDBusConnection *connection;
  GCancellable *cancellable;
  /* unique name -> CallerVerdict */
  GHashTable *verdicts;
  guint name_owner_changed_id;
};

typedef struct
{
  KeyholdAccess *access;
  GDBusInterfaceSkeleton *skeleton;
  GDBusMethodInvocation *invocation;
} PendingCall;

static void
on_name_owner_changed (GDBusConnection *connection,
                       const char *sender_name,
                       const char *object_path,
                       const char *interface_name,
                       const char *signal_name,
                       GVariant *parameters,
                       gpointer user_data)
{
  KeyholdAccess *access = user_data;
  const char *name, *old_owner, *new_owner;

  g_variant_get (parameters, "(&s&s&s)", &name, &old_owner, &new_owner);
  if (*new_owner == '\0')
    g_hash_table_remove (access->verdicts, name);
}

KeyholdAccess *
keyhold_access_new (GDBusConnection *connection)
{
  KeyholdAccess *access = g_new0 (KeyholdAccess, 1);

  access->connection = g_object_ref (connection);
  access->cancellable = g_cancellable_new ();
  access->verdicts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  access->name_owner_changed_id = g_dbus_connection_signal_subscribe (
      connection, "org.freedesktop.DBus", "org.freedesktop.DBus", "NameOwnerChanged",
      "/org/freedesktop/DBus", NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_name_owner_changed, access,
      NULL);
  return access;
}

void
keyhold_access_free (KeyholdAccess *access)
{
  if (access == NULL)
    return;

  /* Lookups still in flight finish with G_IO_ERROR_CANCELLED and refuse
   * their calls without touching @access. */
  g_cancellable_cancel (access->cancellable);
  g_dbus_connection_signal_unsubscribe (access->connection, access->name_owner_changed_id);
  g_hash_table_unref (access->verdicts);
  g_object_unref (access->cancellable);
  g_object_unref (access->connection);
  g_free (access);
}

static void
refuse (GDBusMethodInvocation *invocation)
{
  g_dbus_method_invocation_return_error_literal (invocation, KEYHOLD_ERROR,
                                                 KEYHOLD_ERROR_ACCESS_DENIED,
                                                 "Only processes of the agent's own user may use it");
}

static CallerVerdict
verdict_from_credentials (GVariant *credentials)
{
  g_autoptr (GVariant) dict = g_variant_get_child_value (credentials, 0);
  guint32 uid;

  if (!g_variant_lookup (dict, "UnixUserID", "u", &uid))
    return CALLER_DENIED;
  return uid == getuid () ? CALLER_ALLOWED : CALLER_DENIED;
}

static void
on_credentials (GObject *source, GAsyncResult *result, gpointer user_data)
{
  PendingCall *pending = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) credentials = NULL;
  CallerVerdict verdict = CALLER_DENIED;
  GDBusMethodInvocation *invocation = pending->invocation;
  const GDBusInterfaceVTable *vtable;

  credentials = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (credentials != NULL)
    verdict = verdict_from_credentials (credentials);

  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) && credentials != NULL)
    {
      KeyholdAccess *access = pending->access;

      if (g_hash_table_size (access->verdicts) >= MAX_CACHED_CALLERS)
        g_hash_table_remove_all (access->verdicts);
      g_hash_table_insert (access->verdicts,
                           g_strdup (g_dbus_method_invocation_get_sender (invocation)),
                           GINT_TO_POINTER (verdict));
    }

  if (verdict != CALLER_ALLOWED)
    {
      refuse (invocation);
    }
  else
    {
      /* Documented contract of get_vtable (): the functions expect the
       * skeleton as user_data. The handler runs again, now with a cached
       * verdict, and takes over this invocation's reference. */
      vtable = g_dbus_interface_skeleton_get_vtable (pending->skeleton);
      vtable->method_call (g_dbus_method_invocation_get_connection (invocation),
                           g_dbus_method_invocation_get_sender (invocation),
                           g_dbus_method_invocation_get_object_path (invocation),
                           g_dbus_method_invocation_get_interface_name (invocation),
                           g_dbus_method_invocation_get_method_name (invocation),
                           g_dbus_method_invocation_get_parameters (invocation), invocation,
                           pending->skeleton);
    }

  g_object_unref (pending->skeleton);
  g_free (pending);
}

gboolean
keyhold_access_check (KeyholdAccess *access,
                      GDBusInterfaceSkeleton *skeleton,
                      GDBusMethodInvocation *invocation)
{
  const char *sender = g_dbus_method_invocation_get_sender (invocation);
  PendingCall *pending;

  switch (GPOINTER_TO_INT (g_hash_table_lookup (access->verdicts, sender)))
    {
    case CALLER_ALLOWED:
      return TRUE;
    case CALLER_DENIED:
      refuse (invocation);
      return FALSE;
    default:
      break;
    }

  pending = g_new0 (PendingCall, 1);
  pending->access = access;
  pending->skeleton = g_object_ref (skeleton);
  pending->invocation = invocation;
  g_dbus_connection_call (access->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                          "org.freedesktop.DBus", "GetConnectionCredentials",
                          g_variant_new ("(s)", sender), G_VARIANT_TYPE ("(a{sv})"),
                          G_DBUS_CALL_FLAGS_NONE, -1, access->cancellable, on_credentials,
                          pending);
  return FALSE;
}
