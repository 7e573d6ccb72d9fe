/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <gio/gio.h>

#include "keyhold-contract.h"

/* One table for the agent and the library: the agent raises these codes and
 * GDBus turns them into the names below on the wire; the library turns the
 * names back into the same codes. */
static const GDBusErrorEntry keyhold_error_entries[] = {
  { KEYHOLD_ERROR_FAILED, "org.keyhold.Error.Failed" },
  { KEYHOLD_ERROR_INVALID_ARGUMENT, "org.keyhold.Error.InvalidArgument" },
  { KEYHOLD_ERROR_NO_SUCH_ACCOUNT, "org.keyhold.Error.NoSuchAccount" },
  { KEYHOLD_ERROR_ALREADY_EXISTS, "org.keyhold.Error.AlreadyExists" },
  { KEYHOLD_ERROR_NOT_SIGNED_IN, "org.keyhold.Error.NotSignedIn" },
  { KEYHOLD_ERROR_NEEDS_LOGIN, "org.keyhold.Error.NeedsLogin" },
  { KEYHOLD_ERROR_OFFLINE, "org.keyhold.Error.Offline" },
  { KEYHOLD_ERROR_ACCESS_DENIED, "org.keyhold.Error.AccessDenied" },
  { KEYHOLD_ERROR_PROVIDER_ERROR, "org.keyhold.Error.ProviderError" },
  { KEYHOLD_ERROR_QUOTA_EXCEEDED, "org.keyhold.Error.QuotaExceeded" },
  { KEYHOLD_ERROR_BUSY, "org.keyhold.Error.Busy" },
  { KEYHOLD_ERROR_CANCELLED, "org.keyhold.Error.Cancelled" },
  { KEYHOLD_ERROR_SIGN_IN_FAILED, "org.keyhold.Error.SignInFailed" },
  { KEYHOLD_ERROR_KEYRING, "org.keyhold.Error.Keyring" },
  { KEYHOLD_ERROR_STORAGE, "org.keyhold.Error.Storage" },
  { KEYHOLD_ERROR_NOT_FOUND, "org.keyhold.Error.NotFound" },
  { KEYHOLD_ERROR_TIMED_OUT, "org.keyhold.Error.TimedOut" },
  { KEYHOLD_ERROR_AGENT_UNAVAILABLE, "org.keyhold.Error.AgentUnavailable" },
};

G_STATIC_ASSERT (G_N_ELEMENTS (keyhold_error_entries) == KEYHOLD_ERROR_AGENT_UNAVAILABLE + 1);

const char *
keyhold_contract_error_name (int code)
{
  /* The table is indexed by code: the entries are in order. */
  if (code < 0 || code >= (int) G_N_ELEMENTS (keyhold_error_entries))
    code = KEYHOLD_ERROR_FAILED;
  return keyhold_error_entries[code].dbus_error_name;
}

/**
 * keyhold_error_quark:
 *
 * The quark of the %KEYHOLD_ERROR domain. Registering it with GDBus is what
 * turns `org.keyhold.Error.*` names on the wire into these codes.
 *
 * Returns: the quark of the %KEYHOLD_ERROR domain, registered with GDBus.
 *
 * Since: 0.1
 */
GQuark
keyhold_error_quark (void)
{
  static gsize quark = 0;

  g_dbus_error_register_error_domain ("keyhold-error-quark", &quark, keyhold_error_entries,
                                      G_N_ELEMENTS (keyhold_error_entries));
  return (GQuark) quark;
}
