/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Runs one asynchronous operation to its end on a private main context, so
 * that every _sync function is its async twin plus a wait, and waiting does
 * not dispatch the caller's own sources:
 *
 *   g_auto (KeyholdSync) sync = { 0 };
 *   keyhold_sync_begin (&sync);
 *   keyhold_account_get_token (..., keyhold_sync_done, &sync);
 *   return keyhold_account_get_token_finish (self, keyhold_sync_wait (&sync), error);
 */
typedef struct
{
  GMainContext *context;
  GAsyncResult *result;
} KeyholdSync;

void keyhold_sync_begin (KeyholdSync *sync);
void keyhold_sync_done (GObject *source, GAsyncResult *result, gpointer user_data);
GAsyncResult *keyhold_sync_wait (KeyholdSync *sync);
void keyhold_sync_clear (KeyholdSync *sync);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (KeyholdSync, keyhold_sync_clear)

G_END_DECLS
