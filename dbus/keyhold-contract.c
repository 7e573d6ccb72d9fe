/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold-contract.h"

#define ACCOUNT_PATH_PREFIX KEYHOLD_AGENT_PATH "/account/"

char *
keyhold_contract_account_path (const char *account_name)
{
  g_autofree char *escaped = g_dbus_escape_object_path (account_name);

  return g_strconcat (ACCOUNT_PATH_PREFIX, escaped, NULL);
}
