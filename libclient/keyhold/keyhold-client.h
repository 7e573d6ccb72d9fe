/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(KEYHOLD_INSIDE) && !defined(KEYHOLD_COMPILATION)
#error "Only <keyhold/keyhold.h> can be included directly."
#endif

#include <gio/gio.h>

#include "keyhold-account.h"
#include "keyhold-outbox.h"
#include <keyhold/keyhold-visibility.h>

G_BEGIN_DECLS

/**
 * KeyholdSignInMethod:
 * @KEYHOLD_SIGN_IN_METHOD_DEVICE: The OAuth 2.0 device authorization grant
 *   (RFC 8628): the user opens a web page, on any device, and enters a code.
 * @KEYHOLD_SIGN_IN_METHOD_BROWSER: A web browser on this computer and a
 *   loopback redirect (RFC 8252, PKCE S256).
 *
 * How keyhold_client_sign_in() signs the user in.
 *
 * Since: 0.1
 */
typedef enum
{
  KEYHOLD_SIGN_IN_METHOD_DEVICE = 0,
  KEYHOLD_SIGN_IN_METHOD_BROWSER = 1,
} KeyholdSignInMethod;

#define KEYHOLD_TYPE_CLIENT (keyhold_client_get_type ())
KEYHOLD_PUBLIC
G_DECLARE_FINAL_TYPE (KeyholdClient, keyhold_client, KEYHOLD, CLIENT, GObject)

KEYHOLD_PUBLIC
void keyhold_client_new (GCancellable *cancellable,
                         GAsyncReadyCallback callback,
                         gpointer user_data);
KEYHOLD_PUBLIC
KeyholdClient *keyhold_client_new_finish (GAsyncResult *result, GError **error);
KEYHOLD_PUBLIC
KeyholdClient *keyhold_client_new_sync (GCancellable *cancellable, GError **error);

KEYHOLD_PUBLIC
gboolean keyhold_client_get_agent_running (KeyholdClient *self);
KEYHOLD_PUBLIC
const char *keyhold_client_get_storage_error (KeyholdClient *self);
KEYHOLD_PUBLIC
GList *keyhold_client_get_accounts (KeyholdClient *self);
KEYHOLD_PUBLIC
KeyholdAccount *keyhold_client_lookup_account (KeyholdClient *self, const char *name);

KEYHOLD_PUBLIC
void keyhold_client_add_account (KeyholdClient *self,
                                 const char *name,
                                 const char *issuer,
                                 const char *client_id,
                                 const char *const *scopes,
                                 const char *const *api_origins,
                                 GCancellable *cancellable,
                                 GAsyncReadyCallback callback,
                                 gpointer user_data);
KEYHOLD_PUBLIC
KeyholdAccount *keyhold_client_add_account_finish (KeyholdClient *self,
                                                   GAsyncResult *result,
                                                   GError **error);
KEYHOLD_PUBLIC
KeyholdAccount *keyhold_client_add_account_sync (KeyholdClient *self,
                                                 const char *name,
                                                 const char *issuer,
                                                 const char *client_id,
                                                 const char *const *scopes,
                                                 const char *const *api_origins,
                                                 GCancellable *cancellable,
                                                 GError **error);

KEYHOLD_PUBLIC
void keyhold_client_remove_account (KeyholdClient *self,
                                    const char *name,
                                    GCancellable *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer user_data);
KEYHOLD_PUBLIC
gboolean keyhold_client_remove_account_finish (KeyholdClient *self,
                                               GAsyncResult *result,
                                               GError **error);
KEYHOLD_PUBLIC
gboolean keyhold_client_remove_account_sync (KeyholdClient *self,
                                             const char *name,
                                             GCancellable *cancellable,
                                             GError **error);

KEYHOLD_PUBLIC
void keyhold_client_sign_in (KeyholdClient *self,
                             const char *name,
                             KeyholdSignInMethod method,
                             GCancellable *cancellable,
                             GAsyncReadyCallback callback,
                             gpointer user_data);
KEYHOLD_PUBLIC
gboolean keyhold_client_sign_in_finish (KeyholdClient *self, GAsyncResult *result, GError **error);
KEYHOLD_PUBLIC
gboolean keyhold_client_sign_in_sync (KeyholdClient *self,
                                      const char *name,
                                      KeyholdSignInMethod method,
                                      GCancellable *cancellable,
                                      GError **error);

KEYHOLD_PUBLIC
void keyhold_client_outbox_enqueue (KeyholdClient *self,
                                    const char *account,
                                    const char *queue,
                                    KeyholdOutboxRequest *request,
                                    GCancellable *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer user_data);
KEYHOLD_PUBLIC
char *keyhold_client_outbox_enqueue_finish (KeyholdClient *self,
                                            GAsyncResult *result,
                                            GError **error);
KEYHOLD_PUBLIC
char *keyhold_client_outbox_enqueue_sync (KeyholdClient *self,
                                          const char *account,
                                          const char *queue,
                                          KeyholdOutboxRequest *request,
                                          GCancellable *cancellable,
                                          GError **error);

KEYHOLD_PUBLIC
void keyhold_client_outbox_get (KeyholdClient *self,
                                const char *id,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data);
KEYHOLD_PUBLIC
KeyholdOutboxItem *keyhold_client_outbox_get_finish (KeyholdClient *self,
                                                     GAsyncResult *result,
                                                     GError **error);
KEYHOLD_PUBLIC
KeyholdOutboxItem *keyhold_client_outbox_get_sync (KeyholdClient *self,
                                                   const char *id,
                                                   GCancellable *cancellable,
                                                   GError **error);

KEYHOLD_PUBLIC
void keyhold_client_outbox_list (KeyholdClient *self,
                                 const char *account,
                                 const char *queue,
                                 const KeyholdOutboxState *states,
                                 gsize n_states,
                                 const char *after,
                                 guint limit,
                                 GCancellable *cancellable,
                                 GAsyncReadyCallback callback,
                                 gpointer user_data);
KEYHOLD_PUBLIC
GList *keyhold_client_outbox_list_finish (KeyholdClient *self,
                                          GAsyncResult *result,
                                          GError **error);
KEYHOLD_PUBLIC
GList *keyhold_client_outbox_list_sync (KeyholdClient *self,
                                        const char *account,
                                        const char *queue,
                                        const KeyholdOutboxState *states,
                                        gsize n_states,
                                        const char *after,
                                        guint limit,
                                        GCancellable *cancellable,
                                        GError **error);

KEYHOLD_PUBLIC
void keyhold_client_outbox_cancel (KeyholdClient *self,
                                   const char *id,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data);
KEYHOLD_PUBLIC
gboolean keyhold_client_outbox_cancel_finish (KeyholdClient *self,
                                              GAsyncResult *result,
                                              GError **error);
KEYHOLD_PUBLIC
gboolean keyhold_client_outbox_cancel_sync (KeyholdClient *self,
                                            const char *id,
                                            GCancellable *cancellable,
                                            GError **error);

G_END_DECLS
