// SPDX-License-Identifier: MIT
// The gallery index's row kernels: products of one float32 query with a run of int8 or float16
// rows (DoppelGallery's EncodedVectors), and of a batch of queries with a tile of float32 rows
// (the batched search). In C because the fast forms need x86 instructions Swift's SIMD types
// do not reach (byte-to-int widening loads, F16C conversion, in-register transposes). Bodies
// for AVX2 and AVX-512, chosen at first use under the ceiling of `CKernelLevels` after a
// self-check against the portable C body, which every other processor runs.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/// IEEE binary16 bits to float, exactly (normal, subnormal, zero; infinity and NaN kept). The
/// one conversion both the kernels' portable bodies and Swift's decoding use.
static inline float doppel_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF, bits;
    if (exponent == 0) {
        // Zero or subnormal: mantissa * 2^-24, exact in float.
        float magnitude = (float)mantissa * 0x1p-24f;
        memcpy(&bits, &magnitude, 4);
        bits |= sign;
    } else if (exponent == 31) {
        bits = sign | 0x7F800000 | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

/// out[r] = offset + sum_d query[d] * codes[r * dimension + d], for r in 0..<rows. The vector
/// bodies round the query to integers of at most L = min(32767, 2^31 / (255 * dimension / 8))
/// first (so 32-bit sums cannot overflow; L = 32767 up to 2,056 dimensions): a row's error is
/// at most sum_d codes[d] * max|query| / (2 L).
void doppel_scan_u8(const float *query, const uint8_t *codes, size_t dimension, size_t rows, float offset, float *out);

/// out[r] = sum_d query[d] * half(halves[r * dimension + d]) (IEEE binary16), for r in 0..<rows.
void doppel_scan_f16(const float *query, const uint16_t *halves, size_t dimension, size_t rows, float *out);

/// out[q * ldo + r] = sum_d rows[r * dimension + d] * queries_t[d * padded + q] for q < count,
/// r < rows, where padded = count rounded up to a multiple of 8 and queries_t holds the queries
/// transposed (dimension x padded, the padding columns any finite value). The batched search's
/// products of a tile of float32 rows, read in place: no packed copy, no zeroing pass.
void doppel_products_f32(const float *rows, size_t row_count, size_t dimension, const float *queries_t, size_t count, float *out, size_t ldo);

/// The same kernels by the body of `level` (a `CKernelLevels` level); each returns 0, or -1
/// when this processor cannot run that body (nothing written). For tests and the self-check.
int doppel_scan_u8_at(int level, const float *query, const uint8_t *codes, size_t dimension, size_t rows, float offset, float *out);
int doppel_scan_f16_at(int level, const float *query, const uint16_t *halves, size_t dimension, size_t rows, float *out);
int doppel_products_f32_at(int level, const float *rows, size_t row_count, size_t dimension, const float *queries_t, size_t count, float *out, size_t ldo);

/// The level whose bodies the three kernels run: the highest allowed one that passed its
/// self-check (portable when none did, or none is allowed). At portable the batched search
/// takes its products from BLAS instead of `doppel_products_f32`.
int doppel_scan_level(void);

/// Levels whose bodies failed the self-check, as bits (1 << level); 0 normally.
int doppel_scan_self_check_failures(void);

/// Runs the self-check of one level's three bodies: 1 passed, 0 failed, -1 cannot run here.
int doppel_scan_self_check(int level);
