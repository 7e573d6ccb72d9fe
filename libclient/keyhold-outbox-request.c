/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold/keyhold.h"
#include "keyhold-outbox-private.h"

/**
 * KeyholdOutboxRequest:
 *
 * An HTTP request to hand to the agent's outbox with
 * keyhold_client_outbox_enqueue(). The agent keeps it on disk, sends it
 * when the network and a valid access token are there, and adds the
 * `Authorization` and `Idempotency-Key` headers itself: never put a token
 * into a request.
 *
 * The URL's origin must be one of the account's API origins (see
 * keyhold_account_dup_api_origins()). The agent checks the method, headers
 * and sizes and refuses what it would not send
 * (%KEYHOLD_ERROR_INVALID_ARGUMENT, %KEYHOLD_ERROR_QUOTA_EXCEEDED); see
 * `org.keyhold.Outbox1.xml` for the exact rules.
 *
 * Since: 0.1
 */
struct _KeyholdOutboxRequest
{
  GObject parent_instance;

  char *method;
  char *url;
  /* Parallel arrays: the same name may come more than once. */
  GPtrArray *header_names;
  GPtrArray *header_values;
  GBytes *body;
  guint max_age;
};

G_DEFINE_FINAL_TYPE (KeyholdOutboxRequest, keyhold_outbox_request, G_TYPE_OBJECT)

/**
 * keyhold_outbox_request_new:
 * @method: an HTTP method such as "PUT"
 * @url: the absolute URL
 *
 * Creates a request to hand to keyhold_client_outbox_enqueue().
 *
 * Returns: (transfer full): a new request without headers or body.
 *
 * Since: 0.1
 */
KeyholdOutboxRequest *
keyhold_outbox_request_new (const char *method, const char *url)
{
  KeyholdOutboxRequest *self;

  g_return_val_if_fail (method != NULL, NULL);
  g_return_val_if_fail (url != NULL, NULL);

  self = g_object_new (KEYHOLD_TYPE_OUTBOX_REQUEST, NULL);
  self->method = g_strdup (method);
  self->url = g_strdup (url);
  return self;
}

/**
 * keyhold_outbox_request_add_header:
 * @self: a #KeyholdOutboxRequest
 * @name: the header's name
 * @value: its value
 *
 * Adds a header. A name may be added more than once.
 *
 * Since: 0.1
 */
void
keyhold_outbox_request_add_header (KeyholdOutboxRequest *self, const char *name, const char *value)
{
  g_return_if_fail (KEYHOLD_IS_OUTBOX_REQUEST (self));
  g_return_if_fail (name != NULL);
  g_return_if_fail (value != NULL);

  g_ptr_array_add (self->header_names, g_strdup (name));
  g_ptr_array_add (self->header_values, g_strdup (value));
}

/**
 * keyhold_outbox_request_set_body:
 * @self: a #KeyholdOutboxRequest
 * @body: (nullable): the body, or %NULL for none
 *
 * Sets the request's body, replacing any earlier one.
 *
 * Since: 0.1
 */
void
keyhold_outbox_request_set_body (KeyholdOutboxRequest *self, GBytes *body)
{
  g_return_if_fail (KEYHOLD_IS_OUTBOX_REQUEST (self));

  g_clear_pointer (&self->body, g_bytes_unref);
  if (body != NULL)
    self->body = g_bytes_ref (body);
}

/**
 * keyhold_outbox_request_set_max_age:
 * @self: a #KeyholdOutboxRequest
 * @seconds: after this many seconds an unfinished item expires; 0 for the
 *   agent's default (30 days)
 *
 * Sets how long the item may wait in the outbox before it expires.
 *
 * Since: 0.1
 */
void
keyhold_outbox_request_set_max_age (KeyholdOutboxRequest *self, guint seconds)
{
  g_return_if_fail (KEYHOLD_IS_OUTBOX_REQUEST (self));

  self->max_age = seconds;
}

GVariant *
keyhold_outbox_request_to_variant (KeyholdOutboxRequest *self)
{
  g_auto (GVariantBuilder) request = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_auto (GVariantBuilder) headers = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("a(ss)"));

  for (guint i = 0; i < self->header_names->len; i++)
    g_variant_builder_add (&headers, "(ss)", g_ptr_array_index (self->header_names, i),
                           g_ptr_array_index (self->header_values, i));

  g_variant_builder_add (&request, "{sv}", "method", g_variant_new_string (self->method));
  g_variant_builder_add (&request, "{sv}", "url", g_variant_new_string (self->url));
  if (self->header_names->len > 0)
    g_variant_builder_add (&request, "{sv}", "headers", g_variant_builder_end (&headers));
  if (self->body != NULL)
    g_variant_builder_add (&request, "{sv}", "body",
                           g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, self->body, TRUE));
  if (self->max_age != 0)
    g_variant_builder_add (&request, "{sv}", "max_age", g_variant_new_uint32 (self->max_age));
  return g_variant_builder_end (&request);
}

static void
keyhold_outbox_request_finalize (GObject *object)
{
  KeyholdOutboxRequest *self = KEYHOLD_OUTBOX_REQUEST (object);

  g_free (self->method);
  g_free (self->url);
  g_ptr_array_unref (self->header_names);
  g_ptr_array_unref (self->header_values);
  g_clear_pointer (&self->body, g_bytes_unref);
  G_OBJECT_CLASS (keyhold_outbox_request_parent_class)->finalize (object);
}

static void
keyhold_outbox_request_init (KeyholdOutboxRequest *self)
{
  self->header_names = g_ptr_array_new_with_free_func (g_free);
  self->header_values = g_ptr_array_new_with_free_func (g_free);
}

static void
keyhold_outbox_request_class_init (KeyholdOutboxRequestClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = keyhold_outbox_request_finalize;
}
