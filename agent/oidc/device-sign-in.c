/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold-contract.h"

#include "oidc/device-sign-in.h"

typedef struct
{
  KeyholdHttp *http;
  char *token_endpoint;
  char *client_id;
  KeyholdDeviceSignInProgress progress;
  gpointer progress_data;
  KeyholdDeviceAuthorization *authorization;
  guint interval_s;
  /* Monotonic: the device code's lifetime is a few minutes of waiting, not
   * a wall-clock expiry. */
  gint64 deadline_us;
  guint transient_failures;
} DeviceSignIn;

static void
device_sign_in_free (DeviceSignIn *sign_in)
{
  g_free (sign_in->token_endpoint);
  g_free (sign_in->client_id);
  keyhold_device_authorization_free (sign_in->authorization);
  g_free (sign_in);
}

static void poll_token (GTask *task);

static gboolean
on_wait_over (gpointer user_data)
{
  GTask *task = user_data;
  DeviceSignIn *sign_in = g_task_get_task_data (task);

  if (g_task_return_error_if_cancelled (task))
    return G_SOURCE_REMOVE;
  if (g_get_monotonic_time () >= sign_in->deadline_us)
    {
      g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_TIMED_OUT,
                               "The sign-in was not completed in time");
      return G_SOURCE_REMOVE;
    }
  poll_token (g_object_ref (task));
  return G_SOURCE_REMOVE;
}

/* Waits one interval, or less if cancelled: the cancellable source is a
 * child of the timer, so either wakes it. Takes over the reference to
 * @task. A millisecond timer, because g_timeout_source_new_seconds () may
 * fire up to a quarter of a second early, and RFC 8628 §3.5 wants at least
 * the interval between polls. */
static void
wait_interval (GTask *task)
{
  DeviceSignIn *sign_in = g_task_get_task_data (task);
  g_autoptr (GSource) timer = g_timeout_source_new (sign_in->interval_s * 1000);
  g_autoptr (GSource) cancelled = g_cancellable_source_new (g_task_get_cancellable (task));

  /* The child is dispatched too; it only has to wake the parent. */
  g_source_set_dummy_callback (cancelled);
  g_source_add_child_source (timer, cancelled);
  g_source_set_callback (timer, on_wait_over, task, g_object_unref);
  g_source_attach (timer, g_task_get_context (task));
}

static gboolean
is_transient (const GError *error)
{
  return error->domain == KEYHOLD_HTTP_ERROR
         || g_error_matches (error, KEYHOLD_OAUTH_ERROR,
                             KEYHOLD_OAUTH_ERROR_TEMPORARILY_UNAVAILABLE);
}

/* Decides what a failed poll means: TRUE to poll again, FALSE when the
 * task has been given its error. Takes over @error. */
static gboolean
handle_poll_error (GTask *task, GError *error)
{
  DeviceSignIn *sign_in = g_task_get_task_data (task);
  g_autoptr (GError) owned_error = error;

  if (g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_AUTHORIZATION_PENDING))
    {
      sign_in->transient_failures = 0;
      return TRUE;
    }
  if (g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_SLOW_DOWN))
    {
      sign_in->transient_failures = 0;
      sign_in->interval_s += KEYHOLD_DEVICE_SIGN_IN_SLOW_DOWN_STEP_S;
      return TRUE;
    }
  if (is_transient (error)
      && ++sign_in->transient_failures < KEYHOLD_DEVICE_SIGN_IN_MAX_TRANSIENT_FAILURES)
    return TRUE;

  if (g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_ACCESS_DENIED))
    g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_SIGN_IN_FAILED,
                             "The sign-in was denied");
  else if (g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_EXPIRED_TOKEN))
    g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_TIMED_OUT,
                             "The sign-in code expired before the sign-in was completed");
  else
    g_task_return_error (task, g_steal_pointer (&owned_error));
  return FALSE;
}

static void
on_polled (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  KeyholdTokenResponse *token;
  GError *error = NULL;

  token = keyhold_oauth_poll_device_token_finish (result, &error);
  if (token != NULL)
    g_task_return_pointer (task, token, (GDestroyNotify) keyhold_token_response_free);
  else if (handle_poll_error (task, error))
    wait_interval (g_steal_pointer (&task));
}

/* Takes over the reference to @task. */
static void
poll_token (GTask *task)
{
  DeviceSignIn *sign_in = g_task_get_task_data (task);

  keyhold_oauth_poll_device_token_async (sign_in->http, sign_in->token_endpoint, sign_in->client_id,
                                         sign_in->authorization->device_code,
                                         g_task_get_cancellable (task), on_polled, task);
}

static void
on_authorized (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  DeviceSignIn *sign_in = g_task_get_task_data (task);
  GError *error = NULL;

  sign_in->authorization = keyhold_oauth_request_device_authorization_finish (result, &error);
  if (sign_in->authorization == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  sign_in->interval_s = sign_in->authorization->interval;
  sign_in->deadline_us
      = g_get_monotonic_time () + (gint64) sign_in->authorization->expires_in * G_USEC_PER_SEC;
  sign_in->progress (sign_in->authorization, sign_in->progress_data);
  wait_interval (g_steal_pointer (&task));
}

void
keyhold_device_sign_in_async (KeyholdHttp *http,
                              const KeyholdProviderMetadata *metadata,
                              const char *client_id,
                              const char *scope,
                              KeyholdDeviceSignInProgress progress,
                              gpointer progress_data,
                              GCancellable *cancellable,
                              GAsyncReadyCallback callback,
                              gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  DeviceSignIn *sign_in = g_new0 (DeviceSignIn, 1);

  g_task_set_source_tag (task, keyhold_device_sign_in_async);
  sign_in->http = http;
  sign_in->token_endpoint = g_strdup (metadata->token_endpoint);
  sign_in->client_id = g_strdup (client_id);
  sign_in->progress = progress;
  sign_in->progress_data = progress_data;
  g_task_set_task_data (task, sign_in, (GDestroyNotify) device_sign_in_free);

  if (metadata->device_authorization_endpoint == NULL)
    {
      g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_PROVIDER_ERROR,
                               "The provider does not offer device sign-in");
      return;
    }
  keyhold_oauth_request_device_authorization_async (http, metadata->device_authorization_endpoint,
                                                    client_id, scope, cancellable, on_authorized,
                                                    g_steal_pointer (&task));
}

KeyholdTokenResponse *
keyhold_device_sign_in_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == keyhold_device_sign_in_async,
                        NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
