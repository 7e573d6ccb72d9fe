/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "base/http-syntax.h"

gboolean
keyhold_http_syntax_is_tchar (char c)
{
  return c != '\0' && (g_ascii_isalnum (c) || strchr ("!#$%&'*+-.^_`|~", c) != NULL);
}

gboolean
keyhold_http_syntax_is_token (const char *string)
{
  if (*string == '\0')
    return FALSE;
  for (const char *c = string; *c != '\0'; c++)
    if (!keyhold_http_syntax_is_tchar (*c))
      return FALSE;
  return TRUE;
}

gboolean
keyhold_http_syntax_is_field_value (const char *string)
{
  for (const guchar *c = (const guchar *) string; *c != '\0'; c++)
    if ((*c < 0x20 && *c != '\t') || *c == 0x7f)
      return FALSE;
  return TRUE;
}
