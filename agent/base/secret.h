/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A token or key in libsodium guarded memory: page-aligned, guarded by
 * inaccessible pages, locked against swap where the limit allows, read-only
 * once filled, and wiped when the last reference goes. The bytes are always
 * followed by a NUL so that they can be handed to APIs that take C strings. */
typedef struct _KeyholdSecret KeyholdSecret;

KeyholdSecret *keyhold_secret_new (const void *data, gsize length);
KeyholdSecret *keyhold_secret_new_from_string (const char *string);
KeyholdSecret *keyhold_secret_new_random (gsize length);
KeyholdSecret *keyhold_secret_ref (KeyholdSecret *secret);
void keyhold_secret_unref (KeyholdSecret *secret);

const char *keyhold_secret_get (const KeyholdSecret *secret);
gsize keyhold_secret_get_length (const KeyholdSecret *secret);
gboolean keyhold_secret_equal (const KeyholdSecret *a, const KeyholdSecret *b);

/* Wipes and frees a heap string that held secret material (for copies that
 * a library made and handed back to us). */
void keyhold_secret_wipe_string (char *string);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdSecret, keyhold_secret_unref)

G_END_DECLS
