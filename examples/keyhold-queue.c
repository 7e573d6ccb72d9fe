/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "keyhold-cli.h"

/* The agent answers List in pages of at most this many items. */
#define LIST_PAGE 1000

static gboolean
usage_error (GError **error, const char *message)
{
  g_set_error_literal (error, KEYHOLD_CLI_ERROR, KEYHOLD_CLI_ERROR_USAGE, message);
  return FALSE;
}

/* The state as the agent names it ("pending"), which is its enum nick. */
static const char *
outbox_state_name (KeyholdOutboxState state)
{
  g_autoptr (GEnumClass) states = g_type_class_ref (KEYHOLD_TYPE_OUTBOX_STATE);

  return g_enum_get_value (states, state)->value_nick;
}

/* ---- add ------------------------------------------------------------------------ */

/* "Name: value", as curl's -H takes it. */
static gboolean
add_header (KeyholdOutboxRequest *request, const char *line, GError **error)
{
  const char *colon = strchr (line, ':');
  g_autofree char *name = NULL;

  if (colon == NULL || colon == line)
    return usage_error (error, "a header is given as \"Name: value\"");
  name = g_strndup (line, colon - line);
  keyhold_outbox_request_add_header (request, g_strstrip (name),
                                     colon + 1 + strspn (colon + 1, " \t"));
  return TRUE;
}

/* "@FILE" reads the file, anything else is the body itself. */
static GBytes *
read_data (const char *data, GError **error)
{
  char *contents = NULL;
  gsize length = 0;

  if (data[0] != '@')
    return g_bytes_new (data, strlen (data));
  if (!g_file_get_contents (data + 1, &contents, &length, error))
    return NULL;
  return g_bytes_new_take (contents, length);
}

static KeyholdOutboxRequest *
build_request (const char *method,
               const char *url,
               GStrv header_lines,
               const char *data,
               guint max_age_s,
               GError **error)
{
  g_autoptr (KeyholdOutboxRequest) request = keyhold_outbox_request_new (method, url);
  g_autoptr (GBytes) body = NULL;

  for (guint i = 0; header_lines != NULL && header_lines[i] != NULL; i++)
    if (!add_header (request, header_lines[i], error))
      return NULL;
  if (data != NULL && (body = read_data (data, error)) == NULL)
    return NULL;

  keyhold_outbox_request_set_body (request, body);
  keyhold_outbox_request_set_max_age (request, max_age_s);
  return g_steal_pointer (&request);
}

static int
queue_add (GStrv args)
{
  g_autofree char *data = NULL;
  g_autofree char *queue = NULL;
  g_auto (GStrv) header_lines = NULL;
  int max_age_s = 0;
  const GOptionEntry entries[] = {
    { "data", 'd', 0, G_OPTION_ARG_STRING, &data, "The request body, or @FILE to read it from FILE",
      "DATA" },
    { "header", 'H', 0, G_OPTION_ARG_STRING_ARRAY, &header_lines,
      "A request header; repeat for more", "'NAME: VALUE'" },
    { "queue", 'q', 0, G_OPTION_ARG_STRING, &queue,
      "The queue; requests in one queue are sent in order (default: \"default\")", "QUEUE" },
    { "max-age", 0, 0, G_OPTION_ARG_INT, &max_age_s,
      "Give up on the request if it could not be sent within SECONDS (default: 30 days)",
      "SECONDS" },
    G_OPTION_ENTRY_NULL,
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("NAME METHOD URL");
  g_autoptr (KeyholdClient) client = NULL;
  g_autoptr (KeyholdOutboxRequest) request = NULL;
  g_autofree char *id = NULL;
  g_autoptr (GError) error = NULL;

  g_option_context_set_summary (
      context, "Queue an HTTP request for account NAME's API. The agent keeps it on disk and\n"
               "sends it with a fresh access token once the network is back. Prints the\n"
               "item's id.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!keyhold_cli_parse_options (context, &args, 3, &error))
    return keyhold_cli_report_error (error);
  if (max_age_s < 0)
    {
      usage_error (&error, "--max-age is a number of seconds");
      return keyhold_cli_report_error (error);
    }

  request = build_request (args[2], args[3], header_lines, data, (guint) max_age_s, &error);
  if (request == NULL)
    return keyhold_cli_report_error (error);
  client = keyhold_client_new_sync (NULL, &error);
  if (client != NULL)
    id = keyhold_client_outbox_enqueue_sync (client, args[1], queue, request, NULL, &error);
  if (id == NULL)
    return keyhold_cli_report_error (error);

  g_print ("%s\n", id);
  return KEYHOLD_CLI_EXIT_SUCCESS;
}

/* ---- list ----------------------------------------------------------------------- */

static void
print_item_line (KeyholdOutboxItem *item)
{
  g_autofree char *id = keyhold_cli_printable (keyhold_outbox_item_get_id (item));
  const char *state = outbox_state_name (keyhold_outbox_item_get_state (item));
  g_autofree char *account = keyhold_cli_printable (keyhold_outbox_item_get_account (item));
  g_autofree char *queue = keyhold_cli_printable (keyhold_outbox_item_get_queue (item));
  g_autofree char *method = keyhold_cli_printable (keyhold_outbox_item_get_method (item));
  g_autofree char *url = keyhold_cli_printable (keyhold_outbox_item_get_url (item));
  int status = keyhold_outbox_item_get_status (item);

  if (status != 0)
    g_print ("%s  %-9s  %3d  %s/%s  %s %s\n", id, state, status, account, queue, method, url);
  else
    g_print ("%s  %-9s    -  %s/%s  %s %s\n", id, state, account, queue, method, url);
}

/* The states as the agent names them, checked here as the agent would. */
static GArray *
parse_states (GStrv names, GError **error)
{
  g_autoptr (GEnumClass) states = g_type_class_ref (KEYHOLD_TYPE_OUTBOX_STATE);
  g_autoptr (GArray) parsed = g_array_new (FALSE, FALSE, sizeof (KeyholdOutboxState));

  for (guint i = 0; names != NULL && names[i] != NULL; i++)
    {
      GEnumValue *state = g_enum_get_value_by_nick (states, names[i]);

      if (state == NULL || state->value == KEYHOLD_OUTBOX_STATE_UNKNOWN)
        {
          g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT, "Unknown state \"%s\"",
                       names[i]);
          return NULL;
        }
      g_array_append_val (parsed, state->value);
    }
  return g_steal_pointer (&parsed);
}

static int
queue_list (GStrv args)
{
  g_autofree char *account = NULL;
  g_autofree char *queue = NULL;
  g_auto (GStrv) states = NULL;
  const GOptionEntry entries[] = {
    { "account", 'a', 0, G_OPTION_ARG_STRING, &account, "Only this account's items", "NAME" },
    { "queue", 'q', 0, G_OPTION_ARG_STRING, &queue, "Only this queue's items", "QUEUE" },
    { "state", 's', 0, G_OPTION_ARG_STRING_ARRAY, &states,
      "Only items in this state (pending, sending, waiting, done, failed, cancelled, expired); "
      "repeat for more",
      "STATE" },
    G_OPTION_ENTRY_NULL,
  };
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_autoptr (KeyholdClient) client = NULL;
  g_autoptr (GArray) wanted_states = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *after = NULL;

  g_option_context_set_summary (
      context, "List the requests queued through this command, oldest first, one a line:\n"
               "ID  STATE  STATUS  ACCOUNT/QUEUE  METHOD URL");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!keyhold_cli_parse_options (context, &args, 0, &error))
    return keyhold_cli_report_error (error);

  client = keyhold_client_new_sync (NULL, &error);
  if (client == NULL || (wanted_states = parse_states (states, &error)) == NULL)
    return keyhold_cli_report_error (error);

  for (;;)
    {
      g_autolist (KeyholdOutboxItem) items = keyhold_client_outbox_list_sync (
          client, account, queue, (const KeyholdOutboxState *) wanted_states->data,
          wanted_states->len, after, LIST_PAGE, NULL, &error);

      if (error != NULL)
        return keyhold_cli_report_error (error);
      if (items == NULL)
        break;
      for (GList *l = items; l != NULL; l = l->next)
        print_item_line (l->data);
      g_free (after);
      after = g_strdup (keyhold_outbox_item_get_id (g_list_last (items)->data));
    }
  return KEYHOLD_CLI_EXIT_SUCCESS;
}

/* ---- show ------------------------------------------------------------------------ */

static char *
format_time (gint64 unix_time)
{
  g_autoptr (GDateTime) when = NULL;

  if (unix_time == 0)
    return g_strdup ("-");
  when = g_date_time_new_from_unix_local (unix_time);
  return when != NULL ? g_date_time_format (when, "%Y-%m-%d %H:%M:%S")
                      : g_strdup_printf ("%" G_GINT64_FORMAT, unix_time);
}

static void
print_time_field (gint64 unix_time, const char *label)
{
  g_autofree char *text = format_time (unix_time);

  g_print ("%-16s %s\n", label, text);
}

/* The body as text, with line breaks kept but other control characters,
 * which could steer the terminal, replaced. */
static void
print_body (GBytes *body)
{
  gsize length;
  const char *data = g_bytes_get_data (body, &length);
  GString *text;

  if (length == 0)
    return;
  if (!g_utf8_validate_len (data, length, NULL))
    {
      g_print ("(%" G_GSIZE_FORMAT " bytes of binary data, not shown)\n", length);
      return;
    }
  text = g_string_sized_new (length + 1);
  for (const char *p = data; p < data + length; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (c == '\n' || c == '\t'
          || (!g_unichar_iscntrl (c) && g_unichar_type (c) != G_UNICODE_FORMAT))
        g_string_append_unichar (text, c);
      else
        g_string_append_c (text, '?');
    }
  g_print ("%s%s", text->str, text->str[text->len - 1] == '\n' ? "" : "\n");
  g_string_free (text, TRUE);
}

static void
print_response (KeyholdOutboxItem *item)
{
  g_autoptr (GVariant) headers = keyhold_outbox_item_get_response_headers (item);
  g_autoptr (GBytes) body = keyhold_outbox_item_get_response_body (item);
  GVariantIter iter;
  const char *name, *value;

  if (headers == NULL || body == NULL)
    return;
  g_print ("\nHTTP %d\n", keyhold_outbox_item_get_status (item));
  g_variant_iter_init (&iter, headers);
  while (g_variant_iter_next (&iter, "(&s&s)", &name, &value))
    {
      g_autofree char *printable_name = keyhold_cli_printable (name);
      g_autofree char *printable_value = keyhold_cli_printable (value);

      g_print ("%s: %s\n", printable_name, printable_value);
    }
  g_print ("\n");
  print_body (body);
  if (keyhold_outbox_item_get_response_truncated (item))
    g_print ("(only the first part of the body was kept)\n");
}

static void
print_item (KeyholdOutboxItem *item)
{
  const struct
  {
    const char *value;
    const char *label;
  } text_fields[] = {
    { keyhold_outbox_item_get_id (item), "ID:" },
    { keyhold_outbox_item_get_account (item), "Account:" },
    { keyhold_outbox_item_get_queue (item), "Queue:" },
    { keyhold_outbox_item_get_method (item), "Method:" },
    { keyhold_outbox_item_get_url (item), "URL:" },
    { outbox_state_name (keyhold_outbox_item_get_state (item)), "State:" },
    { keyhold_outbox_item_get_reason (item), "Reason:" },
    { keyhold_outbox_item_get_idempotency_key (item), "Idempotency-Key:" },
  };
  int status = keyhold_outbox_item_get_status (item);

  for (gsize i = 0; i < G_N_ELEMENTS (text_fields); i++)
    {
      g_autofree char *value = keyhold_cli_printable (text_fields[i].value);

      if (*value != '\0')
        g_print ("%-16s %s\n", text_fields[i].label, value);
    }
  g_print ("%-16s %u\n", "Attempts:", keyhold_outbox_item_get_attempts (item));
  if (status != 0)
    g_print ("%-16s %d\n", "Status:", status);
  print_time_field (keyhold_outbox_item_get_created (item), "Created:");
  print_time_field (keyhold_outbox_item_get_next_attempt (item), "Next attempt:");
  print_time_field (keyhold_outbox_item_get_expires (item), "Expires:");
  print_time_field (keyhold_outbox_item_get_finished (item), "Finished:");
  print_response (item);
}

static int
queue_show (GStrv args)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("ID");
  g_autoptr (KeyholdClient) client = NULL;
  g_autoptr (KeyholdOutboxItem) item = NULL;
  g_autoptr (GError) error = NULL;

  g_option_context_set_summary (
      context, "Show a queued request: its state and, once the server answered, the\n"
               "response's status, headers and body.");
  if (!keyhold_cli_parse_options (context, &args, 1, &error))
    return keyhold_cli_report_error (error);

  client = keyhold_client_new_sync (NULL, &error);
  if (client != NULL)
    item = keyhold_client_outbox_get_sync (client, args[1], NULL, &error);
  if (item == NULL)
    return keyhold_cli_report_error (error);
  print_item (item);
  return KEYHOLD_CLI_EXIT_SUCCESS;
}

/* ---- cancel ---------------------------------------------------------------------- */

static int
queue_cancel (GStrv args)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("ID");
  g_autoptr (KeyholdClient) client = NULL;
  g_autoptr (GError) error = NULL;

  g_option_context_set_summary (context, "Cancel a queued request that has not been sent yet.");
  if (!keyhold_cli_parse_options (context, &args, 1, &error))
    return keyhold_cli_report_error (error);

  client = keyhold_client_new_sync (NULL, &error);
  if (client == NULL || !keyhold_client_outbox_cancel_sync (client, args[1], NULL, &error))
    return keyhold_cli_report_error (error);
  g_print ("Cancelled %s.\n", args[1]);
  return KEYHOLD_CLI_EXIT_SUCCESS;
}

static const KeyholdCliCommand queue_commands[] = {
  { "add", "add NAME METHOD URL [--data DATA|@FILE] [--header H]...",
    "Queue a request for an account's API", queue_add },
  { "list", "list [--account NAME] [--state STATE]...", "List queued requests", queue_list },
  { "show", "show ID", "Show a request and its response", queue_show },
  { "cancel", "cancel ID", "Cancel a request not sent yet", queue_cancel },
  { NULL },
};

int
keyhold_cli_queue (GStrv args)
{
  return keyhold_cli_dispatch (queue_commands, args);
}
