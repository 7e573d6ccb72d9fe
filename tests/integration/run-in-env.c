/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "agent-client.h"

/* Runs a program against the integration environment: a private bus,
 * keyring, mock provider and the built agent, with one account signed in.
 *
 *   run-in-env ACCOUNT PROGRAM [ARGUMENT...]
 *
 * PROGRAM sees KEYHOLD_TEST_ACCOUNT=ACCOUNT, HOME with mock.json (the mock's
 * ports), and GI_TYPELIB_PATH and LD_LIBRARY_PATH leading to the built
 * libkeyhold. Its exit status is ours; a failure of the agent to end
 * cleanly (under valgrind: with errors) is a failure too. */

static void
prepend_build_path (const char *variable, const char *dir)
{
  const char *old = g_getenv (variable);
  g_autofree char *value
      = old != NULL && *old != '\0' ? g_strconcat (dir, ":", old, NULL) : g_strdup (dir);

  g_setenv (variable, value, TRUE);
}

int
main (int argc, char **argv)
{
  g_autofree char *libclient = NULL;
  KeyholdTestEnv *env;
  g_autoptr (JsonNode) reply = NULL;
  int status;

  if (argc < 3)
    {
      fprintf (stderr, "usage: %s ACCOUNT PROGRAM [ARGUMENT...]\n", argv[0]);
      return 2;
    }

  libclient = g_build_filename (g_getenv ("KEYHOLD_BUILD_DIR"), "libclient", NULL);
  prepend_build_path ("GI_TYPELIB_PATH", libclient);
  prepend_build_path ("LD_LIBRARY_PATH", libclient);
  g_setenv ("KEYHOLD_TEST_ACCOUNT", argv[1], TRUE);

  env = keyhold_test_env_start (KEYHOLD_TEST_ENV_KEYRING | KEYHOLD_TEST_ENV_MOCK
                                | KEYHOLD_TEST_ENV_AGENT);
  reply = keyhold_test_env_mock (env, "POST", "/settings", "{\"device_interval\": 1}");
  keyhold_test_add_account (env, argv[1]);
  keyhold_test_login (env, argv[1]);

  status = keyhold_test_env_run (env, (const char *const *) argv + 2, NULL, NULL);
  fprintf (stderr, "run-in-env: %s exited with status %d\n", argv[2], status);
  if (keyhold_test_env_stop_agent (env) != 0 && status == 0)
    status = 1;
  keyhold_test_env_stop (env);
  return status;
}
