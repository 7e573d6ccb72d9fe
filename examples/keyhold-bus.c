/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <keyhold/keyhold.h>

#include "keyhold-cli.h"

#define AGENT_BUS_NAME "org.keyhold.Agent"
#define AGENT_OBJECT_PATH "/org/keyhold/Agent"

struct _KeyholdCliAccountListWatch
{
  KeyholdDBusAgent1 *agent;
  guint subscription_id;
  gulong name_owner_handler_id;
  KeyholdCliAccountListChangedFunc on_changed;
  gpointer user_data;
};

KeyholdDBusAgent1 *
keyhold_cli_bus_get_agent (GError **error)
{
  g_autoptr (GDBusConnection) connection = NULL;
  g_autoptr (KeyholdDBusAgent1) agent = NULL;
  g_autofree char *owner = NULL;

  connection = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, error);
  if (connection == NULL)
    {
      g_prefix_error (error, "cannot connect to the session bus: ");
      return NULL;
    }

  /* Creating the proxy asks the bus to activate the agent if a D-Bus service
   * file provides it, so the proxy ends up without an owner only when the
   * agent neither runs nor can be started. */
  agent = keyhold_dbus_agent1_proxy_new_sync (connection, G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES,
                                              AGENT_BUS_NAME, AGENT_OBJECT_PATH, NULL, error);
  if (agent == NULL)
    {
      if (error != NULL)
        g_dbus_error_strip_remote_error (*error);
      g_prefix_error (error, "cannot start the keyhold agent: ");
      return NULL;
    }

  owner = g_dbus_proxy_get_name_owner (G_DBUS_PROXY (agent));
  if (owner == NULL)
    {
      g_set_error_literal (error, KEYHOLD_CLI_ERROR, KEYHOLD_CLI_ERROR_AGENT_NOT_RUNNING,
                           "the keyhold agent is not running");
      return NULL;
    }

  return g_steal_pointer (&agent);
}

gboolean
keyhold_cli_bus_agent_is_running (KeyholdDBusAgent1 *agent)
{
  g_autofree char *owner = g_dbus_proxy_get_name_owner (G_DBUS_PROXY (agent));

  return owner != NULL;
}

static KeyholdDBusAccount1 *
get_account (KeyholdDBusAgent1 *agent, const char *object_path, GError **error)
{
  GDBusProxy *agent_proxy = G_DBUS_PROXY (agent);
  g_autoptr (KeyholdDBusAccount1) account = NULL;
  g_auto (GStrv) property_names = NULL;

  account = keyhold_dbus_account1_proxy_new_sync (
      g_dbus_proxy_get_connection (agent_proxy), G_DBUS_PROXY_FLAGS_NONE,
      g_dbus_proxy_get_name (agent_proxy), object_path, NULL, error);
  if (account == NULL)
    return NULL;

  /* A proxy is created even for an object that is gone (it was removed
   * after ListAccounts answered); it then has no properties. */
  property_names = g_dbus_proxy_get_cached_property_names (G_DBUS_PROXY (account));
  if (property_names == NULL || property_names[0] == NULL)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NO_SUCH_ACCOUNT, "no account at %s",
                   object_path);
      return NULL;
    }

  return g_steal_pointer (&account);
}

/* Returns: (element-type KeyholdDBusAccount1): the accounts in name order. */
GPtrArray *
keyhold_cli_bus_list_accounts (KeyholdDBusAgent1 *agent, GError **error)
{
  g_auto (GStrv) paths = NULL;
  g_autoptr (GPtrArray) accounts = g_ptr_array_new_with_free_func (g_object_unref);

  if (!keyhold_dbus_agent1_call_list_accounts_sync (agent, &paths, NULL, error))
    return NULL;

  for (guint i = 0; paths[i] != NULL; i++)
    {
      g_autoptr (GError) local_error = NULL;
      KeyholdDBusAccount1 *account = get_account (agent, paths[i], &local_error);

      if (g_error_matches (local_error, KEYHOLD_ERROR, KEYHOLD_ERROR_NO_SUCH_ACCOUNT))
        continue;
      if (account == NULL)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return NULL;
        }
      g_ptr_array_add (accounts, account);
    }

  return g_steal_pointer (&accounts);
}

/* Looks the name up rather than computing the object path, so the agent's
 * naming rule lives only in the agent. */
KeyholdDBusAccount1 *
keyhold_cli_bus_find_account (KeyholdDBusAgent1 *agent, const char *name, GError **error)
{
  g_autoptr (GPtrArray) accounts = keyhold_cli_bus_list_accounts (agent, error);

  if (accounts == NULL)
    return NULL;

  for (guint i = 0; i < accounts->len; i++)
    {
      KeyholdDBusAccount1 *account = g_ptr_array_index (accounts, i);

      if (g_strcmp0 (keyhold_dbus_account1_get_name (account), name) == 0)
        return g_object_ref (account);
    }

  g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NO_SUCH_ACCOUNT, "no account named \"%s\"",
               name);
  return NULL;
}

KeyholdDBusAccount1 *
keyhold_cli_bus_lookup_account (const char *name, GError **error)
{
  g_autoptr (KeyholdDBusAgent1) agent = keyhold_cli_bus_get_agent (error);

  if (agent == NULL)
    return NULL;
  return keyhold_cli_bus_find_account (agent, name, error);
}

static void
on_object_manager_signal (GDBusConnection *connection, const char *sender_name,
                          const char *object_path, const char *interface_name,
                          const char *signal_name, GVariant *parameters, gpointer user_data)
{
  KeyholdCliAccountListWatch *watch = user_data;

  if (g_str_equal (signal_name, "InterfacesAdded")
      || g_str_equal (signal_name, "InterfacesRemoved"))
    watch->on_changed (watch->user_data);
}

static void
on_agent_name_owner_changed (GObject *agent, GParamSpec *pspec, gpointer user_data)
{
  KeyholdCliAccountListWatch *watch = user_data;

  watch->on_changed (watch->user_data);
}

/* Calls @on_changed when accounts may have appeared or disappeared: the
 * agent announced it, or the agent stopped or started. */
KeyholdCliAccountListWatch *
keyhold_cli_bus_watch_account_list (KeyholdDBusAgent1 *agent,
                                    KeyholdCliAccountListChangedFunc on_changed, gpointer user_data)
{
  KeyholdCliAccountListWatch *watch = g_new0 (KeyholdCliAccountListWatch, 1);

  watch->agent = g_object_ref (agent);
  watch->on_changed = on_changed;
  watch->user_data = user_data;
  watch->subscription_id = g_dbus_connection_signal_subscribe (
      g_dbus_proxy_get_connection (G_DBUS_PROXY (agent)), AGENT_BUS_NAME,
      "org.freedesktop.DBus.ObjectManager", NULL, AGENT_OBJECT_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
      on_object_manager_signal, watch, NULL);
  watch->name_owner_handler_id = g_signal_connect (agent, "notify::g-name-owner",
                                                   G_CALLBACK (on_agent_name_owner_changed), watch);

  return watch;
}

void
keyhold_cli_bus_account_list_watch_free (KeyholdCliAccountListWatch *watch)
{
  if (watch == NULL)
    return;

  g_dbus_connection_signal_unsubscribe (g_dbus_proxy_get_connection (G_DBUS_PROXY (watch->agent)),
                                        watch->subscription_id);
  g_signal_handler_disconnect (watch->agent, watch->name_owner_handler_id);
  g_object_unref (watch->agent);
  g_free (watch);
}

/* The bus answers this way when the agent is neither running nor
 * activatable, or when it went away between two calls. */
gboolean
keyhold_cli_bus_error_is_agent_missing (const GError *error)
{
  return g_error_matches (error, KEYHOLD_CLI_ERROR, KEYHOLD_CLI_ERROR_AGENT_NOT_RUNNING)
         || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN)
         || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER);
}
