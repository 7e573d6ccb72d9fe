/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <sodium.h>
#include <string.h>

#include "base/secret.h"

struct _KeyholdSecret
{
  gatomicrefcount ref_count;
  gsize length;
  /* Guarded region of length + 1 bytes; the extra byte is the NUL. */
  char *bytes;
};

static char *
guarded_alloc (gsize length)
{
  char *bytes;

  /* sodium_init () is idempotent and thread-safe; calling it here means no
   * caller can forget it. A failure means no usable RNG or mprotect, and the
   * agent cannot keep secrets safely without them. */
  if (sodium_init () < 0)
    g_error ("libsodium could not be initialised");

  bytes = sodium_malloc (length + 1);
  if (bytes == NULL)
    g_error ("out of guarded memory for %" G_GSIZE_FORMAT " bytes", length + 1);
  return bytes;
}

static KeyholdSecret *
secret_seal (char *bytes, gsize length)
{
  KeyholdSecret *secret = g_new0 (KeyholdSecret, 1);

  bytes[length] = '\0';
  sodium_mprotect_readonly (bytes);
  g_atomic_ref_count_init (&secret->ref_count);
  secret->length = length;
  secret->bytes = bytes;
  return secret;
}

/* An empty secret has nothing to guard: it points at a constant "" rather
 * than mapping guarded pages, which matters for the many empty response
 * bodies (204 No Content) an outbox drain receives. */
static const char empty_bytes[] = "";

KeyholdSecret *
keyhold_secret_new (const void *data, gsize length)
{
  char *bytes;
  KeyholdSecret *secret;

  if (length == 0)
    {
      secret = g_new0 (KeyholdSecret, 1);
      g_atomic_ref_count_init (&secret->ref_count);
      secret->bytes = (char *) empty_bytes;
      return secret;
    }
  bytes = guarded_alloc (length);
  memcpy (bytes, data, length);
  return secret_seal (bytes, length);
}

KeyholdSecret *
keyhold_secret_new_from_string (const char *string)
{
  return keyhold_secret_new (string, strlen (string));
}

KeyholdSecret *
keyhold_secret_new_random (gsize length)
{
  char *bytes = guarded_alloc (length);

  randombytes_buf (bytes, length);
  return secret_seal (bytes, length);
}

KeyholdSecret *
keyhold_secret_ref (KeyholdSecret *secret)
{
  g_atomic_ref_count_inc (&secret->ref_count);
  return secret;
}

void
keyhold_secret_unref (KeyholdSecret *secret)
{
  if (secret == NULL || !g_atomic_ref_count_dec (&secret->ref_count))
    return;

  /* sodium_free () wipes the region before unmapping it. */
  if (secret->bytes != empty_bytes)
    sodium_free (secret->bytes);
  g_free (secret);
}

const char *
keyhold_secret_get (const KeyholdSecret *secret)
{
  return secret->bytes;
}

gsize
keyhold_secret_get_length (const KeyholdSecret *secret)
{
  return secret->length;
}

gboolean
keyhold_secret_equal (const KeyholdSecret *a, const KeyholdSecret *b)
{
  if (a->length != b->length)
    return FALSE;
  return sodium_memcmp (a->bytes, b->bytes, a->length) == 0;
}

void
keyhold_secret_wipe_string (char *string)
{
  if (string == NULL)
    return;
  sodium_memzero (string, strlen (string));
  g_free (string);
}
