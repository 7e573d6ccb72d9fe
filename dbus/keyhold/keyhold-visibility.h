/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(KEYHOLD_INSIDE) && !defined(KEYHOLD_COMPILATION)
#error "Only <keyhold/keyhold.h> can be included directly."
#endif

/* The library is built with -fvisibility=hidden; only symbols marked with
 * KEYHOLD_PUBLIC form its ABI. */
#if defined(KEYHOLD_COMPILATION)
#define KEYHOLD_PUBLIC __attribute__ ((visibility ("default"))) extern
#else
#define KEYHOLD_PUBLIC extern
#endif
