/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#define KEYHOLD_INSIDE
#include "keyhold-error.h"
#undef KEYHOLD_INSIDE
