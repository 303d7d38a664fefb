// SPDX-License-Identifier: MIT
// Which instruction-set bodies Doppel's own C kernels (CGEMMKernels, CScanKernels) may run:
// what the processor supports, capped by a ceiling the configuration sets (or DOPPEL_KERNELS
// in the environment, read once at first use the way OpenBLAS reads OPENBLAS_CORETYPE, so a
// test runner and every binary it starts agree). Each kernel library picks the highest level
// under the ceiling whose bodies pass a self-check against the portable body.
#pragma once

/// Levels, lowest first. Portable is plain C: what arm64 and x86-64 without AVX2 run.
enum {
    DOPPEL_KERNELS_PORTABLE = 0,
    DOPPEL_KERNELS_AVX2 = 1,
    DOPPEL_KERNELS_AVX512 = 2,
    /// The AVX-512 bodies' code compiled for AVX2 registers (two per 16 lanes): never
    /// selected, run by the tests so a machine without AVX-512 checks those bodies' logic.
    DOPPEL_KERNELS_AVX512_ON_AVX2 = 3,
};

/// The ceiling "auto" (the highest the processor supports).
#define DOPPEL_KERNELS_AUTO (-1)

/// The highest level this processor and its operating system run.
int doppel_kernels_supported(void);

/// The ceiling now: DOPPEL_KERNELS_AUTO, or a level. Until set, DOPPEL_KERNELS from the
/// environment (portable, avx2, avx512 or auto; anything else counts as auto).
int doppel_kernels_ceiling(void);

/// Sets the ceiling (DOPPEL_KERNELS_AUTO or a level); kernel libraries choose again.
void doppel_kernels_set_ceiling(int level);

/// Bumped by every `doppel_kernels_set_ceiling`: a library whose choice was made under an
/// older generation makes it again.
unsigned doppel_kernels_generation(void);

/// The highest level a library may choose: min(supported, ceiling).
int doppel_kernels_allowed(void);

/// "portable", "avx2", "avx512" (NULL for anything else).
const char *doppel_kernels_name(int level);

/// The level a name stands for, DOPPEL_KERNELS_AUTO for "auto", -2 for an unknown name.
int doppel_kernels_parse(const char *name);

/// A kernel library's choice of level: made at first use, made again when the ceiling changes.
typedef struct {
    long long selection;  // the ceiling's generation << 8 | the level; -1 before the first choice
    int failures;         // levels whose bodies failed their self-check, as bits (1 << level)
} doppel_kernel_choice;
#define DOPPEL_KERNEL_CHOICE_INIT {-1, 0}

/// The level `choice` holds under the current ceiling: the highest allowed one whose
/// `self_check` returns 1 (portable when none does), chosen now if the ceiling changed.
/// Racing first callers make the same choice.
int doppel_kernels_choose(doppel_kernel_choice *choice, int (*self_check)(int level));

/// The failures behind `choice` (choosing first when needed).
int doppel_kernels_choice_failures(doppel_kernel_choice *choice, int (*self_check)(int level));

/// The next value in [-1, 1) of a fixed sequence, for self-checks' inputs.
float doppel_kernels_check_value(unsigned *state);
