/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"

/* ---- an HTTP server in the test's own main loop ------------------------- */

typedef enum
{
  /* Answer with the canned reply (or the request's path), then close. */
  SERVE_REPLY,
  SERVE_PATH,
  /* Read the request, then close without a word. */
  SERVE_HANG_UP,
  /* Read the request and never answer. */
  SERVE_SILENT,
  /* Send the canned reply, then one more byte every 200 ms. */
  SERVE_TRICKLE,
} ServeMode;

typedef struct
{
  GSocketService *service;
  guint16 port;
  ServeMode mode;
  char *reply;
  /* Every complete request as received, head and body. */
  GPtrArray *requests;
  GPtrArray *connections;
  GCancellable *cancellable;
  /* Asynchronous operations whose callbacks have not run yet. */
  guint pending;
} TestServer;

typedef struct
{
  TestServer *server;
  GSocketConnection *connection;
  GString *received;
  char buffer[4096];
  guint trickle_id;
} Connection;

static TestServer *server;
static KeyholdHttp *http;

static void connection_read (Connection *connection);

static gboolean
request_is_complete (const GString *received)
{
  const char *head_end = strstr (received->str, "\r\n\r\n");
  g_autofree char *head = NULL;
  const char *length_field;
  gsize body_length = 0;

  if (head_end == NULL)
    return FALSE;
  head = g_ascii_strdown (received->str, head_end - received->str);
  length_field = strstr (head, "\r\ncontent-length:");
  if (length_field != NULL)
    body_length = strtoul (length_field + strlen ("\r\ncontent-length:"), NULL, 10);
  return received->len >= (gsize) (head_end + 4 - received->str) + body_length;
}

static char *
request_path (const char *request)
{
  const char *start = strchr (request, ' ') + 1;

  return g_strndup (start, strchr (start, ' ') - start);
}

static void
on_reply_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Connection *connection = user_data;

  connection->server->pending--;
  g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, NULL);
  if (connection->server->mode != SERVE_TRICKLE)
    g_io_stream_close (G_IO_STREAM (connection->connection), NULL, NULL);
}

static void
connection_write (Connection *connection, char *text)
{
  GOutputStream *output = g_io_stream_get_output_stream (G_IO_STREAM (connection->connection));

  /* The text lives as long as the connection, which outlives the write. */
  g_object_set_data_full (G_OBJECT (connection->connection), "reply", text, g_free);
  connection->server->pending++;
  g_output_stream_write_all_async (output, text, strlen (text), G_PRIORITY_DEFAULT,
                                   connection->server->cancellable, on_reply_written, connection);
}

static gboolean
on_trickle (gpointer user_data)
{
  Connection *connection = user_data;
  GOutputStream *output = g_io_stream_get_output_stream (G_IO_STREAM (connection->connection));

  if (!g_output_stream_write_all (output, "x", 1, NULL, NULL, NULL))
    {
      connection->trickle_id = 0;
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static void
connection_answer (Connection *connection)
{
  TestServer *test_server = connection->server;

  g_ptr_array_add (test_server->requests, g_strdup (connection->received->str));
  switch (test_server->mode)
    {
    case SERVE_REPLY:
      connection_write (connection, g_strdup (test_server->reply));
      break;
    case SERVE_PATH:
      {
        g_autofree char *path = request_path (connection->received->str);

        connection_write (connection,
                          g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s",
                                           strlen (path), path));
        break;
      }
    case SERVE_HANG_UP:
      g_io_stream_close (G_IO_STREAM (connection->connection), NULL, NULL);
      break;
    case SERVE_SILENT:
      break;
    case SERVE_TRICKLE:
      connection_write (connection, g_strdup (test_server->reply));
      connection->trickle_id = g_timeout_add (200, on_trickle, connection);
      break;
    }
}

static void
on_request_data (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Connection *connection = user_data;
  gssize count = g_input_stream_read_finish (G_INPUT_STREAM (source), result, NULL);

  connection->server->pending--;
  if (count <= 0)
    return;
  g_string_append_len (connection->received, connection->buffer, count);
  if (request_is_complete (connection->received))
    connection_answer (connection);
  else
    connection_read (connection);
}

static void
connection_read (Connection *connection)
{
  GInputStream *input = g_io_stream_get_input_stream (G_IO_STREAM (connection->connection));

  connection->server->pending++;
  g_input_stream_read_async (input, connection->buffer, sizeof connection->buffer,
                             G_PRIORITY_DEFAULT, connection->server->cancellable, on_request_data,
                             connection);
}

static gboolean
on_incoming (GSocketService *service,
             GSocketConnection *socket_connection,
             GObject *source,
             gpointer user_data)
{
  TestServer *test_server = user_data;
  Connection *connection = g_new0 (Connection, 1);

  connection->server = test_server;
  connection->connection = g_object_ref (socket_connection);
  connection->received = g_string_new (NULL);
  g_ptr_array_add (test_server->connections, connection);
  connection_read (connection);
  return TRUE;
}

static void
connection_free (Connection *connection)
{
  g_clear_handle_id (&connection->trickle_id, g_source_remove);
  g_io_stream_close (G_IO_STREAM (connection->connection), NULL, NULL);
  g_object_unref (connection->connection);
  g_string_free (connection->received, TRUE);
  g_free (connection);
}

static TestServer *
test_server_new (void)
{
  TestServer *test_server = g_new0 (TestServer, 1);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  test_server->service = g_socket_service_new ();
  test_server->requests = g_ptr_array_new_with_free_func (g_free);
  test_server->connections = g_ptr_array_new_with_free_func ((GDestroyNotify) connection_free);
  test_server->cancellable = g_cancellable_new ();
  ck_assert (g_socket_listener_add_address (G_SOCKET_LISTENER (test_server->service), address,
                                            G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL,
                                            &bound, NULL));
  test_server->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_signal_connect (test_server->service, "incoming", G_CALLBACK (on_incoming), test_server);
  return test_server;
}

static void
test_server_free (TestServer *test_server)
{
  g_socket_service_stop (test_server->service);
  g_socket_listener_close (G_SOCKET_LISTENER (test_server->service));
  g_cancellable_cancel (test_server->cancellable);
  while (test_server->pending > 0)
    g_main_context_iteration (NULL, TRUE);
  g_ptr_array_unref (test_server->connections);
  g_ptr_array_unref (test_server->requests);
  g_object_unref (test_server->cancellable);
  g_object_unref (test_server->service);
  g_free (test_server->reply);
  g_free (test_server);
}

static void
serve (ServeMode mode, const char *reply)
{
  server->mode = mode;
  g_free (server->reply);
  server->reply = g_strdup (reply);
}

static char *
server_url (const char *path)
{
  return g_strdup_printf ("http://127.0.0.1:%u%s", server->port, path);
}

static const char *
received_request (guint index)
{
  ck_assert_uint_gt (server->requests->len, index);
  return g_ptr_array_index (server->requests, index);
}

static gboolean
request_has_line (const char *request, const char *line)
{
  const char *head_end = strstr (request, "\r\n\r\n");
  g_autofree char *head = g_strndup (request, head_end - request);
  g_auto (GStrv) lines = g_strsplit (head, "\r\n", -1);

  return g_strv_contains ((const char *const *) lines, line);
}

static gboolean
request_has_field (const char *request, const char *name)
{
  g_autofree char *needle = g_strconcat ("\r\n", name, ":", NULL);
  g_autofree char *lower = g_ascii_strdown (request, -1);
  g_autofree char *lower_needle = g_ascii_strdown (needle, -1);

  return strstr (lower, lower_needle) != NULL;
}

static const char *
request_body (const char *request)
{
  return strstr (request, "\r\n\r\n") + 4;
}

/* ---- running requests --------------------------------------------------- */

typedef struct
{
  gboolean done;
  KeyholdHttpResponse *response;
  GError *error;
} Outcome;

static void
outcome_clear (Outcome *outcome)
{
  g_clear_pointer (&outcome->response, keyhold_http_response_free);
  g_clear_error (&outcome->error);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Outcome, outcome_clear)

static void
on_sent (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Outcome *outcome = user_data;

  ck_assert (!outcome->done);
  outcome->response = keyhold_http_send_finish (http, result, &outcome->error);
  outcome->done = TRUE;
}

static void
wait_for (const gboolean *flag)
{
  while (!*flag)
    g_main_context_iteration (NULL, TRUE);
}

static void
wait_for_requests (guint count)
{
  while (server->requests->len < count)
    g_main_context_iteration (NULL, TRUE);
}

static void
send_request (KeyholdHttpRequest *request, GCancellable *cancellable, Outcome *outcome)
{
  keyhold_http_send_async (http, request, cancellable, on_sent, outcome);
  /* Never completed from inside the call. */
  ck_assert (!outcome->done);
}

static void
send_and_wait (KeyholdHttpRequest *request, Outcome *outcome)
{
  send_request (request, NULL, outcome);
  wait_for (&outcome->done);
}

static void
get_and_wait (const char *path, gsize max_response_bytes, Outcome *outcome)
{
  g_autofree char *url = server_url (path);
  KeyholdHttpRequest *request = keyhold_http_request_new ("GET", url);

  keyhold_http_request_set_limits (request, 0, 0, max_response_bytes);
  send_and_wait (request, outcome);
}

static void
assert_http_error (const Outcome *outcome, KeyholdHttpError code)
{
  ck_assert (outcome->done);
  ck_assert_ptr_null (outcome->response);
  ck_assert_ptr_nonnull (outcome->error);
  ck_assert_msg (g_error_matches (outcome->error, KEYHOLD_HTTP_ERROR, code),
                 "expected http error %d, got %s %d: %s", code,
                 g_quark_to_string (outcome->error->domain), outcome->error->code,
                 outcome->error->message);
}

static void
assert_cancelled (const Outcome *outcome)
{
  ck_assert (outcome->done);
  ck_assert_ptr_null (outcome->response);
  ck_assert_msg (g_error_matches (outcome->error, G_IO_ERROR, G_IO_ERROR_CANCELLED), "%s",
                 outcome->error != NULL ? outcome->error->message : "no error");
}

static void
setup (void)
{
  server = test_server_new ();
  http = keyhold_http_new ();
}

static void
teardown (void)
{
  g_clear_pointer (&http, keyhold_http_free);
  g_clear_pointer (&server, test_server_free);
}

/* ---- tests -------------------------------------------------------------- */

START_TEST (test_get_returns_status_headers_and_body)
{
  g_auto (Outcome) outcome = { 0 };
  g_autofree char *url = server_url ("/metadata?x=1");
  KeyholdHttpRequest *request = keyhold_http_request_new ("GET", url);
  gint64 before = g_get_real_time ();
  const char *received;

  serve (SERVE_REPLY, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Twice: one\r\n"
                      "X-Twice: two\r\nContent-Length: 5\r\n\r\nhello");
  ck_assert (keyhold_http_request_add_header (request, "Accept", "application/json"));
  ck_assert (keyhold_http_request_add_header (request, "X-Empty", ""));
  send_and_wait (request, &outcome);

  ck_assert_ptr_null (outcome.error);
  ck_assert_uint_eq (outcome.response->status, 200);
  ck_assert_str_eq (keyhold_http_response_get_header (outcome.response, "Content-Type"),
                    "text/plain");
  ck_assert_str_eq (keyhold_http_response_get_header (outcome.response, "x-twice"), "one");
  ck_assert_ptr_null (keyhold_http_response_get_header (outcome.response, "x-missing"));
  ck_assert_str_eq (g_ptr_array_index (outcome.response->header_names, 0), "content-type");
  ck_assert_str_eq (g_ptr_array_index (outcome.response->header_values, 2), "two");
  ck_assert_str_eq (keyhold_secret_get (outcome.response->body), "hello");
  ck_assert_uint_eq (keyhold_secret_get_length (outcome.response->body), 5);
  ck_assert_int_ge (outcome.response->sent_at_real_us, before);
  ck_assert_int_le (outcome.response->sent_at_real_us, g_get_real_time ());
  ck_assert_int_eq (keyhold_http_response_get_retry_after (outcome.response), -1);

  received = received_request (0);
  ck_assert (g_str_has_prefix (received, "GET /metadata?x=1 HTTP/1.1\r\n"));
  ck_assert (request_has_line (received, "Accept: application/json"));
  ck_assert (request_has_line (received, "X-Empty:"));
  ck_assert (request_has_line (received, "User-Agent: keyhold/" PACKAGE_VERSION));
  ck_assert (!request_has_field (received, "Authorization"));
  ck_assert (!request_has_field (received, "Cookie"));
}
END_TEST

START_TEST (test_large_body_arrives_whole)
{
  g_auto (Outcome) outcome = { 0 };
  g_autofree char *body = g_strnfill (200 * 1024, 'b');
  g_autofree char *reply = NULL;

  body[1000] = 'c';
  reply = g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", strlen (body), body);
  serve (SERVE_REPLY, reply);
  get_and_wait ("/", 0, &outcome);

  ck_assert_ptr_null (outcome.error);
  ck_assert_uint_eq (keyhold_secret_get_length (outcome.response->body), strlen (body));
  ck_assert_str_eq (keyhold_secret_get (outcome.response->body), body);
}
END_TEST

START_TEST (test_body_at_the_limit_is_accepted)
{
  g_auto (Outcome) outcome = { 0 };
  g_autofree char *body = g_strnfill (1000, 'a');
  g_autofree char *reply = g_strconcat ("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", body, NULL);

  serve (SERVE_REPLY, reply);
  get_and_wait ("/", 1000, &outcome);

  ck_assert_ptr_null (outcome.error);
  ck_assert_str_eq (keyhold_secret_get (outcome.response->body), body);
}
END_TEST

START_TEST (test_post_form_is_encoded)
{
  g_auto (Outcome) outcome = { 0 };
  g_autofree char *url = server_url ("/token");
  KeyholdHttpRequest *request = keyhold_http_request_new ("POST", url);
  g_autoptr (KeyholdSecret) secret = keyhold_secret_new_from_string ("tok en&=+/");
  g_autoptr (KeyholdSecret) body = NULL;
  KeyholdHttpForm *form = keyhold_http_form_new ();
  const char *received;

  keyhold_http_form_add (form, "grant_type", "refresh_token");
  keyhold_http_form_add (form, "odd", "a&b=c d+e/\xc3\xa9~._-");
  keyhold_http_form_add_secret (form, "refresh_token", secret);
  keyhold_http_form_add (form, "name with space", "");
  body = keyhold_http_form_end (form);
  ck_assert_str_eq (keyhold_secret_get (body),
                    "grant_type=refresh_token&odd=a%26b%3Dc%20d%2Be%2F%C3%A9~._-"
                    "&refresh_token=tok%20en%26%3D%2B%2F&name%20with%20space=");

  serve (SERVE_REPLY, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
  keyhold_http_request_set_form (request, body);
  send_and_wait (request, &outcome);

  ck_assert_ptr_null (outcome.error);
  received = received_request (0);
  ck_assert (g_str_has_prefix (received, "POST /token HTTP/1.1\r\n"));
  ck_assert (request_has_line (received, "Content-Type: application/x-www-form-urlencoded"));
  ck_assert (!request_has_field (received, "Expect"));
  ck_assert_str_eq (request_body (received), keyhold_secret_get (body));
}
END_TEST

START_TEST (test_empty_form)
{
  g_autoptr (KeyholdSecret) body = keyhold_http_form_end (keyhold_http_form_new ());
  g_autoptr (KeyholdHttpForm) abandoned = keyhold_http_form_new ();

  keyhold_http_form_add (abandoned, "a", "b");
  ck_assert_uint_eq (keyhold_secret_get_length (body), 0);
  ck_assert_str_eq (keyhold_secret_get (body), "");
}
END_TEST

START_TEST (test_other_methods_and_bodies)
{
  g_auto (Outcome) put = { 0 };
  g_auto (Outcome) delete = { 0 };
  g_autofree char *url = server_url ("/items/1");
  g_autoptr (GBytes) json = g_bytes_new_static ("{\"a\":1}", 7);
  KeyholdHttpRequest *request = keyhold_http_request_new ("PUT", url);

  serve (SERVE_REPLY, "HTTP/1.1 204 No Content\r\n\r\n");
  keyhold_http_request_set_body (request, json, "application/json");
  send_and_wait (request, &put);
  send_and_wait (keyhold_http_request_new ("DELETE", url), &delete);

  ck_assert_uint_eq (put.response->status, 204);
  ck_assert (g_str_has_prefix (received_request (0), "PUT /items/1 HTTP/1.1\r\n"));
  ck_assert (request_has_line (received_request (0), "Content-Type: application/json"));
  ck_assert_str_eq (request_body (received_request (0)), "{\"a\":1}");
  ck_assert_uint_eq (delete.response->status, 204);
  ck_assert (g_str_has_prefix (received_request (1), "DELETE /items/1 HTTP/1.1\r\n"));
  ck_assert (!request_has_field (received_request (1), "Content-Type"));
}
END_TEST

START_TEST (test_bearer_is_sent)
{
  g_auto (Outcome) outcome = { 0 };
  g_autofree char *url = server_url ("/api");
  KeyholdHttpRequest *request = keyhold_http_request_new ("GET", url);
  g_autoptr (KeyholdSecret) token = keyhold_secret_new_from_string ("abc.DEF-ghi_~+/=");

  serve (SERVE_REPLY, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  keyhold_http_request_set_bearer (request, token);
  send_and_wait (request, &outcome);

  ck_assert_ptr_null (outcome.error);
  ck_assert (request_has_line (received_request (0), "Authorization: Bearer abc.DEF-ghi_~+/="));
}
END_TEST

START_TEST (test_bearer_that_could_inject_headers_is_refused)
{
  g_auto (Outcome) outcome = { 0 };
  g_autofree char *url = server_url ("/api");
  KeyholdHttpRequest *request = keyhold_http_request_new ("GET", url);
  g_autoptr (KeyholdSecret) token = keyhold_secret_new_from_string ("abc\r\nX-Evil: 1");

  keyhold_http_request_set_bearer (request, token);
  send_and_wait (request, &outcome);

  assert_http_error (&outcome, KEYHOLD_HTTP_ERROR_INVALID);
  ck_assert (strstr (outcome.error->message, "abc") == NULL);
  ck_assert_uint_eq (server->connections->len, 0);
}
END_TEST

START_TEST (test_bad_headers_are_refused)
{
  g_autoptr (KeyholdHttpRequest) request = keyhold_http_request_new ("GET", "http://127.0.0.1/");

  ck_assert (!keyhold_http_request_add_header (request, "Authorization", "Bearer x"));
  ck_assert (!keyhold_http_request_add_header (request, "authorization", "Basic x"));
  ck_assert (!keyhold_http_request_add_header (request, "Host", "evil.example"));
  ck_assert (!keyhold_http_request_add_header (request, "Content-Length", "5"));
  ck_assert (!keyhold_http_request_add_header (request, "Transfer-Encoding", "chunked"));
  ck_assert (!keyhold_http_request_add_header (request, "X-A", "1\r\nX-B: 2"));
  ck_assert (!keyhold_http_request_add_header (request, "X-A", "1\n"));
  ck_assert (!keyhold_http_request_add_header (request, "X-A\r\nX-B", "2"));
  ck_assert (!keyhold_http_request_add_header (request, "X-A: 1", "2"));
  ck_assert (!keyhold_http_request_add_header (request, "X A", "2"));
  ck_assert (!keyhold_http_request_add_header (request, "", "2"));
  ck_assert (keyhold_http_request_add_header (request, "Idempotency-Key", "\"3f1c\"\tx"));

  /* The same answers without a request, for callers that check early. */
  ck_assert (!keyhold_http_header_is_allowed ("Proxy-Authorization", "Basic x"));
  ck_assert (!keyhold_http_header_is_allowed ("connection", "close"));
  ck_assert (!keyhold_http_header_is_allowed ("Expect", "100-continue"));
  ck_assert (!keyhold_http_header_is_allowed ("X-A", "1\r\nX-B: 2"));
  ck_assert (!keyhold_http_header_is_allowed ("X A", "2"));
  ck_assert (keyhold_http_header_is_allowed ("Accept", "application/json"));
  ck_assert (keyhold_http_header_is_allowed ("X-Empty", ""));
}
END_TEST

START_TEST (test_unusable_requests_fail_as_invalid)
{
  static const char *const urls[] = {
    "ftp://127.0.0.1/file",
    "file:///etc/passwd",
    "not a url",
    "/relative",
    "http://user:pw-secret@127.0.0.1/",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (urls); i++)
    {
      g_auto (Outcome) outcome = { 0 };

      send_and_wait (keyhold_http_request_new ("GET", urls[i]), &outcome);
      assert_http_error (&outcome, KEYHOLD_HTTP_ERROR_INVALID);
      ck_assert (strstr (outcome.error->message, "pw-secret") == NULL);
    }

  {
    g_auto (Outcome) outcome = { 0 };
    g_autofree char *url = server_url ("/");

    send_and_wait (keyhold_http_request_new ("GE T", url), &outcome);
    assert_http_error (&outcome, KEYHOLD_HTTP_ERROR_INVALID);
  }
}
END_TEST

START_TEST (test_retry_after_from_the_server)
{
  g_auto (Outcome) seconds = { 0 };
  g_auto (Outcome) date = { 0 };
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autoptr (GDateTime) later = g_date_time_add_seconds (now, 300);
  g_autofree char *http_date = g_date_time_format (later, "%a, %d %b %Y %H:%M:%S GMT");
  g_autofree char *date_reply = g_strdup_printf ("HTTP/1.1 503 Service Unavailable\r\n"
                                                 "Retry-After: %s\r\nContent-Length: 0\r\n\r\n",
                                                 http_date);
  gint64 delay;

  serve (SERVE_REPLY,
         "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n");
  get_and_wait ("/", 0, &seconds);
  serve (SERVE_REPLY, date_reply);
  get_and_wait ("/", 0, &date);

  ck_assert_uint_eq (seconds.response->status, 429);
  ck_assert_int_eq (keyhold_http_response_get_retry_after (seconds.response), 120);
  delay = keyhold_http_response_get_retry_after (date.response);
  ck_assert_int_le (delay, 300);
  ck_assert_int_ge (delay, 290);
}
END_TEST

static gint64
retry_after_of (const char *value)
{
  KeyholdHttpResponse response = { 0 };
  gint64 delay;

  response.header_names = g_ptr_array_new ();
  response.header_values = g_ptr_array_new ();
  g_ptr_array_add (response.header_names, (gpointer) "retry-after");
  g_ptr_array_add (response.header_values, (gpointer) value);
  delay = keyhold_http_response_get_retry_after (&response);
  g_ptr_array_unref (response.header_names);
  g_ptr_array_unref (response.header_values);
  return delay;
}

START_TEST (test_retry_after_edges)
{
  ck_assert_int_eq (retry_after_of ("0"), 0);
  ck_assert_int_eq (retry_after_of ("86400"), 86400);
  ck_assert_int_eq (retry_after_of ("86401"), 86400);
  ck_assert_int_eq (retry_after_of ("99999999999999999999999"), 86400);
  ck_assert_int_eq (retry_after_of ("Sun, 06 Nov 1994 08:49:37 GMT"), 0);
  ck_assert_int_eq (retry_after_of ("Fri, 31 Dec 9999 23:59:59 GMT"), 86400);
  ck_assert_int_eq (retry_after_of ("-5"), -1);
  ck_assert_int_eq (retry_after_of ("1.5"), -1);
  ck_assert_int_eq (retry_after_of ("soon"), -1);
  ck_assert_int_eq (retry_after_of (""), -1);
}
END_TEST

START_TEST (test_server_error_is_a_response)
{
  g_auto (Outcome) outcome = { 0 };

  serve (SERVE_REPLY, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops");
  get_and_wait ("/", 0, &outcome);

  ck_assert_ptr_null (outcome.error);
  ck_assert_uint_eq (outcome.response->status, 500);
  ck_assert_str_eq (keyhold_secret_get (outcome.response->body), "oops");
}
END_TEST

START_TEST (test_redirects_are_not_followed)
{
  g_auto (Outcome) outcome = { 0 };
  g_autofree char *reply = g_strdup_printf ("HTTP/1.1 302 Found\r\n"
                                            "Location: http://127.0.0.1:%u/b\r\n"
                                            "Content-Length: 0\r\n\r\n",
                                            server->port);

  serve (SERVE_REPLY, reply);
  get_and_wait ("/a", 0, &outcome);

  ck_assert_uint_eq (outcome.response->status, 302);
  ck_assert_uint_eq (server->requests->len, 1);
}
END_TEST

START_TEST (test_only_final_response_headers_are_kept)
{
  g_auto (Outcome) outcome = { 0 };

  serve (SERVE_REPLY, "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
                      "HTTP/1.1 200 OK\r\nX-Final: 1\r\nContent-Length: 0\r\n\r\n");
  get_and_wait ("/", 0, &outcome);

  ck_assert_uint_eq (outcome.response->status, 200);
  ck_assert_ptr_null (keyhold_http_response_get_header (outcome.response, "x-interim"));
  ck_assert_str_eq (keyhold_http_response_get_header (outcome.response, "x-final"), "1");
}
END_TEST

START_TEST (test_connection_refused_is_connect)
{
  g_auto (Outcome) outcome = { 0 };
  g_autofree char *url = NULL;
  guint16 port = server->port;

  /* Nothing listens on the port once the server is gone. */
  g_clear_pointer (&server, test_server_free);
  url = g_strdup_printf ("http://127.0.0.1:%u/token?client_secret=hunter2", port);
  send_and_wait (keyhold_http_request_new ("GET", url), &outcome);

  assert_http_error (&outcome, KEYHOLD_HTTP_ERROR_CONNECT);
  ck_assert_msg (strstr (outcome.error->message, "127.0.0.1") != NULL, "%s",
                 outcome.error->message);
  ck_assert_msg (strstr (outcome.error->message, "hunter2") == NULL, "%s", outcome.error->message);
}
END_TEST

START_TEST (test_hang_up_after_request_is_answer_lost)
{
  g_auto (Outcome) outcome = { 0 };

  serve (SERVE_HANG_UP, NULL);
  get_and_wait ("/token?code=hunter2", 0, &outcome);

  assert_http_error (&outcome, KEYHOLD_HTTP_ERROR_ANSWER_LOST);
  ck_assert_uint_eq (server->requests->len, 1);
  ck_assert_msg (strstr (outcome.error->message, "/token") != NULL, "%s", outcome.error->message);
  ck_assert_msg (strstr (outcome.error->message, "hunter2") == NULL, "%s", outcome.error->message);
}
END_TEST

START_TEST (test_truncated_body_is_answer_lost)
{
  g_auto (Outcome) outcome = { 0 };

  serve (SERVE_REPLY, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"access_token\":");
  get_and_wait ("/", 0, &outcome);

  assert_http_error (&outcome, KEYHOLD_HTTP_ERROR_ANSWER_LOST);
}
END_TEST

START_TEST (test_trickling_server_times_out)
{
  g_auto (Outcome) outcome = { 0 };
  g_autofree char *url = server_url ("/");
  KeyholdHttpRequest *request = keyhold_http_request_new ("GET", url);
  gint64 started = g_get_monotonic_time ();
  gint64 elapsed_ms;

  serve (SERVE_TRICKLE, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
  keyhold_http_request_set_limits (request, 500, 1000, 0);
  send_and_wait (request, &outcome);
  elapsed_ms = (g_get_monotonic_time () - started) / 1000;

  assert_http_error (&outcome, KEYHOLD_HTTP_ERROR_TIMED_OUT);
  ck_assert_int_ge (elapsed_ms, 950);
  /* A hang detector, not a speed check. */
  ck_assert_int_lt (elapsed_ms, 20000);
}
END_TEST

START_TEST (test_oversized_body_without_length_is_too_large)
{
  g_auto (Outcome) outcome = { 0 };
  g_autofree char *body = g_strnfill (1001, 'a');
  g_autofree char *reply = g_strconcat ("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", body, NULL);

  serve (SERVE_REPLY, reply);
  get_and_wait ("/", 1000, &outcome);

  assert_http_error (&outcome, KEYHOLD_HTTP_ERROR_TOO_LARGE);
}
END_TEST

START_TEST (test_oversized_body_with_length_is_too_large)
{
  g_auto (Outcome) outcome = { 0 };
  g_autofree char *body = g_strnfill (2000, 'a');
  g_autofree char *reply
      = g_strconcat ("HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", body, NULL);

  serve (SERVE_REPLY, reply);
  get_and_wait ("/", 1000, &outcome);

  assert_http_error (&outcome, KEYHOLD_HTTP_ERROR_TOO_LARGE);
}
END_TEST

START_TEST (test_oversized_headers_are_too_large)
{
  g_auto (Outcome) outcome = { 0 };
  g_autoptr (GString) reply = g_string_new ("HTTP/1.1 200 OK\r\n");
  g_autofree char *filler = g_strnfill (1000, 'h');

  for (guint i = 0; i < 70; i++)
    g_string_append_printf (reply, "X-Filler-%u: %s\r\n", i, filler);
  g_string_append (reply, "Content-Length: 0\r\n\r\n");
  serve (SERVE_REPLY, reply->str);
  get_and_wait ("/", 0, &outcome);

  assert_http_error (&outcome, KEYHOLD_HTTP_ERROR_TOO_LARGE);
}
END_TEST

START_TEST (test_cancelling_aborts_the_transfer)
{
  g_auto (Outcome) outcome = { 0 };
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autofree char *url = server_url ("/");

  serve (SERVE_SILENT, NULL);
  send_request (keyhold_http_request_new ("GET", url), cancellable, &outcome);
  wait_for_requests (1);
  g_cancellable_cancel (cancellable);
  ck_assert (!outcome.done);
  wait_for (&outcome.done);

  assert_cancelled (&outcome);
}
END_TEST

START_TEST (test_cancelled_before_sending)
{
  g_auto (Outcome) outcome = { 0 };
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autofree char *url = server_url ("/");

  g_cancellable_cancel (cancellable);
  send_request (keyhold_http_request_new ("GET", url), cancellable, &outcome);
  wait_for (&outcome.done);

  assert_cancelled (&outcome);
  ck_assert_uint_eq (server->connections->len, 0);
}
END_TEST

#define CONCURRENT_REQUESTS 50

START_TEST (test_concurrent_requests_all_complete)
{
  Outcome outcomes[CONCURRENT_REQUESTS] = { 0 };
  guint completed = 0;

  serve (SERVE_PATH, NULL);
  for (guint i = 0; i < CONCURRENT_REQUESTS; i++)
    {
      g_autofree char *path = g_strdup_printf ("/item/%u", i);
      g_autofree char *url = server_url (path);

      send_request (keyhold_http_request_new ("GET", url), NULL, &outcomes[i]);
    }
  while (completed < CONCURRENT_REQUESTS)
    {
      g_main_context_iteration (NULL, TRUE);
      completed = 0;
      for (guint i = 0; i < CONCURRENT_REQUESTS; i++)
        completed += outcomes[i].done;
    }

  for (guint i = 0; i < CONCURRENT_REQUESTS; i++)
    {
      g_autofree char *path = g_strdup_printf ("/item/%u", i);

      ck_assert_msg (outcomes[i].error == NULL, "%s", outcomes[i].error->message);
      ck_assert_str_eq (keyhold_secret_get (outcomes[i].response->body), path);
      outcome_clear (&outcomes[i]);
    }
}
END_TEST

START_TEST (test_free_with_transfers_in_flight)
{
  g_auto (Outcome) first = { 0 };
  g_auto (Outcome) second = { 0 };
  g_autofree char *url = server_url ("/");

  serve (SERVE_SILENT, NULL);
  send_request (keyhold_http_request_new ("GET", url), NULL, &first);
  wait_for_requests (1);
  send_request (keyhold_http_request_new ("GET", url), NULL, &second);
  g_clear_pointer (&http, keyhold_http_free);
  wait_for (&first.done);
  wait_for (&second.done);

  assert_cancelled (&first);
  assert_cancelled (&second);
}
END_TEST

START_TEST (test_sockets_are_close_on_exec)
{
  g_auto (Outcome) outcome = { 0 };
  g_autoptr (GDir) dir = NULL;
  g_autofree char *url = server_url ("/");
  const char *name;
  guint sockets = 0;

  serve (SERVE_SILENT, NULL);
  send_request (keyhold_http_request_new ("GET", url), NULL, &outcome);
  wait_for_requests (1);

  dir = g_dir_open ("/proc/self/fd", 0, NULL);
  ck_assert_ptr_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc/self/fd", name, NULL);
      g_autofree char *target = g_file_read_link (path, NULL);
      int flags = fcntl (atoi (name), F_GETFD);

      if (target == NULL || !g_str_has_prefix (target, "socket:") || flags == -1)
        continue;
      sockets++;
      ck_assert_msg (flags & FD_CLOEXEC, "fd %s (%s) is inherited by children", name, target);
    }
  /* The listener, both ends of the connection and curl's wake-up pair. */
  ck_assert_uint_ge (sockets, 5);
}
END_TEST

static Suite *
http_suite (void)
{
  Suite *suite = suite_create ("http");
  TCase *exchange = tcase_create ("exchange");
  TCase *failures = tcase_create ("failures");
  TCase *lifetime = tcase_create ("lifetime");

  tcase_add_checked_fixture (exchange, setup, teardown);
  tcase_add_test (exchange, test_get_returns_status_headers_and_body);
  tcase_add_test (exchange, test_large_body_arrives_whole);
  tcase_add_test (exchange, test_body_at_the_limit_is_accepted);
  tcase_add_test (exchange, test_post_form_is_encoded);
  tcase_add_test (exchange, test_empty_form);
  tcase_add_test (exchange, test_other_methods_and_bodies);
  tcase_add_test (exchange, test_bearer_is_sent);
  tcase_add_test (exchange, test_bad_headers_are_refused);
  tcase_add_test (exchange, test_retry_after_from_the_server);
  tcase_add_test (exchange, test_retry_after_edges);
  tcase_add_test (exchange, test_server_error_is_a_response);
  tcase_add_test (exchange, test_redirects_are_not_followed);
  tcase_add_test (exchange, test_only_final_response_headers_are_kept);
  suite_add_tcase (suite, exchange);

  tcase_add_checked_fixture (failures, setup, teardown);
  tcase_add_test (failures, test_bearer_that_could_inject_headers_is_refused);
  tcase_add_test (failures, test_unusable_requests_fail_as_invalid);
  tcase_add_test (failures, test_connection_refused_is_connect);
  tcase_add_test (failures, test_hang_up_after_request_is_answer_lost);
  tcase_add_test (failures, test_truncated_body_is_answer_lost);
  tcase_add_test (failures, test_trickling_server_times_out);
  tcase_add_test (failures, test_oversized_body_without_length_is_too_large);
  tcase_add_test (failures, test_oversized_body_with_length_is_too_large);
  tcase_add_test (failures, test_oversized_headers_are_too_large);
  suite_add_tcase (suite, failures);

  tcase_add_checked_fixture (lifetime, setup, teardown);
  tcase_add_test (lifetime, test_cancelling_aborts_the_transfer);
  tcase_add_test (lifetime, test_cancelled_before_sending);
  tcase_add_test (lifetime, test_concurrent_requests_all_complete);
  tcase_add_test (lifetime, test_free_with_transfers_in_flight);
  tcase_add_test (lifetime, test_sockets_are_close_on_exec);
  suite_add_tcase (suite, lifetime);
  return suite;
}

int
main (void)
{
  SRunner *runner = srunner_create (http_suite ());
  int failed;

  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? 0 : 1;
}
