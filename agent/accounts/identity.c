/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold-contract.h"

#include "base/clock.h"
#include "oidc/id-token.h"
#include "accounts/identity.h"

typedef struct
{
  KeyholdProviderCache *providers;
  const KeyholdProviderMetadata *metadata;
  KeyholdSecret *id_token;
  char *client_id;
  char *nonce;
  char *subject;
  gboolean refetched;
  KeyholdIdentityFailure failure;
} ValidateData;

static void
validate_data_free (ValidateData *data)
{
  keyhold_secret_unref (data->id_token);
  g_free (data->client_id);
  g_free (data->nonce);
  g_free (data->subject);
  g_free (data);
}

static void on_jwks (GObject *source, GAsyncResult *result, gpointer user_data);

static void
fetch_jwks (GTask *task, gboolean refetch)
{
  ValidateData *data = g_task_get_task_data (task);

  keyhold_provider_cache_get_jwks_async (data->providers, data->metadata, refetch,
                                         g_task_get_cancellable (task), on_jwks, task);
}

static void
on_jwks (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  ValidateData *data = g_task_get_task_data (task);
  g_autoptr (JsonNode) jwks = NULL;
  g_autoptr (GError) error = NULL;
  JsonObject *claims;
  KeyholdIdTokenExpectations expect = {
    .issuer = data->metadata->issuer,
    .client_id = data->client_id,
    .nonce = data->nonce,
    .subject = data->subject,
    .now = keyhold_clock_now_s (),
    .leeway_seconds = KEYHOLD_IDENTITY_CLOCK_SKEW_S,
  };

  jwks = keyhold_provider_cache_get_jwks_finish (data->providers, result, &error);
  if (jwks == NULL)
    {
      data->failure = KEYHOLD_IDENTITY_UNVERIFIED;
      g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_PROVIDER_ERROR,
                               "Could not get the provider's signing keys: %s", error->message);
      return;
    }

  claims = keyhold_id_token_validate (data->id_token, jwks, &expect, &error);
  if (claims != NULL)
    {
      g_task_return_pointer (task, claims, (GDestroyNotify) json_object_unref);
      return;
    }

  if (g_error_matches (error, KEYHOLD_ID_TOKEN_ERROR, KEYHOLD_ID_TOKEN_ERROR_NO_KEY)
      && !data->refetched)
    {
      data->refetched = TRUE;
      fetch_jwks (g_steal_pointer (&task), TRUE);
      return;
    }
  data->failure
      = g_error_matches (error, KEYHOLD_ID_TOKEN_ERROR, KEYHOLD_ID_TOKEN_ERROR_OTHER_IDENTITY)
            ? KEYHOLD_IDENTITY_OTHER_IDENTITY
            : KEYHOLD_IDENTITY_INVALID;
  g_task_return_new_error (task, KEYHOLD_ERROR, KEYHOLD_ERROR_PROVIDER_ERROR,
                           "The provider's ID token was rejected: %s", error->message);
}

void
keyhold_identity_validate_async (KeyholdProviderCache *providers,
                                 const KeyholdProviderMetadata *metadata,
                                 KeyholdSecret *id_token,
                                 const char *client_id,
                                 const char *nonce,
                                 const char *subject,
                                 GCancellable *cancellable,
                                 GAsyncReadyCallback callback,
                                 gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  ValidateData *data = g_new0 (ValidateData, 1);

  data->providers = providers;
  data->metadata = metadata;
  data->id_token = keyhold_secret_ref (id_token);
  data->client_id = g_strdup (client_id);
  data->nonce = g_strdup (nonce);
  data->subject = g_strdup (subject);
  g_task_set_task_data (task, data, (GDestroyNotify) validate_data_free);
  fetch_jwks (task, FALSE);
}

JsonObject *
keyhold_identity_validate_finish (GAsyncResult *result,
                                  KeyholdIdentityFailure *out_failure,
                                  GError **error)
{
  ValidateData *data = g_task_get_task_data (G_TASK (result));

  if (out_failure != NULL)
    *out_failure = data->failure;
  return g_task_propagate_pointer (G_TASK (result), error);
}

const char *
keyhold_identity_display_name (JsonObject *claims)
{
  static const char *const preferred[] = { "name", "email", "preferred_username", "sub" };

  for (guint i = 0; i < G_N_ELEMENTS (preferred); i++)
    {
      JsonNode *node = json_object_get_member (claims, preferred[i]);

      if (node != NULL && JSON_NODE_HOLDS_VALUE (node)
          && json_node_get_value_type (node) == G_TYPE_STRING
          && *json_node_get_string (node) != '\0')
        return json_node_get_string (node);
    }
  return "";
}
