// SPDX-License-Identifier: MIT
// The 16-lane body of the packed product, included once per lane type (CKernelWideLanes.h)
// with WIDE_NAME (the functions' suffix), WIDE(op) (the lane operations), WIDE_TARGET and
// WIDE_VECTOR defined: AVX-512 registers, and pairs of AVX2 registers for the tests.
// Tiles of 6 rows x 16 `vectors` columns; the columns past the last whole 16 go to the AVX2
// tiles (`columns_avx2`), whose masked and thin tails need no 16-lane masks.

__attribute__((target(WIDE_TARGET), always_inline)) static inline void WIDE_NAME(wide_tile)(
    const float *panel, size_t k, const float *b, size_t ldb, const float *bias, float *c, size_t ldc,
    size_t rows, const int vectors) {
    WIDE_VECTOR acc[DOPPEL_GEMM_PANEL_ROWS][4];
    for (int r = 0; r < DOPPEL_GEMM_PANEL_ROWS; r++)
        for (int v = 0; v < vectors; v++) acc[r][v] = WIDE(zero)();
    for (size_t kk = 0; kk < k; kk++) {
        const float *row = b + kk * ldb;
        WIDE_VECTOR x[4];
        for (int v = 0; v < vectors; v++) x[v] = WIDE(load)(row + 16 * v);
        const float *w = panel + kk * DOPPEL_GEMM_PANEL_ROWS;
        for (int r = 0; r < DOPPEL_GEMM_PANEL_ROWS; r++) {
            const WIDE_VECTOR weight = WIDE(splat)(w[r]);
            for (int v = 0; v < vectors; v++) acc[r][v] = WIDE(fma)(weight, x[v], acc[r][v]);
        }
    }
    for (size_t r = 0; r < rows; r++) {
        const WIDE_VECTOR shift = WIDE(splat)(bias ? bias[r] : 0.0f);
        for (int v = 0; v < vectors; v++) WIDE(store)(c + r * ldc + 16 * v, WIDE(add)(acc[r][v], shift));
    }
}

__attribute__((target(WIDE_TARGET))) static void WIDE_NAME(gemm_packed)(
    const float *packed, size_t m, size_t k, size_t panel_begin, size_t panel_end,
    const float *b, size_t ldb, size_t n, const float *bias, float *c, size_t ldc) {
    const size_t block = panels_per_block(k);
    for (size_t first = panel_begin; first < panel_end; first += block) {
        const size_t end = first + block < panel_end ? first + block : panel_end;
        size_t j = 0;
        #define DOPPEL_WIDE_PANELS(VECTORS)                                                                   \
            for (size_t p = first; p < end; p++) {                                                            \
                const size_t row = p * DOPPEL_GEMM_PANEL_ROWS;                                                \
                const size_t rows = m - row < DOPPEL_GEMM_PANEL_ROWS ? m - row : DOPPEL_GEMM_PANEL_ROWS;      \
                WIDE_NAME(wide_tile)(packed + p * k * DOPPEL_GEMM_PANEL_ROWS, k, b + j, ldb,                  \
                                     bias ? bias + row : NULL, c + row * ldc + j, ldc, rows, VECTORS);        \
            }
        for (; j + 64 <= n; j += 64) { DOPPEL_WIDE_PANELS(4) }
        if (j + 32 <= n) { DOPPEL_WIDE_PANELS(2) j += 32; }
        if (j + 16 <= n) { DOPPEL_WIDE_PANELS(1) j += 16; }
        #undef DOPPEL_WIDE_PANELS
        if (j < n) columns_avx2(packed, m, k, first, end, b + j, ldb, n - j, bias, c + j, ldc);
    }
}

#undef WIDE_NAME
#undef WIDE
#undef WIDE_TARGET
#undef WIDE_VECTOR
