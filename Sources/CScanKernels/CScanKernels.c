// SPDX-License-Identifier: MIT
// Row kernels for the compact index: int8 in 16-bit integer products, four rows at a time;
// float16 through F16C, two 8-lane accumulators a row. The caller asks for a block of rows at
// a time, so the call, the dispatch and the query's preparation are paid once per block.
#include "CScanKernels.h"
#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define DOPPEL_X86 1
#endif

void doppel_scan_u8_portable(const float *query, const uint8_t *codes, size_t dimension, size_t rows, float offset, float *out) {
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *row = codes + r * dimension;
        float sum = 0;
        for (size_t d = 0; d < dimension; d++) sum += query[d] * (float)row[d];
        out[r] = offset + sum;
    }
}

void doppel_scan_f16_portable(const float *query, const uint16_t *halves, size_t dimension, size_t rows, float *out) {
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
        doppel_scan_u8_portable(query, codes, dimension, rows, offset, out);
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

// Asked once; racing first callers store the same answer.
static int avx2_available(void) {
    static int cached = -1;
    int known = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
        __atomic_store_n(&cached, known, __ATOMIC_RELAXED);
    }
    return known;
}
#endif

int doppel_scan_uses_avx2(void) {
#ifdef DOPPEL_X86
    return avx2_available();
#else
    return 0;
#endif
}

void doppel_scan_u8(const float *query, const uint8_t *codes, size_t dimension, size_t rows, float offset, float *out) {
#ifdef DOPPEL_X86
    if (avx2_available()) { scan_u8_avx2(query, codes, dimension, rows, offset, out); return; }
#endif
    doppel_scan_u8_portable(query, codes, dimension, rows, offset, out);
}

void doppel_scan_f16(const float *query, const uint16_t *halves, size_t dimension, size_t rows, float *out) {
#ifdef DOPPEL_X86
    if (avx2_available()) { scan_f16_avx2(query, halves, dimension, rows, out); return; }
#endif
    doppel_scan_f16_portable(query, halves, dimension, rows, out);
}
