/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "keyhold-contract.h"

#include "bus/access.h"

/* Enough for every process of a desktop session; past it the cache starts
 * over rather than grow without bound. */
#define MAX_CACHED_CALLERS 4096
/* A real .flatpak-info is a few hundred bytes. */
#define MAX_FLATPAK_INFO_BYTES (64 * 1024)

typedef enum
{
  CALLER_UNKNOWN,
  CALLER_ALLOWED,
  CALLER_DENIED,
} CallerVerdict;

typedef struct
{
  CallerVerdict verdict;
  /* What the caller's data is filed under: see keyhold_access_get_caller_id (). */
  char *identity;
} CallerInfo;

struct _KeyholdAccess
{
  GDBusConnection *connection;
  GCancellable *cancellable;
  /* unique name -> CallerInfo. Only the main thread changes it, under
   * verdicts_lock, so that keyhold_access_is_allowed () may read it from
   * GDBus's worker thread. */
  GHashTable *verdicts;
  GMutex verdicts_lock;
  /* unique name -> GQueue of the PendingCalls that wait for its
   * credentials, in arrival order. Borrowed: the lookup's callback owns
   * each queue. */
  GHashTable *lookups;
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
    {
      g_mutex_lock (&access->verdicts_lock);
      g_hash_table_remove (access->verdicts, name);
      g_mutex_unlock (&access->verdicts_lock);
    }
}

static void
caller_info_free (CallerInfo *info)
{
  g_free (info->identity);
  g_free (info);
}

KeyholdAccess *
keyhold_access_new (GDBusConnection *connection)
{
  KeyholdAccess *access = g_new0 (KeyholdAccess, 1);

  access->connection = g_object_ref (connection);
  access->cancellable = g_cancellable_new ();
  g_mutex_init (&access->verdicts_lock);
  access->verdicts
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) caller_info_free);
  access->lookups = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  access->name_owner_changed_id = g_dbus_connection_signal_subscribe (
      connection, "org.freedesktop.DBus", "org.freedesktop.DBus", "NameOwnerChanged",
      "/org/freedesktop/DBus", NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_name_owner_changed, access, NULL);
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
  g_hash_table_unref (access->lookups);
  g_mutex_clear (&access->verdicts_lock);
  g_object_unref (access->cancellable);
  g_object_unref (access->connection);
  g_free (access);
}

static void
refuse (GDBusMethodInvocation *invocation)
{
  g_dbus_method_invocation_return_error_literal (
      invocation, KEYHOLD_ERROR, KEYHOLD_ERROR_ACCESS_DENIED,
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

/* Whether the caller runs in a Flatpak sandbox, and as which app: only
 * flatpak puts .flatpak-info at the root of an app's mount namespace, and
 * on the host only root could create /.flatpak-info. FALSE when the file
 * exists but cannot be read: such a caller cannot be told apart. */
static gboolean
read_flatpak_app_id (guint32 pid, char **out_app_id)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/root/.flatpak-info", pid);
  g_autoptr (GKeyFile) info = g_key_file_new ();
  g_autofree char *app_id = NULL;
  char buffer[MAX_FLATPAK_INFO_BYTES];
  gssize length;
  int fd;

  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    {
      *out_app_id = NULL;
      return errno == ENOENT;
    }
  length = read (fd, buffer, sizeof buffer);
  close (fd);
  if (length <= 0 || length == sizeof buffer
      || !g_key_file_load_from_data (info, buffer, length, G_KEY_FILE_NONE, NULL))
    return FALSE;
  app_id = g_key_file_get_string (info, "Application", "name", NULL);
  if (app_id == NULL || *app_id == '\0')
    return FALSE;
  *out_app_id = g_steal_pointer (&app_id);
  return TRUE;
}

/* The executable's path. After a package update replaced the file the
 * kernel appends " (deleted)"; the application is still the same one. */
static char *
executable_path (guint32 pid)
{
  g_autofree char *link = g_strdup_printf ("/proc/%u/exe", pid);
  char *path = g_file_read_link (link, NULL);

  if (path != NULL && g_str_has_suffix (path, " (deleted)"))
    path[strlen (path) - strlen (" (deleted)")] = '\0';
  return path;
}

static char *
identity_from_credentials (GVariant *credentials)
{
  g_autoptr (GVariant) dict = g_variant_get_child_value (credentials, 0);
  g_autofree char *app_id = NULL;
  guint32 pid;

  if (!g_variant_lookup (dict, "ProcessID", "u", &pid) || pid == 0
      || !read_flatpak_app_id (pid, &app_id))
    return NULL;
  if (app_id != NULL)
    return g_strconcat ("flatpak:", app_id, NULL);
  return executable_path (pid);
}

static void
dispatch_pending (PendingCall *pending, CallerVerdict verdict)
{
  GDBusMethodInvocation *invocation = pending->invocation;
  const GDBusInterfaceVTable *vtable;

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

/* One lookup answers every call the sender made meanwhile, in the order
 * they came: a client's calls must reach the handlers in the order it sent
 * them (the outbox keeps its queues in that order). */
static void
on_credentials (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GQueue *waiting = user_data;
  PendingCall *pending = g_queue_peek_head (waiting);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) credentials = NULL;
  CallerVerdict verdict = CALLER_DENIED;
  GDBusMethodInvocation *invocation = pending->invocation;

  credentials = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (credentials != NULL)
    verdict = verdict_from_credentials (credentials);

  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) && credentials != NULL)
    {
      KeyholdAccess *access = pending->access;
      CallerInfo *info = g_new0 (CallerInfo, 1);

      info->verdict = verdict;
      if (verdict == CALLER_ALLOWED)
        info->identity = identity_from_credentials (credentials);
      g_mutex_lock (&access->verdicts_lock);
      if (g_hash_table_size (access->verdicts) >= MAX_CACHED_CALLERS)
        g_hash_table_remove_all (access->verdicts);
      g_hash_table_insert (access->verdicts,
                           g_strdup (g_dbus_method_invocation_get_sender (invocation)), info);
      g_mutex_unlock (&access->verdicts_lock);
    }
  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_hash_table_remove (pending->access->lookups,
                         g_dbus_method_invocation_get_sender (invocation));

  while ((pending = g_queue_pop_head (waiting)) != NULL)
    dispatch_pending (pending, verdict);
  g_queue_free (waiting);
}

gboolean
keyhold_access_check (KeyholdAccess *access,
                      GDBusInterfaceSkeleton *skeleton,
                      GDBusMethodInvocation *invocation)
{
  const char *sender = g_dbus_method_invocation_get_sender (invocation);
  CallerInfo *info = g_hash_table_lookup (access->verdicts, sender);
  PendingCall *pending;
  GQueue *waiting;

  switch (info != NULL ? info->verdict : CALLER_UNKNOWN)
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
  waiting = g_hash_table_lookup (access->lookups, sender);
  if (waiting != NULL)
    {
      g_queue_push_tail (waiting, pending);
      return FALSE;
    }
  waiting = g_queue_new ();
  g_queue_push_tail (waiting, pending);
  g_hash_table_insert (access->lookups, g_strdup (sender), waiting);
  g_dbus_connection_call (access->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                          "org.freedesktop.DBus", "GetConnectionCredentials",
                          g_variant_new ("(s)", sender), G_VARIANT_TYPE ("(a{sv})"),
                          G_DBUS_CALL_FLAGS_NONE, -1, access->cancellable, on_credentials, waiting);
  return FALSE;
}

gboolean
keyhold_access_is_allowed (KeyholdAccess *access, const char *sender)
{
  CallerInfo *info;
  gboolean allowed;

  g_mutex_lock (&access->verdicts_lock);
  info = g_hash_table_lookup (access->verdicts, sender);
  allowed = info != NULL && info->verdict == CALLER_ALLOWED;
  g_mutex_unlock (&access->verdicts_lock);
  return allowed;
}

const char *
keyhold_access_get_caller_id (KeyholdAccess *access, const char *sender)
{
  CallerInfo *info = g_hash_table_lookup (access->verdicts, sender);

  if (info == NULL || info->verdict != CALLER_ALLOWED)
    return NULL;
  return info->identity;
}
