/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "accounts/account.h"
#include "context.h"

G_BEGIN_DECLS

/* Sign-ins in progress. Each runs a device (RFC 8628) or browser (RFC 8252)
 * flow for one account on behalf of one D-Bus caller, reports progress to
 * that caller only (SignInProgress, SignInFinished), and ends when the flow
 * does, when the caller cancels, or when the caller leaves the bus. */
typedef struct _KeyholdSignIns KeyholdSignIns;

/* Bounds what one caller can make the agent hold. */
#define KEYHOLD_SIGN_INS_MAX 16

KeyholdSignIns *keyhold_sign_ins_new (GDBusConnection *connection, KeyholdContext *context);
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

/* Maps any error to the KEYHOLD_ERROR domain, so that D-Bus callers always
 * get an org.keyhold.Error.* name. */
GError *keyhold_sign_in_error_to_public (const GError *error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdSignIns, keyhold_sign_ins_free)

G_END_DECLS
