/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold-sync-private.h"

void
keyhold_sync_begin (KeyholdSync *sync)
{
  sync->context = g_main_context_new ();
  g_main_context_push_thread_default (sync->context);
}

void
keyhold_sync_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  KeyholdSync *sync = user_data;

  sync->result = g_object_ref (result);
}

GAsyncResult *
keyhold_sync_wait (KeyholdSync *sync)
{
  while (sync->result == NULL)
    g_main_context_iteration (sync->context, TRUE);
  return sync->result;
}

void
keyhold_sync_clear (KeyholdSync *sync)
{
  g_clear_object (&sync->result);
  if (sync->context == NULL)
    return;
  g_main_context_pop_thread_default (sync->context);
  g_clear_pointer (&sync->context, g_main_context_unref);
}
