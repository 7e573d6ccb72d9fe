/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

#include "accounts/token-cache.h"
#include "storage/account-config.h"
#include "context.h"
#include "oidc/oauth.h"

G_BEGIN_DECLS

typedef enum
{
  KEYHOLD_ACCOUNT_SIGNED_OUT,
  KEYHOLD_ACCOUNT_SIGNED_IN,
  KEYHOLD_ACCOUNT_REFRESHING,
  KEYHOLD_ACCOUNT_OFFLINE,
  KEYHOLD_ACCOUNT_NEEDS_LOGIN,
} KeyholdAccountState;

/* One configured account at run time: its sign-in state, its refresh token
 * (in guarded memory while in use, in the keyring at rest), its cached
 * access tokens and the one refresh that may be in flight for it.
 *
 * Properties (all read-only, notified on change): "state" (string as in
 * org.keyhold.Account1.State), "subject", "display-name",
 * "access-token-expiry", "next-refresh" (Unix seconds, 0 for none) and
 * "last-error".
 *
 * Signal "failure" (const char *what, GError *error): something failed in
 * the background with no caller to tell, such as a keyring write that will
 * be retried. For the log; the account has already acted on it. */
#define KEYHOLD_TYPE_ACCOUNT (keyhold_account_get_type ())
G_DECLARE_FINAL_TYPE (KeyholdAccount, keyhold_account, KEYHOLD, ACCOUNT, GObject)

KeyholdAccount *keyhold_account_new (KeyholdContext *context, const KeyholdAccountConfig *config);
/* Tells @listener of every access token the account starts or stops
 * caching (see token-cache.h); the bus layer mirrors them into its fast
 * path. NULL removes it. */
void keyhold_account_set_token_listener (KeyholdAccount *self,
                                         const KeyholdTokenCacheListener *listener,
                                         gpointer user_data);
const KeyholdAccountConfig *keyhold_account_get_config (KeyholdAccount *self);
KeyholdAccountState keyhold_account_get_state (KeyholdAccount *self);

/* Reads the stored identity and asks the keyring whether a refresh token
 * exists, to learn the state the agent left the account in. */
void keyhold_account_restore (KeyholdAccount *self);

/* After resume, a clock jump or the network coming back: timers on the
 * monotonic clock may be stale, so decide again from the wall clock, and
 * refresh now if a refresh is due or the provider was unreachable. */
void keyhold_account_recheck (KeyholdAccount *self);
/* The network monitor lost full connectivity: a signed-in account shows as
 * offline; cached tokens are still served until they expire. */
void keyhold_account_network_lost (KeyholdAccount *self);

void keyhold_account_get_token_async (KeyholdAccount *self,
                                      const char *const *scopes,
                                      const char *audience,
                                      guint min_validity_s,
                                      GCancellable *cancellable,
                                      GAsyncReadyCallback callback,
                                      gpointer user_data);
KeyholdSecret *keyhold_account_get_token_finish (KeyholdAccount *self,
                                                 GAsyncResult *result,
                                                 gint64 *out_expires_at_s,
                                                 GError **error);

/* Forgets @token if it is the cached token for (@scopes, @audience), so that
 * the next request refreshes: an API answered 401 to it (ARCHITECTURE.md,
 * "The life of an outbox item"). Does nothing when a newer token is already cached. */
void keyhold_account_invalidate_token (KeyholdAccount *self,
                                       const char *const *scopes,
                                       const char *audience,
                                       const KeyholdSecret *token);

/* The subject ("sub") of the current or last sign-in; "" before any. */
const char *keyhold_account_get_subject (KeyholdAccount *self);

/* The validated ID-token claims; NULL with NOT_SIGNED_IN before any sign-in. */
JsonObject *keyhold_account_get_identity (KeyholdAccount *self, GError **error);

/* Adopts the tokens of a completed sign-in: the refresh token goes to the
 * keyring first, then the account is signed in, and whatever was in flight
 * for the previous sign-in is cancelled and ignored. @claims are the
 * validated ID-token claims. Fails with KEYHOLD_ERROR_CANCELLED when the
 * account is signed out before the token is stored. */
void keyhold_account_sign_in_async (KeyholdAccount *self,
                                    KeyholdTokenResponse *response,
                                    JsonObject *claims,
                                    GCancellable *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer user_data);
gboolean keyhold_account_sign_in_finish (KeyholdAccount *self,
                                         GAsyncResult *result,
                                         GError **error);

/* Forgets the sign-in at once: tokens, identity and state, and whatever is
 * in flight for it is cancelled and ignored should it complete. Then
 * revokes the refresh token (RFC 7009) and deletes the keyring item whether
 * or not revocation worked. */
void keyhold_account_sign_out_async (KeyholdAccount *self,
                                     GCancellable *cancellable,
                                     GAsyncReadyCallback callback,
                                     gpointer user_data);
gboolean keyhold_account_sign_out_finish (KeyholdAccount *self,
                                          GAsyncResult *result,
                                          GError **error);

/* The first step of removing the account: from now on sign-ins to it fail
 * with KEYHOLD_ERROR_NO_SUCH_ACCOUNT, then it signs out as
 * keyhold_account_sign_out_async () does, except that the keyring item is
 * deleted even if a sign-in stored a token in between. Should the removal
 * fail, keyhold_account_removal_failed () takes sign-ins again. */
void keyhold_account_remove_async (KeyholdAccount *self,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data);
gboolean keyhold_account_remove_finish (KeyholdAccount *self, GAsyncResult *result, GError **error);
void keyhold_account_removal_failed (KeyholdAccount *self);
/* Whether removal has started (and not failed). */
gboolean keyhold_account_is_removed (KeyholdAccount *self);

G_END_DECLS
