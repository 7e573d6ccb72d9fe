/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(KEYHOLD_INSIDE) && !defined(KEYHOLD_COMPILATION)
#error "Only <keyhold/keyhold.h> can be included directly."
#endif

#include <glib.h>

#include "keyhold-visibility.h"

G_BEGIN_DECLS

/**
 * KEYHOLD_ERROR:
 *
 * The error domain of keyhold. Its codes travel over D-Bus as
 * `org.keyhold.Error.*` names, so an error raised in the agent arrives in
 * the client with the same code.
 *
 * Since: 0.1
 */
#define KEYHOLD_ERROR (keyhold_error_quark ())

/**
 * KeyholdError:
 * @KEYHOLD_ERROR_FAILED: Something failed that has no better code (`Failed`).
 * @KEYHOLD_ERROR_INVALID_ARGUMENT: An argument was malformed (`InvalidArgument`).
 * @KEYHOLD_ERROR_NO_SUCH_ACCOUNT: No account has that name (`NoSuchAccount`).
 * @KEYHOLD_ERROR_ALREADY_EXISTS: An account of that name exists (`AlreadyExists`).
 * @KEYHOLD_ERROR_NOT_SIGNED_IN: The account was never signed in, or signed out (`NotSignedIn`).
 * @KEYHOLD_ERROR_NEEDS_LOGIN: The provider rejected the sign-in; sign in again (`NeedsLogin`).
 * @KEYHOLD_ERROR_OFFLINE: The provider cannot be reached and no valid token is cached (`Offline`).
 * @KEYHOLD_ERROR_ACCESS_DENIED: The caller may not do this (`AccessDenied`).
 * @KEYHOLD_ERROR_PROVIDER_ERROR: The provider answered with an error or nonsense (`ProviderError`).
 * @KEYHOLD_ERROR_QUOTA_EXCEEDED: A size or count limit was reached (`QuotaExceeded`).
 * @KEYHOLD_ERROR_BUSY: The same operation is already running (`Busy`).
 * @KEYHOLD_ERROR_CANCELLED: The operation was cancelled (`Cancelled`).
 * @KEYHOLD_ERROR_SIGN_IN_FAILED: The user or provider ended the sign-in (`SignInFailed`).
 * @KEYHOLD_ERROR_KEYRING: The Secret Service keyring failed or is locked (`Keyring`).
 * @KEYHOLD_ERROR_STORAGE: The agent's database is unreadable or corrupt (`Storage`).
 * @KEYHOLD_ERROR_NOT_FOUND: No such item (`NotFound`).
 * @KEYHOLD_ERROR_TIMED_OUT: The operation took too long (`TimedOut`).
 * @KEYHOLD_ERROR_AGENT_UNAVAILABLE: The agent is not running and could not be
 *   started, or it stopped before it answered (`AgentUnavailable`). Raised by
 *   the library, never by the agent.
 *
 * Error codes in the %KEYHOLD_ERROR domain. The values are stable.
 *
 * Since: 0.1
 */
typedef enum
{
  KEYHOLD_ERROR_FAILED = 0,
  KEYHOLD_ERROR_INVALID_ARGUMENT = 1,
  KEYHOLD_ERROR_NO_SUCH_ACCOUNT = 2,
  KEYHOLD_ERROR_ALREADY_EXISTS = 3,
  KEYHOLD_ERROR_NOT_SIGNED_IN = 4,
  KEYHOLD_ERROR_NEEDS_LOGIN = 5,
  KEYHOLD_ERROR_OFFLINE = 6,
  KEYHOLD_ERROR_ACCESS_DENIED = 7,
  KEYHOLD_ERROR_PROVIDER_ERROR = 8,
  KEYHOLD_ERROR_QUOTA_EXCEEDED = 9,
  KEYHOLD_ERROR_BUSY = 10,
  KEYHOLD_ERROR_CANCELLED = 11,
  KEYHOLD_ERROR_SIGN_IN_FAILED = 12,
  KEYHOLD_ERROR_KEYRING = 13,
  KEYHOLD_ERROR_STORAGE = 14,
  KEYHOLD_ERROR_NOT_FOUND = 15,
  KEYHOLD_ERROR_TIMED_OUT = 16,
  KEYHOLD_ERROR_AGENT_UNAVAILABLE = 17,
} KeyholdError;

KEYHOLD_PUBLIC
GQuark keyhold_error_quark (void);

G_END_DECLS
