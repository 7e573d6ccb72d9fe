/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "base/oauth-syntax.h"

static gboolean
is_scope_char (char c)
{
  return c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

gboolean
keyhold_oauth_syntax_is_scope_token (const char *scope)
{
  gsize length = strnlen (scope, KEYHOLD_SCOPE_MAX_LENGTH + 1);

  if (length == 0 || length > KEYHOLD_SCOPE_MAX_LENGTH)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    if (!is_scope_char (scope[i]))
      return FALSE;
  return TRUE;
}
