// SPDX-License-Identifier: MIT
// The packed-weights product. AVX2: tiles of 6 weight rows x 16 columns (12 accumulators, two
// 8-lane loads of b and six broadcasts of weights per step of k), columns in the outer loop so
// a block of b stays in cache while every panel of weights streams past it; narrower tiles (8,
// a masked 6-7, and a thin 1-5 column one) finish the columns. AVX-512 (`GEMMWideTile.h`):
// 6 rows x 64 columns (24 of the 32 registers), then 32 and 16, the last 1-15 columns by the
// AVX2 tiles.
#include "CGEMMKernels.h"
#include "CKernelLevels.h"
#include "CKernelWideLanes.h"
#include <math.h>

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

// The reference every other body is checked against.
static void gemm_packed_portable(const float *packed, size_t m, size_t k, size_t panel_begin, size_t panel_end,
                                 const float *b, size_t ldb, size_t n, const float *bias, float *c, size_t ldc) {
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

#ifdef DOPPEL_X86
// Blocks of panels whose weights take at most this many bytes run over every column before
// the next block: the block stays in L2 while the columns (b) pass, and b once per block. Thin
// products (one image through a late layer) so read their weights from memory exactly once.
#define DOPPEL_GEMM_BLOCK_BYTES (256 * 1024)

static size_t panels_per_block(size_t k) {
    const size_t block = DOPPEL_GEMM_BLOCK_BYTES / (k * DOPPEL_GEMM_PANEL_ROWS * sizeof(float));
    return block == 0 ? 1 : block;
}

// One tile: `rows` (1-6) rows of c from one panel, `vectors` (1-2) 8-lane column groups, the last
// one masked to `last_mask` when `masked`. Inlined with constant vectors/masked, so each call
// site compiles to a tile with just the registers it needs.
__attribute__((target("avx2,fma"), always_inline)) static inline void tile(
    const float *panel, size_t k, const float *b, size_t ldb, const float *bias, float *c, size_t ldc,
    size_t rows, const int vectors, const int masked, __m256i last_mask) {
    __m256 acc[DOPPEL_GEMM_PANEL_ROWS][2];
    for (int r = 0; r < DOPPEL_GEMM_PANEL_ROWS; r++)
        for (int v = 0; v < vectors; v++) acc[r][v] = _mm256_setzero_ps();
    for (size_t kk = 0; kk < k; kk++) {
        const float *row = b + kk * ldb;
        __m256 x[2];
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

// Panels [first, end) over the columns [0, n) of b and c, by the AVX2 tiles.
__attribute__((target("avx2,fma"))) static void columns_avx2(
    const float *packed, size_t m, size_t k, size_t first, size_t end,
    const float *b, size_t ldb, size_t n, const float *bias, float *c, size_t ldc) {
    const __m256i none = _mm256_setzero_si256();
    const int left = (int)(n % 8);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
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

__attribute__((target("avx2,fma"))) static void gemm_packed_avx2(
    const float *packed, size_t m, size_t k, size_t panel_begin, size_t panel_end,
    const float *b, size_t ldb, size_t n, const float *bias, float *c, size_t ldc) {
    const size_t block = panels_per_block(k);
    for (size_t first = panel_begin; first < panel_end; first += block) {
        const size_t end = first + block < panel_end ? first + block : panel_end;
        columns_avx2(packed, m, k, first, end, b, ldb, n, bias, c, ldc);
    }
}

// The AVX-512 body, and the same code on pairs of AVX2 registers for the tests.
#define WIDE_NAME(name) name##_avx512
#define WIDE(op) doppel_z_##op
#define WIDE_TARGET DOPPEL_AVX512_TARGET
#define WIDE_VECTOR __m512
#include "GEMMWideTile.h"

#define WIDE_NAME(name) name##_avx512_on_avx2
#define WIDE(op) doppel_p_##op
#define WIDE_TARGET DOPPEL_AVX2_TARGET
#define WIDE_VECTOR doppel_pair
#include "GEMMWideTile.h"
#endif

typedef void (*gemm_body)(const float *, size_t, size_t, size_t, size_t, const float *, size_t, size_t, const float *, float *, size_t);

// The body of a level, or NULL when this processor cannot run it.
static gemm_body body_of(int level) {
#ifdef DOPPEL_X86
    const int supported = doppel_kernels_supported();
#endif
    switch (level) {
    case DOPPEL_KERNELS_PORTABLE: return gemm_packed_portable;
#ifdef DOPPEL_X86
    case DOPPEL_KERNELS_AVX2: return supported >= DOPPEL_KERNELS_AVX2 ? gemm_packed_avx2 : NULL;
    case DOPPEL_KERNELS_AVX512: return supported >= DOPPEL_KERNELS_AVX512 ? gemm_packed_avx512 : NULL;
    case DOPPEL_KERNELS_AVX512_ON_AVX2: return supported >= DOPPEL_KERNELS_AVX2 ? gemm_packed_avx512_on_avx2 : NULL;
#endif
    default: return NULL;
    }
}

int doppel_gemm_packed_at(int level, const float *packed, size_t m, size_t k, size_t panel_begin, size_t panel_end,
                          const float *b, size_t ldb, size_t n, const float *bias, float *c, size_t ldc) {
    gemm_body body = body_of(level);
    if (!body) return -1;
    body(packed, m, k, panel_begin, panel_end, b, ldb, n, bias, c, ldc);
    return 0;
}

// Shapes that reach every tile of every body: 127 columns are 64 + 32 + 16 + 8 + a masked 7
// for AVX-512 (7 x 16 + 15 for AVX2); 21 are 16 + a thin 5; 13 rows leave a panel part-filled.
int doppel_gemm_self_check(int level) {
    gemm_body body = body_of(level);
    if (!body) return -1;
    enum { m = 13, k = 23, widest = 127 };
    static const size_t widths[] = {127, 21};
    float a[m * k], b[k * widest], bias[m], c[m * widest], reference[m * widest];
    float packed[((m + DOPPEL_GEMM_PANEL_ROWS - 1) / DOPPEL_GEMM_PANEL_ROWS) * DOPPEL_GEMM_PANEL_ROWS * k + 8];
    unsigned state = 12345;
    for (size_t i = 0; i < m * k; i++) a[i] = doppel_kernels_check_value(&state);
    for (size_t i = 0; i < k * widest; i++) b[i] = doppel_kernels_check_value(&state);
    for (size_t i = 0; i < m; i++) bias[i] = doppel_kernels_check_value(&state);
    doppel_gemm_pack(a, m, k, k, packed);
    const size_t panels = (m + DOPPEL_GEMM_PANEL_ROWS - 1) / DOPPEL_GEMM_PANEL_ROWS;
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        const size_t n = widths[w];
        for (size_t i = 0; i < m * widest; i++) c[i] = NAN;
        body(packed, m, k, 0, panels, b, widest, n, bias, c, widest);
        gemm_packed_portable(packed, m, k, 0, panels, b, widest, n, bias, reference, widest);
        for (size_t i = 0; i < m; i++) {
            for (size_t j = 0; j < n; j++) {
                // Two sums of the same k + 1 terms in different orders each lie within
                // (k + 1) 2^-24 sum |term| of the exact one (FMA only rounds less).
                double magnitude = fabs(bias[i]);
                for (size_t kk = 0; kk < k; kk++) magnitude += fabs(a[i * k + kk] * b[kk * widest + j]);
                const double bound = 2.0 * (k + 1) * 0x1p-24 * magnitude;
                const float got = c[i * widest + j];
                if (!(fabs((double)got - reference[i * widest + j]) <= bound)) return 0;
            }
        }
    }
    return 1;
}

static doppel_kernel_choice choice = DOPPEL_KERNEL_CHOICE_INIT;

static int select_level(void) { return doppel_kernels_choose(&choice, doppel_gemm_self_check); }

int doppel_gemm_level(void) { return select_level(); }

int doppel_gemm_self_check_failures(void) { return doppel_kernels_choice_failures(&choice, doppel_gemm_self_check); }

void doppel_gemm_packed(const float *packed, size_t m, size_t k, size_t panel_begin, size_t panel_end,
                        const float *b, size_t ldb, size_t n, const float *bias, float *c, size_t ldc) {
    body_of(select_level())(packed, m, k, panel_begin, panel_end, b, ldb, n, bias, c, ldc);
}
