/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Outbox throughput: what the durable queue (org.keyhold.Outbox1) costs and
 * delivers, on the real stack started by tests/harness.
 *
 *  1. Durable Enqueue throughput with 1 and 16 clients (separate bus
 *     connections, each keeping one Enqueue in flight), against SQLite with
 *     the agent's settings (WAL, synchronous=FULL) committing one row per
 *     transaction in the same directory: group commit should let 16 clients
 *     beat one fsync per insert.
 *  2. Drain rate to a local nginx answering 204, against curl --parallel
 *     sending the same requests to the same nginx.
 *  3. Enqueue latency and agent RSS with an (almost) empty queue and with a
 *     large one: neither should grow with the queue.
 *
 * The provider's API (the mock) is offline during 1 and 3 so the agent
 * cannot replay the items and the queue only grows. Nothing here asserts
 * on speed; the exit code stays 0 unless the environment broke. */
#include "config.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "agent-client.h"
#include "bench-common.h"

#define BENCH_ACCOUNT "bench"
#define DRAIN_ACCOUNT "drain"
#define CALL_TIMEOUT_MS 120000
#define BODY_SIZE 200

#define THROUGHPUT_ITEMS 2000
#define MANY_CLIENTS 16
#define DRAIN_ITEMS 10000
#define DRAIN_ITEMS_SMALL 2000
#define DRAIN_TIMEOUT_S 120.0
#define RESTART_DRAIN_TIMEOUT_S 30.0
#define LATENCY_WARMUP 100
#define LATENCY_SAMPLES 1000
#define FULL_QUEUE_ITEMS 100000
#define FULL_QUEUE_ITEMS_SMALL 20000
#define FILL_BUDGET_S 75.0

static guint8 request_body[BODY_SIZE];

/* ---- Enqueue over D-Bus ---- */

static GVariant *
enqueue_parameters (const char *account, const char *queue, const char *url)
{
  GVariantBuilder request;

  g_variant_builder_init (&request, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&request, "{sv}", "method", g_variant_new_string ("POST"));
  g_variant_builder_add (&request, "{sv}", "url", g_variant_new_string (url));
  g_variant_builder_add (&request, "{sv}", "headers",
                         g_variant_new_parsed ("[('Content-Type', 'application/octet-stream')]"));
  g_variant_builder_add (
      &request, "{sv}", "body",
      g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, request_body, BODY_SIZE, 1));
  return g_variant_new ("(ssa{sv})", account, queue, &request);
}

static void
enqueue_sync_or_die (GDBusConnection *connection, const char *account, const char *url)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;

  reply = g_dbus_connection_call_sync (
      connection, KEYHOLD_AGENT_BUS_NAME, KEYHOLD_AGENT_PATH, KEYHOLD_OUTBOX1_INTERFACE, "Enqueue",
      enqueue_parameters (account, "latency", url), G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE,
      CALL_TIMEOUT_MS, NULL, &error);
  if (reply == NULL)
    bench_die ("Enqueue failed: %s", error->message);
}

/* The call each client keeps in flight: Enqueue, or Peer.Ping for the
 * D-Bus ceiling. */
typedef struct
{
  const char *interface;
  const char *method;
  const char *reply_type;
} CallKind;

static const CallKind enqueue_call = { KEYHOLD_OUTBOX1_INTERFACE, "Enqueue", "(s)" };
static const CallKind ping_call = { "org.freedesktop.DBus.Peer", "Ping", "()" };

typedef struct
{
  const CallKind *kind;
  const char *account;
  const char *url;
  guint target;
  double deadline_us;
  guint issued;
  guint completed;
  guint failed;
  guint in_flight;
  char *first_error;
} CallRun;

typedef struct
{
  CallRun *run;
  GDBusConnection *connection;
  char *queue;
} Caller;

static void issue_call (Caller *caller);

static void
on_call_reply (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Caller *caller = user_data;
  CallRun *run = caller->run;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  run->in_flight--;
  if (reply != NULL)
    run->completed++;
  else
    {
      run->failed++;
      if (run->first_error == NULL)
        run->first_error = g_strdup (error->message);
    }
  if (run->issued < run->target && bench_now_us () < run->deadline_us)
    issue_call (caller);
}

static void
issue_call (Caller *caller)
{
  CallRun *run = caller->run;

  GVariant *parameters = NULL;

  run->issued++;
  run->in_flight++;
  if (run->kind == &enqueue_call)
    parameters = enqueue_parameters (run->account, caller->queue, run->url);
  g_dbus_connection_call (caller->connection, KEYHOLD_AGENT_BUS_NAME, KEYHOLD_AGENT_PATH,
                          run->kind->interface, run->kind->method, parameters,
                          G_VARIANT_TYPE (run->kind->reply_type), G_DBUS_CALL_FLAGS_NONE,
                          CALL_TIMEOUT_MS, NULL, on_call_reply, caller);
}

typedef struct
{
  guint completed;
  double seconds;
  /* CPU time per completed call: the agent's, and this process's (the
   * clients and GDBus's worker thread). */
  double agent_cpu_us;
  double client_cpu_us;
} CallResult;

static double agent_cpu_seconds (KeyholdTestEnv *env);
static double own_cpu_seconds (void);

/* Every connection keeps one @kind call in flight (an Enqueue on a queue of
 * its own) until @target calls were issued or @budget_s ran out. Fatal
 * when any call fails: a figure with failures in it would mislead. */
static CallResult
run_calls (KeyholdTestEnv *env,
           GPtrArray *connections,
           const CallKind *kind,
           const char *account,
           const char *url,
           guint target,
           double budget_s)
{
  double started = bench_now_us ();
  double agent_cpu_before = agent_cpu_seconds (env), own_cpu_before = own_cpu_seconds ();
  CallRun run = { .kind = kind,
                  .account = account,
                  .url = url,
                  .target = target,
                  .deadline_us = started + budget_s * 1e6 };
  g_autofree Caller *callers = g_new0 (Caller, connections->len);
  CallResult result;

  for (guint i = 0; i < connections->len && run.issued < target; i++)
    {
      callers[i] = (Caller) { &run, connections->pdata[i], g_strdup_printf ("q%u", i) };
      issue_call (&callers[i]);
    }
  while (run.in_flight > 0)
    g_main_context_iteration (NULL, TRUE);
  for (guint i = 0; i < connections->len; i++)
    g_free (callers[i].queue);
  if (run.failed > 0)
    bench_die ("%u of %u %s calls failed, the first with: %s", run.failed, run.issued, kind->method,
               run.first_error);
  result.completed = run.completed;
  result.seconds = (bench_now_us () - started) / 1e6;
  result.agent_cpu_us = (agent_cpu_seconds (env) - agent_cpu_before) * 1e6 / run.completed;
  result.client_cpu_us = (own_cpu_seconds () - own_cpu_before) * 1e6 / run.completed;
  return result;
}

static CallResult
run_enqueues (KeyholdTestEnv *env,
              GPtrArray *connections,
              const char *account,
              const char *url,
              guint target,
              double budget_s)
{
  return run_calls (env, connections, &enqueue_call, account, url, target, budget_s);
}

static double
calls_per_s (const CallResult *result)
{
  return result->completed / result->seconds;
}

/* ---- the agent's process ---- */

static guint64
agent_rss_kib (KeyholdTestEnv *env)
{
  g_autofree char *path
      = g_strdup_printf ("/proc/%d/status", (int) keyhold_test_env_get_agent_pid (env));
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents (path, &status, NULL, NULL))
    bench_die ("cannot read %s", path);
  line = strstr (status, "\nVmRSS:");
  if (line == NULL)
    bench_die ("no VmRSS in %s", path);
  return g_ascii_strtoull (line + strlen ("\nVmRSS:"), NULL, 10);
}

/* utime + stime of the agent, from /proc/PID/stat (fields 14 and 15,
 * counted after the parenthesised command name, which may hold spaces). */
static double
agent_cpu_seconds (KeyholdTestEnv *env)
{
  g_autofree char *path
      = g_strdup_printf ("/proc/%d/stat", (int) keyhold_test_env_get_agent_pid (env));
  g_autofree char *stat = NULL;
  g_auto (GStrv) fields = NULL;
  const char *after_name;

  if (!g_file_get_contents (path, &stat, NULL, NULL) || (after_name = strrchr (stat, ')')) == NULL)
    bench_die ("cannot read %s", path);
  fields = g_strsplit (after_name + 2, " ", 0);
  if (g_strv_length (fields) < 13)
    bench_die ("%s is shorter than expected", path);
  /* fields[0] is field 3 (state): utime is fields[11], stime fields[12]. */
  return (g_ascii_strtod (fields[11], NULL) + g_ascii_strtod (fields[12], NULL))
         / sysconf (_SC_CLK_TCK);
}

static double
own_cpu_seconds (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec
         + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

/* ---- queue cost ---- */

typedef struct
{
  double p50_us;
  double p99_us;
  guint64 rss_kib;
} QueueCost;

static QueueCost
measure_queue_cost (KeyholdTestEnv *env, const char *url)
{
  GDBusConnection *connection = keyhold_test_env_get_bus (env);
  g_autoptr (GArray) samples = g_array_sized_new (FALSE, FALSE, sizeof (double), LATENCY_SAMPLES);
  QueueCost cost;

  for (guint i = 0; i < LATENCY_WARMUP; i++)
    enqueue_sync_or_die (connection, BENCH_ACCOUNT, url);
  for (guint i = 0; i < LATENCY_SAMPLES; i++)
    {
      double start = bench_now_us ();
      double elapsed;

      enqueue_sync_or_die (connection, BENCH_ACCOUNT, url);
      elapsed = bench_now_us () - start;
      g_array_append_val (samples, elapsed);
    }
  cost.p50_us = bench_percentile (samples, 50);
  cost.p99_us = bench_percentile (samples, 99);
  cost.rss_kib = agent_rss_kib (env);
  return cost;
}

/* ---- 1. SQLite baseline ---- */

static void
sqlite_or_die (sqlite3 *db, int rc, const char *what)
{
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
    bench_die ("sqlite baseline: %s: %s", what, sqlite3_errmsg (db));
}

/* One INSERT per transaction in autocommit mode: one fsync (WAL, FULL)
 * per row, what an outbox without group commit would pay. */
static double
sqlite_inserts_per_s (const char *dir, guint count)
{
  g_autofree char *path = g_build_filename (dir, "baseline.sqlite", NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *insert = NULL;
  double started, seconds;

  if (sqlite3_open (path, &db) != SQLITE_OK)
    bench_die ("sqlite baseline: cannot open %s", path);
  sqlite_or_die (db,
                 sqlite3_exec (db,
                               "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                               "CREATE TABLE items (id TEXT PRIMARY KEY, queue TEXT NOT NULL,"
                               " request BLOB NOT NULL)",
                               NULL, NULL, NULL),
                 "schema");
  sqlite_or_die (db,
                 sqlite3_prepare_v2 (db, "INSERT INTO items (id, queue, request) VALUES (?, ?, ?)",
                                     -1, &insert, NULL),
                 "prepare");
  started = bench_now_us ();
  for (guint i = 0; i < count; i++)
    {
      g_autofree char *id = g_uuid_string_random ();

      sqlite3_bind_text (insert, 1, id, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text (insert, 2, "q0", -1, SQLITE_STATIC);
      sqlite3_bind_blob (insert, 3, request_body, BODY_SIZE, SQLITE_STATIC);
      sqlite_or_die (db, sqlite3_step (insert), "insert");
      sqlite3_reset (insert);
    }
  seconds = (bench_now_us () - started) / 1e6;
  sqlite3_finalize (insert);
  sqlite3_close (db);
  g_unlink (path);
  return count / seconds;
}

/* fsync costs nothing on tmpfs: the baseline only means something next to
 * the filesystem it ran on. */
static char *
filesystem_type (const char *dir)
{
  g_autoptr (GFile) file = g_file_new_for_path (dir);
  g_autoptr (GFileInfo) info
      = g_file_query_filesystem_info (file, G_FILE_ATTRIBUTE_FILESYSTEM_TYPE, NULL, NULL);

  if (info == NULL)
    return g_strdup ("unknown");
  return g_strdup (g_file_info_get_attribute_string (info, G_FILE_ATTRIBUTE_FILESYSTEM_TYPE));
}

/* ---- 2. nginx and curl ---- */

typedef struct
{
  GSubprocess *process;
  char *dir;
  guint16 port;
  FILE *access_log;
  guint64 requests_logged;
} Nginx;

static void
die_with_parent (gpointer user_data)
{
  (void) user_data;
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static GSubprocess *
spawn_or_die (const char *const *argv, GSubprocessFlags flags)
{
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (flags);
  g_autoptr (GError) error = NULL;
  GSubprocess *process;

  /* Should the bench die, its children must not outlive it. */
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  if (process == NULL)
    bench_die ("cannot run %s: %s", argv[0], error->message);
  return process;
}

static guint16
free_port (void)
{
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  if (socket == NULL || !g_socket_bind (socket, any, FALSE, &error)
      || (bound = g_socket_get_local_address (socket, &error)) == NULL)
    bench_die ("cannot find a free port: %s", error->message);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static gboolean
port_accepts (guint16 port)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) connection
      = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, NULL);

  return connection != NULL;
}

static void
nginx_launch (Nginx *nginx)
{
  g_autofree char *config_path = g_build_filename (nginx->dir, "nginx.conf", NULL);
  g_autofree char *error_log = g_build_filename (nginx->dir, "error.log", NULL);
  const char *argv[] = { "nginx", "-p", nginx->dir, "-c", config_path, "-e", error_log, NULL };
  double deadline = bench_now_us () + 10e6;

  nginx->process = spawn_or_die (argv, G_SUBPROCESS_FLAGS_NONE);
  while (!port_accepts (nginx->port))
    {
      if (bench_now_us () > deadline)
        bench_die ("nginx does not listen on port %u (see %s)", nginx->port, error_log);
      g_usleep (50000);
    }
}

static void
nginx_halt (Nginx *nginx)
{
  g_subprocess_send_signal (nginx->process, SIGQUIT);
  g_subprocess_wait (nginx->process, NULL, NULL);
  g_clear_object (&nginx->process);
}

static void
nginx_start (Nginx *nginx, const char *parent_dir)
{
  g_autofree char *config_path = NULL;
  g_autofree char *config = NULL;
  g_autofree char *log_path = NULL;
  g_autofree char *error_log = NULL;

  nginx->dir = g_build_filename (parent_dir, "nginx", NULL);
  g_mkdir_with_parents (nginx->dir, 0700);
  nginx->port = free_port ();
  config_path = g_build_filename (nginx->dir, "nginx.conf", NULL);
  log_path = g_build_filename (nginx->dir, "access.log", NULL);
  error_log = g_build_filename (nginx->dir, "error.log", NULL);
  /* One process, no master: a 204 costs nginx next to nothing, the agent
   * and curl need the other core, and PR_SET_PDEATHSIG reaches the process
   * that serves (a master's orphaned worker would outlive the bench). */
  config = g_strdup_printf ("daemon off;\n"
                            "master_process off;\n"
                            "pid %s/nginx.pid;\n"
                            "error_log %s;\n"
                            "events { worker_connections 1024; }\n"
                            "http {\n"
                            "  access_log %s;\n"
                            "  client_body_temp_path %s/body;\n"
                            "  keepalive_requests 1000000;\n"
                            "  server {\n"
                            "    listen 127.0.0.1:%u;\n"
                            "    location / { return 204; }\n"
                            "  }\n"
                            "}\n",
                            nginx->dir, error_log, log_path, nginx->dir, nginx->port);
  if (!g_file_set_contents (config_path, config, -1, NULL))
    bench_die ("cannot write %s", config_path);

  nginx_launch (nginx);
  nginx->access_log = fopen (log_path, "r");
  if (nginx->access_log == NULL)
    bench_die ("cannot open %s", log_path);
}

/* Reads what nginx appended to its access log since the last call. */
static guint64
nginx_requests (Nginx *nginx)
{
  char chunk[65536];
  size_t length;

  clearerr (nginx->access_log);
  while ((length = fread (chunk, 1, sizeof chunk, nginx->access_log)) > 0)
    for (size_t i = 0; i < length; i++)
      nginx->requests_logged += chunk[i] == '\n';
  return nginx->requests_logged;
}

static void
nginx_stop (Nginx *nginx)
{
  nginx_halt (nginx);
  fclose (nginx->access_log);
  g_free (nginx->dir);
}

/* Waits until nginx logged @target requests; returns when, or 0 on timeout. */
static double
wait_for_requests (Nginx *nginx, guint64 target, double timeout_s)
{
  double deadline = bench_now_us () + timeout_s * 1e6;

  while (nginx_requests (nginx) < target)
    {
      if (bench_now_us () > deadline)
        return 0;
      g_usleep (10000);
    }
  return bench_now_us ();
}

static char *
nginx_url (Nginx *nginx, const char *path)
{
  return g_strdup_printf ("http://127.0.0.1:%u%s", nginx->port, path);
}

/* curl --parallel with the same requests the agent sends: POST, the body,
 * a bearer token and an Idempotency-Key. */
static double
curl_requests_per_s (Nginx *nginx, guint count)
{
  g_autofree char *body_path = g_build_filename (nginx->dir, "request-body", NULL);
  g_autofree char *urls_path = g_build_filename (nginx->dir, "curl.conf", NULL);
  g_autofree char *body_arg = g_strconcat ("@", body_path, NULL);
  g_autoptr (GString) urls = g_string_new (NULL);
  g_autoptr (GSubprocess) curl = NULL;
  g_autoptr (GError) error = NULL;
  guint64 before = nginx_requests (nginx);
  double started, seconds;
  const char *argv[] = { "curl",
                         "--silent",
                         "--no-progress-meter",
                         "--show-error",
                         "--parallel",
                         "--parallel-max",
                         "16",
                         "-X",
                         "POST",
                         "-H",
                         "Content-Type: application/octet-stream",
                         "-H",
                         "Authorization: Bearer bench-token-of-similar-length-0123456789",
                         "-H",
                         "Idempotency-Key: \"00000000-0000-4000-8000-000000000000\"",
                         "--data-binary",
                         body_arg,
                         "--config",
                         urls_path,
                         NULL };

  if (!g_file_set_contents (body_path, (const char *) request_body, BODY_SIZE, NULL))
    bench_die ("cannot write %s", body_path);
  for (guint i = 0; i < count; i++)
    g_string_append_printf (urls, "url = \"http://127.0.0.1:%u/items/%u\"\n", nginx->port, i);
  if (!g_file_set_contents (urls_path, urls->str, urls->len, NULL))
    bench_die ("cannot write %s", urls_path);

  started = bench_now_us ();
  curl = spawn_or_die (argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  if (!g_subprocess_wait_check (curl, NULL, &error))
    bench_die ("curl failed: %s", error->message);
  seconds = (bench_now_us () - started) / 1e6;
  if (nginx_requests (nginx) - before != count)
    bench_die ("nginx logged %" G_GUINT64_FORMAT " requests from curl, not %u",
               nginx_requests (nginx) - before, count);
  return count / seconds;
}

/* The queue filled while the API was unreachable, then the agent starts
 * with the API up: the clock runs from the agent owning its bus name to the
 * last 204, so Enqueue is out of the figure. The mock is online meanwhile,
 * so the items queued for it in sections 1 and 3a may go out too. The heads of the queues tried
 * once while nginx was down, so they may wait out their first backoff. */
static double
drain_after_restart (KeyholdTestEnv *env,
                     Nginx *nginx,
                     GPtrArray *connections,
                     const char *url,
                     guint count)
{
  guint64 before;
  double started, done;

  nginx_halt (nginx);
  run_enqueues (env, connections, DRAIN_ACCOUNT, url, count, 600);
  keyhold_test_env_stop_agent (env);
  nginx_launch (nginx);
  /* A restarted agent holds no access token yet: it must refresh one. */
  keyhold_test_mock_post (env, "/online", NULL);
  before = nginx_requests (nginx);
  started = bench_now_us ();
  keyhold_test_env_start_agent (env, NULL);
  done = wait_for_requests (nginx, before + count, RESTART_DRAIN_TIMEOUT_S);
  printf ("agent CPU us per item after the restart (its start-up included): %.0f\n",
          agent_cpu_seconds (env) * 1e6 / count);
  keyhold_test_mock_post (env, "/offline", NULL);
  if (done == 0)
    {
      printf ("after restart: only %" G_GUINT64_FORMAT " of %u items delivered within %.0f s\n",
              nginx_requests (nginx) - before, count, RESTART_DRAIN_TIMEOUT_S);
      return 0;
    }
  return count / ((done - started) / 1e6);
}

/* ---- setup ---- */

/* An account whose API is the local nginx: the agent only sends to an
 * account's api origins. */
static void
add_drain_account (KeyholdTestEnv *env, Nginx *nginx)
{
  g_autofree char *cli
      = g_build_filename (g_getenv ("KEYHOLD_BUILD_DIR"), "examples", "keyhold", NULL);
  g_autofree char *origin = nginx_url (nginx, "");
  const char *argv[] = { cli,           "account",     "add",
                         DRAIN_ACCOUNT, "--issuer",    keyhold_test_env_get_issuer (env),
                         "--client-id", "test-client", "--api-origin",
                         origin,        NULL };
  g_autofree char *err = NULL;

  if (keyhold_test_env_run (env, argv, NULL, &err) != 0)
    bench_die ("keyhold account add %s failed: %s", DRAIN_ACCOUNT, err);
  keyhold_test_login (env, DRAIN_ACCOUNT);
}

int
main (void)
{
  KeyholdTestEnv *env;
  Nginx nginx = { 0 };
  g_autoptr (GPtrArray) one = NULL;
  g_autoptr (GPtrArray) many = NULL;
  g_autofree char *api_url = NULL;
  g_autofree char *drain_url = NULL;
  QueueCost empty, full;
  CallResult single, parallel, ping, drain_enqueue, fill;
  double started, baseline, restart_per_s, drain_start, drain_done, drain_per_s, curl_per_s;
  guint drain_items, fill_target, queued;

  bench_default_environment ();
  for (guint i = 0; i < BODY_SIZE; i++)
    request_body[i] = (guint8) g_random_int ();

  env = keyhold_test_env_start (KEYHOLD_TEST_ENV_UNWATCHED | KEYHOLD_TEST_ENV_KEYRING
                                | KEYHOLD_TEST_ENV_MOCK | KEYHOLD_TEST_ENV_AGENT);
  keyhold_test_mock_post (env, "/settings", "{\"device_interval\": 1}");
  keyhold_test_add_account (env, BENCH_ACCOUNT);
  keyhold_test_login (env, BENCH_ACCOUNT);
  nginx_start (&nginx, keyhold_test_env_get_tmpdir (env));
  add_drain_account (env, &nginx);
  api_url = g_strconcat (keyhold_test_env_get_issuer (env), "/api/items", NULL);
  drain_url = nginx_url (&nginx, "/items");
  /* Items for the mock's API stay queued from here on. */
  keyhold_test_mock_post (env, "/offline", NULL);

  started = bench_now_us ();
  printf ("keyhold outbox-throughput benchmark (%s build, GLib %u.%u.%u, SQLite %s, %u CPUs)\n",
          KEYHOLD_BENCH_BUILDTYPE, glib_major_version, glib_minor_version, glib_micro_version,
          sqlite3_libversion (), g_get_num_processors ());
  printf ("request: POST, %u-byte body, one header\n", BODY_SIZE);

  bench_print_section ("3a. Enqueue latency and agent RSS, queue (almost) empty");
  empty = measure_queue_cost (env, api_url);
  printf ("(the queue holds only the %u items these calls enqueued)\n",
          LATENCY_WARMUP + LATENCY_SAMPLES);
  printf ("enqueue latency p50 us (empty): %.0f\n", empty.p50_us);
  printf ("enqueue latency p99 us (empty): %.0f\n", empty.p99_us);
  printf ("agent VmRSS KiB (empty): %" G_GUINT64_FORMAT "\n", empty.rss_kib);

  bench_print_section ("1. Durable Enqueue throughput (mock API offline)");
  one = bench_open_connections (1);
  many = bench_open_connections (MANY_CLIENTS);
  baseline = sqlite_inserts_per_s (keyhold_test_env_get_tmpdir (env), THROUGHPUT_ITEMS);
  single = run_enqueues (env, one, BENCH_ACCOUNT, api_url, THROUGHPUT_ITEMS, 600);
  parallel = run_enqueues (env, many, BENCH_ACCOUNT, api_url, THROUGHPUT_ITEMS, 600);
  /* What D-Bus alone allows: GDBus answers Peer.Ping on the agent's worker
   * thread, so this is the client, the bus and the agent's socket, with no
   * work in the agent's main loop and no disk. */
  ping = run_calls (env, many, &ping_call, NULL, NULL, THROUGHPUT_ITEMS, 600);
  {
    g_autofree char *fs_type = filesystem_type (keyhold_test_env_get_tmpdir (env));

    printf ("items per run: %u; agent database and baseline on %s\n", THROUGHPUT_ITEMS, fs_type);
  }
  printf ("sqlite one-fsync-per-insert baseline items/s: %.0f\n", baseline);
  printf ("keyhold 1-client items/s: %.0f\n", calls_per_s (&single));
  printf ("keyhold %u-client items/s: %.0f\n", MANY_CLIENTS, calls_per_s (&parallel));
  printf ("D-Bus ceiling: Peer.Ping with %u clients calls/s: %.0f\n", MANY_CLIENTS,
          calls_per_s (&ping));
  printf ("CPU us per call, agent / client process: 1-client Enqueue %.0f / %.0f, "
          "%u-client Enqueue %.0f / %.0f, %u-client Ping %.0f / %.0f\n",
          single.agent_cpu_us, single.client_cpu_us, MANY_CLIENTS, parallel.agent_cpu_us,
          parallel.client_cpu_us, MANY_CLIENTS, ping.agent_cpu_us, ping.client_cpu_us);
  printf ("ratio keyhold 1-client/baseline: %.2f\n", bench_ratio (calls_per_s (&single), baseline));
  printf ("ratio keyhold %u-client/baseline: %.2f\n", MANY_CLIENTS,
          bench_ratio (calls_per_s (&parallel), baseline));
  printf ("ratio keyhold %u-client/D-Bus ceiling: %.2f\n", MANY_CLIENTS,
          bench_ratio (calls_per_s (&parallel), calls_per_s (&ping)));
  printf ("ratio D-Bus ceiling/baseline: %.2f (no D-Bus service can beat the baseline by more)\n",
          bench_ratio (calls_per_s (&ping), baseline));

  bench_print_section ("2. Drain rate to nginx (return 204)");
  /* Enqueueing 10,000 items must fit the time budget alongside the rest. */
  drain_items = calls_per_s (&parallel) * 30 >= DRAIN_ITEMS ? DRAIN_ITEMS : DRAIN_ITEMS_SMALL;
  if (drain_items != DRAIN_ITEMS)
    printf ("SCALED DOWN: %u items instead of %u (enqueue too slow for the time budget)\n",
            drain_items, DRAIN_ITEMS);
  /* The agent delivers while the items arrive: the clock runs from the first
   * Enqueue to the last 204, on one queue per client: the agent keeps one
   * item in flight per queue. */
  drain_start = bench_now_us ();
  {
    guint64 target = nginx_requests (&nginx) + drain_items;

    drain_enqueue = run_enqueues (env, many, DRAIN_ACCOUNT, drain_url, drain_items, 600);
    drain_done = wait_for_requests (&nginx, target, DRAIN_TIMEOUT_S);
    if (drain_done == 0)
      bench_die ("nginx saw only %" G_GUINT64_FORMAT " of %u requests after %.0f s",
                 nginx_requests (&nginx) - (target - drain_items), drain_items, DRAIN_TIMEOUT_S);
  }
  drain_per_s = drain_items / ((drain_done - drain_start) / 1e6);
  curl_per_s = curl_requests_per_s (&nginx, drain_items);
  printf ("items: %u on %u queues, measured from the first Enqueue to the last 204\n", drain_items,
          MANY_CLIENTS);
  printf ("enqueue phase s: %.2f, last delivery s: %.2f\n", drain_enqueue.seconds,
          (drain_done - drain_start) / 1e6);
  printf ("keyhold drain items/s: %.0f\n", drain_per_s);
  printf ("curl --parallel --parallel-max 16 requests/s: %.0f\n", curl_per_s);
  printf ("ratio keyhold/curl: %.2f\n", bench_ratio (drain_per_s, curl_per_s));
  printf ("agent CPU us per item while enqueueing and delivering: %.0f\n",
          drain_enqueue.agent_cpu_us);
  restart_per_s = drain_after_restart (env, &nginx, many, drain_url, drain_items);
  printf ("keyhold drain from a full queue after an agent restart items/s: %.0f\n", restart_per_s);
  printf ("ratio keyhold-after-restart/curl: %.2f\n", bench_ratio (restart_per_s, curl_per_s));

  bench_print_section ("3b. Enqueue latency and agent RSS, queue full");
  /* Earlier items may have gone out while the mock was online in section 2,
   * so only the ones queued from here on count. */
  fill_target = FULL_QUEUE_ITEMS;
  if (calls_per_s (&parallel) * FILL_BUDGET_S < FULL_QUEUE_ITEMS)
    fill_target = FULL_QUEUE_ITEMS_SMALL;
  fill = run_enqueues (env, many, BENCH_ACCOUNT, api_url, fill_target, FILL_BUDGET_S);
  queued = fill.completed;
  if (queued < FULL_QUEUE_ITEMS)
    printf ("SCALED DOWN: %u items queued instead of %u (enqueue too slow for the time "
            "budget of %.0f s)\n",
            queued, FULL_QUEUE_ITEMS, FILL_BUDGET_S);
  printf ("filled %u items in %.1f s (%.0f items/s, %u clients)\n", fill.completed, fill.seconds,
          fill.completed / fill.seconds, MANY_CLIENTS);
  full = measure_queue_cost (env, api_url);
  printf ("items queued during measurement: at least %u\n", queued);
  printf ("enqueue latency p50 us (full): %.0f\n", full.p50_us);
  printf ("enqueue latency p99 us (full): %.0f\n", full.p99_us);
  printf ("agent VmRSS KiB (full): %" G_GUINT64_FORMAT " (the agent was restarted in section 2)\n",
          full.rss_kib);
  printf ("ratio latency p50 full/empty: %.2f\n", bench_ratio (full.p50_us, empty.p50_us));
  printf ("ratio latency p99 full/empty: %.2f\n", bench_ratio (full.p99_us, empty.p99_us));
  printf ("ratio VmRSS full/empty: %.2f\n",
          bench_ratio ((double) full.rss_kib, (double) empty.rss_kib));

  printf ("\nmeasured in %.0f s; informational only, the exit code does not depend on speed\n",
          (bench_now_us () - started) / 1e6);
  fflush (stdout);

  g_clear_pointer (&one, g_ptr_array_unref);
  g_clear_pointer (&many, g_ptr_array_unref);
  nginx_stop (&nginx);
  keyhold_test_env_stop (env);
  return 0;
}
