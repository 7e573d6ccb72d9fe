/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What every benchmark in bench/ needs: failing loudly, a clock,
 * percentiles, ratios, sections of output and separate bus connections. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Prints "PROGRAM: message" and exits 1. exit (), not abort (): the test
 * harness tears the environment down atexit. */
void bench_die (const char *format, ...) G_GNUC_NORETURN G_GNUC_PRINTF (1, 2);

/* CLOCK_MONOTONIC in microseconds. */
double bench_now_us (void);

/* Nearest-rank percentile; sorts @samples (doubles) in place. */
double bench_percentile (GArray *samples, guint percent);

/* @value / @baseline, or 0 without a baseline. */
double bench_ratio (double value, double baseline);

void bench_print_section (const char *title);

/* @count connections of their own to the session bus: separate callers to
 * the agent and to the bus. The array closes them when freed. */
GPtrArray *bench_open_connections (guint count);

/* Run by hand, a benchmark finds the tree it was built from; under
 * `meson test --benchmark` the variables come from the test environment. */
void bench_default_environment (void);

G_END_DECLS
