/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(KEYHOLD_INSIDE) && !defined(KEYHOLD_COMPILATION)
#error "Only <keyhold/keyhold.h> can be included directly."
#endif

#include <gio/gio.h>

#include "keyhold-token.h"
#include <keyhold/keyhold-visibility.h>

G_BEGIN_DECLS

/**
 * KeyholdAccountState:
 * @KEYHOLD_ACCOUNT_STATE_UNKNOWN: The agent reported a state this version of
 *   the library does not know.
 * @KEYHOLD_ACCOUNT_STATE_SIGNED_OUT: Never signed in, or signed out.
 * @KEYHOLD_ACCOUNT_STATE_SIGNED_IN: Signed in; tokens are served.
 * @KEYHOLD_ACCOUNT_STATE_REFRESHING: A token refresh is in flight.
 * @KEYHOLD_ACCOUNT_STATE_OFFLINE: The provider cannot be reached; cached
 *   tokens are served until they expire.
 * @KEYHOLD_ACCOUNT_STATE_NEEDS_LOGIN: The provider rejected the sign-in; the
 *   user must sign in again.
 *
 * The state of an account, as `org.keyhold.Account1.State` reports it. The
 * nick of each value (see #GEnumValue) is the string the agent sends.
 *
 * Since: 0.1
 */
typedef enum
{
  KEYHOLD_ACCOUNT_STATE_UNKNOWN = 0,
  KEYHOLD_ACCOUNT_STATE_SIGNED_OUT = 1,
  KEYHOLD_ACCOUNT_STATE_SIGNED_IN = 2,
  KEYHOLD_ACCOUNT_STATE_REFRESHING = 3,
  KEYHOLD_ACCOUNT_STATE_OFFLINE = 4,
  KEYHOLD_ACCOUNT_STATE_NEEDS_LOGIN = 5,
} KeyholdAccountState;

#define KEYHOLD_TYPE_ACCOUNT (keyhold_account_get_type ())
KEYHOLD_PUBLIC
G_DECLARE_FINAL_TYPE (KeyholdAccount, keyhold_account, KEYHOLD, ACCOUNT, GObject)

KEYHOLD_PUBLIC
const char *keyhold_account_get_name (KeyholdAccount *self);
KEYHOLD_PUBLIC
const char *keyhold_account_get_issuer (KeyholdAccount *self);
KEYHOLD_PUBLIC
char **keyhold_account_dup_scopes (KeyholdAccount *self);
KEYHOLD_PUBLIC
char **keyhold_account_dup_api_origins (KeyholdAccount *self);
KEYHOLD_PUBLIC
const char *keyhold_account_get_subject (KeyholdAccount *self);
KEYHOLD_PUBLIC
const char *keyhold_account_get_display_name (KeyholdAccount *self);
KEYHOLD_PUBLIC
KeyholdAccountState keyhold_account_get_state (KeyholdAccount *self);
KEYHOLD_PUBLIC
gint64 keyhold_account_get_access_token_expiry (KeyholdAccount *self);
KEYHOLD_PUBLIC
gint64 keyhold_account_get_next_refresh (KeyholdAccount *self);
KEYHOLD_PUBLIC
const char *keyhold_account_get_last_error (KeyholdAccount *self);

KEYHOLD_PUBLIC
void keyhold_account_get_token (KeyholdAccount *self,
                                const char *const *scopes,
                                const char *audience,
                                guint min_validity,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data);
KEYHOLD_PUBLIC
KeyholdToken *keyhold_account_get_token_finish (KeyholdAccount *self,
                                                GAsyncResult *result,
                                                GError **error);
KEYHOLD_PUBLIC
KeyholdToken *keyhold_account_get_token_sync (KeyholdAccount *self,
                                              const char *const *scopes,
                                              const char *audience,
                                              guint min_validity,
                                              GCancellable *cancellable,
                                              GError **error);

KEYHOLD_PUBLIC
void keyhold_account_get_identity (KeyholdAccount *self,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data);
KEYHOLD_PUBLIC
GVariant *keyhold_account_get_identity_finish (KeyholdAccount *self,
                                               GAsyncResult *result,
                                               GError **error);
KEYHOLD_PUBLIC
GVariant *keyhold_account_get_identity_sync (KeyholdAccount *self,
                                             GCancellable *cancellable,
                                             GError **error);

KEYHOLD_PUBLIC
void keyhold_account_sign_out (KeyholdAccount *self,
                               GCancellable *cancellable,
                               GAsyncReadyCallback callback,
                               gpointer user_data);
KEYHOLD_PUBLIC
gboolean keyhold_account_sign_out_finish (KeyholdAccount *self,
                                          GAsyncResult *result,
                                          GError **error);
KEYHOLD_PUBLIC
gboolean keyhold_account_sign_out_sync (KeyholdAccount *self,
                                        GCancellable *cancellable,
                                        GError **error);

G_END_DECLS
