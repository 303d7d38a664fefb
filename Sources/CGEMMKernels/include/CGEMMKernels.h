// SPDX-License-Identifier: MIT
// A matrix product whose left matrix (a layer's weights) is packed once, for inference on one
// image at a time (DoppelNN's InferencePlan). There the right matrix is thin (a late ResNet
// layer's 16-49 output positions) and a BLAS call spends as long copying the weights into its
// own panel layout as multiplying; packed here once per change of the weights, each call
// streams them once. AVX2 + FMA only: `doppel_gemm_uses_avx2` says whether this processor
// runs it, and callers use BLAS otherwise.
#pragma once
#include <stddef.h>

/// Rows of one panel of the packed layout.
#define DOPPEL_GEMM_PANEL_ROWS 6

/// Floats the packed copy of an m x k matrix takes (m rounded up to whole panels).
size_t doppel_gemm_packed_floats(size_t m, size_t k);

/// packed[p][kk][r] = a[(6 p + r) * lda + kk]: panels of 6 rows, interleaved along k, rows
/// past m zero.
void doppel_gemm_pack(const float *a, size_t m, size_t k, size_t lda, float *packed);

/// c[i * ldc + j] = bias[i] + sum_kk a[i][kk] * b[kk * ldb + j] (bias may be NULL: 0), for the
/// rows of panels [panel_begin, panel_end) below m and columns j in [0, n). `packed` is
/// `doppel_gemm_pack`'s output for the whole m x k matrix. Requires AVX2 and FMA.
void doppel_gemm_packed(const float *packed, size_t m, size_t k, size_t panel_begin, size_t panel_end,
                        const float *b, size_t ldb, size_t n, const float *bias, float *c, size_t ldc);

/// Whether this processor runs `doppel_gemm_packed` (AVX2 and FMA).
int doppel_gemm_uses_avx2(void);
