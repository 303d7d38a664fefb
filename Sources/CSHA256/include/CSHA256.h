// SPDX-License-Identifier: MIT
#ifndef CSHA256_H
#define CSHA256_H

#include <stddef.h>
#include <stdint.h>

/// SHA-256's compression function (FIPS 180-4, 6.2.2) over `blocks` whole 64-byte blocks.
/// In C so that hashing a model file is quick in debug builds too: the debug build of the
/// Swift version spent seconds on each model load's id check.
void doppel_sha256_blocks(uint32_t state[8], const uint8_t *bytes, size_t blocks);

#endif
