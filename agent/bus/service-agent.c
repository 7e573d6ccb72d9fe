/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold-contract.h"

#include "bus/keyhold-dbus-generated.h"
#include "bus/service-agent.h"

#define SERVICE_KEY "keyhold-agent-service"

typedef struct
{
  KeyholdAccounts *accounts;
  KeyholdSignIns *sign_ins;
  KeyholdAccess *access;
  /* handle -> name watch on the caller that started the sign-in */
  GHashTable *caller_watches;
} AgentService;

static void
agent_service_free (gpointer data)
{
  AgentService *service = data;

  g_hash_table_unref (service->caller_watches);
  g_free (service);
}

static void
unwatch_name (gpointer watch_id)
{
  g_bus_unwatch_name (GPOINTER_TO_UINT (watch_id));
}

static gboolean
caller_allowed (KeyholdDBusAgent1 *skeleton,
                GDBusMethodInvocation *invocation,
                AgentService *service)
{
  return keyhold_access_check (service->access, G_DBUS_INTERFACE_SKELETON (skeleton), invocation);
}

static gboolean
handle_list_accounts (KeyholdDBusAgent1 *skeleton,
                      GDBusMethodInvocation *invocation,
                      AgentService *service)
{
  g_autoptr (GPtrArray) names = NULL;
  g_autoptr (GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);

  if (!caller_allowed (skeleton, invocation, service))
    return G_DBUS_METHOD_INVOCATION_HANDLED;

  names = keyhold_accounts_list_names (service->accounts);
  for (guint i = 0; i < names->len; i++)
    g_ptr_array_add (paths, keyhold_contract_account_path (names->pdata[i]));
  g_ptr_array_add (paths, NULL);
  keyhold_dbus_agent1_complete_list_accounts (skeleton, invocation,
                                              (const char *const *) paths->pdata);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_add_account (KeyholdDBusAgent1 *skeleton,
                    GDBusMethodInvocation *invocation,
                    const char *name,
                    GVariant *settings,
                    AgentService *service)
{
  g_autofree char *path = NULL;
  GError *error = NULL;

  if (!caller_allowed (skeleton, invocation, service))
    return G_DBUS_METHOD_INVOCATION_HANDLED;

  if (keyhold_accounts_add (service->accounts, name, settings, &error) == NULL)
    {
      g_dbus_method_invocation_take_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  path = keyhold_contract_account_path (name);
  keyhold_dbus_agent1_complete_add_account (skeleton, invocation, path);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
on_account_removed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GDBusMethodInvocation *invocation = user_data;
  GError *error = NULL;

  if (!keyhold_accounts_remove_finish (NULL, result, &error))
    g_dbus_method_invocation_take_error (invocation, error);
  else
    g_dbus_method_invocation_return_value (invocation, NULL);
}

static gboolean
handle_remove_account (KeyholdDBusAgent1 *skeleton,
                       GDBusMethodInvocation *invocation,
                       const char *name,
                       AgentService *service)
{
  KeyholdAccount *account;

  if (!caller_allowed (skeleton, invocation, service))
    return G_DBUS_METHOD_INVOCATION_HANDLED;

  /* The removal refuses their tokens anyway; the flows need not run on. */
  account = keyhold_accounts_lookup (service->accounts, name, NULL);
  if (account != NULL)
    keyhold_sign_ins_cancel_account (service->sign_ins, account);
  keyhold_accounts_remove_async (service->accounts, name, NULL, on_account_removed, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

typedef struct
{
  AgentService *service;
  char *handle;
} CallerWatch;

static void
caller_watch_free (gpointer data)
{
  CallerWatch *watch = data;

  g_free (watch->handle);
  g_free (watch);
}

static void
on_caller_vanished (GDBusConnection *connection, const char *name, gpointer user_data)
{
  CallerWatch *watch = user_data;

  /* Nobody is left to show a code to or to report to. */
  keyhold_sign_ins_cancel (watch->service->sign_ins, watch->handle, name, NULL);
}

static void
watch_caller (AgentService *service, GDBusMethodInvocation *invocation, const char *handle)
{
  CallerWatch *watch = g_new0 (CallerWatch, 1);
  guint watch_id;

  watch->service = service;
  watch->handle = g_strdup (handle);
  watch_id = g_bus_watch_name_on_connection (g_dbus_method_invocation_get_connection (invocation),
                                             g_dbus_method_invocation_get_sender (invocation),
                                             G_BUS_NAME_WATCHER_FLAGS_NONE, NULL,
                                             on_caller_vanished, watch, caller_watch_free);
  g_hash_table_insert (service->caller_watches, g_strdup (handle), GUINT_TO_POINTER (watch_id));
}

static gboolean
handle_start_sign_in (KeyholdDBusAgent1 *skeleton,
                      GDBusMethodInvocation *invocation,
                      const char *name,
                      const char *method,
                      GVariant *options,
                      AgentService *service)
{
  KeyholdAccount *account;
  g_autofree char *handle = NULL;
  GError *error = NULL;

  if (!caller_allowed (skeleton, invocation, service))
    return G_DBUS_METHOD_INVOCATION_HANDLED;

  account = keyhold_accounts_lookup (service->accounts, name, &error);
  if (account != NULL)
    handle = keyhold_sign_ins_start (service->sign_ins, account, method,
                                     g_dbus_method_invocation_get_sender (invocation), &error);
  if (handle == NULL)
    {
      g_dbus_method_invocation_take_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  watch_caller (service, invocation, handle);
  keyhold_dbus_agent1_complete_start_sign_in (skeleton, invocation, handle);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_cancel_sign_in (KeyholdDBusAgent1 *skeleton,
                       GDBusMethodInvocation *invocation,
                       const char *handle,
                       AgentService *service)
{
  GError *error = NULL;

  if (!caller_allowed (skeleton, invocation, service))
    return G_DBUS_METHOD_INVOCATION_HANDLED;

  if (!keyhold_sign_ins_cancel (service->sign_ins, handle,
                                g_dbus_method_invocation_get_sender (invocation), &error))
    g_dbus_method_invocation_take_error (invocation, error);
  else
    keyhold_dbus_agent1_complete_cancel_sign_in (skeleton, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

GDBusInterfaceSkeleton *
keyhold_service_agent_new (KeyholdAccounts *accounts,
                           KeyholdSignIns *sign_ins,
                           KeyholdAccess *access)
{
  KeyholdDBusAgent1 *skeleton = keyhold_dbus_agent1_skeleton_new ();
  AgentService *service = g_new0 (AgentService, 1);

  service->accounts = accounts;
  service->sign_ins = sign_ins;
  service->access = access;
  service->caller_watches = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, unwatch_name);
  g_object_set_data_full (G_OBJECT (skeleton), SERVICE_KEY, service, agent_service_free);

  keyhold_dbus_agent1_set_version (skeleton, 1);
  g_signal_connect (skeleton, "handle-list-accounts", G_CALLBACK (handle_list_accounts), service);
  g_signal_connect (skeleton, "handle-add-account", G_CALLBACK (handle_add_account), service);
  g_signal_connect (skeleton, "handle-remove-account", G_CALLBACK (handle_remove_account), service);
  g_signal_connect (skeleton, "handle-start-sign-in", G_CALLBACK (handle_start_sign_in), service);
  g_signal_connect (skeleton, "handle-cancel-sign-in", G_CALLBACK (handle_cancel_sign_in), service);
  return G_DBUS_INTERFACE_SKELETON (skeleton);
}

static void
emit_to_caller (GDBusInterfaceSkeleton *agent,
                const char *caller,
                const char *signal_name,
                GVariant *parameters)
{
  GDBusConnection *connection = g_dbus_interface_skeleton_get_connection (agent);

  /* Fails only when the connection is closed: there is no one to tell. */
  if (connection != NULL)
    g_dbus_connection_emit_signal (connection, caller, KEYHOLD_AGENT_PATH, KEYHOLD_AGENT1_INTERFACE,
                                   signal_name, parameters, NULL);
}

void
keyhold_service_agent_sign_in_progress (GDBusInterfaceSkeleton *agent,
                                        const char *handle,
                                        const char *caller,
                                        GVariant *info)
{
  emit_to_caller (agent, caller, "SignInProgress", g_variant_new ("(s@a{sv})", handle, info));
}

void
keyhold_service_agent_sign_in_finished (GDBusInterfaceSkeleton *agent,
                                        const char *handle,
                                        const char *caller,
                                        const GError *error)
{
  AgentService *service = g_object_get_data (G_OBJECT (agent), SERVICE_KEY);
  g_autofree char *error_name = error != NULL ? g_dbus_error_encode_gerror (error) : NULL;

  g_hash_table_remove (service->caller_watches, handle);
  emit_to_caller (agent, caller, "SignInFinished",
                  g_variant_new ("(sss)", handle, error_name != NULL ? error_name : "",
                                 error != NULL ? error->message : ""));
}
