/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <sodium.h>
#include <string.h>

#include "keyhold-contract.h"
#include "keyhold-token-private.h"

struct _KeyholdToken
{
  gatomicrefcount ref_count;
  /* sodium_malloc'd and NUL-terminated; sodium_free wipes it. */
  char *value;
  gint64 expires_at;
};

G_DEFINE_BOXED_TYPE (KeyholdToken, keyhold_token, keyhold_token_ref, keyhold_token_unref)

KeyholdToken *
keyhold_token_new (const char *value, gint64 expires_at, GError **error)
{
  gsize length = strlen (value);
  KeyholdToken *self;
  char *guarded;

  if (sodium_init () < 0 || (guarded = sodium_malloc (length + 1)) == NULL)
    {
      g_set_error_literal (error, KEYHOLD_ERROR, KEYHOLD_ERROR_FAILED,
                           "cannot allocate locked memory for the token");
      return NULL;
    }
  memcpy (guarded, value, length + 1);

  self = g_new0 (KeyholdToken, 1);
  g_atomic_ref_count_init (&self->ref_count);
  self->value = guarded;
  self->expires_at = expires_at;
  return self;
}

/**
 * keyhold_token_ref:
 * @self: a #KeyholdToken
 *
 * Takes a reference to @self.
 *
 * Returns: (transfer full): @self, with one more reference.
 *
 * Since: 0.1
 */
KeyholdToken *
keyhold_token_ref (KeyholdToken *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

/**
 * keyhold_token_unref:
 * @self: (nullable) (transfer full): a #KeyholdToken
 *
 * Drops a reference; the last one wipes the token's memory and frees it.
 *
 * Since: 0.1
 */
void
keyhold_token_unref (KeyholdToken *self)
{
  if (self == NULL || !g_atomic_ref_count_dec (&self->ref_count))
    return;

  sodium_free (self->value);
  g_free (self);
}

/**
 * keyhold_token_get_value:
 * @self: a #KeyholdToken
 *
 * The access token, for an `Authorization: Bearer` header. The text
 * belongs to @self and is wiped when @self is freed: use it while you hold
 * @self, and do not keep copies.
 *
 * Returns: (transfer none): the access token.
 *
 * Since: 0.1
 */
const char *
keyhold_token_get_value (KeyholdToken *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return self->value;
}

/**
 * keyhold_token_get_expires_at:
 * @self: a #KeyholdToken
 *
 * Gets when the token expires.
 *
 * Returns: the Unix time (seconds) at which the token expires.
 *
 * Since: 0.1
 */
gint64
keyhold_token_get_expires_at (KeyholdToken *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return self->expires_at;
}
