/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "keyhold/keyhold-token.h"

G_BEGIN_DECLS

/* Copies @value into guarded memory. Fails only when that memory cannot be
 * had (the lock limit is reached). */
KeyholdToken *keyhold_token_new (const char *value, gint64 expires_at, GError **error);

G_END_DECLS
