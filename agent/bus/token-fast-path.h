/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "bus/access.h"
#include "base/secret.h"

G_BEGIN_DECLS

/* Answers Account1.GetAccessToken on GDBus's worker thread when a cached
 * token satisfies it, the way GDBus itself answers Peer.Ping there, instead
 * of handing the call to the main loop and back (two thread switches, about
 * half the cost of a cached call). It answers only calls the main loop
 * would answer the same way: arguments that validate, a caller already
 * known to be allowed, a token valid for the requested min_validity.
 * Everything else, misses included, goes on to the main loop untouched.
 *
 * The main thread publishes the tokens the filter may use (through the
 * account's token cache) and withdraws them when they are wiped. */
typedef struct _KeyholdTokenFastPath KeyholdTokenFastPath;

KeyholdTokenFastPath *keyhold_token_fast_path_new (GDBusConnection *connection,
                                                   KeyholdAccess *access);
/* Stops answering; @access may be freed afterwards. */
void keyhold_token_fast_path_free (KeyholdTokenFastPath *fast_path);

void keyhold_token_fast_path_publish (KeyholdTokenFastPath *fast_path,
                                      const char *object_path,
                                      const char *key,
                                      KeyholdSecret *token,
                                      gint64 issued_at_us,
                                      gint64 expires_at_us);
void keyhold_token_fast_path_withdraw (KeyholdTokenFastPath *fast_path,
                                       const char *object_path,
                                       const char *key);
void keyhold_token_fast_path_withdraw_all (KeyholdTokenFastPath *fast_path,
                                           const char *object_path);

G_END_DECLS
