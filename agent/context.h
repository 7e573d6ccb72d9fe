/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "net/http.h"
#include "oidc/provider-cache.h"
#include "storage/store.h"

G_BEGIN_DECLS

/* The shared services every account needs; owned by the daemon, which
 * outlives all accounts. */
typedef struct
{
  KeyholdHttp *http;
  /* NULL when the database could not be opened; see storage_error. */
  KeyholdStore *store;
  GError *storage_error;
  KeyholdProviderCache *providers;
} KeyholdContext;

G_END_DECLS
