/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <string.h>

#include <gio/gio.h>

/* `meson install --destdir` puts every file where the desktop looks for it,
 * and what it installs works together: the activation file and the unit
 * start the installed agent, and a program builds against the installed
 * headers and pkg-config file and runs with the installed library.
 *
 *   test-install MESON CC CC-FLAGS SNIPPET.c PATH...
 *
 * CC-FLAGS are the build's own flags that a program linking the library
 * needs too (the sanitizers), maybe none. PATH... are the absolute paths
 * (under the prefix) that must be there. */

static const char *meson_program;
static const char *cc_program;
static const char *cc_flags;
static const char *snippet_source;
static char **expected_paths;
static char *destdir;

static char *
staged (const char *path)
{
  return g_build_filename (destdir, path, NULL);
}

static char *
run (const char *const *argv, const char *const *envp)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *err = NULL;
  char *out = NULL;
  int wait_status;

  if (!g_spawn_sync (NULL, (char **) argv, (char **) envp, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                     &err, &wait_status, &error))
    ck_abort_msg ("cannot run %s: %s", argv[0], error->message);
  ck_assert_msg (g_spawn_check_wait_status (wait_status, NULL), "%s failed:\n%s%s", argv[0], out,
                 err);
  return out;
}

static const char *
expected_path_ending (const char *suffix)
{
  for (guint i = 0; expected_paths[i] != NULL; i++)
    if (g_str_has_suffix (expected_paths[i], suffix))
      return expected_paths[i];
  ck_abort_msg ("no expected path ends in %s", suffix);
  return NULL;
}

static GKeyFile *
load_key_file (const char *path)
{
  g_autofree char *file = staged (path);
  g_autoptr (GError) error = NULL;
  GKeyFile *key_file = g_key_file_new ();

  ck_assert_msg (g_key_file_load_from_file (key_file, file, G_KEY_FILE_NONE, &error), "%s: %s",
                 file, error ? error->message : "");
  return key_file;
}

/* The first word of an Exec= line must be the installed agent. */
static void
assert_starts_installed_agent (const char *command_line)
{
  g_auto (GStrv) argv = NULL;
  g_autofree char *program = NULL;

  ck_assert (g_shell_parse_argv (command_line, NULL, &argv, NULL));
  ck_assert_str_eq (argv[0], expected_path_ending ("/keyhold-agent"));
  program = staged (argv[0]);
  ck_assert_msg (g_file_test (program, G_FILE_TEST_IS_EXECUTABLE), "%s", program);
}

START_TEST (test_every_file_is_installed)
{
  for (guint i = 0; expected_paths[i] != NULL; i++)
    {
      g_autofree char *path = staged (expected_paths[i]);

      ck_assert_msg (g_file_test (path, G_FILE_TEST_EXISTS), "%s was not installed",
                     expected_paths[i]);
    }
}
END_TEST

START_TEST (test_activation_starts_the_installed_agent)
{
  g_autoptr (GKeyFile) service
      = load_key_file (expected_path_ending ("/org.keyhold.Agent.service"));
  g_autoptr (GKeyFile) unit = load_key_file (expected_path_ending ("/keyhold-agent.service"));
  g_autofree char *name = g_key_file_get_string (service, "D-BUS Service", "Name", NULL);
  g_autofree char *exec = g_key_file_get_string (service, "D-BUS Service", "Exec", NULL);
  g_autofree char *unit_name
      = g_key_file_get_string (service, "D-BUS Service", "SystemdService", NULL);
  g_autofree char *type = g_key_file_get_string (unit, "Service", "Type", NULL);
  g_autofree char *bus_name = g_key_file_get_string (unit, "Service", "BusName", NULL);
  g_autofree char *exec_start = g_key_file_get_string (unit, "Service", "ExecStart", NULL);

  ck_assert_str_eq (name, "org.keyhold.Agent");
  ck_assert_str_eq (unit_name, "keyhold-agent.service");
  assert_starts_installed_agent (exec);
  ck_assert_str_eq (type, "dbus");
  ck_assert_str_eq (bus_name, "org.keyhold.Agent");
  assert_starts_installed_agent (exec_start);
}
END_TEST

/* The compiler and linker flags for keyhold-1 as installed under destdir,
 * plus those of the packages it requires, as the system has them. */
static GStrv
installed_flags (const char *pc_dir)
{
  g_auto (GStrv) envp = g_environ_setenv (g_get_environ (), "PKG_CONFIG_PATH", pc_dir, TRUE);
  const char *prefix_argv[] = { "pkg-config", "--variable=prefix", "keyhold-1", NULL };
  const char *requires_argv[] = { "pkg-config", "--print-requires", "keyhold-1", NULL };
  g_autofree char *prefix = g_strstrip (run (prefix_argv, (const char *const *) envp));
  g_autofree char *staged_prefix = staged (prefix);
  g_autofree char *define_prefix = g_strconcat ("--define-variable=prefix=", staged_prefix, NULL);
  g_autofree char *required = run (requires_argv, (const char *const *) envp);
  g_auto (GStrv) required_list = g_strsplit_set (g_strstrip (required), "\n", -1);
  /* Depth 2 is the package itself: the system's packages keep their prefix. */
  const char *own_argv[]
      = { "pkg-config", define_prefix, "--maximum-traverse-depth=2", "--cflags", "--libs",
          "keyhold-1",  NULL };
  g_autofree char *own = run (own_argv, (const char *const *) envp);
  g_autoptr (GStrvBuilder) deps_argv = g_strv_builder_new ();
  g_auto (GStrv) deps_argv_list = NULL;
  g_autofree char *deps = NULL;
  g_autofree char *all = NULL;
  char **flags = NULL;

  ck_assert_msg (strstr (own, destdir) != NULL, "pkg-config ignored the staged prefix: %s", own);
  g_strv_builder_add_many (deps_argv, "pkg-config", "--cflags", "--libs", NULL);
  g_strv_builder_addv (deps_argv, (const char **) required_list);
  deps_argv_list = g_strv_builder_end (deps_argv);
  deps = run ((const char *const *) deps_argv_list, NULL);
  all = g_strconcat (g_strstrip (own), " ", g_strstrip (deps), NULL);
  ck_assert (g_shell_parse_argv (all, NULL, &flags, NULL));
  return flags;
}

START_TEST (test_program_builds_and_runs_against_installed_library)
{
  g_autofree char *pc_file = staged (expected_path_ending ("/keyhold-1.pc"));
  g_autofree char *pc_dir = g_path_get_dirname (pc_file);
  g_autofree char *lib_dir = g_path_get_dirname (pc_dir);
  g_autofree char *program = g_build_filename (destdir, "snippet", NULL);
  g_auto (GStrv) flags = installed_flags (pc_dir);
  g_autoptr (GStrvBuilder) cc_argv = g_strv_builder_new ();
  g_auto (GStrv) cc = NULL;
  g_auto (GStrv) envp = NULL;
  const char *snippet_argv[] = { program, NULL };
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_auto (GStrv) build_flags = NULL;
  int wait_status;

  g_strv_builder_add_many (cc_argv, cc_program, snippet_source, "-o", program, NULL);
  if (cc_flags[0] != '\0')
    {
      ck_assert (g_shell_parse_argv (cc_flags, NULL, &build_flags, NULL));
      g_strv_builder_addv (cc_argv, (const char **) build_flags);
    }
  g_strv_builder_addv (cc_argv, (const char **) flags);
  cc = g_strv_builder_end (cc_argv);
  g_free (run ((const char *const *) cc, NULL));

  /* With no session bus, the installed library loads, runs and says so. */
  envp = g_environ_setenv (g_get_environ (), "LD_LIBRARY_PATH", lib_dir, TRUE);
  envp = g_environ_setenv (envp, "DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent", TRUE);
  ck_assert (g_spawn_sync (NULL, (char **) snippet_argv, envp, G_SPAWN_DEFAULT, NULL, NULL, &out,
                           &err, &wait_status, NULL));
  ck_assert_msg (strstr (err, "cannot connect to the session bus") != NULL, "%s", err);
}
END_TEST

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  SRunner *runner;
  Suite *suite = suite_create ("install");
  TCase *tcase = tcase_create ("install");
  int failed;

  if (argc < 6)
    {
      g_printerr ("usage: %s MESON CC CC-FLAGS SNIPPET.c PATH...\n", argv[0]);
      return 2;
    }
  meson_program = argv[1];
  cc_program = argv[2];
  cc_flags = argv[3];
  snippet_source = argv[4];
  expected_paths = argv + 5;

  destdir = g_dir_make_tmp ("keyhold-install-XXXXXX", &error);
  g_assert_no_error (error);
  {
    const char *install_argv[] = {
      meson_program, "install", "-C", g_getenv ("KEYHOLD_BUILD_DIR"), "--no-rebuild", "--quiet",
      "--destdir",   destdir,   NULL
    };
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int wait_status;

    if (!g_spawn_sync (NULL, (char **) install_argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                       &err, &wait_status, &error)
        || !g_spawn_check_wait_status (wait_status, &error))
      g_error ("meson install failed: %s\n%s%s", error->message, out, err);
  }

  tcase_add_test (tcase, test_every_file_is_installed);
  tcase_add_test (tcase, test_activation_starts_the_installed_agent);
  tcase_add_test (tcase, test_program_builds_and_runs_against_installed_library);
  suite_add_tcase (suite, tcase);
  runner = srunner_create (suite);
  srunner_set_fork_status (runner, CK_NOFORK);
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);

  {
    const char *rm_argv[] = { "rm", "-rf", destdir, NULL };

    g_spawn_sync (NULL, (char **) rm_argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                  NULL);
  }
  g_free (destdir);
  return failed == 0 ? 0 : 1;
}
