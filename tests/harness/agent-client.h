/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "harness.h"

G_BEGIN_DECLS

/* What integration tests do to the agent, the way an application or the
 * user would: D-Bus calls on the private bus and runs of the built CLI. */

/* The object path of account @name. */
char *keyhold_test_account_path (const char *name);

/* `keyhold account add NAME --issuer MOCK --client-id test-client
 * --api-origin MOCK`; asserts it succeeds. */
void keyhold_test_add_account (KeyholdTestEnv *env, const char *name);
/* `keyhold login NAME` (device flow, the mock approves); asserts success. */
void keyhold_test_login (KeyholdTestEnv *env, const char *name);
/* Runs the built `keyhold` CLI with the arguments after @out_stderr (a
 * NULL-terminated list), as keyhold_test_env_run () runs a program, and
 * returns its exit status. */
int keyhold_test_run_cli (KeyholdTestEnv *env, char **out_stdout, char **out_stderr, ...)
    G_GNUC_NULL_TERMINATED;

/* Account1.GetAccessToken over @connection (the env's bus when NULL).
 * Returns the token, or NULL with @error set to the D-Bus error. */
char *keyhold_test_get_token (KeyholdTestEnv *env,
                              const char *name,
                              const char *const *scopes,
                              const char *audience,
                              guint min_validity,
                              gint64 *out_expires_at,
                              GError **error);

/* A property of org.keyhold.Account1, read fresh from the agent. */
GVariant *keyhold_test_account_property (KeyholdTestEnv *env,
                                         const char *name,
                                         const char *property);
char *keyhold_test_account_state (KeyholdTestEnv *env, const char *name);

/* The refresh token the agent keeps in the keyring for @name, read
 * independently through libsecret; NULL when there is none. */
char *keyhold_test_keyring_refresh_token (KeyholdTestEnv *env, const char *name);

/* Number of requests the mock's token endpoint got with @grant_type. */
guint keyhold_test_count_token_requests (KeyholdTestEnv *env, const char *grant_type);

/* POSTs @json (may be NULL) to the mock's control @path, discarding the reply. */
void keyhold_test_mock_post (KeyholdTestEnv *env, const char *path, const char *json);
/* Whether the mock provider accepts @access_token now. */
gboolean keyhold_test_mock_token_is_valid (KeyholdTestEnv *env, const char *access_token);

/* The remote D-Bus error name of @error ("" when it has none). */
const char *keyhold_test_error_name (const GError *error);

G_END_DECLS
