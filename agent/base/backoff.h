/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Retry delays after transient failures: exponential with full jitter (a
 * uniform delay up to the exponential bound), so that many clients that
 * failed together do not retry together, capped, and never sooner than the
 * server's Retry-After. Used by token refreshes and outbox replay. */
typedef struct
{
  guint first_bound_s;
  guint cap_s;
} KeyholdBackoff;

/* @failures: transient failures in a row so far, 1 for the first.
 * @retry_after_s: the server's Retry-After in seconds, or -1.
 * @random: a uniform random number in [0, 1), injected so tests can pin it. */
guint keyhold_backoff_delay_s (const KeyholdBackoff *backoff,
                               guint failures,
                               gint64 retry_after_s,
                               double random);

G_END_DECLS
