/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

/* Kept out of this header so that only store.c and the outbox see SQLite. */
typedef struct sqlite3 sqlite3;

G_BEGIN_DECLS

/* The agent's one SQLite database, $XDG_DATA_HOME/keyhold/keyhold.db
 * (mode 0600 in a 0700 directory): cached provider documents, the
 * validated identity of each signed-in account and, through migrations
 * listed in store.c, the outbox's tables. It never holds a token.
 *
 * Every failure is KEYHOLD_ERROR_STORAGE with SQLite's message; messages
 * never contain stored values. A file that is not a healthy keyhold
 * database, or one written by a newer keyhold, is refused and left exactly
 * as it is: the user's data is theirs to rescue. */
typedef struct _KeyholdStore KeyholdStore;

char *keyhold_store_default_path (void);

/* Creates the file and its directory when missing, checks the database
 * (PRAGMA quick_check), and brings its schema up to date. */
KeyholdStore *keyhold_store_open (const char *path, GError **error);
void keyhold_store_close (KeyholdStore *store);

/* Cached discovery documents (RFC 8414 / OIDC Discovery) and JWKS, as
 * fetched; @fetched_at in Unix seconds. A get that finds nothing returns
 * NULL without an error. */
gboolean keyhold_store_put_provider_metadata (KeyholdStore *store,
                                              const char *issuer,
                                              const char *document,
                                              gint64 fetched_at,
                                              GError **error);
char *keyhold_store_get_provider_metadata (KeyholdStore *store,
                                           const char *issuer,
                                           gint64 *out_fetched_at,
                                           GError **error);
gboolean keyhold_store_put_provider_jwks (KeyholdStore *store,
                                          const char *issuer,
                                          const char *document,
                                          gint64 fetched_at,
                                          GError **error);
char *keyhold_store_get_provider_jwks (KeyholdStore *store,
                                       const char *issuer,
                                       gint64 *out_fetched_at,
                                       GError **error);

/* The validated ID-token claims of an account, as a JSON object, so that
 * GetIdentity works offline. Never the ID token itself. */
gboolean keyhold_store_put_identity (KeyholdStore *store,
                                     const char *account,
                                     const char *issuer,
                                     const char *subject,
                                     const char *claims_json,
                                     GError **error);
/* FALSE without an error when the account has no stored identity. Each out
 * parameter may be NULL. */
gboolean keyhold_store_get_identity (KeyholdStore *store,
                                     const char *account,
                                     char **out_issuer,
                                     char **out_subject,
                                     char **out_claims_json,
                                     GError **error);
/* Deleting an identity that is not there succeeds. */
gboolean keyhold_store_delete_identity (KeyholdStore *store, const char *account, GError **error);

/* For the outbox module, the only other code that runs SQL; its tables
 * come from the migrations in store.c. */
sqlite3 *keyhold_store_get_db (KeyholdStore *store);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdStore, keyhold_store_close)

G_END_DECLS
