/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold/keyhold.h"
#include "keyhold-outbox-private.h"

/**
 * KeyholdOutboxItem:
 *
 * A snapshot of one item of the outbox, as keyhold_client_outbox_get() and
 * keyhold_client_outbox_list() return it. It does not change; ask again
 * (for instance when #KeyholdClient::outbox-item-changed names it) for the
 * current state.
 *
 * Since: 0.1
 */
struct _KeyholdOutboxItem
{
  GObject parent_instance;

  /* The a{sv} dictionary from the agent; the getters read from it. */
  GVariant *fields;
};

G_DEFINE_FINAL_TYPE (KeyholdOutboxItem, keyhold_outbox_item, G_TYPE_OBJECT)

/**
 * keyhold_outbox_state_is_final:
 * @state: a #KeyholdOutboxState
 *
 * Tells whether @state is final.
 *
 * Returns: %TRUE for done, failed, cancelled and expired: states an item
 *   never leaves.
 *
 * Since: 0.1
 */
gboolean
keyhold_outbox_state_is_final (KeyholdOutboxState state)
{
  return state == KEYHOLD_OUTBOX_STATE_DONE || state == KEYHOLD_OUTBOX_STATE_FAILED
         || state == KEYHOLD_OUTBOX_STATE_CANCELLED || state == KEYHOLD_OUTBOX_STATE_EXPIRED;
}

const char *
keyhold_outbox_state_to_string (KeyholdOutboxState state)
{
  g_autoptr (GEnumClass) states = g_type_class_ref (KEYHOLD_TYPE_OUTBOX_STATE);
  GEnumValue *value = g_enum_get_value (states, state);

  /* The nicks live in static storage, beyond the class reference. */
  return value != NULL ? value->value_nick : "unknown";
}

KeyholdOutboxState
keyhold_outbox_state_from_string (const char *text)
{
  g_autoptr (GEnumClass) states = g_type_class_ref (KEYHOLD_TYPE_OUTBOX_STATE);
  GEnumValue *value = g_enum_get_value_by_nick (states, text);

  return value != NULL ? (KeyholdOutboxState) value->value : KEYHOLD_OUTBOX_STATE_UNKNOWN;
}

KeyholdOutboxItem *
keyhold_outbox_item_new (GVariant *item)
{
  KeyholdOutboxItem *self = g_object_new (KEYHOLD_TYPE_OUTBOX_ITEM, NULL);

  self->fields = g_variant_take_ref (item);
  return self;
}

/* Fields a newer or older agent does not send read as empty. */
static const char *
lookup_string (KeyholdOutboxItem *self, const char *key)
{
  const char *value;

  if (!g_variant_lookup (self->fields, key, "&s", &value))
    return "";
  return value;
}

static gint64
lookup_time (KeyholdOutboxItem *self, const char *key)
{
  gint64 value;

  if (!g_variant_lookup (self->fields, key, "x", &value))
    return 0;
  return value;
}

/**
 * keyhold_outbox_item_get_id:
 * @self: a #KeyholdOutboxItem
 *
 * Gets the item's id.
 *
 * Returns: (transfer none): the item's id, a UUID.
 *
 * Since: 0.1
 */
const char *
keyhold_outbox_item_get_id (KeyholdOutboxItem *self)
{
  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), NULL);

  return lookup_string (self, "id");
}

/**
 * keyhold_outbox_item_get_account:
 * @self: a #KeyholdOutboxItem
 *
 * Gets the account whose access token authorises the request.
 *
 * Returns: (transfer none): the name of the account whose token the
 *   request carries.
 *
 * Since: 0.1
 */
const char *
keyhold_outbox_item_get_account (KeyholdOutboxItem *self)
{
  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), NULL);

  return lookup_string (self, "account");
}

/**
 * keyhold_outbox_item_get_queue:
 * @self: a #KeyholdOutboxItem
 *
 * Gets the item's queue.
 *
 * Returns: (transfer none): the queue the item is in.
 *
 * Since: 0.1
 */
const char *
keyhold_outbox_item_get_queue (KeyholdOutboxItem *self)
{
  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), NULL);

  return lookup_string (self, "queue");
}

/**
 * keyhold_outbox_item_get_method:
 * @self: a #KeyholdOutboxItem
 *
 * Gets the request's HTTP method.
 *
 * Returns: (transfer none): the request's HTTP method.
 *
 * Since: 0.1
 */
const char *
keyhold_outbox_item_get_method (KeyholdOutboxItem *self)
{
  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), NULL);

  return lookup_string (self, "method");
}

/**
 * keyhold_outbox_item_get_url:
 * @self: a #KeyholdOutboxItem
 *
 * Gets the request's URL.
 *
 * Returns: (transfer none): the request's URL.
 *
 * Since: 0.1
 */
const char *
keyhold_outbox_item_get_url (KeyholdOutboxItem *self)
{
  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), NULL);

  return lookup_string (self, "url");
}

/**
 * keyhold_outbox_item_get_idempotency_key:
 * @self: a #KeyholdOutboxItem
 *
 * Gets the idempotency key sent with the request.
 *
 * Returns: (transfer none): the value of the `Idempotency-Key` header sent
 *   with every attempt, without its quotes.
 *
 * Since: 0.1
 */
const char *
keyhold_outbox_item_get_idempotency_key (KeyholdOutboxItem *self)
{
  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), NULL);

  return lookup_string (self, "idempotency_key");
}

/**
 * keyhold_outbox_item_get_state:
 * @self: a #KeyholdOutboxItem
 *
 * Gets the item's state.
 *
 * Returns: the item's state when it was read.
 *
 * Since: 0.1
 */
KeyholdOutboxState
keyhold_outbox_item_get_state (KeyholdOutboxItem *self)
{
  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), KEYHOLD_OUTBOX_STATE_UNKNOWN);

  return keyhold_outbox_state_from_string (lookup_string (self, "state"));
}

/**
 * keyhold_outbox_item_get_attempts:
 * @self: a #KeyholdOutboxItem
 *
 * Gets how many times the request has been sent.
 *
 * Returns: how many times the request has been sent.
 *
 * Since: 0.1
 */
guint
keyhold_outbox_item_get_attempts (KeyholdOutboxItem *self)
{
  guint32 attempts;

  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), 0);

  if (!g_variant_lookup (self->fields, "attempts", "u", &attempts))
    return 0;
  return attempts;
}

/**
 * keyhold_outbox_item_get_created:
 * @self: a #KeyholdOutboxItem
 *
 * Gets when the item was enqueued.
 *
 * Returns: the Unix time (seconds) the item was enqueued.
 *
 * Since: 0.1
 */
gint64
keyhold_outbox_item_get_created (KeyholdOutboxItem *self)
{
  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), 0);

  return lookup_time (self, "created");
}

/**
 * keyhold_outbox_item_get_expires:
 * @self: a #KeyholdOutboxItem
 *
 * Gets when the item expires.
 *
 * Returns: the Unix time (seconds) at which the item expires unless it has
 *   finished.
 *
 * Since: 0.1
 */
gint64
keyhold_outbox_item_get_expires (KeyholdOutboxItem *self)
{
  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), 0);

  return lookup_time (self, "expires");
}

/**
 * keyhold_outbox_item_get_next_attempt:
 * @self: a #KeyholdOutboxItem
 *
 * Gets when the request is next retried.
 *
 * Returns: the Unix time (seconds) of the next retry, or 0 for none.
 *
 * Since: 0.1
 */
gint64
keyhold_outbox_item_get_next_attempt (KeyholdOutboxItem *self)
{
  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), 0);

  return lookup_time (self, "next_attempt");
}

/**
 * keyhold_outbox_item_get_finished:
 * @self: a #KeyholdOutboxItem
 *
 * Gets when the item finished.
 *
 * Returns: the Unix time (seconds) the item finished, or 0 while it has not.
 *
 * Since: 0.1
 */
gint64
keyhold_outbox_item_get_finished (KeyholdOutboxItem *self)
{
  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), 0);

  return lookup_time (self, "finished");
}

/**
 * keyhold_outbox_item_get_status:
 * @self: a #KeyholdOutboxItem
 *
 * Gets the HTTP status of the last response.
 *
 * Returns: the HTTP status of the last response, or 0 for none.
 *
 * Since: 0.1
 */
int
keyhold_outbox_item_get_status (KeyholdOutboxItem *self)
{
  gint32 status;

  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), 0);

  if (!g_variant_lookup (self->fields, "status", "i", &status))
    return 0;
  return status;
}

/**
 * keyhold_outbox_item_get_reason:
 * @self: a #KeyholdOutboxItem
 *
 * Gets why the item failed, expired or waits.
 *
 * Returns: (transfer none): why the item failed, expired or waits, or "".
 *
 * Since: 0.1
 */
const char *
keyhold_outbox_item_get_reason (KeyholdOutboxItem *self)
{
  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), NULL);

  return lookup_string (self, "reason");
}

/**
 * keyhold_outbox_item_lookup_response_header:
 * @self: a #KeyholdOutboxItem
 * @name: a header name, in any case
 *
 * Only items read with keyhold_client_outbox_get() carry the response.
 *
 * Returns: (transfer none) (nullable): the first value of the header @name
 *   in the last response, or %NULL.
 *
 * Since: 0.1
 */
const char *
keyhold_outbox_item_lookup_response_header (KeyholdOutboxItem *self, const char *name)
{
  g_autoptr (GVariantIter) headers = NULL;
  const char *header_name, *value;

  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);

  if (!g_variant_lookup (self->fields, "response_headers", "a(ss)", &headers))
    return NULL;
  while (g_variant_iter_next (headers, "(&s&s)", &header_name, &value))
    if (g_ascii_strcasecmp (header_name, name) == 0)
      return value;
  return NULL;
}

/**
 * keyhold_outbox_item_get_response_headers:
 * @self: a #KeyholdOutboxItem
 *
 * Only items read with keyhold_client_outbox_get() carry the response.
 *
 * Returns: (transfer full) (nullable): the headers of the last response,
 *   as an `a(ss)` array of (name, value) pairs with the names in lower
 *   case, or %NULL when there is no response.
 *
 * Since: 0.1
 */
GVariant *
keyhold_outbox_item_get_response_headers (KeyholdOutboxItem *self)
{
  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), NULL);

  return g_variant_lookup_value (self->fields, "response_headers", G_VARIANT_TYPE ("a(ss)"));
}

/**
 * keyhold_outbox_item_get_response_body:
 * @self: a #KeyholdOutboxItem
 *
 * Only items read with keyhold_client_outbox_get() carry the response.
 *
 * Returns: (transfer full) (nullable): the body of the last response (its
 *   first 64 KiB), or %NULL when there is none.
 *
 * Since: 0.1
 */
GBytes *
keyhold_outbox_item_get_response_body (KeyholdOutboxItem *self)
{
  g_autoptr (GVariant) body = NULL;

  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), NULL);

  body = g_variant_lookup_value (self->fields, "response_body", G_VARIANT_TYPE_BYTESTRING);
  if (body == NULL)
    return NULL;
  return g_variant_get_data_as_bytes (body);
}

/**
 * keyhold_outbox_item_get_response_truncated:
 * @self: a #KeyholdOutboxItem
 *
 * Tells whether the kept response body was cut short.
 *
 * Returns: %TRUE when the response body was longer than what is kept.
 *
 * Since: 0.1
 */
gboolean
keyhold_outbox_item_get_response_truncated (KeyholdOutboxItem *self)
{
  gboolean truncated;

  g_return_val_if_fail (KEYHOLD_IS_OUTBOX_ITEM (self), FALSE);

  if (!g_variant_lookup (self->fields, "response_truncated", "b", &truncated))
    return FALSE;
  return truncated;
}

static void
keyhold_outbox_item_finalize (GObject *object)
{
  KeyholdOutboxItem *self = KEYHOLD_OUTBOX_ITEM (object);

  g_clear_pointer (&self->fields, g_variant_unref);
  G_OBJECT_CLASS (keyhold_outbox_item_parent_class)->finalize (object);
}

static void
keyhold_outbox_item_init (KeyholdOutboxItem *self)
{
}

static void
keyhold_outbox_item_class_init (KeyholdOutboxItemClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = keyhold_outbox_item_finalize;
}
