// SPDX-License-Identifier: MIT
// The compact index's row kernels (DoppelGallery's EncodedVectors): products of one float32
// query with a run of int8 or float16 rows. In C because the fast form needs x86 instructions
// Swift's SIMD types do not reach (byte-to-int widening loads, F16C conversion); each kernel
// picks its AVX2 body at run time and falls back to portable C on other processors.
#pragma once
#include <stddef.h>
#include <stdint.h>

/// out[r] = offset + sum_d query[d] * codes[r * dimension + d], for r in 0..<rows. The AVX2
/// body rounds the query to 16-bit integers first: each product's error is at most
/// codes[d] * max|query| / 65534 (a row's sum at most sum_d codes[d] * max|query| / 65534).
void doppel_scan_u8(const float *query, const uint8_t *codes, size_t dimension, size_t rows, float offset, float *out);

/// out[r] = sum_d query[d] * half(halves[r * dimension + d]) (IEEE binary16), for r in 0..<rows.
void doppel_scan_f16(const float *query, const uint16_t *halves, size_t dimension, size_t rows, float *out);

/// The portable bodies, which other processors run (tests compare the two).
void doppel_scan_u8_portable(const float *query, const uint8_t *codes, size_t dimension, size_t rows, float offset, float *out);
void doppel_scan_f16_portable(const float *query, const uint16_t *halves, size_t dimension, size_t rows, float *out);

/// Whether the AVX2 bodies run on this processor (reported by the bench).
int doppel_scan_uses_avx2(void);
