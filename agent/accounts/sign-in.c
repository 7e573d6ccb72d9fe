/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "keyhold-contract.h"

#include "oidc/browser-sign-in.h"
#include "oidc/device-sign-in.h"
#include "accounts/identity.h"
#include "accounts/sign-in.h"

struct _KeyholdSignIns
{
  KeyholdContext *context;
  const KeyholdSignInsListener *listener;
  gpointer listener_data;
  GHashTable *active; /* handle -> SignIn */
  guint64 next_handle;
};

typedef struct
{
  KeyholdSignIns *owner;
  /* The daemon drains every flow before it frees the context. */
  KeyholdContext *context;
  char *handle;
  char *caller;
  KeyholdAccount *account;
  gboolean browser;
  GCancellable *cancellable;
  KeyholdProviderMetadata *metadata;
  KeyholdTokenResponse *response;
  char *nonce;
} SignIn;

static void
sign_in_free (SignIn *sign_in)
{
  g_free (sign_in->handle);
  g_free (sign_in->caller);
  g_object_unref (sign_in->account);
  g_object_unref (sign_in->cancellable);
  g_clear_pointer (&sign_in->metadata, keyhold_provider_metadata_free);
  g_clear_pointer (&sign_in->response, keyhold_token_response_free);
  g_free (sign_in->nonce);
  g_free (sign_in);
}

KeyholdSignIns *
keyhold_sign_ins_new (KeyholdContext *context,
                      const KeyholdSignInsListener *listener,
                      gpointer user_data)
{
  KeyholdSignIns *sign_ins = g_new0 (KeyholdSignIns, 1);

  sign_ins->context = context;
  sign_ins->listener = listener;
  sign_ins->listener_data = user_data;
  sign_ins->active = g_hash_table_new (g_str_hash, g_str_equal);
  return sign_ins;
}

void
keyhold_sign_ins_free (KeyholdSignIns *sign_ins)
{
  GHashTableIter iter;
  SignIn *sign_in;

  if (sign_ins == NULL)
    return;
  /* Each flow completes asynchronously with G_IO_ERROR_CANCELLED and then
   * frees itself; it must no longer find its owner. */
  g_hash_table_iter_init (&iter, sign_ins->active);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &sign_in))
    {
      sign_in->owner = NULL;
      g_cancellable_cancel (sign_in->cancellable);
    }
  g_hash_table_unref (sign_ins->active);
  g_free (sign_ins);
}

/* Any error in the KEYHOLD_ERROR domain, so that callers always get an
 * org.keyhold.Error.* name. */
static GError *
error_to_public (const GError *error)
{
  if (error->domain == KEYHOLD_ERROR)
    return g_error_copy (error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return g_error_new_literal (KEYHOLD_ERROR, KEYHOLD_ERROR_CANCELLED,
                                "The sign-in was cancelled");
  if (error->domain == KEYHOLD_HTTP_ERROR)
    return g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_OFFLINE, "The provider cannot be reached: %s",
                        error->message);
  if (g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_ACCESS_DENIED)
      || g_error_matches (error, KEYHOLD_OAUTH_ERROR, KEYHOLD_OAUTH_ERROR_EXPIRED_TOKEN))
    return g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_SIGN_IN_FAILED, "%s", error->message);
  return g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_PROVIDER_ERROR, "%s", error->message);
}

static void
report_progress (SignIn *sign_in, GVariantBuilder *info)
{
  g_autoptr (GVariant) progress = g_variant_ref_sink (g_variant_builder_end (info));

  /* The sign-ins are gone (the agent is stopping): nobody to tell. */
  if (sign_in->owner == NULL)
    return;
  sign_in->owner->listener->progress (sign_in->handle, sign_in->caller, progress,
                                      sign_in->owner->listener_data);
}

static void
finish (SignIn *sign_in, const GError *error)
{
  g_autoptr (GError) public_error = NULL;

  if (sign_in->owner == NULL)
    {
      sign_in_free (sign_in);
      return;
    }

  if (error != NULL && keyhold_account_is_removed (sign_in->account))
    public_error = g_error_new_literal (KEYHOLD_ERROR, KEYHOLD_ERROR_NO_SUCH_ACCOUNT,
                                        "The account was removed during the sign-in");
  else if (error != NULL)
    public_error = error_to_public (error);
  sign_in->owner->listener->finished (sign_in->handle, sign_in->caller, sign_in->account,
                                      public_error, sign_in->owner->listener_data);
  g_hash_table_remove (sign_in->owner->active, sign_in->handle);
  sign_in_free (sign_in);
}

static void
on_account_signed_in (GObject *source, GAsyncResult *result, gpointer user_data)
{
  SignIn *sign_in = user_data;
  g_autoptr (GError) error = NULL;

  keyhold_account_sign_in_finish (KEYHOLD_ACCOUNT (source), result, &error);
  finish (sign_in, error);
}

static void
on_identity (GObject *source, GAsyncResult *result, gpointer user_data)
{
  SignIn *sign_in = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) claims = keyhold_identity_validate_finish (result, NULL, &error);

  /* Without its owner the sign-in only ends: the agent is stopping, and
   * its tokens must not reach the keyring. */
  if (claims == NULL || sign_in->owner == NULL)
    {
      finish (sign_in, error);
      return;
    }
  keyhold_account_sign_in_async (sign_in->account, g_steal_pointer (&sign_in->response), claims,
                                 sign_in->cancellable, on_account_signed_in, sign_in);
}

static void
validate_identity (SignIn *sign_in)
{
  const KeyholdAccountConfig *config = keyhold_account_get_config (sign_in->account);

  if (sign_in->response->id_token == NULL)
    {
      g_autoptr (GError) error = g_error_new (KEYHOLD_ERROR, KEYHOLD_ERROR_PROVIDER_ERROR,
                                              "The provider returned no ID token although the "
                                              "openid scope was requested");
      finish (sign_in, error);
      return;
    }
  keyhold_identity_validate_async (sign_in->context->providers, sign_in->metadata,
                                   sign_in->response->id_token, config->client_id, sign_in->nonce,
                                   NULL, sign_in->cancellable, on_identity, sign_in);
}

static void
on_device_progress (const KeyholdDeviceAuthorization *authorization, gpointer user_data)
{
  SignIn *sign_in = user_data;
  g_auto (GVariantBuilder) info = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&info, "{sv}", "verification_uri",
                         g_variant_new_string (authorization->verification_uri));
  g_variant_builder_add (&info, "{sv}", "user_code",
                         g_variant_new_string (authorization->user_code));
  if (authorization->verification_uri_complete != NULL)
    g_variant_builder_add (&info, "{sv}", "verification_uri_complete",
                           g_variant_new_string (authorization->verification_uri_complete));
  g_variant_builder_add (&info, "{sv}", "expires_in",
                         g_variant_new_uint32 (authorization->expires_in));
  report_progress (sign_in, &info);
}

static void
on_browser_progress (const char *authorization_url, gpointer user_data)
{
  SignIn *sign_in = user_data;
  g_auto (GVariantBuilder) info = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&info, "{sv}", "authorization_url",
                         g_variant_new_string (authorization_url));
  report_progress (sign_in, &info);
}

static void
on_flow_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  SignIn *sign_in = user_data;
  g_autoptr (GError) error = NULL;

  if (sign_in->browser)
    sign_in->response = keyhold_browser_sign_in_finish (result, &sign_in->nonce, &error);
  else
    sign_in->response = keyhold_device_sign_in_finish (result, &error);

  if (sign_in->response == NULL)
    finish (sign_in, error);
  else if (sign_in->owner == NULL)
    finish (sign_in, NULL);
  else
    validate_identity (sign_in);
}

static void
on_metadata (GObject *source, GAsyncResult *result, gpointer user_data)
{
  SignIn *sign_in = user_data;
  const KeyholdAccountConfig *config = keyhold_account_get_config (sign_in->account);
  g_autoptr (GError) error = NULL;
  g_autofree char *scope = NULL;

  sign_in->metadata
      = keyhold_provider_cache_get_metadata_finish (sign_in->context->providers, result, &error);
  if (sign_in->metadata == NULL)
    {
      finish (sign_in, error);
      return;
    }
  if (sign_in->owner == NULL)
    {
      finish (sign_in, NULL);
      return;
    }

  scope = g_strjoinv (" ", config->scopes);
  if (sign_in->browser)
    keyhold_browser_sign_in_async (sign_in->context->http, sign_in->metadata, config->client_id,
                                   scope, on_browser_progress, sign_in, sign_in->cancellable,
                                   on_flow_done, sign_in);
  else
    keyhold_device_sign_in_async (sign_in->context->http, sign_in->metadata, config->client_id,
                                  scope, on_device_progress, sign_in, sign_in->cancellable,
                                  on_flow_done, sign_in);
}

static gboolean
account_has_sign_in (KeyholdSignIns *sign_ins, KeyholdAccount *account)
{
  GHashTableIter iter;
  SignIn *sign_in;

  g_hash_table_iter_init (&iter, sign_ins->active);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &sign_in))
    if (sign_in->account == account)
      return TRUE;
  return FALSE;
}

char *
keyhold_sign_ins_start (KeyholdSignIns *sign_ins,
                        KeyholdAccount *account,
                        const char *method,
                        const char *caller,
                        GError **error)
{
  SignIn *sign_in;
  gboolean browser;

  if (g_strcmp0 (method, "device") == 0)
    browser = FALSE;
  else if (g_strcmp0 (method, "browser") == 0)
    browser = TRUE;
  else
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_INVALID_ARGUMENT,
                   "The sign-in method must be “device” or “browser”");
      return NULL;
    }
  if (keyhold_account_is_removed (account))
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NO_SUCH_ACCOUNT,
                   "The account is being removed");
      return NULL;
    }
  if (account_has_sign_in (sign_ins, account))
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_BUSY,
                   "A sign-in to this account is already running");
      return NULL;
    }
  if (g_hash_table_size (sign_ins->active) >= KEYHOLD_SIGN_INS_MAX)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_QUOTA_EXCEEDED,
                   "Too many sign-ins are running");
      return NULL;
    }

  sign_in = g_new0 (SignIn, 1);
  sign_in->owner = sign_ins;
  sign_in->context = sign_ins->context;
  sign_in->handle = g_strdup_printf ("%" G_GUINT64_FORMAT, ++sign_ins->next_handle);
  sign_in->caller = g_strdup (caller);
  sign_in->account = g_object_ref (account);
  sign_in->browser = browser;
  sign_in->cancellable = g_cancellable_new ();
  g_hash_table_insert (sign_ins->active, sign_in->handle, sign_in);

  keyhold_provider_cache_get_metadata_async (sign_ins->context->providers,
                                             keyhold_account_get_config (account)->issuer,
                                             sign_in->cancellable, on_metadata, sign_in);
  return g_strdup (sign_in->handle);
}

gboolean
keyhold_sign_ins_cancel (KeyholdSignIns *sign_ins,
                         const char *handle,
                         const char *caller,
                         GError **error)
{
  SignIn *sign_in = g_hash_table_lookup (sign_ins->active, handle);

  if (sign_in == NULL || g_strcmp0 (sign_in->caller, caller) != 0)
    {
      g_set_error (error, KEYHOLD_ERROR, KEYHOLD_ERROR_NOT_FOUND,
                   "No sign-in of yours has that handle");
      return FALSE;
    }
  g_cancellable_cancel (sign_in->cancellable);
  return TRUE;
}

void
keyhold_sign_ins_cancel_account (KeyholdSignIns *sign_ins, KeyholdAccount *account)
{
  GHashTableIter iter;
  SignIn *sign_in;

  g_hash_table_iter_init (&iter, sign_ins->active);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &sign_in))
    if (sign_in->account == account)
      g_cancellable_cancel (sign_in->cancellable);
}
