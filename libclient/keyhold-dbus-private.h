/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

/* The bus name, paths and interfaces, shared with the agent. */
#include "keyhold-contract.h"

G_BEGIN_DECLS

/* A token request may wait for a refresh, which the agent itself bounds;
 * this only keeps a wedged agent from hanging the caller for ever. */
#define KEYHOLD_CALL_TIMEOUT_MS (120 * 1000)

/* Calls @method on the agent by its well-known name, so that the bus starts
 * the agent if it is not running. keyhold_dbus_call_finish () returns the
 * reply, of @reply_type, with errors translated. */
void keyhold_dbus_call (GDBusConnection *connection,
                        const char *object_path,
                        const char *interface_name,
                        const char *method,
                        GVariant *parameters,
                        const char *reply_type,
                        GCancellable *cancellable,
                        GAsyncReadyCallback callback,
                        gpointer user_data);
GVariant *keyhold_dbus_call_finish (GDBusConnection *connection,
                                    GAsyncResult *result,
                                    GError **error);

/* keyhold_dbus_call () for the common case: @task (taken) returns the reply
 * GVariant, or the error, and uses its own cancellable. */
void keyhold_dbus_call_for_task (GDBusConnection *connection,
                                 const char *object_path,
                                 const char *interface_name,
                                 const char *method,
                                 GVariant *parameters,
                                 const char *reply_type,
                                 GTask *task);

/* Like keyhold_dbus_call (), to @destination (the well-known name, which
 * may start the agent, or one agent process's unique name), and also tells
 * (in @out_sender, nullable) which process answered: the agent's signals
 * are trusted only from it. */
void keyhold_dbus_call_with_sender (GDBusConnection *connection,
                                    const char *destination,
                                    const char *object_path,
                                    const char *interface_name,
                                    const char *method,
                                    GVariant *parameters,
                                    GCancellable *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer user_data);
GVariant *keyhold_dbus_call_with_sender_finish (GAsyncResult *result,
                                                const char *reply_type,
                                                char **out_sender,
                                                GError **error);

/* D-Bus errors as the library reports them: org.keyhold.Error.* names as
 * KEYHOLD_ERROR codes with a clean message, an agent that is not there as
 * KEYHOLD_ERROR_AGENT_UNAVAILABLE. Takes @error, returns the result. */
GError *keyhold_dbus_translate_error (GError *error);

G_END_DECLS
