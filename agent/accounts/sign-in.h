/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "accounts/account.h"
#include "context.h"

G_BEGIN_DECLS

/* Sign-ins in progress. Each runs a device (RFC 8628) or browser (RFC 8252)
 * flow for one account on behalf of one caller (an opaque name: the bus
 * layer passes the D-Bus unique name), reports its progress and its end
 * through the listener, and ends when the flow does or when it is
 * cancelled. */
typedef struct _KeyholdSignIns KeyholdSignIns;

typedef struct
{
  /* @info (a{sv}): "verification_uri", "user_code",
   * "verification_uri_complete" and "expires_in" for the device flow,
   * "authorization_url" for the browser flow. Only @caller may see it. */
  void (*progress) (const char *handle, const char *caller, GVariant *info, gpointer user_data);
  /* @error is NULL on success, else in the KEYHOLD_ERROR domain. */
  void (*finished) (const char *handle,
                    const char *caller,
                    KeyholdAccount *account,
                    const GError *error,
                    gpointer user_data);
} KeyholdSignInsListener;

/* Bounds what one caller can make the agent hold. */
#define KEYHOLD_SIGN_INS_MAX 16

/* @listener and @user_data must outlive the sign-ins. */
KeyholdSignIns *keyhold_sign_ins_new (KeyholdContext *context,
                                      const KeyholdSignInsListener *listener,
                                      gpointer user_data);
void keyhold_sign_ins_free (KeyholdSignIns *sign_ins);

/* Returns the handle of the new sign-in. */
char *keyhold_sign_ins_start (KeyholdSignIns *sign_ins,
                              KeyholdAccount *account,
                              const char *method,
                              const char *caller,
                              GError **error);
gboolean keyhold_sign_ins_cancel (KeyholdSignIns *sign_ins,
                                  const char *handle,
                                  const char *caller,
                                  GError **error);
/* Cancels every sign-in to @account, whoever started it: the account is
 * being removed. */
void keyhold_sign_ins_cancel_account (KeyholdSignIns *sign_ins, KeyholdAccount *account);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdSignIns, keyhold_sign_ins_free)

G_END_DECLS
