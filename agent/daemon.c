/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <gio/gio.h>

#include "keyhold-contract.h"

#include "accounts/accounts.h"
#include "accounts/sign-in.h"
#include "bus/access.h"
#include "bus/idle-exit.h"
#include "bus/service-account.h"
#include "bus/service-agent.h"
#include "bus/service-outbox.h"
#include "bus/token-fast-path.h"
#include "context.h"
#include "daemon.h"
#include "outbox/outbox.h"
#include "storage/account-config.h"
#include "system/system-events.h"
/* Enough main-loop turns for cancelled operations to report back. */
#define SHUTDOWN_DRAIN_ITERATIONS 1000

struct _KeyholdDaemon
{
  GObject parent_instance;

  gboolean replace;
  guint owner_id;
  gboolean name_acquired;
  gboolean stopped;

  GDBusConnection *connection;
  KeyholdContext context;
  KeyholdAccess *access;
  KeyholdTokenFastPath *fast_path;
  GDBusObjectManagerServer *object_manager;
  KeyholdAccounts *accounts;
  KeyholdSignIns *sign_ins;
  GDBusInterfaceSkeleton *agent_service;
  KeyholdOutbox *outbox;
  GDBusInterfaceSkeleton *outbox_service;
  GCancellable *cancellable;
  KeyholdSystemEvents *system_events;
  guint idle_timeout_s;
  KeyholdIdleExit *idle_exit;
};

enum
{
  SIGNAL_STOPPED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (KeyholdDaemon, keyhold_daemon, G_TYPE_OBJECT)

static void
stop (KeyholdDaemon *self, int exit_status)
{
  if (self->stopped)
    return;
  self->stopped = TRUE;
  g_signal_emit (self, signals[SIGNAL_STOPPED], 0, exit_status);
}

/* ---- the log: modules return or report failures, the daemon writes them -- */

static void
log_account_failure (KeyholdAccount *account,
                     const char *what,
                     const GError *error,
                     gpointer user_data)
{
  const char *name = keyhold_account_get_config (account)->name;

  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "KEYHOLD_ACCOUNT", name, "MESSAGE",
                    "%s: %s: %s", name, what, error->message);
}

static void
log_provider_store_failure (const char *issuer, const GError *error, gpointer user_data)
{
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "KEYHOLD_ISSUER", issuer, "MESSAGE",
                    "Could not cache provider data for %s: %s", issuer, error->message);
}

/* ---- wiring the domain to the bus ---------------------------------------- */

static void
on_account_added (KeyholdAccount *account, gpointer user_data)
{
  KeyholdDaemon *self = user_data;
  g_autoptr (GDBusObjectSkeleton) object
      = keyhold_service_account_new (account, self->access, self->fast_path);

  g_signal_connect (account, "failure", G_CALLBACK (log_account_failure), NULL);
  g_dbus_object_manager_server_export (self->object_manager, object);
  /* NULL for the accounts there at start, before the outbox exists. */
  if (self->outbox != NULL)
    keyhold_outbox_account_added (self->outbox, account);
}

static void
on_account_removed (KeyholdAccount *account, gpointer user_data)
{
  KeyholdDaemon *self = user_data;
  g_autofree char *path
      = keyhold_contract_account_path (keyhold_account_get_config (account)->name);

  g_signal_handlers_disconnect_by_func (account, log_account_failure, NULL);
  g_dbus_object_manager_server_unexport (self->object_manager, path);
}

static const KeyholdAccountsListener accounts_listener = {
  .added = on_account_added,
  .removed = on_account_removed,
};

static void
on_sign_in_progress (const char *handle, const char *caller, GVariant *info, gpointer user_data)
{
  KeyholdDaemon *self = user_data;

  if (self->agent_service != NULL)
    keyhold_service_agent_sign_in_progress (self->agent_service, handle, caller, info);
}

static void
on_sign_in_finished (const char *handle,
                     const char *caller,
                     KeyholdAccount *account,
                     const GError *error,
                     gpointer user_data)
{
  KeyholdDaemon *self = user_data;
  const char *name = keyhold_account_get_config (account)->name;

  if (error != NULL)
    g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "KEYHOLD_ACCOUNT", name, "MESSAGE",
                      "Sign-in to %s failed: %s", name, error->message);
  if (self->agent_service != NULL)
    keyhold_service_agent_sign_in_finished (self->agent_service, handle, caller, error);
}

static const KeyholdSignInsListener sign_ins_listener = {
  .progress = on_sign_in_progress,
  .finished = on_sign_in_finished,
};

static void
open_store (KeyholdDaemon *self)
{
  g_autofree char *path = keyhold_store_default_path ();

  /* Without the store the agent still serves tokens (they never touch
   * disk); it reports the problem instead of discarding the file. */
  self->context.store = keyhold_store_open (path, &self->context.storage_error);
  if (self->context.store == NULL)
    g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "MESSAGE",
                      "The agent's database cannot be used: %s",
                      self->context.storage_error->message);
}

static void
on_storage_error (KeyholdOutbox *outbox, GParamSpec *pspec, gpointer user_data)
{
  const char *message = keyhold_outbox_get_storage_error (outbox);

  if (*message != '\0')
    g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "MESSAGE",
                      "The outbox cannot use its storage: %s", message);
}

static gboolean
export_objects (KeyholdDaemon *self, GDBusConnection *connection, GError **error)
{
  g_autofree char *config_path = keyhold_config_default_path ();

  self->access = keyhold_access_new (connection);
  self->fast_path = keyhold_token_fast_path_new (connection, self->access);
  self->object_manager = g_dbus_object_manager_server_new (KEYHOLD_AGENT_PATH);
  self->accounts = keyhold_accounts_new (&self->context, config_path, error);
  if (self->accounts == NULL)
    return FALSE;
  keyhold_accounts_start (self->accounts, &accounts_listener, self);
  self->sign_ins = keyhold_sign_ins_new (&self->context, &sign_ins_listener, self);
  self->agent_service = keyhold_service_agent_new (self->accounts, self->sign_ins, self->access);
  self->outbox = keyhold_outbox_new (&self->context, self->accounts);
  self->outbox_service = keyhold_service_outbox_new (self->outbox, self->access);
  g_signal_connect (self->outbox, "notify::storage-error", G_CALLBACK (on_storage_error), NULL);
  /* The outbox's view covers the database as well: Agent1.StorageError. */
  g_object_bind_property (self->outbox, "storage-error", self->agent_service, "storage-error",
                          G_BINDING_SYNC_CREATE);

  if (!g_dbus_interface_skeleton_export (self->agent_service, connection, KEYHOLD_AGENT_PATH, error)
      || !g_dbus_interface_skeleton_export (self->outbox_service, connection, KEYHOLD_AGENT_PATH,
                                            error))
    return FALSE;
  g_dbus_object_manager_server_set_connection (self->object_manager, connection);
  return TRUE;
}

static void
on_bus_acquired (GDBusConnection *connection, const char *name, gpointer user_data)
{
  KeyholdDaemon *self = user_data;
  g_autoptr (GError) error = NULL;

  self->connection = g_object_ref (connection);
  if (!export_objects (self, connection, &error))
    {
      g_printerr ("keyhold-agent: cannot start: %s\n", error->message);
      stop (self, 1);
    }
}

static void
on_system_event (KeyholdSystemEvent event, gpointer user_data)
{
  KeyholdDaemon *self = user_data;

  if (self->accounts == NULL)
    return;
  if (event == KEYHOLD_SYSTEM_EVENT_OFFLINE)
    keyhold_accounts_network_lost (self->accounts);
  else
    keyhold_accounts_recheck (self->accounts);
  if (self->outbox != NULL && event != KEYHOLD_SYSTEM_EVENT_OFFLINE)
    keyhold_outbox_recheck (self->outbox);
}

static void
on_system_bus (GObject *source, GAsyncResult *result, gpointer user_data)
{
  KeyholdDaemon *self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusConnection) system_bus = g_bus_get_finish (result, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  /* Without a system bus (a container, say) suspends go unnoticed, but the
   * wall-clock checks on every token request still hold. */
  if (system_bus == NULL)
    g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "MESSAGE",
                      "No system bus, so suspend and resume are not watched: %s", error->message);
  self->system_events = keyhold_system_events_new (system_bus, on_system_event, self);
}

static void
on_idle (gpointer user_data)
{
  KeyholdDaemon *self = user_data;

  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_INFO, "MESSAGE", "Idle for %u s; exiting",
                    self->idle_timeout_s);
  stop (self, 0);
}

static void
on_name_acquired (GDBusConnection *connection, const char *name, gpointer user_data)
{
  KeyholdDaemon *self = user_data;

  self->name_acquired = TRUE;
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_INFO, "MESSAGE", "keyhold-agent %s is serving %s",
                    PACKAGE_VERSION, KEYHOLD_AGENT_BUS_NAME);
  if (self->idle_timeout_s > 0 && self->idle_exit == NULL)
    {
      self->idle_exit = keyhold_idle_exit_new (connection, self->idle_timeout_s, on_idle, self);
      keyhold_idle_exit_add_busy_check (self->idle_exit,
                                        (KeyholdIdleExitBusyFunc) keyhold_accounts_any_signed_in,
                                        self->accounts);
      keyhold_idle_exit_add_busy_check (
          self->idle_exit, (KeyholdIdleExitBusyFunc) keyhold_outbox_has_unfinished_items,
          self->outbox);
    }
}

static void
on_name_lost (GDBusConnection *connection, const char *name, gpointer user_data)
{
  KeyholdDaemon *self = user_data;

  if (connection == NULL)
    {
      g_printerr ("keyhold-agent: cannot connect to the session bus\n");
      stop (self, 1);
    }
  else if (!self->name_acquired)
    {
      g_printerr ("keyhold-agent: another agent is already running and owns %s "
                  "(use --replace to take over)\n",
                  KEYHOLD_AGENT_BUS_NAME);
      stop (self, 1);
    }
  else
    {
      g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "MESSAGE",
                        "Another agent took over %s; exiting", KEYHOLD_AGENT_BUS_NAME);
      stop (self, 0);
    }
}

KeyholdDaemon *
keyhold_daemon_new (gboolean replace)
{
  KeyholdDaemon *self = g_object_new (KEYHOLD_TYPE_DAEMON, NULL);

  self->replace = replace;
  return self;
}

void
keyhold_daemon_set_idle_timeout (KeyholdDaemon *self, guint seconds)
{
  self->idle_timeout_s = seconds;
}

void
keyhold_daemon_start (KeyholdDaemon *self)
{
  GBusNameOwnerFlags flags
      = G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT | G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE;

  if (self->replace)
    flags |= G_BUS_NAME_OWNER_FLAGS_REPLACE;

  self->context.http = keyhold_http_new ();
  open_store (self);
  self->context.providers = keyhold_provider_cache_new (self->context.http, self->context.store,
                                                        log_provider_store_failure, NULL);
  self->cancellable = g_cancellable_new ();
  g_bus_get (G_BUS_TYPE_SYSTEM, self->cancellable, on_system_bus, self);
  self->owner_id = g_bus_own_name (G_BUS_TYPE_SESSION, KEYHOLD_AGENT_BUS_NAME, flags,
                                   on_bus_acquired, on_name_acquired, on_name_lost, self, NULL);
}

static void
drain_main_context (void)
{
  for (guint i = 0; i < SHUTDOWN_DRAIN_ITERATIONS; i++)
    if (!g_main_context_iteration (NULL, FALSE))
      break;
}

void
keyhold_daemon_shutdown (KeyholdDaemon *self)
{
  g_clear_pointer (&self->idle_exit, keyhold_idle_exit_free);
  g_clear_handle_id (&self->owner_id, g_bus_unown_name);
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  g_clear_pointer (&self->system_events, keyhold_system_events_free);
  if (self->outbox_service != NULL)
    g_dbus_interface_skeleton_unexport (self->outbox_service);
  g_clear_object (&self->outbox_service);
  if (self->agent_service != NULL)
    g_dbus_interface_skeleton_unexport (self->agent_service);
  g_clear_object (&self->agent_service);
  g_clear_object (&self->outbox);
  g_clear_pointer (&self->sign_ins, keyhold_sign_ins_free);
  g_clear_pointer (&self->accounts, keyhold_accounts_free);
  g_clear_object (&self->object_manager);
  /* Cancelled flows and refreshes report back through the main loop and
   * still use the context, so it goes only after they have. */
  drain_main_context ();
  g_clear_pointer (&self->context.http, keyhold_http_free);
  drain_main_context ();
  g_clear_pointer (&self->fast_path, keyhold_token_fast_path_free);
  g_clear_pointer (&self->access, keyhold_access_free);
  g_clear_pointer (&self->context.providers, keyhold_provider_cache_free);
  g_clear_pointer (&self->context.store, keyhold_store_close);
  g_clear_error (&self->context.storage_error);
  if (self->connection != NULL)
    g_dbus_connection_flush_sync (self->connection, NULL, NULL);
  g_clear_object (&self->connection);
  g_clear_object (&self->cancellable);
}

static void
keyhold_daemon_init (KeyholdDaemon *self)
{
}

static void
keyhold_daemon_finalize (GObject *object)
{
  keyhold_daemon_shutdown (KEYHOLD_DAEMON (object));
  G_OBJECT_CLASS (keyhold_daemon_parent_class)->finalize (object);
}

static void
keyhold_daemon_class_init (KeyholdDaemonClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = keyhold_daemon_finalize;
  signals[SIGNAL_STOPPED] = g_signal_new ("stopped", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT);
}
