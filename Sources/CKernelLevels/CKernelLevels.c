// SPDX-License-Identifier: MIT
#include "CKernelLevels.h"
#include <stdlib.h>
#include <string.h>

// -2: not read yet. Racing first readers store the same value.
static int ceiling = -2;
static unsigned generation = 1;

int doppel_kernels_supported(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    // __builtin_cpu_supports checks the OS saves the registers too (XCR0), not only CPUID.
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (!avx2) return DOPPEL_KERNELS_PORTABLE;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return DOPPEL_KERNELS_AVX512;
    return DOPPEL_KERNELS_AVX2;
#else
    return DOPPEL_KERNELS_PORTABLE;
#endif
}

const char *doppel_kernels_name(int level) {
    switch (level) {
    case DOPPEL_KERNELS_PORTABLE: return "portable";
    case DOPPEL_KERNELS_AVX2: return "avx2";
    case DOPPEL_KERNELS_AVX512: return "avx512";
    default: return NULL;
    }
}

int doppel_kernels_parse(const char *name) {
    if (name == NULL || strcmp(name, "auto") == 0) return DOPPEL_KERNELS_AUTO;
    for (int level = DOPPEL_KERNELS_PORTABLE; level <= DOPPEL_KERNELS_AVX512; level++)
        if (strcmp(name, doppel_kernels_name(level)) == 0) return level;
    return -2;
}

int doppel_kernels_ceiling(void) {
    int known = __atomic_load_n(&ceiling, __ATOMIC_ACQUIRE);
    if (known == -2) {
        int parsed = doppel_kernels_parse(getenv("DOPPEL_KERNELS"));
        known = parsed == -2 ? DOPPEL_KERNELS_AUTO : parsed;
        int expected = -2;
        // A ceiling set meanwhile wins over the environment.
        if (!__atomic_compare_exchange_n(&ceiling, &expected, known, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) known = expected;
    }
    return known;
}

void doppel_kernels_set_ceiling(int level) {
    __atomic_store_n(&ceiling, level < 0 ? DOPPEL_KERNELS_AUTO : level, __ATOMIC_RELEASE);
    __atomic_add_fetch(&generation, 1, __ATOMIC_ACQ_REL);
}

unsigned doppel_kernels_generation(void) { return __atomic_load_n(&generation, __ATOMIC_ACQUIRE); }

int doppel_kernels_allowed(void) {
    int supported = doppel_kernels_supported(), cap = doppel_kernels_ceiling();
    return cap == DOPPEL_KERNELS_AUTO || cap > supported ? supported : cap;
}

int doppel_kernels_choose(doppel_kernel_choice *choice, int (*self_check)(int level)) {
    const unsigned generation = doppel_kernels_generation();
    long long known = __atomic_load_n(&choice->selection, __ATOMIC_ACQUIRE);
    if (known >= 0 && (unsigned)(known >> 8) == generation) return (int)(known & 0xFF);
    int level = DOPPEL_KERNELS_PORTABLE, failed = 0;
    for (int candidate = doppel_kernels_allowed(); candidate > DOPPEL_KERNELS_PORTABLE; candidate--) {
        if (self_check(candidate) == 1) { level = candidate; break; }
        failed |= 1 << candidate;
    }
    __atomic_store_n(&choice->failures, failed, __ATOMIC_RELEASE);
    __atomic_store_n(&choice->selection, ((long long)generation << 8) | level, __ATOMIC_RELEASE);
    return level;
}

int doppel_kernels_choice_failures(doppel_kernel_choice *choice, int (*self_check)(int level)) {
    doppel_kernels_choose(choice, self_check);
    return __atomic_load_n(&choice->failures, __ATOMIC_ACQUIRE);
}

float doppel_kernels_check_value(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / 8388608.0f - 1.0f;
}
