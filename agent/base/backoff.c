/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "base/backoff.h"

/* A Retry-After beyond a day is more likely a mistake than a plan. */
#define MAX_RETRY_AFTER_S (24 * 60 * 60)

guint
keyhold_backoff_delay_s (const KeyholdBackoff *backoff,
                         guint failures,
                         gint64 retry_after_s,
                         double random)
{
  guint shift = MIN (failures > 0 ? failures - 1 : 0, 20);
  guint64 bound_s = MIN ((guint64) backoff->first_bound_s << shift, (guint64) backoff->cap_s);
  guint delay_s = 1 + (guint) (random * (double) bound_s);

  delay_s = MIN (delay_s, (guint) bound_s);
  if (retry_after_s > (gint64) delay_s)
    delay_s = (guint) MIN (retry_after_s, MAX_RETRY_AFTER_S);
  return delay_s;
}
