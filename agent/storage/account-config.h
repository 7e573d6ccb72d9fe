/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "base/oauth-syntax.h"

G_BEGIN_DECLS

#define KEYHOLD_ACCOUNT_NAME_MAX_LENGTH 64
#define KEYHOLD_CLIENT_ID_MAX_LENGTH 256
#define KEYHOLD_MAX_SCOPES 32
#define KEYHOLD_MAX_API_ORIGINS 32
#define KEYHOLD_CONFIG_MAX_ACCOUNTS 256
#define KEYHOLD_CONFIG_MAX_FILE_SIZE (1024 * 1024)

/* One account: the provider it signs in to and the origins its access
 * tokens may be sent to. Always valid: only keyhold_account_config_new ()
 * and keyhold_account_config_copy () make one. */
typedef struct
{
  /* 1 to 64 of A-Z a-z 0-9 . _ - */
  char *name;
  /* Passed keyhold_url_policy_check_issuer (). */
  char *issuer;
  /* 1 to 256 printable ASCII characters (RFC 6749 VSCHAR). */
  char *client_id;
  /* RFC 6749 §3.3 scope tokens, no duplicates, always including "openid". */
  GStrv scopes;
  /* Normalised by keyhold_url_policy_origin (), no duplicates; may be empty. */
  GStrv api_origins;
} KeyholdAccountConfig;

/* Validates and normalises; fails with KEYHOLD_ERROR_INVALID_ARGUMENT
 * naming the field. NULL or empty @scopes means { "openid" }; "openid" is
 * added in front when missing. */
KeyholdAccountConfig *keyhold_account_config_new (const char *name,
                                                  const char *issuer,
                                                  const char *client_id,
                                                  const char *const *scopes,
                                                  const char *const *api_origins,
                                                  GError **error);
KeyholdAccountConfig *keyhold_account_config_copy (const KeyholdAccountConfig *config);
void keyhold_account_config_free (KeyholdAccountConfig *config);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdAccountConfig, keyhold_account_config_free)

/* The accounts file, $XDG_CONFIG_HOME/keyhold/accounts.conf: a key file
 * with one "[account NAME]" group per account and the keys issuer,
 * client_id, scopes and api_origins. The agent owns it and rewrites it
 * whole on every change, so comments in it do not survive a save. */
typedef struct _KeyholdConfig KeyholdConfig;

char *keyhold_config_default_path (void);

/* A missing file is an empty configuration. Anything else that cannot be
 * used in full (unreadable, larger than 1 MiB, more than 256 accounts, a
 * syntax error, an unknown group or key, an invalid account) fails with
 * KEYHOLD_ERROR_STORAGE naming the file and the group: dropping an account
 * quietly would look to the user like a sign-out. */
KeyholdConfig *keyhold_config_load (const char *path, GError **error);
void keyhold_config_free (KeyholdConfig *config);

/* Takes @account in every case. Fails with KEYHOLD_ERROR_ALREADY_EXISTS or
 * KEYHOLD_ERROR_QUOTA_EXCEEDED. Changes memory only; see _save (). */
gboolean keyhold_config_add (KeyholdConfig *config, KeyholdAccountConfig *account, GError **error);
/* Fails with KEYHOLD_ERROR_NO_SUCH_ACCOUNT. */
gboolean keyhold_config_remove (KeyholdConfig *config, const char *name, GError **error);
const KeyholdAccountConfig *keyhold_config_lookup (KeyholdConfig *config, const char *name);
/* The accounts sorted by name; the array is the caller's, the entries stay
 * the configuration's and live until they are removed. */
GPtrArray *keyhold_config_list (KeyholdConfig *config);

/* Writes the file it was loaded from atomically (a crash leaves the old or
 * the new file, never a mix), mode 0600, creating the directory with mode
 * 0700. Fails with KEYHOLD_ERROR_STORAGE. */
gboolean keyhold_config_save (KeyholdConfig *config, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdConfig, keyhold_config_free)

G_END_DECLS
