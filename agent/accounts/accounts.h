/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "accounts/account.h"
#include "context.h"

G_BEGIN_DECLS

/* The set of configured accounts: the configuration file and one
 * KeyholdAccount per entry. Whoever shows them (the bus layer) listens for
 * accounts coming and going. */
typedef struct _KeyholdAccounts KeyholdAccounts;

typedef struct
{
  /* Before the account restores its state, so nothing is missed. */
  void (*added) (KeyholdAccount *account, gpointer user_data);
  /* Before the account is dropped. */
  void (*removed) (KeyholdAccount *account, gpointer user_data);
} KeyholdAccountsListener;

/* Fails only when the configuration file exists and cannot be used; the
 * agent then refuses to start rather than silently forget accounts. */
KeyholdAccounts *keyhold_accounts_new (KeyholdContext *context,
                                       const char *config_path,
                                       GError **error);
void keyhold_accounts_free (KeyholdAccounts *accounts);

/* Installs the one listener and tells it of every account already there,
 * then restores the accounts' state. @listener and @user_data must outlive
 * @accounts. */
void keyhold_accounts_start (KeyholdAccounts *accounts,
                             const KeyholdAccountsListener *listener,
                             gpointer user_data);

/* NULL with KEYHOLD_ERROR_NO_SUCH_ACCOUNT if there is none of that name. */
KeyholdAccount *keyhold_accounts_lookup (KeyholdAccounts *accounts,
                                         const char *name,
                                         GError **error);
/* Names of all accounts, in name order. */
GPtrArray *keyhold_accounts_list_names (KeyholdAccounts *accounts);

/* Whether any account is signed in (signed-in, refreshing or offline): its
 * tokens are refreshed ahead of time and must stay in memory. */
gboolean keyhold_accounts_any_signed_in (KeyholdAccounts *accounts);

/* Validates and saves a new account from @settings (a{sv}: issuer,
 * client_id, scopes, api_origins), and announces it. */
KeyholdAccount *keyhold_accounts_add (KeyholdAccounts *accounts,
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
