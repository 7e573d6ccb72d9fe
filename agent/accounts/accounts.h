/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus/access.h"
#include "accounts/account.h"
#include "context.h"

G_BEGIN_DECLS

/* The set of configured accounts: the configuration file, one
 * KeyholdAccount per entry, and their objects on the bus. */
typedef struct _KeyholdAccounts KeyholdAccounts;

/* Fails only when the configuration file exists and cannot be used; the
 * agent then refuses to start rather than silently forget accounts. */
KeyholdAccounts *keyhold_accounts_new (KeyholdContext *context,
                                       GDBusObjectManagerServer *object_manager,
                                       KeyholdAccess *access,
                                       const char *config_path,
                                       GError **error);
void keyhold_accounts_free (KeyholdAccounts *accounts);

/* NULL with KEYHOLD_ERROR_NO_SUCH_ACCOUNT if there is none of that name. */
KeyholdAccount *keyhold_accounts_lookup (KeyholdAccounts *accounts, const char *name,
                                         GError **error);
/* Object paths of all accounts, in name order. */
GPtrArray *keyhold_accounts_list_paths (KeyholdAccounts *accounts);

/* Validates, saves and exports a new account; returns its object path. */
char *keyhold_accounts_add (KeyholdAccounts *accounts,
                            const char *name,
                            GVariant *settings,
                            GError **error);

/* Passes a system event on to every account. */
void keyhold_accounts_recheck (KeyholdAccounts *accounts);
void keyhold_accounts_network_lost (KeyholdAccounts *accounts);

/* Signs the account out (revoking at the provider), then removes it. */
void keyhold_accounts_remove_async (KeyholdAccounts *accounts,
                                    const char *name,
                                    GCancellable *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer user_data);
gboolean keyhold_accounts_remove_finish (KeyholdAccounts *accounts,
                                         GAsyncResult *result,
                                         GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdAccounts, keyhold_accounts_free)

G_END_DECLS
