/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "keyhold/keyhold-client.h"

G_BEGIN_DECLS

/* What keyhold-client-outbox.c and keyhold-client-sign-in.c need of the
 * client. */
GDBusConnection *keyhold_client_get_connection (KeyholdClient *self);
void keyhold_client_emit_sign_in_progress (KeyholdClient *self, const char *name, GVariant *info);

/* Reads the properties of the account @name afresh, updating its object,
 * which is returned. */
void keyhold_client_read_account (KeyholdClient *self, const char *name, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data);
KeyholdAccount *keyhold_client_read_account_finish (KeyholdClient *self, GAsyncResult *result,
                                                    GError **error);

/* Checks the common arguments of a _finish function and returns the
 * task's pointer. */
gpointer keyhold_client_propagate (KeyholdClient *self, GAsyncResult *result, gpointer source_tag,
                                   GError **error);

G_END_DECLS
