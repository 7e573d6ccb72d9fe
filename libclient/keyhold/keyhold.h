/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#define KEYHOLD_INSIDE
#include <keyhold/keyhold-error.h>
#include "keyhold-account.h"
#include "keyhold-client.h"
#include "keyhold-outbox.h"
#include "keyhold-token.h"
#include <keyhold/keyhold-enum-types.h>
#undef KEYHOLD_INSIDE
