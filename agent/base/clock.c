/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "base/clock.h"

static gint64 clock_offset_us;

gint64
keyhold_clock_now_us (void)
{
  return g_get_real_time () + clock_offset_us;
}

gint64
keyhold_clock_now_s (void)
{
  return keyhold_clock_now_us () / G_USEC_PER_SEC;
}

void
keyhold_clock_shift (gint64 offset_us)
{
  clock_offset_us += offset_us;
}
