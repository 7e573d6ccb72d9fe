/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "base/clock.h"

gint64
keyhold_clock_now_us (void)
{
  return g_get_real_time ();
}

gint64
keyhold_clock_now_s (void)
{
  return keyhold_clock_now_us () / G_USEC_PER_SEC;
}
