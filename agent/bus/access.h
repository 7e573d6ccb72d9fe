/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Decides whether a D-Bus caller may use the agent: only processes of the
 * agent's own Unix user, as the bus daemon reports through
 * GetConnectionCredentials. Answers are cached per unique bus name (the bus
 * never reuses one) and dropped when the name leaves the bus. */
typedef struct _KeyholdAccess KeyholdAccess;

KeyholdAccess *keyhold_access_new (GDBusConnection *connection);
void keyhold_access_free (KeyholdAccess *access);

/* Called first by every method handler. Returns TRUE when the caller is
 * known to be allowed, and the handler goes on. Otherwise the invocation has
 * been taken over: it was refused with org.keyhold.Error.AccessDenied, or the
 * caller's credentials are being looked up and the call will be dispatched to
 * @skeleton again once they are known. */
gboolean keyhold_access_check (KeyholdAccess *access,
                               GDBusInterfaceSkeleton *skeleton,
                               GDBusMethodInvocation *invocation);

/* Whether @sender is already known to be allowed. Safe to call from any
 * thread; it never asks the bus, so an unknown sender is simply "no". */
gboolean keyhold_access_is_allowed (KeyholdAccess *access, const char *sender);

/* Who the caller is, for filing its data (the outbox's items): the Flatpak
 * app id as "flatpak:APP-ID" for a sandboxed application, otherwise the
 * absolute path of its executable, both read from /proc for the process
 * the bus daemon names. Stable across restarts of the application, unlike
 * its unique bus name, which must never be used for this. Valid after
 * keyhold_access_check () returned TRUE for an invocation from @sender,
 * until @sender leaves the bus; NULL when the process could not be
 * identified (it exited, or /proc is hidden). */
const char *keyhold_access_get_caller_id (KeyholdAccess *access, const char *sender);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdAccess, keyhold_access_free)

G_END_DECLS
