/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <keyhold/keyhold.h>

int
main (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KeyholdClient) client = keyhold_client_new_sync (NULL, &error);
  g_autoptr (KeyholdAccount) account
      = client ? keyhold_client_lookup_account (client, "work") : NULL;
  g_autoptr (KeyholdToken) token
      = account ? keyhold_account_get_token_sync (account, NULL, NULL, 0, NULL, &error) : NULL;

  if (token == NULL)
    {
      g_printerr ("No token: %s\n", error ? error->message : "there is no account \"work\"");
      return 1;
    }
  /* Send "Authorization: Bearer " + keyhold_token_get_value (token) with one
   * request, then let the token go: freeing it wipes it. */
  g_print ("Got a token that expires at %" G_GINT64_FORMAT ".\n",
           keyhold_token_get_expires_at (token));
  return 0;
}
