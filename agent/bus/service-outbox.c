/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold-contract.h"

#include "bus/keyhold-dbus-generated.h"
#include "bus/service-outbox.h"
#include "outbox/outbox-request.h"

typedef struct
{
  KeyholdOutbox *outbox;
  KeyholdAccess *access;
} OutboxService;

/* The caller's identity, or NULL once the invocation has been answered:
 * the access check took it over, or the caller could not be identified. */
static const char *
caller_owner (KeyholdDBusOutbox1 *skeleton,
              GDBusMethodInvocation *invocation,
              OutboxService *service)
{
  const char *owner;

  if (!keyhold_access_check (service->access, G_DBUS_INTERFACE_SKELETON (skeleton), invocation))
    return NULL;
  owner = keyhold_access_get_caller_id (service->access,
                                        g_dbus_method_invocation_get_sender (invocation));
  if (owner == NULL)
    g_dbus_method_invocation_return_error_literal (
        invocation, KEYHOLD_ERROR, KEYHOLD_ERROR_ACCESS_DENIED,
        "The calling application could not be identified, so its items cannot be kept apart "
        "from others'");
  return owner;
}

/* ---- Enqueue ------------------------------------------------------------------ */

static gboolean invalid (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
invalid (GError **error, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_propagate_error (
      error, g_error_new_valist (KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT, format, args));
  va_end (args);
  return FALSE;
}

static gboolean
take_request_entry (KeyholdOutboxRequest *request, const char *key, GVariant *value, GError **error)
{
  if (g_str_equal (key, "method") || g_str_equal (key, "url"))
    return TRUE;
  if (g_str_equal (key, "headers") && g_variant_is_of_type (value, G_VARIANT_TYPE ("a(ss)")))
    {
      GVariantIter iter;
      const char *name, *header_value;

      g_variant_iter_init (&iter, value);
      while (g_variant_iter_next (&iter, "(&s&s)", &name, &header_value))
        keyhold_outbox_request_add_header (request, name, header_value);
      return TRUE;
    }
  if (g_str_equal (key, "body") && g_variant_is_of_type (value, G_VARIANT_TYPE_BYTESTRING))
    {
      request->body = g_variant_get_data_as_bytes (value);
      return TRUE;
    }
  if (g_str_equal (key, "max_age") && g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    {
      request->max_age_s = g_variant_get_uint32 (value);
      if (request->max_age_s == 0)
        return invalid (error, "max_age must be at least 1 second");
      return TRUE;
    }
  return invalid (error, "Unknown request key \"%s\", or it has the wrong type", key);
}

static KeyholdOutboxRequest *
parse_request (GVariant *dict, GError **error)
{
  g_autoptr (KeyholdOutboxRequest) request = NULL;
  const char *method = NULL, *url = NULL;
  GVariantIter iter;
  const char *key;
  GVariant *value;

  if (!g_variant_lookup (dict, "method", "&s", &method)
      || !g_variant_lookup (dict, "url", "&s", &url))
    {
      invalid (error, "A request needs \"method\" and \"url\", both strings");
      return NULL;
    }
  request = keyhold_outbox_request_new (method, url);

  g_variant_iter_init (&iter, dict);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autoptr (GVariant) owned_value = value;

      if (!take_request_entry (request, key, value, error))
        return NULL;
    }
  return g_steal_pointer (&request);
}

static void
on_enqueued (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GDBusMethodInvocation *invocation = user_data;
  g_autofree char *id = NULL;
  GError *error = NULL;

  id = keyhold_outbox_enqueue_finish (NULL, result, &error);
  if (id == NULL)
    g_dbus_method_invocation_take_error (invocation, error);
  else
    g_dbus_method_invocation_return_value (invocation, g_variant_new ("(s)", id));
}

static gboolean
handle_enqueue (KeyholdDBusOutbox1 *skeleton,
                GDBusMethodInvocation *invocation,
                const char *account,
                const char *queue,
                GVariant *request_dict,
                OutboxService *service)
{
  const char *owner = caller_owner (skeleton, invocation, service);
  g_autoptr (KeyholdOutboxRequest) request = NULL;
  GError *error = NULL;

  if (owner == NULL)
    return G_DBUS_METHOD_INVOCATION_HANDLED;

  request = parse_request (request_dict, &error);
  if (request == NULL)
    g_dbus_method_invocation_take_error (invocation, error);
  else
    keyhold_outbox_enqueue_async (service->outbox, owner, account, queue, request, on_enqueued,
                                  invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- Get and List ------------------------------------------------------------- */

static GVariant *
info_variant (const KeyholdOutboxItemInfo *info)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&builder, "{sv}", "id", g_variant_new_string (info->id));
  g_variant_builder_add (&builder, "{sv}", "account", g_variant_new_string (info->account));
  g_variant_builder_add (&builder, "{sv}", "queue", g_variant_new_string (info->queue));
  g_variant_builder_add (&builder, "{sv}", "method", g_variant_new_string (info->method));
  g_variant_builder_add (&builder, "{sv}", "url", g_variant_new_string (info->url));
  g_variant_builder_add (&builder, "{sv}", "idempotency_key",
                         g_variant_new_string (info->idempotency_key));
  g_variant_builder_add (&builder, "{sv}", "state",
                         g_variant_new_string (keyhold_outbox_state_to_string (info->state)));
  g_variant_builder_add (&builder, "{sv}", "attempts", g_variant_new_uint32 (info->attempts));
  g_variant_builder_add (&builder, "{sv}", "created", g_variant_new_int64 (info->created_s));
  g_variant_builder_add (&builder, "{sv}", "expires", g_variant_new_int64 (info->expires_s));
  g_variant_builder_add (&builder, "{sv}", "next_attempt",
                         g_variant_new_int64 (info->next_attempt_s));
  g_variant_builder_add (&builder, "{sv}", "status", g_variant_new_int32 (info->status));
  g_variant_builder_add (&builder, "{sv}", "reason", g_variant_new_string (info->reason));
  g_variant_builder_add (&builder, "{sv}", "finished", g_variant_new_int64 (info->finished_s));
  if (info->response_body != NULL)
    {
      g_variant_builder_add (&builder, "{sv}", "response_headers",
                             keyhold_outbox_headers_variant (info->response_header_names,
                                                             info->response_header_values));
      g_variant_builder_add (
          &builder, "{sv}", "response_body",
          g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, info->response_body, TRUE));
      g_variant_builder_add (&builder, "{sv}", "response_truncated",
                             g_variant_new_boolean (info->response_truncated));
    }
  return g_variant_builder_end (&builder);
}

static void
on_got (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GDBusMethodInvocation *invocation = user_data;
  g_autoptr (KeyholdOutboxItemInfo) info = NULL;
  GError *error = NULL;

  info = keyhold_outbox_get_finish (NULL, result, &error);
  if (info == NULL)
    g_dbus_method_invocation_take_error (invocation, error);
  else
    g_dbus_method_invocation_return_value (invocation,
                                           g_variant_new ("(@a{sv})", info_variant (info)));
}

static gboolean
handle_get (KeyholdDBusOutbox1 *skeleton,
            GDBusMethodInvocation *invocation,
            const char *id,
            OutboxService *service)
{
  const char *owner = caller_owner (skeleton, invocation, service);

  if (owner == NULL)
    return G_DBUS_METHOD_INVOCATION_HANDLED;

  keyhold_outbox_get_async (service->outbox, owner, id, on_got, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
parse_states (const char *const *states, guint *out_mask, GError **error)
{
  guint mask = 0;

  for (guint i = 0; states[i] != NULL; i++)
    {
      KeyholdOutboxState state;

      if (!keyhold_outbox_state_from_string (states[i], &state))
        return invalid (error, "Unknown state \"%s\"", states[i]);
      mask |= 1u << state;
    }
  *out_mask = mask;
  return TRUE;
}

static gboolean
parse_list_options (GVariant *options, const char **out_after, guint *out_limit, GError **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  *out_after = NULL;
  *out_limit = KEYHOLD_OUTBOX_MAX_LIST;
  g_variant_iter_init (&iter, options);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autoptr (GVariant) owned_value = value;

      if (g_str_equal (key, "after") && g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
        *out_after = g_variant_get_string (value, NULL);
      else if (g_str_equal (key, "limit") && g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32)
               && g_variant_get_uint32 (value) >= 1
               && g_variant_get_uint32 (value) <= KEYHOLD_OUTBOX_MAX_LIST)
        *out_limit = g_variant_get_uint32 (value);
      else
        return invalid (error, "Unknown list option \"%s\", or a wrong type or value", key);
    }
  return TRUE;
}

static void
on_listed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GDBusMethodInvocation *invocation = user_data;
  g_autoptr (GPtrArray) infos = NULL;
  GVariantBuilder builder;
  GError *error = NULL;

  infos = keyhold_outbox_list_finish (NULL, result, &error);
  if (infos == NULL)
    {
      g_dbus_method_invocation_take_error (invocation, error);
      return;
    }
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < infos->len; i++)
    g_variant_builder_add_value (&builder, info_variant (infos->pdata[i]));
  g_dbus_method_invocation_return_value (
      invocation, g_variant_new ("(@aa{sv})", g_variant_builder_end (&builder)));
}

static gboolean
handle_list (KeyholdDBusOutbox1 *skeleton,
             GDBusMethodInvocation *invocation,
             const char *account,
             const char *queue,
             const char *const *states,
             GVariant *options,
             OutboxService *service)
{
  const char *owner = caller_owner (skeleton, invocation, service);
  const char *after = NULL;
  guint limit = 0, mask = 0;
  GError *error = NULL;

  if (owner == NULL)
    return G_DBUS_METHOD_INVOCATION_HANDLED;

  if (!parse_states (states, &mask, &error)
      || !parse_list_options (options, &after, &limit, &error))
    {
      g_dbus_method_invocation_take_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  keyhold_outbox_list_async (
      service->outbox, owner, *account != '\0' ? account : NULL, *queue != '\0' ? queue : NULL,
      mask, after != NULL && *after != '\0' ? after : NULL, limit, on_listed, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- Cancel and the signal -------------------------------------------------- */

static void
on_cancelled (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GDBusMethodInvocation *invocation = user_data;
  GError *error = NULL;

  if (!keyhold_outbox_cancel_finish (NULL, result, &error))
    g_dbus_method_invocation_take_error (invocation, error);
  else
    g_dbus_method_invocation_return_value (invocation, NULL);
}

static gboolean
handle_cancel (KeyholdDBusOutbox1 *skeleton,
               GDBusMethodInvocation *invocation,
               const char *id,
               OutboxService *service)
{
  const char *owner = caller_owner (skeleton, invocation, service);

  if (owner == NULL)
    return G_DBUS_METHOD_INVOCATION_HANDLED;

  keyhold_outbox_cancel_async (service->outbox, owner, id, on_cancelled, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
on_item_changed (KeyholdOutbox *outbox,
                 const char *id,
                 const char *state,
                 int status,
                 KeyholdDBusOutbox1 *skeleton)
{
  keyhold_dbus_outbox1_emit_item_changed (skeleton, id, state, status);
}

GDBusInterfaceSkeleton *
keyhold_service_outbox_new (KeyholdOutbox *outbox, KeyholdAccess *access)
{
  KeyholdDBusOutbox1 *skeleton = keyhold_dbus_outbox1_skeleton_new ();
  OutboxService *service = g_new0 (OutboxService, 1);

  service->outbox = outbox;
  service->access = access;
  g_object_set_data_full (G_OBJECT (skeleton), "keyhold-outbox-service", service, g_free);

  keyhold_dbus_outbox1_set_version (skeleton, 1);
  g_signal_connect (skeleton, "handle-enqueue", G_CALLBACK (handle_enqueue), service);
  g_signal_connect (skeleton, "handle-get", G_CALLBACK (handle_get), service);
  g_signal_connect (skeleton, "handle-list", G_CALLBACK (handle_list), service);
  g_signal_connect (skeleton, "handle-cancel", G_CALLBACK (handle_cancel), service);
  g_signal_connect_object (outbox, "item-changed", G_CALLBACK (on_item_changed), skeleton, 0);
  return G_DBUS_INTERFACE_SKELETON (skeleton);
}
