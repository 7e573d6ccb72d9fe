/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#define KEYHOLD_INSIDE
#include "keyhold-error.h"
/* The agent links only the error domain (see libclient/meson.build), and its
 * internal types share names with the client's. */
#ifndef KEYHOLD_ERROR_DOMAIN_ONLY
#include "keyhold-account.h"
#include "keyhold-client.h"
#include "keyhold-outbox.h"
#include "keyhold-token.h"
#include <keyhold/keyhold-enum-types.h>
#endif
#undef KEYHOLD_INSIDE
