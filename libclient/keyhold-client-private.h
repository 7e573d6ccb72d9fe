/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "keyhold/keyhold-client.h"

G_BEGIN_DECLS

/* KeyholdClient is spread over several files, each with one job:
 *
 *   keyhold-client.c           the object: type, construction, properties,
 *                              signals, teardown
 *   keyhold-client-agent.c     following the agent: its bus name, loading
 *                              its object tree, routing its signals
 *   keyhold-client-accounts.c  the account table and the account operations
 *   keyhold-client-sign-in.c   signing in
 *   keyhold-client-outbox.c    the outbox operations
 *
 * The object's fields are shared by the first three; the last two only use
 * the functions below. */
struct _KeyholdClient
{
  GObject parent_instance;

  /* Where the client's signals are delivered. */
  GMainContext *context;
  GDBusConnection *connection;

  /* Kept by keyhold-client-agent.c. */
  /* The unique bus name of the agent process, NULL while none runs. Only
   * its signals are believed. */
  char *agent_owner;
  /* org.keyhold.Agent1.StorageError. */
  char *storage_error;
  guint subscriptions[5];
  GCancellable *reload_cancellable;
  /* See keyhold_client_ignore_older_signals (). */
  gboolean ignoring_signals;
  GSource *resync_source;

  /* Kept by keyhold-client-accounts.c. */
  /* Object path → KeyholdAccount. */
  GHashTable *accounts;
};

/* ---- keyhold-client.c ---- */

GDBusConnection *keyhold_client_get_connection (KeyholdClient *self);

/* Checks the common arguments of a _finish function and returns the
 * task's pointer. */
gpointer keyhold_client_propagate (KeyholdClient *self,
                                   GAsyncResult *result,
                                   gpointer source_tag,
                                   GError **error);

/* Emit the client's signals and property notifications. */
void keyhold_client_emit_account_added (KeyholdClient *self, KeyholdAccount *account);
void keyhold_client_emit_account_removed (KeyholdClient *self, KeyholdAccount *account);
void keyhold_client_emit_sign_in_progress (KeyholdClient *self, const char *name, GVariant *info);
void keyhold_client_emit_outbox_item_changed (KeyholdClient *self,
                                              const char *id,
                                              KeyholdOutboxState state,
                                              int status);
void keyhold_client_notify_agent_running (KeyholdClient *self);
void keyhold_client_notify_storage_error (KeyholdClient *self);

/* ---- keyhold-client-agent.c ---- */

/* Subscribes to the agent's signals and loads its state, starting it if it
 * is not running. Called once, by the client's construction. */
void keyhold_client_follow_agent (KeyholdClient *self,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data);
gboolean keyhold_client_follow_agent_finish (KeyholdClient *self,
                                             GAsyncResult *result,
                                             GError **error);
/* Unsubscribes and drops any reload under way; for dispose. */
void keyhold_client_stop_following_agent (KeyholdClient *self);

/* To be called after applying state read on a context other than the
 * client's; see the function. */
void keyhold_client_ignore_older_signals (KeyholdClient *self);

/* ---- keyhold-client-accounts.c ---- */

/* The account table. These change the client's view only, never the
 * agent's configuration, and emit ::account-added or ::account-removed. */

/* Adds the account at @object_path, or updates it, with @properties_dict
 * (org.keyhold.Account1, a{sv}); returns it (transfer none). */
KeyholdAccount *keyhold_client_put_account (KeyholdClient *self,
                                            const char *object_path,
                                            GVariant *properties_dict);
/* Updates the account at @object_path with @changed (a{sv}), if known. */
void keyhold_client_update_account (KeyholdClient *self,
                                    const char *object_path,
                                    GVariant *changed);
/* Forgets the account at @object_path, if known. */
void keyhold_client_drop_account (KeyholdClient *self, const char *object_path);
/* Takes the agent's whole object tree (a{oa{sa{sv}}}): accounts it has are
 * added or updated, accounts it lacks are removed. */
void keyhold_client_apply_managed_objects (KeyholdClient *self, GVariant *objects);

/* Reads the properties of the account @name afresh, updating its object,
 * which is returned. */
void keyhold_client_read_account (KeyholdClient *self,
                                  const char *name,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data);
KeyholdAccount *keyhold_client_read_account_finish (KeyholdClient *self,
                                                    GAsyncResult *result,
                                                    GError **error);

G_END_DECLS
