/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "keyhold-contract.h"

#include "accounts/token-request.h"
#include "base/oauth-syntax.h"

#define AUDIENCE_MAX_LENGTH 2048

/* RFC 3986 §2: a URI is made of visible US-ASCII only; g_uri_is_valid ()
 * lets spaces and control characters through. */
static gboolean
is_visible_ascii (const char *text)
{
  for (const char *c = text; *c != '\0'; c++)
    if (*c < 0x21 || *c > 0x7e)
      return FALSE;
  return TRUE;
}

gboolean
keyhold_token_request_validate (const char *const *scopes,
                                const char *audience,
                                guint min_validity_s,
                                GError **error)
{
  guint n_scopes = scopes != NULL ? g_strv_length ((char **) scopes) : 0;

  if (n_scopes > KEYHOLD_TOKEN_MAX_SCOPES)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "At most %d scopes may be requested", KEYHOLD_TOKEN_MAX_SCOPES);
      return FALSE;
    }
  for (guint i = 0; i < n_scopes; i++)
    if (!keyhold_oauth_syntax_is_scope_token (scopes[i]))
      {
        g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                     "Scope %u is not a valid OAuth scope token", i + 1);
        return FALSE;
      }
  /* RFC 8707 §2: a resource indicator is an absolute URI without fragment. */
  if (*audience != '\0'
      && (strlen (audience) > AUDIENCE_MAX_LENGTH || !is_visible_ascii (audience)
          || !g_uri_is_valid (audience, G_URI_FLAGS_NONE, NULL) || strchr (audience, '#') != NULL))
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "The audience must be an absolute URI without a fragment");
      return FALSE;
    }
  if (min_validity_s > KEYHOLD_TOKEN_MAX_MIN_VALIDITY_S)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "min_validity may be at most %d seconds", KEYHOLD_TOKEN_MAX_MIN_VALIDITY_S);
      return FALSE;
    }
  return TRUE;
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

char *
keyhold_token_request_key (const char *const *scopes, const char *audience)
{
  g_autoptr (GPtrArray) sorted = g_ptr_array_new ();
  g_autoptr (GString) key = g_string_new (NULL);

  for (guint i = 0; scopes != NULL && scopes[i] != NULL; i++)
    g_ptr_array_add (sorted, (gpointer) scopes[i]);
  g_ptr_array_sort (sorted, compare_strings);

  for (guint i = 0; i < sorted->len; i++)
    {
      if (i > 0 && strcmp (sorted->pdata[i], sorted->pdata[i - 1]) == 0)
        continue;
      if (key->len > 0)
        g_string_append_c (key, ' ');
      g_string_append (key, sorted->pdata[i]);
    }
  /* A newline is in neither a scope token nor a URI, so no two requests
   * share a key by accident ("a|https://x" is a valid scope). */
  if (audience != NULL && *audience != '\0')
    g_string_append_printf (key, "\n%s", audience);
  return g_string_free (g_steal_pointer (&key), FALSE);
}

gint64
keyhold_token_request_min_validity_us (guint min_validity_s, gint64 lifetime_us)
{
  if (min_validity_s != 0)
    return (gint64) min_validity_s * G_USEC_PER_SEC;
  return MIN ((gint64) KEYHOLD_TOKEN_DEFAULT_MIN_VALIDITY_S * G_USEC_PER_SEC,
              MAX (lifetime_us, 0) / 2);
}
