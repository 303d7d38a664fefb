// SPDX-License-Identifier: MIT
// Sixteen float lanes two ways, for the kernels' 16-lane bodies: AVX-512 registers
// (doppel_z_*), and pairs of AVX2 registers (doppel_p_*) with the same operations. A body
// written once over WIDE(op) and instantiated with each runs the same logic: the AVX-512 one
// where the processor has it, the pair one in the tests of machines that do not
// (DOPPEL_KERNELS_AVX512_ON_AVX2).
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>

#define DOPPEL_AVX512_TARGET "avx512f,avx512bw,avx2,fma,f16c"
#define DOPPEL_AVX2_TARGET "avx2,fma,f16c"

#define DOPPEL_Z __attribute__((target(DOPPEL_AVX512_TARGET), always_inline)) static inline
DOPPEL_Z __m512 doppel_z_zero(void) { return _mm512_setzero_ps(); }
DOPPEL_Z __m512 doppel_z_load(const float *p) { return _mm512_loadu_ps(p); }
DOPPEL_Z void doppel_z_store(float *p, __m512 v) { _mm512_storeu_ps(p, v); }
DOPPEL_Z __m512 doppel_z_splat(float x) { return _mm512_set1_ps(x); }
DOPPEL_Z __m512 doppel_z_fma(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
DOPPEL_Z __m512 doppel_z_add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
#undef DOPPEL_Z

typedef struct { __m256 low, high; } doppel_pair;
#define DOPPEL_P __attribute__((target(DOPPEL_AVX2_TARGET), always_inline)) static inline
DOPPEL_P doppel_pair doppel_p_zero(void) { return (doppel_pair){_mm256_setzero_ps(), _mm256_setzero_ps()}; }
DOPPEL_P doppel_pair doppel_p_load(const float *p) { return (doppel_pair){_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
DOPPEL_P void doppel_p_store(float *p, doppel_pair v) {
    _mm256_storeu_ps(p, v.low);
    _mm256_storeu_ps(p + 8, v.high);
}
DOPPEL_P doppel_pair doppel_p_splat(float x) { return (doppel_pair){_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
DOPPEL_P doppel_pair doppel_p_fma(doppel_pair a, doppel_pair b, doppel_pair c) {
    return (doppel_pair){_mm256_fmadd_ps(a.low, b.low, c.low), _mm256_fmadd_ps(a.high, b.high, c.high)};
}
DOPPEL_P doppel_pair doppel_p_add(doppel_pair a, doppel_pair b) {
    return (doppel_pair){_mm256_add_ps(a.low, b.low), _mm256_add_ps(a.high, b.high)};
}
#undef DOPPEL_P
#endif
