// SPDX-License-Identifier: MIT
// A matrix product whose left matrix (a layer's weights) is packed once, for inference on one
// image at a time (DoppelNN's InferencePlan). There the right matrix is thin (a late ResNet
// layer's 16-49 output positions) and a BLAS call spends as long copying the weights into its
// own panel layout as multiplying; packed here once per change of the weights, each call
// streams them once. Bodies for AVX2 + FMA and AVX-512, chosen at first use under the ceiling
// of `CKernelLevels` after a self-check against the portable body; `doppel_gemm_level` says
// which runs, and callers use BLAS when it is portable (the plain body is a reference).
#pragma once
#include <stddef.h>

/// Rows of one panel of the packed layout (the same for every body).
#define DOPPEL_GEMM_PANEL_ROWS 6

/// Floats the packed copy of an m x k matrix takes (m rounded up to whole panels).
size_t doppel_gemm_packed_floats(size_t m, size_t k);

/// packed[p][kk][r] = a[(6 p + r) * lda + kk]: panels of 6 rows, interleaved along k, rows
/// past m zero.
void doppel_gemm_pack(const float *a, size_t m, size_t k, size_t lda, float *packed);

/// c[i * ldc + j] = bias[i] + sum_kk a[i][kk] * b[kk * ldb + j] (bias may be NULL: 0), for the
/// rows of panels [panel_begin, panel_end) below m and columns j in [0, n). `packed` is
/// `doppel_gemm_pack`'s output for the whole m x k matrix. Runs the selected body.
void doppel_gemm_packed(const float *packed, size_t m, size_t k, size_t panel_begin, size_t panel_end,
                        const float *b, size_t ldb, size_t n, const float *bias, float *c, size_t ldc);

/// The same product by the body of `level` (a `CKernelLevels` level); returns 0, or -1 when
/// this processor cannot run that body (nothing written). For tests and the self-check.
int doppel_gemm_packed_at(int level, const float *packed, size_t m, size_t k, size_t panel_begin, size_t panel_end,
                          const float *b, size_t ldb, size_t n, const float *bias, float *c, size_t ldc);

/// The level whose body `doppel_gemm_packed` runs: the highest allowed one that passed its
/// self-check (portable when none did, or none is allowed).
int doppel_gemm_level(void);

/// Levels whose bodies failed the self-check, as bits (1 << level); 0 normally.
int doppel_gemm_self_check_failures(void);

/// Runs the self-check of one body: 1 passed, 0 failed, -1 cannot run here.
int doppel_gemm_self_check(int level);
