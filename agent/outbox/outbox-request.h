/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "base/url-policy.h"
#include "outbox/outbox-store.h"
#include "storage/account-config.h"

G_BEGIN_DECLS

/* What an application hands the outbox and what it gets back, and the
 * checks a request passes before it is queued. Pure code: no I/O, no
 * outbox state, so it can be tested on its own. */

/* Per item. Exceeding a size limit is KEYHOLD_ERROR_QUOTA_EXCEEDED. */
#define KEYHOLD_OUTBOX_MAX_URL_BYTES KEYHOLD_URL_POLICY_MAX_LENGTH
#define KEYHOLD_OUTBOX_MAX_HEADERS 64
#define KEYHOLD_OUTBOX_MAX_HEADER_BYTES (16 * 1024)
#define KEYHOLD_OUTBOX_MAX_BODY_BYTES (1024 * 1024)
#define KEYHOLD_OUTBOX_DEFAULT_MAX_AGE_S (30 * 24 * 60 * 60)
#define KEYHOLD_OUTBOX_MAX_MAX_AGE_S (365 * 24 * 60 * 60)
#define KEYHOLD_OUTBOX_MAX_QUEUE_NAME 64

/* A request as an application hands it over. */
typedef struct
{
  char *method;
  char *url;
  /* Parallel arrays of header names and values. */
  GPtrArray *header_names;
  GPtrArray *header_values;
  /* NULL for no body. */
  GBytes *body;
  /* 0 for KEYHOLD_OUTBOX_DEFAULT_MAX_AGE_S. */
  guint max_age_s;
} KeyholdOutboxRequest;

KeyholdOutboxRequest *keyhold_outbox_request_new (const char *method, const char *url);
void keyhold_outbox_request_add_header (KeyholdOutboxRequest *request,
                                        const char *name,
                                        const char *value);
void keyhold_outbox_request_free (KeyholdOutboxRequest *request);

/* An item as its owner may see it. Times are Unix seconds, 0 for none. */
typedef struct
{
  char *id;
  char *account;
  char *queue;
  char *method;
  char *url;
  char *idempotency_key;
  KeyholdOutboxState state;
  guint attempts;
  gint64 created_s;
  gint64 expires_s;
  gint64 next_attempt_s;
  gint64 finished_s;
  int status;
  char *reason;
  /* The last response: set by keyhold_outbox_get_async () once there is
   * one, never by keyhold_outbox_list_async (). */
  GPtrArray *response_header_names;
  GPtrArray *response_header_values;
  GBytes *response_body;
  gboolean response_truncated;
} KeyholdOutboxItemInfo;

void keyhold_outbox_item_info_free (KeyholdOutboxItemInfo *info);

/* Parallel arrays of header names and values as a floating "a(ss)"; NULL
 * @names for none. */
GVariant *keyhold_outbox_headers_variant (GPtrArray *names, GPtrArray *values);

/* The type of keyhold_outbox_request_to_variant (): headers, maybe a body. */
#define KEYHOLD_OUTBOX_REQUEST_TYPE "(a(ss)may)"

/* The headers and the body of @request, as they are sealed and stored (the
 * method and the URL are kept apart). Returns a full reference. */
GVariant *keyhold_outbox_request_to_variant (const KeyholdOutboxRequest *request);

/* 1 to KEYHOLD_OUTBOX_MAX_QUEUE_NAME of A-Z a-z 0-9 . _ : -, else
 * KEYHOLD_ERROR_INVALID_ARGUMENT. */
gboolean keyhold_outbox_validate_queue_name (const char *queue, GError **error);

/* Whether @request may be queued for the account @config: a method token
 * other than CONNECT and TRACE (and no body with HEAD), a URL whose origin
 * is one of the account's API origins, headers that the HTTP module would
 * send and that carry no credentials or Idempotency-Key of their own, at
 * most one Content-Type, a max_age within bounds. Fails with
 * KEYHOLD_ERROR_INVALID_ARGUMENT, or KEYHOLD_ERROR_QUOTA_EXCEEDED for a
 * size limit. On success @out_size is the bytes the request takes, for the
 * quota, and @out_url (if not NULL) the URL as the URL policy approved it:
 * the one to store and send (keyhold_url_policy_approve ()). */
gboolean keyhold_outbox_request_validate (const KeyholdOutboxRequest *request,
                                          const KeyholdAccountConfig *config,
                                          gsize *out_size,
                                          char **out_url,
                                          GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdOutboxRequest, keyhold_outbox_request_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KeyholdOutboxItemInfo, keyhold_outbox_item_info_free)

G_END_DECLS
