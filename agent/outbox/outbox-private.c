/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold-contract.h"

#include "base/clock.h"
#include "outbox/outbox-private.h"

enum
{
  PROP_0,
  PROP_STORAGE_ERROR,
  N_PROPS
};

enum
{
  SIGNAL_ITEM_CHANGED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

gint64
keyhold_outbox_now_ms (void)
{
  return keyhold_clock_now_us () / 1000;
}

OutboxHandle *
keyhold_outbox_handle_ref (OutboxHandle *handle)
{
  return g_rc_box_acquire (handle);
}

void
keyhold_outbox_handle_unref (OutboxHandle *handle)
{
  g_rc_box_release (handle);
}

/* ---- storage errors ---------------------------------------------------------- */

void
keyhold_outbox_update_storage_error (KeyholdOutbox *self)
{
  const char *message = "";

  if (self->context->storage_error != NULL)
    message = self->context->storage_error->message;
  else if (self->open_error != NULL)
    message = self->open_error;
  else if (self->key_error != NULL)
    message = self->key_error;
  else if (self->write_error != NULL)
    message = self->write_error;

  if (g_strcmp0 (self->storage_error, message) == 0)
    return;
  g_free (self->storage_error);
  self->storage_error = g_strdup (message);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STORAGE_ERROR]);
}

void
keyhold_outbox_set_error_field (KeyholdOutbox *self, char **field, const GError *error)
{
  g_free (*field);
  *field = error != NULL ? g_strdup (error->message) : NULL;
  keyhold_outbox_update_storage_error (self);
}

/* Whether the database can be used at all; the key may still be missing. */
gboolean
keyhold_outbox_check_store (KeyholdOutbox *self, GError **error)
{
  if (self->store != NULL)
    return TRUE;
  g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_STORAGE, "The outbox cannot be used: %s",
               self->storage_error);
  return FALSE;
}

void
keyhold_outbox_emit_item_changed (KeyholdOutbox *self,
                                  const char *id,
                                  KeyholdOutboxState state,
                                  int status)
{
  g_signal_emit (self, signals[SIGNAL_ITEM_CHANGED], 0, id, keyhold_outbox_state_to_string (state),
                 status);
}

/* ---- the property and the signal ------------------------------------------------ */

static void
keyhold_outbox_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  KeyholdOutbox *self = KEYHOLD_OUTBOX (object);

  switch (prop_id)
    {
    case PROP_STORAGE_ERROR:
      g_value_set_string (value, self->storage_error);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

void
keyhold_outbox_install_notifications (GObjectClass *object_class)
{
  object_class->get_property = keyhold_outbox_get_property;

  properties[PROP_STORAGE_ERROR]
      = g_param_spec_string ("storage-error", NULL, NULL, "",
                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  signals[SIGNAL_ITEM_CHANGED]
      = g_signal_new ("item-changed", G_TYPE_FROM_CLASS (object_class), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_INT);
}
