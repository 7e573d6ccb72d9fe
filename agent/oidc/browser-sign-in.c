/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <sodium.h>
#include <string.h>

#include "keyhold-contract.h"

#include "oidc/browser-sign-in.h"
#include "oidc/pkce.h"

/* A browser's request for the callback is a request line and a few
 * headers; anything bigger or slower is not a browser we are waiting for.
 * Any local process can connect to the port, so the number of connections
 * waiting at once is bounded too. */
#define MAX_REQUEST_BYTES (16 * 1024)
#define CONNECTION_TIMEOUT_S 10
#define MAX_PENDING_CONNECTIONS 8

#define PAGE_HEAD                                                                                  \
  "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>keyhold</title></head>"               \
  "<body><p>"
#define PAGE_TAIL "</p></body></html>"
#define SUCCESS_PAGE PAGE_HEAD "Sign-in received. You can close this window." PAGE_TAIL
#define FAILURE_PAGE PAGE_HEAD "Sign-in failed. You can close this window and try again." PAGE_TAIL
#define NOT_FOUND_PAGE PAGE_HEAD "Not found." PAGE_TAIL
#define BAD_REQUEST_PAGE PAGE_HEAD "Bad request." PAGE_TAIL
#define NOT_THIS_SIGN_IN_PAGE                                                                      \
  PAGE_HEAD "This is not the sign-in keyhold is waiting for. Start the sign-in again from the "    \
            "app if it does not finish." PAGE_TAIL

typedef struct
{
  KeyholdHttp *http;
  char *issuer;
  gboolean iss_required;
  char *token_endpoint;
  char *client_id;
  char *redirect_uri;
  char *state;
  char *nonce;
  KeyholdSecret *verifier;
  /* Both NULL once the listener is closed. */
  GSocketService *service;
  GSource *deadline;
  /* Connections still reading their request (not owned). */
  GPtrArray *pending;
} BrowserSignIn;

typedef struct
{
  GTask *task;
  GSocketConnection *connection;
  GCancellable *cancellable;
  GSource *timeout;
  char *buffer;
  gsize used;
  GBytes *answer;
} Connection;

typedef struct
{
  char *state;
  char *iss;
  char *error;
  char *error_description;
  KeyholdSecret *code;
} CallbackParams;

static void
callback_params_free (CallbackParams *params)
{
  g_free (params->state);
  g_free (params->iss);
  g_free (params->error);
  g_free (params->error_description);
  keyhold_secret_unref (params->code);
  g_free (params);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CallbackParams, callback_params_free)

static void
stop_listening (BrowserSignIn *sign_in)
{
  if (sign_in->deadline != NULL)
    {
      g_source_destroy (sign_in->deadline);
      g_clear_pointer (&sign_in->deadline, g_source_unref);
    }
  if (sign_in->service != NULL)
    {
      g_signal_handlers_disconnect_matched (sign_in->service, G_SIGNAL_MATCH_DATA, 0, 0, NULL, NULL,
                                            sign_in);
      g_socket_service_stop (sign_in->service);
      g_socket_listener_close (G_SOCKET_LISTENER (sign_in->service));
      g_clear_object (&sign_in->service);
    }
  for (guint i = 0; i < sign_in->pending->len; i++)
    g_cancellable_cancel (((Connection *) g_ptr_array_index (sign_in->pending, i))->cancellable);
}

static void
browser_sign_in_free (BrowserSignIn *sign_in)
{
  stop_listening (sign_in);
  g_free (sign_in->issuer);
  g_free (sign_in->token_endpoint);
  g_free (sign_in->client_id);
  g_free (sign_in->redirect_uri);
  g_free (sign_in->state);
  g_free (sign_in->nonce);
  keyhold_secret_unref (sign_in->verifier);
  g_ptr_array_unref (sign_in->pending);
  g_free (sign_in);
}

/* Connections */

static void
connection_free (Connection *conn)
{
  BrowserSignIn *sign_in = g_task_get_task_data (conn->task);

  g_ptr_array_remove (sign_in->pending, conn);
  g_source_destroy (conn->timeout);
  g_source_unref (conn->timeout);
  g_io_stream_close (G_IO_STREAM (conn->connection), NULL, NULL);
  g_object_unref (conn->connection);
  g_object_unref (conn->cancellable);
  /* The request line carries the authorization code. */
  sodium_memzero (conn->buffer, MAX_REQUEST_BYTES);
  g_free (conn->buffer);
  g_clear_pointer (&conn->answer, g_bytes_unref);
  g_object_unref (conn->task);
  g_free (conn);
}

static gboolean
on_connection_timeout (gpointer user_data)
{
  Connection *conn = user_data;

  g_cancellable_cancel (conn->cancellable);
  return G_SOURCE_REMOVE;
}

static void
on_answer_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, NULL);
  connection_free (user_data);
}

/* Sends a complete answer, then closes and frees @conn. */
static void
answer (Connection *conn, const char *status, const char *page)
{
  GOutputStream *output = g_io_stream_get_output_stream (G_IO_STREAM (conn->connection));
  g_autofree char *text = g_strdup_printf ("HTTP/1.1 %s\r\n"
                                           "Content-Type: text/html; charset=utf-8\r\n"
                                           "Content-Length: %" G_GSIZE_FORMAT "\r\n"
                                           "Cache-Control: no-store\r\n"
                                           "Referrer-Policy: no-referrer\r\n"
                                           "Connection: close\r\n"
                                           "\r\n%s",
                                           status, strlen (page), page);
  gsize length = strlen (text);

  conn->answer = g_bytes_new_take (g_steal_pointer (&text), length);
  g_output_stream_write_all_async (output, g_bytes_get_data (conn->answer, NULL), length,
                                   G_PRIORITY_DEFAULT, conn->cancellable, on_answer_written, conn);
}

/* Callback parameters */

static char **
text_param_slot (CallbackParams *params, const char *name)
{
  if (strcmp (name, "state") == 0)
    return &params->state;
  if (strcmp (name, "iss") == 0)
    return &params->iss;
  if (strcmp (name, "error") == 0)
    return &params->error;
  if (strcmp (name, "error_description") == 0)
    return &params->error_description;
  return NULL;
}

/* Takes over @value. Returns FALSE for a repeated parameter, which RFC 6749
 * §3.1 forbids and which would make the checks ambiguous. */
static gboolean
store_param (CallbackParams *params, const char *name, char *value)
{
  char **slot = text_param_slot (params, name);
  gboolean fresh = TRUE;

  if (strcmp (name, "code") == 0)
    {
      fresh = params->code == NULL;
      if (fresh)
        params->code = keyhold_secret_new_from_string (value);
    }
  else if (slot != NULL)
    {
      fresh = *slot == NULL;
      if (fresh)
        *slot = g_steal_pointer (&value);
    }
  keyhold_secret_wipe_string (value);
  return fresh;
}

static CallbackParams *
parse_callback_query (const char *query)
{
  g_autoptr (CallbackParams) params = g_new0 (CallbackParams, 1);
  g_autoptr (GError) error = NULL;
  GUriParamsIter iter;
  char *name, *value;

  g_uri_params_iter_init (&iter, query, -1, "&", G_URI_PARAMS_WWW_FORM);
  while (g_uri_params_iter_next (&iter, &name, &value, &error))
    {
      gboolean fresh = store_param (params, name, value);

      g_free (name);
      if (!fresh)
        return NULL;
    }
  return error == NULL ? g_steal_pointer (&params) : NULL;
}

static gboolean
state_matches (const char *expected, const char *received)
{
  gsize length = strlen (expected);

  return received != NULL && strlen (received) == length
         && sodium_memcmp (expected, received, length) == 0;
}

static void
set_sign_in_failed (GError **error, const char *message)
{
  g_set_error_literal (error, KEYHOLD_ERROR, KEYHOLD_ERROR_SIGN_IN_FAILED, message);
}

/* The order follows RFC 9207 §2.4: a response that is not ours (checked
 * by the caller), or not from our issuer, is rejected before its content
 * (even an error) is used. */
static gboolean
check_callback (BrowserSignIn *sign_in, const CallbackParams *params, GError **error)
{
  g_autofree char *code = NULL;
  g_autofree char *description = NULL;

  if (params->iss != NULL && strcmp (params->iss, sign_in->issuer) != 0)
    set_sign_in_failed (error, "The sign-in response comes from another issuer (iss mismatch)");
  else if (params->iss == NULL && sign_in->iss_required)
    set_sign_in_failed (error, "The sign-in response lacks the issuer (iss) the provider promised");
  else if (params->error != NULL)
    {
      code = keyhold_oauth_sanitize_provider_text (params->error);
      if (params->error_description != NULL)
        description = keyhold_oauth_sanitize_provider_text (params->error_description);
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_SIGN_IN_FAILED,
                   "The provider ended the sign-in: %s%s%s", code, description != NULL ? ": " : "",
                   description != NULL ? description : "");
    }
  else if (params->code == NULL || keyhold_secret_get_length (params->code) == 0)
    set_sign_in_failed (error, "The sign-in response carries no authorization code");
  else
    return TRUE;
  return FALSE;
}

static void
on_code_exchanged (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  KeyholdTokenResponse *token;
  GError *error = NULL;

  token = keyhold_oauth_exchange_code_finish (result, &error);
  if (token == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, token, (GDestroyNotify) keyhold_token_response_free);
}

/* The one redirect this sign-in waits for. A request that cannot be read
 * as one (bad escapes, repeated parameters) or that lacks this sign-in's
 * state is answered and ignored: any local user can send it, and only the
 * provider's redirect knows the state. */
static void
handle_callback (Connection *conn, const char *query)
{
  BrowserSignIn *sign_in = g_task_get_task_data (conn->task);
  g_autoptr (CallbackParams) params = parse_callback_query (query);
  g_autoptr (GTask) task = g_object_ref (conn->task);
  GCancellable *cancellable;
  GError *error = NULL;

  if (params == NULL)
    {
      answer (conn, "400 Bad Request", BAD_REQUEST_PAGE);
      return;
    }
  if (!state_matches (sign_in->state, params->state))
    {
      answer (conn, "400 Bad Request", NOT_THIS_SIGN_IN_PAGE);
      return;
    }
  g_ptr_array_remove (sign_in->pending, conn);
  stop_listening (sign_in);

  if (!check_callback (sign_in, params, &error))
    {
      answer (conn, "400 Bad Request", FAILURE_PAGE);
      g_task_return_error (task, error);
      return;
    }
  answer (conn, "200 OK", SUCCESS_PAGE);
  cancellable = g_task_get_cancellable (task);
  keyhold_oauth_exchange_code_async (sign_in->http, sign_in->token_endpoint, sign_in->client_id,
                                     params->code, sign_in->redirect_uri, sign_in->verifier,
                                     cancellable, on_code_exchanged, g_steal_pointer (&task));
}

/* Splits "GET <target> HTTP/1.x" in place and returns the target, or NULL
 * when the line is not a GET request. */
static char *
parse_request_line (char *line)
{
  char *target, *version;

  if (!g_str_has_prefix (line, "GET "))
    return NULL;
  target = line + strlen ("GET ");
  version = strchr (target, ' ');
  if (version == NULL)
    return NULL;
  *version++ = '\0';
  return g_str_has_prefix (version, "HTTP/1.") && strchr (version, ' ') == NULL ? target : NULL;
}

static void
handle_request (Connection *conn)
{
  BrowserSignIn *sign_in = g_task_get_task_data (conn->task);
  char *line_end = strstr (conn->buffer, "\r\n");
  gsize path_length = strlen (KEYHOLD_BROWSER_SIGN_IN_CALLBACK_PATH);
  char *target;

  *line_end = '\0';
  target = parse_request_line (conn->buffer);
  if (sign_in->service != NULL && target != NULL
      && strncmp (target, KEYHOLD_BROWSER_SIGN_IN_CALLBACK_PATH, path_length) == 0
      && (target[path_length] == '\0' || target[path_length] == '?'))
    handle_callback (conn, target[path_length] == '?' ? target + path_length + 1 : "");
  else
    answer (conn, "404 Not Found", NOT_FOUND_PAGE);
}

static void read_more (Connection *conn);

static void
on_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Connection *conn = user_data;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, NULL);

  if (n <= 0)
    {
      connection_free (conn);
      return;
    }
  conn->used += (gsize) n;
  conn->buffer[conn->used] = '\0';

  /* A GET has no body: the request is complete at the end of the headers.
   * Answering before then could reset the connection on unread data. */
  if (strstr (conn->buffer, "\r\n\r\n") != NULL)
    handle_request (conn);
  else if (conn->used == MAX_REQUEST_BYTES - 1)
    connection_free (conn);
  else
    read_more (conn);
}

static void
read_more (Connection *conn)
{
  GInputStream *input = g_io_stream_get_input_stream (G_IO_STREAM (conn->connection));

  /* One byte is kept for the NUL that lets the request be read as text. */
  g_input_stream_read_async (input, conn->buffer + conn->used, MAX_REQUEST_BYTES - 1 - conn->used,
                             G_PRIORITY_DEFAULT, conn->cancellable, on_read, conn);
}

static gboolean
on_incoming (GSocketService *service,
             GSocketConnection *connection,
             GObject *source_object,
             gpointer user_data)
{
  BrowserSignIn *sign_in = user_data;
  GTask *task = G_TASK (source_object);
  Connection *conn;

  /* Unclaimed connections are closed by GSocketService. */
  if (sign_in->pending->len >= MAX_PENDING_CONNECTIONS)
    return FALSE;

  conn = g_new0 (Connection, 1);
  conn->task = g_object_ref (task);
  conn->connection = g_object_ref (connection);
  conn->cancellable = g_cancellable_new ();
  conn->buffer = g_malloc0 (MAX_REQUEST_BYTES);
  conn->timeout = g_timeout_source_new_seconds (CONNECTION_TIMEOUT_S);
  g_source_set_callback (conn->timeout, on_connection_timeout, conn, NULL);
  g_source_attach (conn->timeout, g_task_get_context (task));
  g_ptr_array_add (sign_in->pending, conn);

  read_more (conn);
  return TRUE;
}

/* Listener and request */

static gboolean
on_deadline (gpointer user_data)
{
  GTask *task = user_data;

  stop_listening (g_task_get_task_data (task));
  if (!g_task_return_error_if_cancelled (task))
    g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_TIMED_OUT,
                             "The sign-in in the browser was not completed in time");
  return G_SOURCE_REMOVE;
}

/* Ends the wait at the deadline or on cancellation, whichever is first:
 * the cancellable source is a child of the timer, so either wakes it. */
static void
start_deadline (GTask *task)
{
  BrowserSignIn *sign_in = g_task_get_task_data (task);
  g_autoptr (GSource) cancelled = g_cancellable_source_new (g_task_get_cancellable (task));

  sign_in->deadline = g_timeout_source_new_seconds (KEYHOLD_BROWSER_SIGN_IN_TIMEOUT_S);
  /* The child is dispatched too; it only has to wake the parent. */
  g_source_set_dummy_callback (cancelled);
  g_source_add_child_source (sign_in->deadline, cancelled);
  g_source_set_callback (sign_in->deadline, on_deadline, g_object_ref (task), g_object_unref);
  g_source_attach (sign_in->deadline, g_task_get_context (task));
}

/* RFC 8252 §7.3: loopback IP literal, ephemeral port, never "localhost"
 * and never another interface. The GTask is the listener's source object
 * so that on_incoming can find it. */
static gboolean
start_listening (GTask *task, GError **error)
{
  BrowserSignIn *sign_in = g_task_get_task_data (task);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GSocketService) service = g_socket_service_new ();

  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (service), address, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_TCP, G_OBJECT (task), &bound, error))
    return FALSE;

  sign_in->redirect_uri
      = g_strdup_printf ("http://127.0.0.1:%u" KEYHOLD_BROWSER_SIGN_IN_CALLBACK_PATH,
                         g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  g_signal_connect (service, "incoming", G_CALLBACK (on_incoming), sign_in);
  g_socket_service_start (service);
  sign_in->service = g_steal_pointer (&service);
  return TRUE;
}

static void
append_param (GString *url, const char *name, const char *value)
{
  g_autofree char *escaped = g_uri_escape_string (value, NULL, FALSE);

  g_string_append_printf (url, "&%s=%s", name, escaped);
}

/* RFC 6749 §3.1: a query already in the endpoint URL is kept. */
static char *
build_authorization_url (BrowserSignIn *sign_in, const char *endpoint, const char *scope)
{
  g_autoptr (GUri) uri = g_uri_parse (endpoint, G_URI_FLAGS_NONE, NULL);
  g_autofree char *challenge = keyhold_pkce_challenge_s256 (sign_in->verifier);
  GString *url = g_string_new (endpoint);

  g_string_append (url, uri != NULL && g_uri_get_query (uri) != NULL ? "&" : "?");
  g_string_append (url, "response_type=code");
  append_param (url, "client_id", sign_in->client_id);
  append_param (url, "redirect_uri", sign_in->redirect_uri);
  if (scope != NULL)
    append_param (url, "scope", scope);
  append_param (url, "state", sign_in->state);
  append_param (url, "nonce", sign_in->nonce);
  append_param (url, "code_challenge", challenge);
  append_param (url, "code_challenge_method", "S256");
  return g_string_free (url, FALSE);
}

static gboolean
check_provider (const KeyholdProviderMetadata *metadata, GError **error)
{
  if (metadata->authorization_endpoint == NULL)
    g_set_error_literal (error, KEYHOLD_ERROR, KEYHOLD_ERROR_PROVIDER_ERROR,
                         "The provider does not offer browser sign-in");
  else if (!keyhold_provider_metadata_allows_pkce_s256 (metadata))
    g_set_error_literal (error, KEYHOLD_ERROR, KEYHOLD_ERROR_PROVIDER_ERROR,
                         "The provider does not support PKCE with S256");
  else
    return TRUE;
  return FALSE;
}

void
keyhold_browser_sign_in_async (KeyholdHttp *http,
                               const KeyholdProviderMetadata *metadata,
                               const char *client_id,
                               const char *scope,
                               KeyholdBrowserSignInProgress progress,
                               gpointer progress_data,
                               GCancellable *cancellable,
                               GAsyncReadyCallback callback,
                               gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  BrowserSignIn *sign_in = g_new0 (BrowserSignIn, 1);
  g_autofree char *url = NULL;
  GError *error = NULL;

  g_task_set_source_tag (task, keyhold_browser_sign_in_async);
  sign_in->http = http;
  sign_in->issuer = g_strdup (metadata->issuer);
  sign_in->iss_required = metadata->authorization_response_iss_parameter_supported;
  sign_in->token_endpoint = g_strdup (metadata->token_endpoint);
  sign_in->client_id = g_strdup (client_id);
  sign_in->state = keyhold_pkce_new_state ();
  sign_in->nonce = keyhold_pkce_new_nonce ();
  sign_in->verifier = keyhold_pkce_new_verifier ();
  sign_in->pending = g_ptr_array_new ();
  g_task_set_task_data (task, sign_in, (GDestroyNotify) browser_sign_in_free);

  if (!check_provider (metadata, &error) || !start_listening (task, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  start_deadline (task);
  url = build_authorization_url (sign_in, metadata->authorization_endpoint, scope);
  progress (url, progress_data);
}

KeyholdTokenResponse *
keyhold_browser_sign_in_finish (GAsyncResult *result, char **out_nonce, GError **error)
{
  KeyholdTokenResponse *token;
  BrowserSignIn *sign_in;

  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == keyhold_browser_sign_in_async,
                        NULL);

  token = g_task_propagate_pointer (G_TASK (result), error);
  sign_in = g_task_get_task_data (G_TASK (result));
  if (token != NULL && out_nonce != NULL)
    *out_nonce = g_strdup (sign_in->nonce);
  return token;
}
