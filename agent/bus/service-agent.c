/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "bus/keyhold-dbus-generated.h"
#include "bus/service-agent.h"

typedef struct
{
  KeyholdAccounts *accounts;
  KeyholdSignIns *sign_ins;
  KeyholdAccess *access;
} AgentService;

static gboolean
caller_allowed (KeyholdDBusAgent1 *skeleton, GDBusMethodInvocation *invocation,
                AgentService *service)
{
  return keyhold_access_check (service->access, G_DBUS_INTERFACE_SKELETON (skeleton), invocation);
}

static gboolean
handle_list_accounts (KeyholdDBusAgent1 *skeleton,
                      GDBusMethodInvocation *invocation,
                      AgentService *service)
{
  g_autoptr (GPtrArray) paths = NULL;

  if (!caller_allowed (skeleton, invocation, service))
    return G_DBUS_METHOD_INVOCATION_HANDLED;

  paths = keyhold_accounts_list_paths (service->accounts);
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

  path = keyhold_accounts_add (service->accounts, name, settings, &error);
  if (path == NULL)
    g_dbus_method_invocation_take_error (invocation, error);
  else
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
  if (!caller_allowed (skeleton, invocation, service))
    return G_DBUS_METHOD_INVOCATION_HANDLED;

  keyhold_accounts_remove_async (service->accounts, name, NULL, on_account_removed, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
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
    g_dbus_method_invocation_take_error (invocation, error);
  else
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
keyhold_service_agent_new (KeyholdAccounts *accounts, KeyholdSignIns *sign_ins,
                           KeyholdAccess *access)
{
  KeyholdDBusAgent1 *skeleton = keyhold_dbus_agent1_skeleton_new ();
  AgentService *service = g_new0 (AgentService, 1);

  service->accounts = accounts;
  service->sign_ins = sign_ins;
  service->access = access;
  g_object_set_data_full (G_OBJECT (skeleton), "keyhold-agent-service", service, g_free);

  keyhold_dbus_agent1_set_version (skeleton, 1);
  g_signal_connect (skeleton, "handle-list-accounts", G_CALLBACK (handle_list_accounts), service);
  g_signal_connect (skeleton, "handle-add-account", G_CALLBACK (handle_add_account), service);
  g_signal_connect (skeleton, "handle-remove-account", G_CALLBACK (handle_remove_account),
                    service);
  g_signal_connect (skeleton, "handle-start-sign-in", G_CALLBACK (handle_start_sign_in), service);
  g_signal_connect (skeleton, "handle-cancel-sign-in", G_CALLBACK (handle_cancel_sign_in),
                    service);
  return G_DBUS_INTERFACE_SKELETON (skeleton);
}
