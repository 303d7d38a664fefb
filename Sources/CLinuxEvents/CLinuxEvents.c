// SPDX-License-Identifier: MIT
// Intentionally empty: SwiftPM needs one source file for a C target; the module is its header.
#include "CLinuxEvents.h"
