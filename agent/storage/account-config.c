/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixinputstream.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "keyhold-contract.h"

#include "storage/account-config.h"
#include "base/url-policy.h"

#define ACCOUNT_GROUP_PREFIX "account "

struct _KeyholdConfig
{
  char *path;
  /* name -> KeyholdAccountConfig, which owns the key */
  GHashTable *accounts;
};

/* The keys an account group may have, in the order they are written. */
typedef enum
{
  ACCOUNT_KEY_ISSUER,
  ACCOUNT_KEY_CLIENT_ID,
  ACCOUNT_KEY_SCOPES,
  ACCOUNT_KEY_API_ORIGINS,
  N_ACCOUNT_KEYS,
} AccountKey;

static const char *const account_keys[N_ACCOUNT_KEYS] = {
  [ACCOUNT_KEY_ISSUER] = "issuer",
  [ACCOUNT_KEY_CLIENT_ID] = "client_id",
  [ACCOUNT_KEY_SCOPES] = "scopes",
  [ACCOUNT_KEY_API_ORIGINS] = "api_origins",
};

typedef char *(*NormalizeItemFunc) (const char *item, GError **error);

/* ---- one account -------------------------------------------------------- */

static gboolean
is_name_char (char c)
{
  return g_ascii_isalnum (c) || c == '.' || c == '_' || c == '-';
}

/* RFC 6749 Appendix A: VSCHAR */
static gboolean
is_client_id_char (char c)
{
  return c >= 0x20 && c <= 0x7e;
}

/* 1 to @max_length characters, each one @is_allowed. */
static gboolean
is_made_of (const char *text, gsize max_length, gboolean (*is_allowed) (char))
{
  gsize length = strnlen (text, max_length + 1);

  if (length == 0 || length > max_length)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    if (!is_allowed (text[i]))
      return FALSE;
  return TRUE;
}

static gboolean
set_invalid (GError **error, const char *message)
{
  g_set_error_literal (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT, message);
  return FALSE;
}

static char *
normalize_scope (const char *scope, GError **error)
{
  if (!keyhold_oauth_syntax_is_scope_token (scope))
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "a scope must be 1 to %d printable ASCII characters other than "
                   "space, “\"” and “\\”",
                   KEYHOLD_SCOPE_MAX_LENGTH);
      return NULL;
    }
  return g_strdup (scope);
}

/* @field is the key-file key, so that a message points at the line to fix. */
static GStrv
normalize_list (const char *field,
                const char *const *items,
                guint max_items,
                NormalizeItemFunc normalize,
                GError **error)
{
  guint count = items != NULL ? g_strv_length ((char **) items) : 0;
  g_autoptr (GPtrArray) result = NULL;

  if (count > max_items)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "%s: at most %u entries are allowed", field, max_items);
      return NULL;
    }

  result = g_ptr_array_new_null_terminated (count, g_free, TRUE);
  for (guint i = 0; i < count; i++)
    {
      g_autofree char *item = normalize (items[i], error);

      if (item == NULL)
        {
          g_prefix_error (error, "%s: entry %u: ", field, i + 1);
          return NULL;
        }
      if (g_ptr_array_find_with_equal_func (result, item, g_str_equal, NULL))
        {
          g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                       "%s: “%s” is listed twice", field, item);
          return NULL;
        }
      g_ptr_array_add (result, g_steal_pointer (&item));
    }
  return (GStrv) g_ptr_array_free (g_steal_pointer (&result), FALSE);
}

/* Without "openid" the provider hands out no ID token (OIDC Core §3.1.2.1),
 * and the account would have no identity. */
static GStrv
normalize_scopes (const char *const *scopes, GError **error)
{
  guint count = scopes != NULL ? g_strv_length ((char **) scopes) : 0;
  gboolean has_openid = scopes != NULL && g_strv_contains (scopes, "openid");
  g_auto (GStrv) normalized = NULL;
  g_autoptr (GStrvBuilder) with_openid = NULL;

  if (!has_openid && count >= KEYHOLD_MAX_SCOPES)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "scopes: at most %u entries are allowed, “openid” included", KEYHOLD_MAX_SCOPES);
      return NULL;
    }
  normalized = normalize_list ("scopes", scopes, KEYHOLD_MAX_SCOPES, normalize_scope, error);
  if (normalized == NULL || has_openid)
    return g_steal_pointer (&normalized);

  with_openid = g_strv_builder_new ();
  g_strv_builder_add (with_openid, "openid");
  g_strv_builder_addv (with_openid, (const char **) normalized);
  return g_strv_builder_end (with_openid);
}

static gboolean
validate_fields (const char *name, const char *issuer, const char *client_id, GError **error)
{
  if (!is_made_of (name, KEYHOLD_ACCOUNT_NAME_MAX_LENGTH, is_name_char))
    return set_invalid (error, "name: an account name must be 1 to 64 characters "
                               "of A-Z, a-z, 0-9, “.”, “_” and “-”");
  if (!keyhold_url_policy_check_issuer (issuer, error))
    {
      g_prefix_error (error, "issuer: ");
      return FALSE;
    }
  if (!is_made_of (client_id, KEYHOLD_CLIENT_ID_MAX_LENGTH, is_client_id_char))
    return set_invalid (error, "client_id: a client ID must be 1 to 256 printable "
                               "ASCII characters");
  return TRUE;
}

KeyholdAccountConfig *
keyhold_account_config_new (const char *name,
                            const char *issuer,
                            const char *client_id,
                            const char *const *scopes,
                            const char *const *api_origins,
                            GError **error)
{
  g_autoptr (KeyholdAccountConfig) config = NULL;

  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (issuer != NULL, NULL);
  g_return_val_if_fail (client_id != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!validate_fields (name, issuer, client_id, error))
    return NULL;

  config = g_new0 (KeyholdAccountConfig, 1);
  config->scopes = normalize_scopes (scopes, error);
  if (config->scopes == NULL)
    return NULL;
  config->api_origins = normalize_list ("api_origins", api_origins, KEYHOLD_MAX_API_ORIGINS,
                                        keyhold_url_policy_origin, error);
  if (config->api_origins == NULL)
    return NULL;
  config->name = g_strdup (name);
  config->issuer = g_strdup (issuer);
  config->client_id = g_strdup (client_id);
  return g_steal_pointer (&config);
}

KeyholdAccountConfig *
keyhold_account_config_copy (const KeyholdAccountConfig *config)
{
  KeyholdAccountConfig *copy;

  g_return_val_if_fail (config != NULL, NULL);

  copy = g_new0 (KeyholdAccountConfig, 1);
  copy->name = g_strdup (config->name);
  copy->issuer = g_strdup (config->issuer);
  copy->client_id = g_strdup (config->client_id);
  copy->scopes = g_strdupv (config->scopes);
  copy->api_origins = g_strdupv (config->api_origins);
  return copy;
}

void
keyhold_account_config_free (KeyholdAccountConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->name);
  g_free (config->issuer);
  g_free (config->client_id);
  g_strfreev (config->scopes);
  g_strfreev (config->api_origins);
  g_free (config);
}

/* ---- the accounts file -------------------------------------------------- */

/* Parts of the message come from the file, which need not be UTF-8; D-Bus
 * error messages must be. */
static gboolean
set_storage_error (GError **error, const char *path, const char *group, const char *reason)
{
  g_autofree char *message = NULL;
  g_autofree char *valid = NULL;

  if (group != NULL)
    message = g_strdup_printf ("%s: [%s]: %s", path, group, reason);
  else
    message = g_strdup_printf ("%s: %s", path, reason);
  valid = g_utf8_make_valid (message, -1);
  g_set_error_literal (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE, valid);
  return FALSE;
}

static KeyholdConfig *
config_new (const char *path)
{
  KeyholdConfig *config = g_new0 (KeyholdConfig, 1);

  config->path = g_strdup (path);
  config->accounts = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                            (GDestroyNotify) keyhold_account_config_free);
  return config;
}

void
keyhold_config_free (KeyholdConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->path);
  g_hash_table_unref (config->accounts);
  g_free (config);
}

char *
keyhold_config_default_path (void)
{
  return g_build_filename (g_get_user_config_dir (), "keyhold", "accounts.conf", NULL);
}

/* Sets *out_contents to NULL when there is no file. */
static gboolean
read_config_file (const char *path, char **out_contents, gsize *out_length, GError **error)
{
  g_autoptr (GInputStream) stream = NULL;
  g_autoptr (GError) read_error = NULL;
  g_autofree char *contents = NULL;
  struct stat info;
  gsize length;
  int fd;

  /* O_NONBLOCK: a FIFO in the file's place must not hang the agent. */
  fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);
  if (fd < 0)
    {
      int saved_errno = errno;

      if (saved_errno != ENOENT)
        return set_storage_error (error, path, NULL, g_strerror (saved_errno));
      *out_contents = NULL;
      *out_length = 0;
      return TRUE;
    }
  stream = g_unix_input_stream_new (fd, TRUE);

  if (fstat (fd, &info) != 0 || !S_ISREG (info.st_mode))
    return set_storage_error (error, path, NULL, "not a regular file");
  if (info.st_size > KEYHOLD_CONFIG_MAX_FILE_SIZE)
    return set_storage_error (error, path, NULL, "larger than 1 MiB");

  /* One byte more than allowed, to notice a file that grew after fstat (). */
  contents = g_malloc (KEYHOLD_CONFIG_MAX_FILE_SIZE + 1);
  if (!g_input_stream_read_all (stream, contents, KEYHOLD_CONFIG_MAX_FILE_SIZE + 1, &length, NULL,
                                &read_error))
    return set_storage_error (error, path, NULL, read_error->message);
  if (length > KEYHOLD_CONFIG_MAX_FILE_SIZE)
    return set_storage_error (error, path, NULL, "larger than 1 MiB");

  *out_contents = g_steal_pointer (&contents);
  *out_length = length;
  return TRUE;
}

static int
find_account_key (const char *key)
{
  for (int i = 0; i < N_ACCOUNT_KEYS; i++)
    if (strcmp (account_keys[i], key) == 0)
      return i;
  return -1;
}

/* A misspelt key would otherwise read as an absent one; a repeated key
 * (GKeyFile keeps the last) hides the value the user meant. */
static gboolean
check_account_keys (GKeyFile *file, const char *group, GError **error)
{
  g_auto (GStrv) keys = g_key_file_get_keys (file, group, NULL, NULL);
  gboolean seen[N_ACCOUNT_KEYS] = {
    FALSE,
  };

  for (guint i = 0; keys[i] != NULL; i++)
    {
      int index = find_account_key (keys[i]);

      if (index < 0)
        {
          g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE, "unknown key “%s”", keys[i]);
          return FALSE;
        }
      if (seen[index])
        {
          g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE,
                       "key “%s” is set more than once", keys[i]);
          return FALSE;
        }
      seen[index] = TRUE;
    }
  return TRUE;
}

/* GKeyFile may report an invalid escape and still return a value, so
 * success is judged by the error alone. */
static gboolean
read_string (GKeyFile *file, const char *group, AccountKey key, char **out_value, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autofree char *value = g_key_file_get_string (file, group, account_keys[key], &local_error);

  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  *out_value = g_steal_pointer (&value);
  return TRUE;
}

/* Sets *out_list to NULL when the key is absent. */
static gboolean
read_optional_list (GKeyFile *file,
                    const char *group,
                    AccountKey key,
                    GStrv *out_list,
                    GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_auto (GStrv) list = NULL;

  if (g_key_file_has_key (file, group, account_keys[key], NULL))
    list = g_key_file_get_string_list (file, group, account_keys[key], NULL, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  *out_list = g_steal_pointer (&list);
  return TRUE;
}

static KeyholdAccountConfig *
account_from_group (GKeyFile *file, const char *group, GError **error)
{
  const char *name = group + strlen (ACCOUNT_GROUP_PREFIX);
  g_autofree char *issuer = NULL;
  g_autofree char *client_id = NULL;
  g_auto (GStrv) scopes = NULL;
  g_auto (GStrv) api_origins = NULL;

  if (!check_account_keys (file, group, error)
      || !read_string (file, group, ACCOUNT_KEY_ISSUER, &issuer, error)
      || !read_string (file, group, ACCOUNT_KEY_CLIENT_ID, &client_id, error)
      || !read_optional_list (file, group, ACCOUNT_KEY_SCOPES, &scopes, error)
      || !read_optional_list (file, group, ACCOUNT_KEY_API_ORIGINS, &api_origins, error))
    return NULL;

  return keyhold_account_config_new (name, issuer, client_id, (const char *const *) scopes,
                                     (const char *const *) api_origins, error);
}

static gboolean
parse_accounts (KeyholdConfig *config, const char *contents, gsize length, GError **error)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  g_autoptr (GError) local_error = NULL;
  g_auto (GStrv) groups = NULL;
  gsize n_groups;

  /* GKeyFile stops reading at a NUL byte, so every account after it would
   * be lost without a word. */
  if (memchr (contents, '\0', length) != NULL)
    return set_storage_error (error, config->path, NULL, "contains a NUL byte");
  if (!g_key_file_load_from_data (file, contents, length, G_KEY_FILE_NONE, &local_error))
    return set_storage_error (error, config->path, NULL, local_error->message);

  groups = g_key_file_get_groups (file, &n_groups);
  if (n_groups > KEYHOLD_CONFIG_MAX_ACCOUNTS)
    return set_storage_error (error, config->path, NULL, "more than 256 accounts");

  for (gsize i = 0; i < n_groups; i++)
    {
      KeyholdAccountConfig *account;

      if (!g_str_has_prefix (groups[i], ACCOUNT_GROUP_PREFIX))
        return set_storage_error (error, config->path, groups[i],
                                  "unknown group; expected [account NAME]");
      account = account_from_group (file, groups[i], &local_error);
      if (account == NULL)
        return set_storage_error (error, config->path, groups[i], local_error->message);
      g_hash_table_insert (config->accounts, account->name, account);
    }
  return TRUE;
}

KeyholdConfig *
keyhold_config_load (const char *path, GError **error)
{
  g_autoptr (KeyholdConfig) config = NULL;
  g_autofree char *contents = NULL;
  gsize length;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  config = config_new (path);
  if (!read_config_file (path, &contents, &length, error))
    return NULL;
  if (contents != NULL && !parse_accounts (config, contents, length, error))
    return NULL;
  return g_steal_pointer (&config);
}

gboolean
keyhold_config_add (KeyholdConfig *config, KeyholdAccountConfig *account, GError **error)
{
  g_autoptr (KeyholdAccountConfig) owned = account;

  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (account != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (g_hash_table_contains (config->accounts, account->name))
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_ALREADY_EXISTS,
                   "An account named “%s” already exists", account->name);
      return FALSE;
    }
  if (g_hash_table_size (config->accounts) >= KEYHOLD_CONFIG_MAX_ACCOUNTS)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_QUOTA_EXCEEDED,
                   "There are already %d accounts, the most keyhold keeps",
                   KEYHOLD_CONFIG_MAX_ACCOUNTS);
      return FALSE;
    }
  g_hash_table_insert (config->accounts, account->name, g_steal_pointer (&owned));
  return TRUE;
}

gboolean
keyhold_config_remove (KeyholdConfig *config, const char *name, GError **error)
{
  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (g_hash_table_remove (config->accounts, name))
    return TRUE;
  g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NO_SUCH_ACCOUNT,
               "There is no account named “%s”", name);
  return FALSE;
}

const KeyholdAccountConfig *
keyhold_config_lookup (KeyholdConfig *config, const char *name)
{
  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);

  return g_hash_table_lookup (config->accounts, name);
}

static int
compare_account_names (gconstpointer a, gconstpointer b)
{
  const KeyholdAccountConfig *const *left = a;
  const KeyholdAccountConfig *const *right = b;

  return strcmp ((*left)->name, (*right)->name);
}

GPtrArray *
keyhold_config_list (KeyholdConfig *config)
{
  GPtrArray *accounts;
  GHashTableIter iter;
  gpointer account;

  g_return_val_if_fail (config != NULL, NULL);

  accounts = g_ptr_array_sized_new (g_hash_table_size (config->accounts));
  g_hash_table_iter_init (&iter, config->accounts);
  while (g_hash_table_iter_next (&iter, NULL, &account))
    g_ptr_array_add (accounts, account);
  g_ptr_array_sort (accounts, compare_account_names);
  return accounts;
}

static void
write_account (GKeyFile *file, const KeyholdAccountConfig *account)
{
  g_autofree char *group = g_strconcat (ACCOUNT_GROUP_PREFIX, account->name, NULL);

  g_key_file_set_string (file, group, account_keys[ACCOUNT_KEY_ISSUER], account->issuer);
  g_key_file_set_string (file, group, account_keys[ACCOUNT_KEY_CLIENT_ID], account->client_id);
  g_key_file_set_string_list (file, group, account_keys[ACCOUNT_KEY_SCOPES],
                              (const char *const *) account->scopes,
                              g_strv_length (account->scopes));
  g_key_file_set_string_list (file, group, account_keys[ACCOUNT_KEY_API_ORIGINS],
                              (const char *const *) account->api_origins,
                              g_strv_length (account->api_origins));
}

gboolean
keyhold_config_save (KeyholdConfig *config, GError **error)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  g_autoptr (GPtrArray) accounts = NULL;
  g_autoptr (GError) write_error = NULL;
  g_autofree char *directory = NULL;
  g_autofree char *data = NULL;
  gsize length;

  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  accounts = keyhold_config_list (config);
  for (guint i = 0; i < accounts->len; i++)
    write_account (file, g_ptr_array_index (accounts, i));
  data = g_key_file_to_data (file, &length, NULL);

  directory = g_path_get_dirname (config->path);
  if (g_mkdir_with_parents (directory, 0700) != 0)
    return set_storage_error (error, directory, NULL, g_strerror (errno));
  if (!g_file_set_contents_full (config->path, data, length, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                 &write_error))
    return set_storage_error (error, config->path, NULL, write_error->message);
  return TRUE;
}
