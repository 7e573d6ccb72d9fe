/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Wall-clock time for token expiry (RFC 6749 §5.1 lifetimes are wall-clock:
 * a suspended laptop's monotonic clock stops, the token's life does not).
 * One home, so that every module agrees on what "now" is. */
gint64 keyhold_clock_now_us (void);
gint64 keyhold_clock_now_s (void);

G_END_DECLS
