/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define STARTUP_TIMEOUT_MS 20000
#define EXIT_TIMEOUT_MS 5000
#define POLL_INTERVAL_US (20 * 1000)
#define HTTP_TIMEOUT_S 120L
#define LOG_TAIL_BYTES 4096
#define KEYRING_PASSWORD "keyhold-test"
#define SECRETS_BUS_NAME "org.freedesktop.secrets"

typedef struct
{
  char *name;
  GPid pid;
  /* Only the process that spawned a child can wait for it; check's forked
   * tests share the parent's children in their copy of the env. */
  pid_t owner;
  guint exit_timeout_ms;
} Child;

struct _KeyholdTestEnv
{
  pid_t creator;
  gboolean stopped;
  char *tmpdir;
  char **envp;
  char *other_user_address;
  /* Added to envp for the agent only (keyhold_test_env_set_agent_env). */
  char **agent_envp;
  char *bus_address;
  char *issuer;
  guint control_port;
  /* In spawn order, so stopping walks it backwards. */
  GPtrArray *children;
  Child *agent;
  GDBusConnection *bus;
  pid_t bus_owner;
  gboolean bus_errors_failed;
};

static GSList *live_envs;

static void
child_free (Child *child)
{
  g_free (child->name);
  g_free (child);
}

static gboolean
under_valgrind (void)
{
  return g_strcmp0 (g_getenv ("KEYHOLD_TEST_UNDER_VALGRIND"), "1") == 0;
}

static guint
agent_timeout_ms (void)
{
  return STARTUP_TIMEOUT_MS * (under_valgrind () ? 10 : 1);
}

static char *
tmp_path (KeyholdTestEnv *env, const char *name)
{
  return g_build_filename (env->tmpdir, name, NULL);
}

static int
decode_wait_status (int wait_status)
{
  if (WIFEXITED (wait_status))
    return WEXITSTATUS (wait_status);
  if (WIFSIGNALED (wait_status))
    return 128 + WTERMSIG (wait_status);
  return -1;
}

/* ---- cleanup and fatal errors ---- */

static void
print_file_tail (const char *path)
{
  g_autofree char *contents = NULL;
  gsize length;
  const char *start;

  if (!g_file_get_contents (path, &contents, &length, NULL) || length == 0)
    return;
  start = length > LOG_TAIL_BYTES ? contents + length - LOG_TAIL_BYTES : contents;
  fprintf (stderr, "harness: ---- %s%s ----\n%s\nharness: ---- end of %s ----\n",
           length > LOG_TAIL_BYTES ? "end of " : "", path, start, path);
}

static void
print_log_tails (KeyholdTestEnv *env)
{
  g_autoptr (GDir) dir = NULL;
  const char *name;

  if (env->tmpdir == NULL || (dir = g_dir_open (env->tmpdir, 0, NULL)) == NULL)
    return;
  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (name, ".log"))
      {
        g_autofree char *path = tmp_path (env, name);
        print_file_tail (path);
      }
}

/* Also the safety net at exit. The envs themselves are never freed: in a
 * forked test they are the parent's, and a stopped one must stay valid
 * for a second keyhold_test_env_stop (). */
static void
stop_all_envs (void)
{
  for (GSList *l = live_envs; l != NULL; l = l->next)
    keyhold_test_env_stop (l->data);
}

/* A broken environment makes every later assertion meaningless, so setup
 * failures end the test process, after showing what the children logged
 * and cleaning up (abort () skips atexit handlers). */
static void G_GNUC_NORETURN G_GNUC_PRINTF (2, 3)
    fatal (KeyholdTestEnv *env, const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  fprintf (stderr, "harness: FATAL: %s\n", message);
  if (env != NULL)
    print_log_tails (env);
  stop_all_envs ();
  g_error ("harness: %s", message);
}

/* ---- children ---- */

/* Runs in the child between fork and exec: async-signal-safe calls only. */
static void
child_setup (gpointer user_data)
{
  pid_t parent = GPOINTER_TO_INT (user_data);

  /* Own process group, so a signal to it reaches helpers the child starts
   * itself, and death with the test process even if that one crashes. */
  setpgid (0, 0);
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (getppid () != parent)
    _exit (127);
}

static int
open_log (KeyholdTestEnv *env, const char *name)
{
  g_autofree char *path = tmp_path (env, name);
  int fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

  if (fd < 0)
    fatal (env, "cannot open %s: %s", path, g_strerror (errno));
  return fd;
}

/* @print_fd, if not -1, becomes fd 3 of the child. */
static Child *
spawn_child (KeyholdTestEnv *env,
             const char *name,
             const char *const *argv,
             const char *const *envp,
             const char *log_name,
             int print_fd,
             int *out_stdin_pipe)
{
  g_autoptr (GError) error = NULL;
  const int target_fd = 3;
  int log_fd = open_log (env, log_name);
  Child *child = g_new0 (Child, 1);
  gboolean ok;

  ok = g_spawn_async_with_pipes_and_fds (
      env->tmpdir, argv, envp, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, child_setup,
      GINT_TO_POINTER (getpid ()), -1, log_fd, log_fd, print_fd >= 0 ? &print_fd : NULL,
      print_fd >= 0 ? &target_fd : NULL, print_fd >= 0 ? 1 : 0, &child->pid, out_stdin_pipe, NULL,
      NULL, &error);
  close (log_fd);
  if (!ok)
    fatal (env, "cannot start %s: %s", name, error->message);

  child->name = g_strdup (name);
  child->owner = getpid ();
  child->exit_timeout_ms = EXIT_TIMEOUT_MS;
  g_ptr_array_add (env->children, child);
  fprintf (stderr, "harness: started %s (pid %d)\n", name, child->pid);
  return child;
}

/* Returns TRUE and the decoded status once @child is reaped. */
static gboolean
child_wait (Child *child, guint timeout_ms, int *out_status)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  for (;;)
    {
      int wait_status;
      pid_t reaped = waitpid (child->pid, &wait_status, WNOHANG);

      if (reaped == child->pid)
        {
          child->pid = 0;
          *out_status = decode_wait_status (wait_status);
          return TRUE;
        }
      if (reaped < 0 && errno != EINTR)
        {
          fprintf (stderr, "harness: cannot wait for %s (pid %d): %s\n", child->name, child->pid,
                   g_strerror (errno));
          child->pid = 0;
          *out_status = -1;
          return TRUE;
        }
      if (g_get_monotonic_time () >= deadline)
        return FALSE;
      g_usleep (POLL_INTERVAL_US);
    }
}

static void
child_signal (Child *child, int signal_number)
{
  if (kill (-child->pid, signal_number) < 0)
    kill (child->pid, signal_number);
}

static int
child_terminate (Child *child, int signal_number)
{
  int status;

  child_signal (child, signal_number);
  if (!child_wait (child, child->exit_timeout_ms, &status))
    {
      fprintf (stderr, "harness: %s (pid %d) ignored signal %d, killing it\n", child->name,
               child->pid, signal_number);
      child_signal (child, SIGKILL);
      if (!child_wait (child, EXIT_TIMEOUT_MS, &status))
        status = -1;
    }
  return status;
}

static void
forget_child (KeyholdTestEnv *env, Child *child)
{
  if (env->agent == child)
    env->agent = NULL;
  g_ptr_array_remove (env->children, child);
}

static void
stop_owned_children (KeyholdTestEnv *env)
{
  for (guint i = env->children->len; i > 0; i--)
    {
      Child *child = g_ptr_array_index (env->children, i - 1);
      int status;

      if (child->owner != getpid ())
        continue;
      if (child->pid != 0)
        {
          status = child_terminate (child, SIGTERM);
          fprintf (stderr, "harness: %s stopped with status %d\n", child->name, status);
        }
      forget_child (env, child);
    }
}

static void
check_still_running (KeyholdTestEnv *env, Child *child)
{
  int status;

  if (child_wait (child, 0, &status))
    fatal (env, "%s exited with status %d during startup", child->name, status);
}

/* ---- the bus, without GDBus ---- */

/* The harness asks the bus through the gdbus tool: a GDBus connection in the
 * parent would start GDBus's worker thread, which check's forked tests would
 * then lack. Returns 0 when @name has no owner. */
static GPid
name_owner_pid (KeyholdTestEnv *env, const char *name)
{
  const char *argv[] = { "gdbus",
                         "call",
                         "--address",
                         env->bus_address,
                         "--dest",
                         "org.freedesktop.DBus",
                         "--object-path",
                         "/org/freedesktop/DBus",
                         "--method",
                         "org.freedesktop.DBus.GetConnectionUnixProcessID",
                         name,
                         NULL };
  g_autofree char *output = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  int wait_status;
  guint32 pid = 0;

  if (!g_spawn_sync (NULL, (char **) argv, env->envp,
                     G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &output, NULL,
                     &wait_status, &error))
    fatal (env, "cannot run gdbus: %s", error->message);
  if (decode_wait_status (wait_status) != 0)
    return 0;

  reply = g_variant_parse (G_VARIANT_TYPE ("(u)"), output, NULL, NULL, &error);
  if (reply == NULL)
    fatal (env, "unexpected answer from gdbus: %s", output);
  g_variant_get (reply, "(u)", &pid);
  return (GPid) pid;
}

/* Waits until @name belongs to @child itself, not to some other process. */
static void
wait_for_name (KeyholdTestEnv *env, Child *child, const char *name, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  while (name_owner_pid (env, name) != child->pid)
    {
      check_still_running (env, child);
      if (g_get_monotonic_time () >= deadline)
        fatal (env, "%s did not own %s within %u ms", child->name, name, timeout_ms);
      g_usleep (POLL_INTERVAL_US);
    }
  fprintf (stderr, "harness: %s owns %s\n", child->name, name);
}

/* ---- temporary home and variables ---- */

static void
make_dir (KeyholdTestEnv *env, const char *name, const char *variable)
{
  g_autofree char *path = tmp_path (env, name);

  if (g_mkdir (path, 0700) < 0)
    fatal (env, "cannot create %s: %s", path, g_strerror (errno));
  if (variable != NULL)
    g_setenv (variable, path, TRUE);
}

static void
set_up_home (KeyholdTestEnv *env)
{
  static const char *const unset[] = {
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "DBUS_SESSION_BUS_ADDRESS",
    "DBUS_STARTER_ADDRESS",
    "DBUS_STARTER_BUS_TYPE",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
  };
  g_autoptr (GError) error = NULL;

  env->tmpdir = g_dir_make_tmp ("keyhold-test-XXXXXX", &error);
  if (env->tmpdir == NULL)
    fatal (env, "cannot create the temporary directory: %s", error->message);

  g_setenv ("HOME", env->tmpdir, TRUE);
  make_dir (env, "config", "XDG_CONFIG_HOME");
  make_dir (env, "data", "XDG_DATA_HOME");
  make_dir (env, "cache", "XDG_CACHE_HOME");
  make_dir (env, "runtime", "XDG_RUNTIME_DIR");
  make_dir (env, "keyring-data", NULL);
  make_dir (env, "services", NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (unset); i++)
    g_unsetenv (unset[i]);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  g_setenv ("GIO_USE_VFS", "local", TRUE);
  g_setenv ("NO_PROXY", "127.0.0.1,localhost", TRUE);
  g_setenv ("no_proxy", "127.0.0.1,localhost", TRUE);
  fprintf (stderr, "harness: HOME is %s\n", env->tmpdir);
}

/* ---- dbus-daemon ---- */

static void
write_bus_config (KeyholdTestEnv *env, const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *services = tmp_path (env, "services");
  g_autofree char *listen = g_markup_escape_text (env->tmpdir, -1);
  g_autofree char *servicedir = g_markup_escape_text (services, -1);
  g_autofree char *base = g_path_get_basename (env->tmpdir);

  env->other_user_address = g_strdup_printf ("unix:abstract=%s-other-users", base);
  /* The default session policy, but only our own service directory:
   * <standard_session_servicedirs/> would let the bus activate whatever the
   * machine has installed. Unlike a real session bus, this one also lets
   * other Unix users in, through an abstract socket they can reach, so that
   * tests can show the agent itself refusing them. */
  g_autofree char *config = g_strdup_printf (
      "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
      " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
      "<busconfig>\n"
      "  <type>session</type>\n"
      "  <keep_umask/>\n"
      "  <listen>unix:dir=%s</listen>\n"
      "  <listen>%s</listen>\n"
      "  <auth>EXTERNAL</auth>\n"
      "  <servicedir>%s</servicedir>\n"
      "  <policy context=\"default\">\n"
      "    <allow user=\"*\"/>\n"
      "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
      "    <allow eavesdrop=\"true\"/>\n"
      "    <allow own=\"*\"/>\n"
      "  </policy>\n"
      "</busconfig>\n",
      listen, env->other_user_address, servicedir);

  if (!g_file_set_contents (path, config, -1, &error))
    fatal (env, "cannot write %s: %s", path, error->message);
}

static char *
read_line_from_pipe (KeyholdTestEnv *env, int fd, guint timeout_ms)
{
  g_autoptr (GString) line = g_string_new (NULL);
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  while (strchr (line->str, '\n') == NULL)
    {
      struct pollfd pfd = { .fd = fd, .events = POLLIN };
      gint64 left_ms = (deadline - g_get_monotonic_time ()) / 1000;
      char buffer[256];
      int ready;
      ssize_t n;

      if (left_ms <= 0 || (ready = poll (&pfd, 1, (int) left_ms)) == 0)
        fatal (env, "no address from dbus-daemon within %u ms", timeout_ms);
      if (ready < 0)
        continue;
      n = read (fd, buffer, sizeof buffer);
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n <= 0)
        fatal (env, "dbus-daemon closed its address pipe without an address");
      g_string_append_len (line, buffer, n);
    }
  return g_strstrip (g_string_free (g_steal_pointer (&line), FALSE));
}

static void
start_bus (KeyholdTestEnv *env)
{
  g_autofree char *config_path = tmp_path (env, "session.conf");
  g_autofree char *config_arg = NULL;
  g_autoptr (GError) error = NULL;
  int address_pipe[2];

  write_bus_config (env, config_path);
  config_arg = g_strconcat ("--config-file=", config_path, NULL);
  if (!g_unix_open_pipe (address_pipe, FD_CLOEXEC, &error))
    fatal (env, "cannot create a pipe: %s", error->message);

  {
    const char *argv[] = { "dbus-daemon", config_arg, "--nofork", "--print-address=3", NULL };
    g_auto (GStrv) envp = g_get_environ ();

    spawn_child (env, "dbus-daemon", argv, (const char *const *) envp, "dbus.log", address_pipe[1],
                 NULL);
  }
  close (address_pipe[1]);
  env->bus_address = read_line_from_pipe (env, address_pipe[0], STARTUP_TIMEOUT_MS);
  close (address_pipe[0]);

  g_setenv ("DBUS_SESSION_BUS_ADDRESS", env->bus_address, TRUE);
  env->envp = g_get_environ ();
  fprintf (stderr, "harness: private bus at %s\n", env->bus_address);
}

/* ---- what crosses the bus ---- */

/* Error names GDBus makes up for a GError it has no D-Bus name for, and
 * the prefix a remote error's message keeps until it is stripped: an
 * error a user sees must be an org.keyhold.Error.* with a clean message. */
#define UNMAPPED_ERROR_MARK "UnmappedGError"
#define UNSTRIPPED_ERROR_MARK "GDBus.Error:"
#define ERRORS_LOG "bus-errors.log"

/* dbus-monitor watches the private bus while the environment lives. Only
 * error replies (with the line after: their message) and lines that carry
 * one of the marks reach its log, so the log holds no token that a test's
 * scan of HOME would find.
 *
 * The harness stops a child by signalling its process group. Here that
 * ends dbus-monitor, while awk ignores the signal and reads what is left
 * in the pipe, and the shell (which has a handler, so it waits for the
 * pipeline first) exits only after awk has written the last line. */
static void
start_error_watch (KeyholdTestEnv *env)
{
  g_autofree char *script = g_strdup_printf (
      "trap : TERM; dbus-monitor --address \"$1\" --monitor | (trap '' TERM; exec awk '"
      "/error_name=/ { print; if ((getline line) > 0) print line; fflush (); next } "
      "/%s|%s/ { print; fflush () }')",
      UNMAPPED_ERROR_MARK, UNSTRIPPED_ERROR_MARK);
  const char *argv[] = { "sh", "-c", script, "sh", env->bus_address, NULL };
  g_autofree char *bus_log = tmp_path (env, "dbus.log");
  gint64 deadline = g_get_monotonic_time () + (gint64) STARTUP_TIMEOUT_MS * 1000;
  Child *monitor;

  monitor = spawn_child (env, "dbus-monitor", argv, (const char *const *) env->envp, ERRORS_LOG, -1,
                         NULL);
  /* Messages sent before the bus made it a monitor would go unseen; the
   * bus says in its log when it has. */
  for (;;)
    {
      g_autofree char *said = NULL;

      if (g_file_get_contents (bus_log, &said, NULL, NULL) && strstr (said, "became a monitor"))
        break;
      check_still_running (env, monitor);
      if (g_get_monotonic_time () >= deadline)
        fatal (env, "dbus-monitor did not start monitoring within %u ms", STARTUP_TIMEOUT_MS);
      g_usleep (POLL_INTERVAL_US);
    }
}

/* Fails the test program when an error crossed the bus without a stable
 * name, or with a message that still names its D-Bus error. Runs after the
 * monitor stopped, so its log is complete. */
static void
check_bus_errors (KeyholdTestEnv *env)
{
  g_autofree char *path = tmp_path (env, ERRORS_LOG);
  g_autofree char *log = NULL;
  g_auto (GStrv) lines = NULL;
  guint bad = 0;

  if (!g_file_get_contents (path, &log, NULL, NULL))
    return;
  lines = g_strsplit (log, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (strstr (lines[i], UNMAPPED_ERROR_MARK) != NULL
        || strstr (lines[i], UNSTRIPPED_ERROR_MARK) != NULL)
      {
        fprintf (stderr, "harness: an error crossed the bus without a stable name: %s\n", lines[i]);
        bad++;
      }
  if (bad > 0)
    {
      fprintf (stderr,
               "harness: FAIL: %u error(s) on the bus were not org.keyhold.Error.* "
               "names with clean messages\n",
               bad);
      env->bus_errors_failed = TRUE;
    }
}

/* ---- gnome-keyring-daemon ---- */

static void
write_all (KeyholdTestEnv *env, int fd, const char *data)
{
  gsize left = strlen (data);

  while (left > 0)
    {
      ssize_t n = write (fd, data, left);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        fatal (env, "cannot write to a child: %s", g_strerror (errno));
      data += n;
      left -= (gsize) n;
    }
}

static void
start_keyring (KeyholdTestEnv *env)
{
  const char *argv[]
      = { "gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets", NULL };
  g_autofree char *keyring_data = tmp_path (env, "keyring-data");
  g_auto (GStrv) envp
      = g_environ_setenv (g_strdupv (env->envp), "XDG_DATA_HOME", keyring_data, TRUE);
  int password_pipe;
  Child *keyring;

  keyring = spawn_child (env, "gnome-keyring-daemon", argv, (const char *const *) envp,
                         "keyring.log", -1, &password_pipe);
  /* --unlock reads the password until EOF; it creates the "login" keyring
   * (the default collection) with it on first start. */
  write_all (env, password_pipe, KEYRING_PASSWORD);
  close (password_pipe);
  wait_for_name (env, keyring, SECRETS_BUS_NAME, STARTUP_TIMEOUT_MS);
}

/* ---- HTTP ---- */

static size_t
append_to_gstring (char *data, size_t size, size_t count, void *user_data)
{
  g_string_append_len (user_data, data, (gssize) (size * count));
  return size * count;
}

static gboolean
has_header (const char *const *headers, const char *name)
{
  gsize name_length = strlen (name);

  for (; headers != NULL && *headers != NULL; headers++)
    if (g_ascii_strncasecmp (*headers, name, name_length) == 0 && (*headers)[name_length] == ':')
      return TRUE;
  return FALSE;
}

static void
set_request_body (CURL *curl, const char *method, const char *body)
{
  gboolean default_method;

  if (body != NULL)
    {
      curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
      curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE, (long) strlen (body));
      default_method = g_str_equal (method, "POST");
    }
  else
    default_method = g_str_equal (method, "GET");

  if (g_str_equal (method, "HEAD"))
    curl_easy_setopt (curl, CURLOPT_NOBODY, 1L);
  else if (!default_method)
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
}

/* Returns the status, or 0 and the reason in @out_error. */
static guint
http_request (const char *method,
              const char *url,
              const char *const *headers,
              const char *body,
              char **out_body,
              char **out_location,
              char **out_error)
{
  CURL *curl = curl_easy_init ();
  struct curl_slist *header_list = NULL;
  g_autoptr (GString) response = g_string_new (NULL);
  char error_buffer[CURL_ERROR_SIZE] = "";
  char *location = NULL;
  long status = 0;
  CURLcode code;

  if (curl == NULL)
    g_error ("harness: curl_easy_init failed");
  for (const char *const *h = headers; h != NULL && *h != NULL; h++)
    header_list = curl_slist_append (header_list, *h);

  curl_easy_setopt (curl, CURLOPT_URL, url);
  curl_easy_setopt (curl, CURLOPT_PROXY, "");
  curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (curl, CURLOPT_TIMEOUT, HTTP_TIMEOUT_S);
  curl_easy_setopt (curl, CURLOPT_HTTPHEADER, header_list);
  curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, append_to_gstring);
  curl_easy_setopt (curl, CURLOPT_WRITEDATA, response);
  set_request_body (curl, method, body);

  code = curl_easy_perform (curl);
  if (code == CURLE_OK)
    {
      curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
      curl_easy_getinfo (curl, CURLINFO_REDIRECT_URL, &location);
      if (out_location != NULL)
        *out_location = g_strdup (location);
      if (out_body != NULL)
        *out_body = g_strdup (response->str);
    }
  else if (out_error != NULL)
    *out_error = g_strdup (error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror (code));

  curl_slist_free_all (header_list);
  curl_easy_cleanup (curl);
  return (guint) status;
}

/* ---- mock provider ---- */

static JsonObject *
read_port_file (const char *path)
{
  g_autofree char *contents = NULL;
  g_autoptr (JsonNode) root = NULL;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return NULL;
  root = json_from_string (contents, NULL);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  return json_object_ref (json_node_get_object (root));
}

static void
start_mock (KeyholdTestEnv *env)
{
  const char *source_dir = g_getenv ("KEYHOLD_SOURCE_DIR");
  const char *python = g_getenv ("KEYHOLD_PYTHON");
  g_autofree char *script = NULL;
  g_autofree char *port_file = tmp_path (env, "mock.json");
  g_autoptr (JsonObject) ports = NULL;
  g_autoptr (JsonNode) health = NULL;
  gint64 deadline = g_get_monotonic_time () + (gint64) STARTUP_TIMEOUT_MS * 1000;
  Child *mock;

  if (source_dir == NULL)
    fatal (env, "KEYHOLD_SOURCE_DIR is not set; run the tests through meson test");
  script = g_build_filename (source_dir, "tests", "mock", "mock-provider.py", NULL);

  {
    const char *argv[]
        = { python != NULL ? python : "python3", script, "--port-file", port_file, NULL };

    mock = spawn_child (env, "mock-provider", argv, (const char *const *) env->envp, "mock.log", -1,
                        NULL);
  }

  /* The mock writes the file atomically once both ports listen. */
  while ((ports = read_port_file (port_file)) == NULL)
    {
      check_still_running (env, mock);
      if (g_get_monotonic_time () >= deadline)
        fatal (env, "the mock wrote no %s within %d ms", port_file, STARTUP_TIMEOUT_MS);
      g_usleep (POLL_INTERVAL_US);
    }

  env->issuer = g_strdup (json_object_get_string_member_with_default (ports, "issuer", ""));
  env->control_port = (guint) json_object_get_int_member_with_default (ports, "control_port", 0);
  if (env->issuer[0] == '\0' || env->control_port == 0)
    fatal (env, "%s lacks the issuer or the control port", port_file);

  health = keyhold_test_env_mock (env, "GET", "/health", NULL);
  fprintf (stderr, "harness: mock provider at %s, control port %u\n", env->issuer,
           env->control_port);
}

JsonNode *
keyhold_test_env_mock (KeyholdTestEnv *env,
                       const char *method,
                       const char *path,
                       const char *json_body)
{
  const char *headers[] = { "Content-Type: application/json", NULL };
  g_autofree char *url = NULL;
  g_autofree char *body = NULL;
  g_autofree char *failure = NULL;
  g_autoptr (GError) error = NULL;
  JsonNode *node;
  guint status;

  g_return_val_if_fail (env->control_port != 0, NULL);

  url = g_strdup_printf ("http://127.0.0.1:%u%s", env->control_port, path);
  status = http_request (method, url, headers, json_body, &body, NULL, &failure);
  if (status == 0)
    fatal (env, "mock control %s %s failed: %s", method, path, failure);
  if (status >= 400)
    fatal (env, "mock control %s %s answered %u: %s", method, path, status, body);

  if (body[0] == '\0')
    return json_node_new (JSON_NODE_NULL);
  node = json_from_string (body, &error);
  if (node == NULL)
    fatal (env, "mock control %s %s answered no JSON (%s): %s", method, path,
           error != NULL ? error->message : "empty", body);
  return node;
}

guint
keyhold_test_env_http (KeyholdTestEnv *env,
                       const char *method,
                       const char *url,
                       const char *const *headers,
                       const char *body,
                       char **out_body,
                       char **out_location)
{
  g_autofree char *absolute = NULL;
  g_autofree char *failure = NULL;
  guint status;

  if (url[0] == '/')
    {
      g_return_val_if_fail (env->issuer != NULL, 0);
      absolute = g_strconcat (env->issuer, url, NULL);
      url = absolute;
    }

  if (body != NULL && !has_header (headers, "Content-Type"))
    {
      g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
      g_auto (GStrv) with_type = NULL;

      if (headers != NULL)
        g_strv_builder_addv (builder, (const char **) headers);
      g_strv_builder_add (builder, "Content-Type: application/x-www-form-urlencoded");
      with_type = g_strv_builder_end (builder);
      status = http_request (method, url, (const char *const *) with_type, body, out_body,
                             out_location, &failure);
    }
  else
    status = http_request (method, url, headers, body, out_body, out_location, &failure);

  if (status == 0)
    fprintf (stderr, "harness: %s %s failed: %s\n", method, url, failure);
  return status;
}

/* ---- agent ---- */

static char *
agent_path (KeyholdTestEnv *env)
{
  const char *build_dir = g_getenv ("KEYHOLD_BUILD_DIR");
  char *path;

  if (build_dir == NULL)
    fatal (env, "KEYHOLD_BUILD_DIR is not set; run the tests through meson test");
  path = g_build_filename (build_dir, "agent", "keyhold-agent", NULL);
  if (!g_file_test (path, G_FILE_TEST_IS_EXECUTABLE))
    fatal (env, "%s is not built", path);
  return path;
}

static void
add_valgrind_args (KeyholdTestEnv *env, GStrvBuilder *argv)
{
  g_autofree char *suppressions
      = g_build_filename (g_getenv ("KEYHOLD_SOURCE_DIR"), "tests", "valgrind.supp", NULL);
  g_autofree char *log_file = tmp_path (env, "valgrind-agent.%p.log");

  g_autofree char *suppressions_arg = g_strconcat ("--suppressions=", suppressions, NULL);
  g_autofree char *log_file_arg = g_strconcat ("--log-file=", log_file, NULL);

  /* Deep stacks: a leak inside a library must show who called it. */
  g_strv_builder_add_many (argv, "valgrind", "--error-exitcode=99", "--leak-check=full",
                           "--errors-for-leak-kinds=definite", "--num-callers=40", suppressions_arg,
                           log_file_arg, NULL);
}

void
keyhold_test_env_set_agent_env (KeyholdTestEnv *env, const char *name, const char *value)
{
  if (env->agent_envp == NULL)
    env->agent_envp = g_strdupv (env->envp);
  env->agent_envp = g_environ_setenv (env->agent_envp, name, value, TRUE);
}

const char *
keyhold_test_env_get_bus_address (KeyholdTestEnv *env)
{
  return env->bus_address;
}

const char *
keyhold_test_env_get_other_user_address (KeyholdTestEnv *env)
{
  return env->other_user_address;
}

void
keyhold_test_env_start_agent (KeyholdTestEnv *env, const char *const *extra_args)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  g_autofree char *path = agent_path (env);
  g_auto (GStrv) argv = NULL;

  if (under_valgrind ())
    add_valgrind_args (env, builder);
  g_strv_builder_add (builder, path);
  if (extra_args != NULL)
    g_strv_builder_addv (builder, (const char **) extra_args);
  argv = g_strv_builder_end (builder);

  env->agent
      = spawn_child (env, "keyhold-agent", (const char *const *) argv,
                     (const char *const *) (env->agent_envp != NULL ? env->agent_envp : env->envp),
                     "agent.log", -1, NULL);
  env->agent->exit_timeout_ms = agent_timeout_ms ();
  wait_for_name (env, env->agent, KEYHOLD_AGENT_BUS_NAME, agent_timeout_ms ());
}

static void
report_valgrind_errors (KeyholdTestEnv *env, GPid pid)
{
  g_autofree char *name = g_strdup_printf ("valgrind-agent.%d.log", pid);
  g_autofree char *path = tmp_path (env, name);

  print_file_tail (path);
}

/* Reaps the agent once it has exited, within @timeout_ms; FALSE if it runs. */
static gboolean
finish_agent (KeyholdTestEnv *env, guint timeout_ms, int *out_status)
{
  Child *agent = env->agent;
  GPid pid = agent->pid;

  if (!child_wait (agent, timeout_ms, out_status))
    return FALSE;
  fprintf (stderr, "harness: keyhold-agent (pid %d) exited with status %d\n", pid, *out_status);
  if (under_valgrind () && *out_status == 99)
    report_valgrind_errors (env, pid);
  forget_child (env, agent);
  return TRUE;
}

int
keyhold_test_env_stop_agent (KeyholdTestEnv *env)
{
  int status = -1;

  if (env->agent == NULL)
    {
      fprintf (stderr, "harness: stop_agent: no agent is running\n");
      return -1;
    }
  child_signal (env->agent, SIGTERM);
  if (!finish_agent (env, agent_timeout_ms (), &status))
    {
      fprintf (stderr, "harness: keyhold-agent ignored SIGTERM, killing it\n");
      child_signal (env->agent, SIGKILL);
      finish_agent (env, EXIT_TIMEOUT_MS, &status);
    }
  return status;
}

int
keyhold_test_env_wait_agent (KeyholdTestEnv *env)
{
  int status;

  if (env->agent == NULL)
    {
      fprintf (stderr, "harness: wait_agent: no agent is running\n");
      return -1;
    }
  if (!finish_agent (env, agent_timeout_ms (), &status))
    return -1;
  return status;
}

void
keyhold_test_env_kill_agent (KeyholdTestEnv *env)
{
  int status = -1;

  if (env->agent == NULL)
    return;
  child_signal (env->agent, SIGKILL);
  finish_agent (env, EXIT_TIMEOUT_MS, &status);
}

GPid
keyhold_test_env_get_agent_pid (KeyholdTestEnv *env)
{
  return env->agent != NULL ? env->agent->pid : 0;
}

char *
keyhold_test_env_read_agent_log (KeyholdTestEnv *env)
{
  g_autofree char *path = tmp_path (env, "agent.log");
  char *contents = NULL;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return g_strdup ("");
  return contents;
}

/* ---- running programs ---- */

int
keyhold_test_env_run (KeyholdTestEnv *env,
                      const char *const *argv,
                      char **out_stdout,
                      char **out_stderr)
{
  g_autoptr (GError) error = NULL;
  int wait_status;

  if (!g_spawn_sync (env->tmpdir, (char **) argv, env->envp, G_SPAWN_SEARCH_PATH, child_setup,
                     GINT_TO_POINTER (getpid ()), out_stdout, out_stderr, &wait_status, &error))
    fatal (env, "cannot run %s: %s", argv[0], error->message);
  return decode_wait_status (wait_status);
}

GSubprocess *
keyhold_test_env_spawn (KeyholdTestEnv *env,
                        const char *const *argv,
                        GSubprocessFlags flags,
                        GError **error)
{
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (flags);

  g_subprocess_launcher_set_environ (launcher, env->envp);
  g_subprocess_launcher_set_cwd (launcher, env->tmpdir);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, GINT_TO_POINTER (getpid ()), NULL);
  return g_subprocess_launcher_spawnv (launcher, argv, error);
}

/* ---- the environment ---- */

GDBusConnection *
keyhold_test_env_get_bus (KeyholdTestEnv *env)
{
  g_autoptr (GError) error = NULL;

  if (env->bus != NULL && env->bus_owner == getpid ())
    return env->bus;

  /* A connection inherited from another process is useless here (its
   * worker thread did not survive the fork), and not ours to free. */
  env->bus = g_dbus_connection_new_for_address_sync (
      env->bus_address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
          | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);
  if (env->bus == NULL)
    fatal (env, "cannot connect to the private bus: %s", error->message);
  env->bus_owner = getpid ();
  return env->bus;
}

const char *
keyhold_test_env_get_issuer (KeyholdTestEnv *env)
{
  return env->issuer;
}

const char *
keyhold_test_env_get_tmpdir (KeyholdTestEnv *env)
{
  return env->tmpdir;
}

static void
remove_tmpdir (KeyholdTestEnv *env)
{
  const char *argv[] = { "rm", "-rf", "--one-file-system", "--", env->tmpdir, NULL };
  g_autoptr (GError) error = NULL;

  if (g_strcmp0 (g_getenv ("KEYHOLD_TEST_KEEP_TMPDIR"), "1") == 0)
    {
      fprintf (stderr, "harness: keeping %s\n", env->tmpdir);
      return;
    }
  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                     &error))
    fprintf (stderr, "harness: cannot remove %s: %s\n", env->tmpdir, error->message);
}

KeyholdTestEnv *
keyhold_test_env_start (KeyholdTestEnvFlags flags)
{
  static gboolean safety_net_installed;
  KeyholdTestEnv *env = g_new0 (KeyholdTestEnv, 1);

  env->creator = getpid ();
  env->children = g_ptr_array_new_with_free_func ((GDestroyNotify) child_free);
  live_envs = g_slist_prepend (live_envs, env);
  if (!safety_net_installed)
    {
      atexit (stop_all_envs);
      curl_global_init (CURL_GLOBAL_DEFAULT);
      safety_net_installed = TRUE;
    }

  set_up_home (env);
  start_bus (env);
  if (!(flags & KEYHOLD_TEST_ENV_UNWATCHED))
    start_error_watch (env);
  if (flags & KEYHOLD_TEST_ENV_KEYRING)
    start_keyring (env);
  if (flags & KEYHOLD_TEST_ENV_MOCK)
    start_mock (env);
  if (flags & KEYHOLD_TEST_ENV_AGENT)
    keyhold_test_env_start_agent (env, NULL);
  return env;
}

void
keyhold_test_env_stop (KeyholdTestEnv *env)
{
  if (env == NULL)
    return;

  if (env->bus != NULL && env->bus_owner == getpid ())
    {
      g_dbus_connection_close_sync (env->bus, NULL, NULL);
      g_clear_object (&env->bus);
    }
  if (env->children != NULL)
    stop_owned_children (env);
  if (env->creator != getpid () || env->stopped)
    return;

  env->stopped = TRUE;
  if (env->tmpdir != NULL)
    {
      check_bus_errors (env);
      remove_tmpdir (env);
    }
  g_clear_pointer (&env->children, g_ptr_array_unref);
  g_clear_pointer (&env->tmpdir, g_free);
  g_clear_pointer (&env->envp, g_strfreev);
  g_clear_pointer (&env->agent_envp, g_strfreev);
  g_clear_pointer (&env->other_user_address, g_free);
  g_clear_pointer (&env->bus_address, g_free);
  g_clear_pointer (&env->issuer, g_free);
  /* Past the tests' own verdicts, so the program's status is the way left
   * to fail them; everything of this environment is already cleaned up. */
  if (env->bus_errors_failed)
    _exit (1);
}
