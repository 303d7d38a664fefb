// SPDX-License-Identifier: MIT
// The packed-weights product: tiles of 4 weight rows x 24 columns (12 accumulators, three
// 8-lane loads of b and four broadcasts of weights per step of k), columns in the outer loop
// so a block of b (k x 24 floats) stays in cache while every panel of weights streams past it.
// Narrower tiles (16, 8, and a masked last 1-7) finish the columns.
#include "CGEMMKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define DOPPEL_X86 1
#endif

size_t doppel_gemm_packed_floats(size_t m, size_t k) {
    // + 8: the thin tail tile's last load reaches 2 floats past the last panel.
    return (m + DOPPEL_GEMM_PANEL_ROWS - 1) / DOPPEL_GEMM_PANEL_ROWS * DOPPEL_GEMM_PANEL_ROWS * k + 8;
}

void doppel_gemm_pack(const float *a, size_t m, size_t k, size_t lda, float *packed) {
    const size_t panels = (m + DOPPEL_GEMM_PANEL_ROWS - 1) / DOPPEL_GEMM_PANEL_ROWS;
    for (size_t p = 0; p < panels; p++) {
        float *panel = packed + p * k * DOPPEL_GEMM_PANEL_ROWS;
        for (size_t r = 0; r < DOPPEL_GEMM_PANEL_ROWS; r++) {
            const size_t row = p * DOPPEL_GEMM_PANEL_ROWS + r;
            for (size_t kk = 0; kk < k; kk++) panel[kk * DOPPEL_GEMM_PANEL_ROWS + r] = row < m ? a[row * lda + kk] : 0.0f;
        }
    }
    for (size_t i = 0; i < 8; i++) packed[panels * DOPPEL_GEMM_PANEL_ROWS * k + i] = 0.0f;
}

#ifdef DOPPEL_X86
// One tile: `rows` (1-4) rows of c from one panel, `vectors` (1-3) 8-lane column groups, the last
// one masked to `last_mask` when `masked`. Inlined with constant vectors/masked, so each call
// site compiles to a tile with just the registers it needs.
__attribute__((target("avx2,fma"), always_inline)) static inline void tile(
    const float *panel, size_t k, const float *b, size_t ldb, const float *bias, float *c, size_t ldc,
    size_t rows, const int vectors, const int masked, __m256i last_mask) {
    __m256 acc[DOPPEL_GEMM_PANEL_ROWS][3];
    for (int r = 0; r < DOPPEL_GEMM_PANEL_ROWS; r++)
        for (int v = 0; v < vectors; v++) acc[r][v] = _mm256_setzero_ps();
    for (size_t kk = 0; kk < k; kk++) {
        const float *row = b + kk * ldb;
        __m256 x[3];
        for (int v = 0; v < vectors; v++)
            x[v] = (masked && v == vectors - 1) ? _mm256_maskload_ps(row + 8 * v, last_mask) : _mm256_loadu_ps(row + 8 * v);
        const float *w = panel + kk * DOPPEL_GEMM_PANEL_ROWS;
        for (int r = 0; r < DOPPEL_GEMM_PANEL_ROWS; r++) {
            const __m256 weight = _mm256_broadcast_ss(w + r);
            for (int v = 0; v < vectors; v++) acc[r][v] = _mm256_fmadd_ps(weight, x[v], acc[r][v]);
        }
    }
    for (size_t r = 0; r < rows; r++) {
        const __m256 shift = _mm256_set1_ps(bias ? bias[r] : 0.0f);
        float *out = c + r * ldc;
        for (int v = 0; v < vectors; v++) {
            const __m256 value = _mm256_add_ps(acc[r][v], shift);
            if (masked && v == vectors - 1) _mm256_maskstore_ps(out + 8 * v, last_mask, value);
            else _mm256_storeu_ps(out + 8 * v, value);
        }
    }
}

// The last 1-5 columns: one 8-lane load of a panel's weights at a step of k (its 6 rows and
// the next step's first 2, which land in lanes that are never stored) against each column's
// broadcast value, where a masked tile would spend 6 broadcasts and a load on a single
// column. Reads 2 floats past the panel, hence the packed copy's padding.
__attribute__((target("avx2,fma"), always_inline)) static inline void thin_tile(
    const float *panel, size_t k, const float *b, size_t ldb, const float *bias, float *c, size_t ldc,
    size_t rows, const int columns) {
    __m256 acc[5];
    for (int j = 0; j < columns; j++) acc[j] = _mm256_setzero_ps();
    for (size_t kk = 0; kk < k; kk++) {
        const __m256 weights = _mm256_loadu_ps(panel + kk * DOPPEL_GEMM_PANEL_ROWS);
        const float *row = b + kk * ldb;
        for (int j = 0; j < columns; j++) acc[j] = _mm256_fmadd_ps(weights, _mm256_broadcast_ss(row + j), acc[j]);
    }
    for (int j = 0; j < columns; j++) {
        float lanes[8];
        _mm256_storeu_ps(lanes, acc[j]);
        for (size_t r = 0; r < rows; r++) c[r * ldc + j] = lanes[r] + (bias ? bias[r] : 0.0f);
    }
}

// Blocks of panels whose weights take at most this many bytes run over every column before
// the next block: the block stays in L2 while the columns (b) pass, and b once per block. Thin
// products (one image through a late layer) so read their weights from memory exactly once.
#define DOPPEL_GEMM_BLOCK_BYTES (256 * 1024)

__attribute__((target("avx2,fma"))) static void gemm_packed_avx2(
    const float *packed, size_t m, size_t k, size_t panel_begin, size_t panel_end,
    const float *b, size_t ldb, size_t n, const float *bias, float *c, size_t ldc) {
    const __m256i none = _mm256_setzero_si256();
    const size_t panel_bytes = k * DOPPEL_GEMM_PANEL_ROWS * sizeof(float);
    size_t block = DOPPEL_GEMM_BLOCK_BYTES / panel_bytes;
    if (block == 0) block = 1;
    const size_t last_panel = (m + DOPPEL_GEMM_PANEL_ROWS - 1) / DOPPEL_GEMM_PANEL_ROWS;
    if (panel_end > last_panel) panel_end = last_panel;
    const int left = (int)(n % 8);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (size_t first = panel_begin; first < panel_end; first += block) {
        const size_t end = first + block < panel_end ? first + block : panel_end;
        size_t j = 0;
        #define DOPPEL_PANELS(VECTORS, MASKED, MASK)                                                              \
            for (size_t p = first; p < end; p++) {                                                                \
                const size_t row = p * DOPPEL_GEMM_PANEL_ROWS;                                                    \
                const size_t rows = m - row < DOPPEL_GEMM_PANEL_ROWS ? m - row : DOPPEL_GEMM_PANEL_ROWS;          \
                tile(packed + p * k * DOPPEL_GEMM_PANEL_ROWS, k, b + j, ldb, bias ? bias + row : NULL,            \
                     c + row * ldc + j, ldc, rows, VECTORS, MASKED, MASK);                                        \
            }
        for (; j + 16 <= n; j += 16) { DOPPEL_PANELS(2, 0, none) }
        if (j + 8 <= n) { DOPPEL_PANELS(1, 0, none) j += 8; }
        if (j < n && n - j >= 6) {
            DOPPEL_PANELS(1, 1, mask)
        } else if (j < n) {
            for (size_t p = first; p < end; p++) {
                const size_t row = p * DOPPEL_GEMM_PANEL_ROWS;
                const size_t rows = m - row < DOPPEL_GEMM_PANEL_ROWS ? m - row : DOPPEL_GEMM_PANEL_ROWS;
                const float *panel = packed + p * k * DOPPEL_GEMM_PANEL_ROWS;
                const float *shift = bias ? bias + row : NULL;
                switch (n - j) {
                case 1: thin_tile(panel, k, b + j, ldb, shift, c + row * ldc + j, ldc, rows, 1); break;
                case 2: thin_tile(panel, k, b + j, ldb, shift, c + row * ldc + j, ldc, rows, 2); break;
                case 3: thin_tile(panel, k, b + j, ldb, shift, c + row * ldc + j, ldc, rows, 3); break;
                case 4: thin_tile(panel, k, b + j, ldb, shift, c + row * ldc + j, ldc, rows, 4); break;
                default: thin_tile(panel, k, b + j, ldb, shift, c + row * ldc + j, ldc, rows, 5); break;
                }
            }
        }
        #undef DOPPEL_PANELS
    }
}

// Asked once; racing first callers store the same answer.
static int avx2_available(void) {
    static int cached = -1;
    int known = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        __atomic_store_n(&cached, known, __ATOMIC_RELAXED);
    }
    return known;
}
#endif

void doppel_gemm_packed(const float *packed, size_t m, size_t k, size_t panel_begin, size_t panel_end,
                        const float *b, size_t ldb, size_t n, const float *bias, float *c, size_t ldc) {
#ifdef DOPPEL_X86
    if (avx2_available()) {
        gemm_packed_avx2(packed, m, k, panel_begin, panel_end, b, ldb, n, bias, c, ldc);
        return;
    }
#endif
    // Callers check doppel_gemm_uses_avx2 first; this plain loop keeps the function total.
    for (size_t p = panel_begin; p < panel_end; p++) {
        for (size_t r = 0; r < DOPPEL_GEMM_PANEL_ROWS; r++) {
            const size_t row = p * DOPPEL_GEMM_PANEL_ROWS + r;
            if (row >= m) return;
            for (size_t j = 0; j < n; j++) {
                float sum = bias ? bias[row] : 0.0f;
                for (size_t kk = 0; kk < k; kk++) sum += packed[(p * k + kk) * DOPPEL_GEMM_PANEL_ROWS + r] * b[kk * ldb + j];
                c[row * ldc + j] = sum;
            }
        }
    }
}

int doppel_gemm_uses_avx2(void) {
#ifdef DOPPEL_X86
    return avx2_available();
#else
    return 0;
#endif
}
