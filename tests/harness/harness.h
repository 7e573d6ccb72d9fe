/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "keyhold-contract.h"

G_BEGIN_DECLS

/* The integration test environment: a throwaway HOME, a private
 * dbus-daemon, and on request a real gnome-keyring-daemon, the mock
 * provider (tests/mock/) and the built keyhold-agent.
 *
 * How to use it with check
 * ------------------------
 * Check runs every test in a forked child by default. GDBus and GLib's
 * child watches rely on helper threads, and a forked child gets none of its
 * parent's threads, so:
 *
 *  - Start the environment in an UNCHECKED fixture
 *    (tcase_add_unchecked_fixture) or in main () around srunner_run_all ().
 *    Both run in the parent process, so the teardown (and with it
 *    keyhold_test_env_stop ()) runs even when a forked test fails. The
 *    harness itself never creates a GDBus connection or a child watch, so
 *    the parent stays free of helper threads and the forked tests can use
 *    GDBus, libsecret and GSubprocess.
 *  - Call keyhold_test_env_get_bus (), libsecret and keyhold_test_env_spawn ()
 *    only inside tests (or checked fixtures), never in the parent.
 *  - Tests that need a fresh agent start and stop it in a CHECKED fixture
 *    (tcase_add_checked_fixture). If such a test fails, check ends the child
 *    without running the teardown; the agent then dies with it, because
 *    every process the harness spawns gets PR_SET_PDEATHSIG (SIGKILL).
 *  - With CK_FORK=no (for a debugger) everything runs in one process, and
 *    the shared session connection that libsecret makes ends the process
 *    (exit-on-close) when the first environment's bus stops: run one test
 *    case at a time then (CK_RUN_CASE=...).
 *
 * Under valgrind, every forked test is leak-checked when it exits. Debian
 * 12's libsecret (0.20.5) leaks in its *_sync wrappers and on every
 * successful secret_password_lookup (), so tests call libsecret's async
 * functions, and read secrets back with secret-tool or a search followed
 * by secret_retrievable_retrieve_secret ().
 *
 * The variables HOME, XDG_{CONFIG,DATA,CACHE}_HOME, XDG_RUNTIME_DIR and
 * DBUS_SESSION_BUS_ADDRESS of the test process itself are pointed into the
 * environment, so libsecret and GDBus calls made by the test reach the
 * private bus and keyring. GLib caches the user directories on first use:
 * do not call g_get_home_dir () and friends before keyhold_test_env_start ().
 *
 * The keyring keeps its data in TMPDIR/keyring-data, apart from the agent's
 * XDG_DATA_HOME, so tests can search the agent's files for secrets without
 * hitting the keyring's (encrypted) file. Logs of the children are in
 * TMPDIR/{dbus,keyring,mock,agent}.log (valgrind's reports on the agent in
 * TMPDIR/valgrind-agent.PID.log); set KEYHOLD_TEST_KEEP_TMPDIR=1 to
 * keep the directory after the test for a post-mortem.
 *
 * Every failure to set up the environment is fatal (g_error): a test
 * cannot say anything useful without it.
 *
 * Unless started UNWATCHED, dbus-monitor watches the bus throughout, and
 * keyhold_test_env_stop () ends the program with status 1 when any error
 * crossed the bus with a name GDBus made up (org.gtk.GDBus.UnmappedGError.*)
 * or a message still prefixed "GDBus.Error:": every error path the tests
 * drive is checked for a stable org.keyhold.Error.* name and a clean
 * message (TMPDIR/bus-errors.log has the errors seen). */
typedef struct _KeyholdTestEnv KeyholdTestEnv;

typedef enum
{
  KEYHOLD_TEST_ENV_KEYRING = 1 << 0,
  KEYHOLD_TEST_ENV_MOCK = 1 << 1,
  KEYHOLD_TEST_ENV_AGENT = 1 << 2,
  /* No dbus-monitor on the bus (for benchmarks, which it would slow). */
  KEYHOLD_TEST_ENV_UNWATCHED = 1 << 3,
} KeyholdTestEnvFlags;

/* Always starts the bus; the flags add the other components (AGENT starts
 * it with no extra arguments). */
KeyholdTestEnv *keyhold_test_env_start (KeyholdTestEnvFlags flags);
/* Idempotent: kills the agent, mock, keyring and bus (in that order), waits
 * for them, removes the temporary directory and releases what @env holds;
 * the handle stays valid, so a second call is harmless. Only the process
 * that started a child kills it, and only the process that created @env
 * removes the directory, so a forked test calling it is harmless too. An
 * atexit () handler does the same for every environment not stopped. */
void keyhold_test_env_stop (KeyholdTestEnv *env);

/* A connection of the calling process to the private bus, made on first use
 * in each process and owned by @env. */
GDBusConnection *keyhold_test_env_get_bus (KeyholdTestEnv *env);
/* "http://127.0.0.1:PORT" of the mock provider (the issuer), or NULL
 * without KEYHOLD_TEST_ENV_MOCK. */
const char *keyhold_test_env_get_issuer (KeyholdTestEnv *env);
/* The throwaway HOME. */
const char *keyhold_test_env_get_tmpdir (KeyholdTestEnv *env);

/* Starts $KEYHOLD_BUILD_DIR/agent/keyhold-agent (under valgrind when
 * KEYHOLD_TEST_UNDER_VALGRIND=1) and waits until org.keyhold.Agent has an
 * owner: 20 s, ten times that under valgrind. Fatal if the agent exits or
 * the time runs out. The previous agent, if any, is forgotten but left
 * running: stop it first unless the test is about --replace. */
void keyhold_test_env_start_agent (KeyholdTestEnv *env, const char *const *extra_args);

/* Sets a variable in the environment of agents started from now on, and of
 * no other process (e.g. DBUS_SYSTEM_BUS_ADDRESS, or libfaketime's). */
void keyhold_test_env_set_agent_env (KeyholdTestEnv *env, const char *name, const char *value);

/* The private bus's address. */
const char *keyhold_test_env_get_bus_address (KeyholdTestEnv *env);
/* An address of the same bus that processes of other Unix users can reach. */
const char *keyhold_test_env_get_other_user_address (KeyholdTestEnv *env);
/* SIGTERM, then waits (20 s, ×10 under valgrind; SIGKILL after that).
 * Returns the exit code, 128 + signal number if a signal ended it, or 99
 * when valgrind found errors (the valgrind log is copied to stderr). */
int keyhold_test_env_stop_agent (KeyholdTestEnv *env);
/* Waits for the agent to exit by itself (after --replace, a signal the test
 * sent, a lost bus), as long as keyhold_test_env_stop_agent () would.
 * Returns its exit status decoded the same way, or -1 if it is still
 * running (it is left running then). */
int keyhold_test_env_wait_agent (KeyholdTestEnv *env);
/* SIGKILL and reap, as a crash or power loss would end it. */
void keyhold_test_env_kill_agent (KeyholdTestEnv *env);
/* The pid of the agent (of valgrind, which is the same process), or 0. */
GPid keyhold_test_env_get_agent_pid (KeyholdTestEnv *env);
/* Everything the agents wrote to stdout and stderr so far (TMPDIR/agent.log,
 * appended across restarts). */
char *keyhold_test_env_read_agent_log (KeyholdTestEnv *env);

/* A request to the mock's control port; @json_body may be NULL. Returns the
 * parsed JSON answer (a JSON null for an empty body). Fatal on a transport
 * failure, an HTTP status of 400 or more, or an answer that is not JSON. */
JsonNode *keyhold_test_env_mock (KeyholdTestEnv *env,
                                 const char *method,
                                 const char *path,
                                 const char *json_body);

/* Plain HTTP for tests that play the browser or the app. A @url starting
 * with "/" is relative to the issuer. @headers is a NULL-terminated list of
 * "Name: value" lines, or NULL; a @body without a Content-Type header is
 * sent as application/x-www-form-urlencoded. Redirects are not followed.
 * Returns the HTTP status, or 0 when the request could not be made. The
 * out parameters (nullable) receive the body and the Location header (NULL
 * when there is none). */
guint keyhold_test_env_http (KeyholdTestEnv *env,
                             const char *method,
                             const char *url,
                             const char *const *headers,
                             const char *body,
                             char **out_body,
                             char **out_location);

/* Runs @argv (searched in PATH when it has no slash) with the environment's
 * variables, stdin from /dev/null, in the temporary HOME, and waits for it.
 * Returns its exit status (decoded like keyhold_test_env_stop_agent ()).
 * Output whose out parameter is NULL goes to the test's own stdout/stderr. */
int keyhold_test_env_run (KeyholdTestEnv *env,
                          const char *const *argv,
                          char **out_stdout,
                          char **out_stderr);

/* Spawns @argv with the environment's variables, in the temporary HOME (for
 * programs that must run while the test talks to them, such as `keyhold
 * login`). Only in a forked test: GSubprocess relies on a helper thread. */
GSubprocess *keyhold_test_env_spawn (KeyholdTestEnv *env,
                                     const char *const *argv,
                                     GSubprocessFlags flags,
                                     GError **error);

G_END_DECLS
