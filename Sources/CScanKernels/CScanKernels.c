// SPDX-License-Identifier: MIT
// Row kernels for the compact index: int8 in 16-bit integer products, four rows at a time;
// float16 through F16C, two 8-lane accumulators a row. The caller asks for a block of rows at
// a time, so the call, the dispatch and the query's preparation are paid once per block.
// These two read memory at its bandwidth with AVX2 already, so an AVX-512 processor runs the
// AVX2 bodies; the batched products, bound by arithmetic, have a 16-lane body
// (`ProductsWideTile.h`).
#include "CScanKernels.h"
#include "CKernelLevels.h"
#include "CKernelWideLanes.h"
#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define DOPPEL_X86 1
#endif

static void scan_u8_portable(const float *query, const uint8_t *codes, size_t dimension, size_t rows, float offset, float *out) {
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *row = codes + r * dimension;
        float sum = 0;
        for (size_t d = 0; d < dimension; d++) sum += query[d] * (float)row[d];
        out[r] = offset + sum;
    }
}

static void scan_f16_portable(const float *query, const uint16_t *halves, size_t dimension, size_t rows, float *out) {
    for (size_t r = 0; r < rows; r++) {
        const uint16_t *row = halves + r * dimension;
        float sum = 0;
        for (size_t d = 0; d < dimension; d++) sum += query[d] * doppel_half_to_float(row[d]);
        out[r] = sum;
    }
}

#ifdef DOPPEL_X86
__attribute__((target("avx2,fma"))) static inline float horizontal_sum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Sixteen codes a step in integers: the query is rounded once per call to 16-bit integers
// (scaled so its largest value is 32767, or less when the row is long enough for the 32-bit
// sums to overflow), the codes widened to 16 bits (vpmovzxbw) and multiplied and pairwise
// added by vpmaddwd. Per 16 codes that is three instructions where widening to float takes
// six, and no dependent chain of float adds. The query's rounding (relative 2^-16 of its
// largest value) is far below the codes' own (half a step of 255).
enum { integer_dimension_limit = 4096 };

__attribute__((target("avx2,fma"))) static void scan_u8_avx2(const float *query, const uint8_t *codes, size_t dimension, size_t rows, float offset, float *out) {
    size_t blocked = dimension / 16 * 16;
    float peak = 0;
    for (size_t d = 0; d < blocked; d++) peak = fabsf(query[d]) > peak ? fabsf(query[d]) : peak;
    if (blocked == 0 || blocked > integer_dimension_limit || peak == 0 || !isfinite(peak)) {
        scan_u8_portable(query, codes, dimension, rows, offset, out);
        return;
    }
    // Each 32-bit lane sums blocked / 8 products of at most 255 * largest.
    double largest = 2147483647.0 / (255.0 * (double)(blocked / 8));
    if (largest > 32767) largest = 32767;
    float scale = (float)largest / peak, back = peak / (float)largest;
    int16_t rounded[integer_dimension_limit] __attribute__((aligned(32)));
    for (size_t d = 0; d < blocked; d++) rounded[d] = (int16_t)_mm_cvtss_si32(_mm_set_ss(query[d] * scale));  // to nearest
    // Four rows at a time share the query's loads and one reduction (two hadds); each row's
    // lines are prefetched 32 rows ahead, which also covers the start of the next block while
    // the caller ranks this one (measured 1M x 128 on two cores: 7.5 ms one row at a time and
    // no prefetch, 6.8 ms so).
    size_t r = 0;
    const __m128 shift = _mm_set1_ps(offset), unscale = _mm_set1_ps(back);
    for (; r + 4 <= rows; r += 4) {
        const uint8_t *row = codes + r * dimension;
        for (size_t line = 0; line < 4 * dimension; line += 64) _mm_prefetch((const char *)(row + 32 * dimension + line), _MM_HINT_T0);
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
        for (size_t d = 0; d < blocked; d += 16) {
            __m256i q = _mm256_load_si256((const __m256i *)(rounded + d));
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(row + d))), q));
            s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(row + dimension + d))), q));
            s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(row + 2 * dimension + d))), q));
            s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(row + 3 * dimension + d))), q));
        }
        // The hadds leave row j's partial sums in lane j of each 128-bit half.
        __m256i pairs = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
        __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256(pairs, 1));
        __m128 totals = _mm_add_ps(shift, _mm_mul_ps(_mm_cvtepi32_ps(sums), unscale));
        if (blocked < dimension) {
            float tail[4];
            _mm_storeu_ps(tail, totals);
            for (int j = 0; j < 4; j++)
                for (size_t d = blocked; d < dimension; d++) tail[j] += query[d] * (float)row[j * dimension + d];
            totals = _mm_loadu_ps(tail);
        }
        _mm_storeu_ps(out + r, totals);
    }
    for (; r < rows; r++) {
        const uint8_t *row = codes + r * dimension;
        __m256i sum = _mm256_setzero_si256();
        for (size_t d = 0; d < blocked; d += 16) {
            __m256i wide = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(row + d)));
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(wide, _mm256_load_si256((const __m256i *)(rounded + d))));
        }
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
        float total = (float)_mm_cvtsi128_si32(s) * back;
        for (size_t d = blocked; d < dimension; d++) total += query[d] * (float)row[d];
        out[r] = offset + total;
    }
}

// Sixteen halves a step, converted by F16C (vcvtph2ps).
__attribute__((target("avx2,fma,f16c"))) static void scan_f16_avx2(const float *query, const uint16_t *halves, size_t dimension, size_t rows, float *out) {
    for (size_t r = 0; r < rows; r++) {
        const uint16_t *row = halves + r * dimension;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        size_t d = 0;
        for (; d + 16 <= dimension; d += 16) {
            __m256 low = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + d)));
            __m256 high = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + d + 8)));
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(query + d), low, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(query + d + 8), high, a1);
        }
        float sum = horizontal_sum(_mm256_add_ps(a0, a1));
        for (; d < dimension; d++) sum += query[d] * doppel_half_to_float(row[d]);
        out[r] = sum;
    }
}

// Products of a batch of queries with row-major rows, read where they lie (no packed copy of
// the rows, no pass zeroing the output). A tile is 6 rows x 8 VECTORS (1-2) queries: per step
// of the dimension, VECTORS loads of the transposed queries and 6 broadcasts (one from each
// row) feed 6 x VECTORS accumulators, 15 of the 16 registers at most (4 rows x 24 queries
// needs 17, and the spill it forces made it slower than OpenBLAS). The rows stay in L1 while
// every block of queries passes them; the queries (dimension x 8-padded count floats) stay in
// L1 throughout. Accumulators are transposed in registers so each query's products of the 6
// rows land side by side in its own output run.
#define DOPPEL_TILE_ROWS 6

// Lanes j of the four vectors a0-a3 (8 queries each) -> for query j, the four rows in order:
// out[j] holds queries j (low half) and j + 4 (high half).
__attribute__((target("avx2,fma"), always_inline)) static inline void transpose4(
    __m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 out[4]) {
    const __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
    const __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
    out[0] = _mm256_shuffle_ps(t0, t2, 0x44);
    out[1] = _mm256_shuffle_ps(t0, t2, 0xEE);
    out[2] = _mm256_shuffle_ps(t1, t3, 0x44);
    out[3] = _mm256_shuffle_ps(t1, t3, 0xEE);
}

__attribute__((target("avx2,fma"), always_inline)) static inline void products_tile(
    const float *const rows_at[DOPPEL_TILE_ROWS], size_t dimension, const float *queries_t, size_t padded,
    size_t first_query, size_t count, float *out, size_t ldo, size_t rows, const int vectors) {
    __m256 acc[DOPPEL_TILE_ROWS][2];
    for (int r = 0; r < DOPPEL_TILE_ROWS; r++)
        for (int v = 0; v < vectors; v++) acc[r][v] = _mm256_setzero_ps();
    for (size_t d = 0; d < dimension; d++) {
        const float *q = queries_t + d * padded + first_query;
        __m256 column[2];
        for (int v = 0; v < vectors; v++) column[v] = _mm256_loadu_ps(q + 8 * v);
        for (int r = 0; r < DOPPEL_TILE_ROWS; r++) {
            const __m256 weight = _mm256_broadcast_ss(rows_at[r] + d);
            for (int v = 0; v < vectors; v++) acc[r][v] = _mm256_fmadd_ps(weight, column[v], acc[r][v]);
        }
    }
    for (int v = 0; v < vectors; v++) {
        __m256 quads[4];
        transpose4(acc[0][v], acc[1][v], acc[2][v], acc[3][v], quads);
        // Rows 4 and 5: pairs (query j, j + 1 interleaved) -> lane pairs per query.
        const __m256 low = _mm256_unpacklo_ps(acc[4][v], acc[5][v]), high = _mm256_unpackhi_ps(acc[4][v], acc[5][v]);
        for (int j = 0; j < 8; j++) {
            const size_t query = first_query + 8 * v + j;
            if (query >= count) break;
            const __m128 four = j < 4 ? _mm256_castps256_ps128(quads[j]) : _mm256_extractf128_ps(quads[j - 4], 1);
            // Lanes of `low` are queries 0, 1 (and 4, 5 above), of `high` 2, 3 (6, 7), a pair each.
            const __m128 pairs = (j & 2) ? (j < 4 ? _mm256_castps256_ps128(high) : _mm256_extractf128_ps(high, 1))
                                         : (j < 4 ? _mm256_castps256_ps128(low) : _mm256_extractf128_ps(low, 1));
            const __m128 two = (j & 1) ? _mm_movehl_ps(pairs, pairs) : pairs;
            float *target = out + query * ldo;
            if (rows == DOPPEL_TILE_ROWS) {
                _mm_storeu_ps(target, four);
                _mm_storel_pi((__m64 *)(target + 4), two);
            } else {
                float lanes[DOPPEL_TILE_ROWS];
                _mm_storeu_ps(lanes, four);
                _mm_storel_pi((__m64 *)(lanes + 4), two);
                for (size_t r = 0; r < rows; r++) target[r] = lanes[r];
            }
        }
    }
}

// The rows of the group starting at `row` (a short last group repeats its last row in the
// missing places, never stored); asks for the group after next now, so its lines arrive while
// this one is computed. Returns how many rows the group really has.
__attribute__((always_inline)) static inline size_t row_group(const float *x, size_t rows, size_t dimension, size_t row,
                                                              const float *rows_at[DOPPEL_TILE_ROWS]) {
    const size_t here = rows - row < DOPPEL_TILE_ROWS ? rows - row : DOPPEL_TILE_ROWS;
    for (size_t r = 0; r < DOPPEL_TILE_ROWS; r++) rows_at[r] = x + (row + (r < here ? r : here - 1)) * dimension;
    if (row + 3 * DOPPEL_TILE_ROWS <= rows) {
        const char *ahead = (const char *)(x + (row + 2 * DOPPEL_TILE_ROWS) * dimension);
        for (size_t line = 0; line < DOPPEL_TILE_ROWS * dimension * sizeof(float); line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
    }
    return here;
}

__attribute__((target("avx2,fma"))) static void products_avx2(
    const float *x, size_t rows, size_t dimension, const float *queries_t, size_t count, float *out, size_t ldo) {
    const size_t padded = (count + 7) / 8 * 8;
    for (size_t row = 0; row < rows; row += DOPPEL_TILE_ROWS) {
        const float *rows_at[DOPPEL_TILE_ROWS];
        const size_t here = row_group(x, rows, dimension, row, rows_at);
        float *target = out + row;
        size_t query = 0;
        for (; query + 16 <= padded; query += 16) products_tile(rows_at, dimension, queries_t, padded, query, count, target, ldo, here, 2);
        if (query < padded) products_tile(rows_at, dimension, queries_t, padded, query, count, target, ldo, here, 1);
    }
}

// The 16-lane products, and the same code on pairs of AVX2 registers for the tests.
#define WIDE_NAME(name) name##_avx512
#define WIDE(op) doppel_z_##op
#define WIDE_TARGET DOPPEL_AVX512_TARGET
#define WIDE_VECTOR __m512
#include "ProductsWideTile.h"

#define WIDE_NAME(name) name##_avx512_on_avx2
#define WIDE(op) doppel_p_##op
#define WIDE_TARGET DOPPEL_AVX2_TARGET
#define WIDE_VECTOR doppel_pair
#include "ProductsWideTile.h"
#endif

static void products_f32_portable(const float *x, size_t rows, size_t dimension, const float *queries_t, size_t count, float *out, size_t ldo) {
    const size_t padded = (count + 7) / 8 * 8;
    for (size_t q = 0; q < count; q++) {
        for (size_t r = 0; r < rows; r++) {
            float sum = 0;
            for (size_t d = 0; d < dimension; d++) sum += x[r * dimension + d] * queries_t[d * padded + q];
            out[q * ldo + r] = sum;
        }
    }
}

// A level's three bodies; NULL members when this processor cannot run that level.
typedef struct {
    void (*scan_u8)(const float *, const uint8_t *, size_t, size_t, float, float *);
    void (*scan_f16)(const float *, const uint16_t *, size_t, size_t, float *);
    void (*products)(const float *, size_t, size_t, const float *, size_t, float *, size_t);
} scan_bodies;

static scan_bodies bodies_of(int level) {
    const scan_bodies none = {NULL, NULL, NULL};
    const scan_bodies portable = {scan_u8_portable, scan_f16_portable, products_f32_portable};
#ifdef DOPPEL_X86
    const int supported = doppel_kernels_supported();
    switch (level) {
    case DOPPEL_KERNELS_PORTABLE: return portable;
    case DOPPEL_KERNELS_AVX2:
        return supported >= DOPPEL_KERNELS_AVX2 ? (scan_bodies){scan_u8_avx2, scan_f16_avx2, products_avx2} : none;
    case DOPPEL_KERNELS_AVX512:
        return supported >= DOPPEL_KERNELS_AVX512 ? (scan_bodies){scan_u8_avx2, scan_f16_avx2, products_avx512} : none;
    case DOPPEL_KERNELS_AVX512_ON_AVX2:
        return supported >= DOPPEL_KERNELS_AVX2 ? (scan_bodies){scan_u8_avx2, scan_f16_avx2, products_avx512_on_avx2} : none;
    default: return none;
    }
#else
    return level == DOPPEL_KERNELS_PORTABLE ? portable : none;
#endif
}

int doppel_scan_u8_at(int level, const float *query, const uint8_t *codes, size_t dimension, size_t rows, float offset, float *out) {
    scan_bodies bodies = bodies_of(level);
    if (!bodies.scan_u8) return -1;
    bodies.scan_u8(query, codes, dimension, rows, offset, out);
    return 0;
}

int doppel_scan_f16_at(int level, const float *query, const uint16_t *halves, size_t dimension, size_t rows, float *out) {
    scan_bodies bodies = bodies_of(level);
    if (!bodies.scan_f16) return -1;
    bodies.scan_f16(query, halves, dimension, rows, out);
    return 0;
}

int doppel_products_f32_at(int level, const float *rows, size_t row_count, size_t dimension, const float *queries_t, size_t count, float *out, size_t ldo) {
    scan_bodies bodies = bodies_of(level);
    if (!bodies.products) return -1;
    bodies.products(rows, row_count, dimension, queries_t, count, out, ldo);
    return 0;
}

// Each body against the portable one on shapes that reach its tiles and tails: 70 dimensions
// (four blocks of 16 and a tail of 6 for the codes), 7 rows (four at once, then three), and
// for the products 13 rows (two groups of 6 and a short one) by 45 queries (32 + 8 + 5: the
// 16-lane tile, the 8-lane one and a partial block).
int doppel_scan_self_check(int level) {
    scan_bodies bodies = bodies_of(level);
    if (!bodies.scan_u8) return -1;
    enum { dimension = 70, rows = 7, product_rows = 13, queries = 45, padded = 48 };
    float query[dimension], x[product_rows * dimension], queries_t[dimension * padded];
    uint8_t codes[rows * dimension];
    uint16_t halves[rows * dimension];
    float got[queries * product_rows], want[queries * product_rows];
    unsigned state = 777;
    float peak = 0;
    for (size_t d = 0; d < dimension; d++) {
        query[d] = doppel_kernels_check_value(&state);
        peak = fabsf(query[d]) > peak ? fabsf(query[d]) : peak;
    }
    for (size_t i = 0; i < rows * dimension; i++) {
        codes[i] = (uint8_t)(state >> 24);
        doppel_kernels_check_value(&state);
        halves[i] = (uint16_t)(0x3000 + (state >> 22));  // halves in [2^-3, 2^-2)
    }
    for (size_t i = 0; i < product_rows * dimension; i++) x[i] = doppel_kernels_check_value(&state);
    for (size_t i = 0; i < dimension * padded; i++) queries_t[i] = doppel_kernels_check_value(&state);

    // Codes: the query rounded to integers of at most 32767 moves each product by at most
    // code * peak / (2 * 32767); both sums round within dimension 2^-24 sum |term| besides.
    bodies.scan_u8(query, codes, dimension, rows, 0.5f, got);
    scan_u8_portable(query, codes, dimension, rows, 0.5f, want);
    for (size_t r = 0; r < rows; r++) {
        double magnitude = 0.5, codes_sum = 0;
        for (size_t d = 0; d < dimension; d++) {
            magnitude += fabs(query[d] * codes[r * dimension + d]);
            codes_sum += codes[r * dimension + d];
        }
        const double bound = codes_sum * peak / (2.0 * 32767) + 2.0 * (dimension + 1) * 0x1p-24 * magnitude;
        if (!(fabs((double)got[r] - want[r]) <= bound)) return 0;
    }
    // Halves convert exactly; only the order of the float sums differs.
    bodies.scan_f16(query, halves, dimension, rows, got);
    scan_f16_portable(query, halves, dimension, rows, want);
    for (size_t r = 0; r < rows; r++) {
        double magnitude = 0;
        for (size_t d = 0; d < dimension; d++) magnitude += fabs(query[d] * doppel_half_to_float(halves[r * dimension + d]));
        if (!(fabs((double)got[r] - want[r]) <= 2.0 * dimension * 0x1p-24 * magnitude)) return 0;
    }
    for (size_t i = 0; i < queries * product_rows; i++) got[i] = NAN;
    bodies.products(x, product_rows, dimension, queries_t, queries, got, product_rows);
    products_f32_portable(x, product_rows, dimension, queries_t, queries, want, product_rows);
    for (size_t q = 0; q < queries; q++) {
        for (size_t r = 0; r < product_rows; r++) {
            double magnitude = 0;
            for (size_t d = 0; d < dimension; d++) magnitude += fabs(x[r * dimension + d] * queries_t[d * padded + q]);
            if (!(fabs((double)got[q * product_rows + r] - want[q * product_rows + r]) <= 2.0 * dimension * 0x1p-24 * magnitude)) return 0;
        }
    }
    return 1;
}

static doppel_kernel_choice choice = DOPPEL_KERNEL_CHOICE_INIT;

static int select_level(void) { return doppel_kernels_choose(&choice, doppel_scan_self_check); }

int doppel_scan_level(void) { return select_level(); }

int doppel_scan_self_check_failures(void) { return doppel_kernels_choice_failures(&choice, doppel_scan_self_check); }

void doppel_scan_u8(const float *query, const uint8_t *codes, size_t dimension, size_t rows, float offset, float *out) {
    bodies_of(select_level()).scan_u8(query, codes, dimension, rows, offset, out);
}

void doppel_scan_f16(const float *query, const uint16_t *halves, size_t dimension, size_t rows, float *out) {
    bodies_of(select_level()).scan_f16(query, halves, dimension, rows, out);
}

void doppel_products_f32(const float *x, size_t rows, size_t dimension, const float *queries_t, size_t count, float *out, size_t ldo) {
    bodies_of(select_level()).products(x, rows, dimension, queries_t, count, out, ldo);
}
