// SPDX-License-Identifier: MIT
// The 16-lane body of the batched products, included once per lane type (CKernelWideLanes.h)
// with WIDE_NAME, WIDE(op), WIDE_TARGET and WIDE_VECTOR defined. A tile is 6 rows x 16
// `vectors` queries (12 of the 32 AVX-512 registers at two vectors, the rows' broadcasts
// feeding two FMAs each); the accumulators go through a small buffer so each query's 6
// products land side by side in its own output run. The last 8 queries of a count that is not
// a multiple of 16 take the AVX2 tile, which reads the 8-padded layout as it is.

__attribute__((target(WIDE_TARGET), always_inline)) static inline void WIDE_NAME(products_wide_tile)(
    const float *const rows_at[DOPPEL_TILE_ROWS], size_t dimension, const float *queries_t, size_t padded,
    size_t first_query, size_t count, float *out, size_t ldo, size_t rows, const int vectors) {
    WIDE_VECTOR acc[DOPPEL_TILE_ROWS][2];
    for (int r = 0; r < DOPPEL_TILE_ROWS; r++)
        for (int v = 0; v < vectors; v++) acc[r][v] = WIDE(zero)();
    for (size_t d = 0; d < dimension; d++) {
        const float *q = queries_t + d * padded + first_query;
        WIDE_VECTOR column[2];
        for (int v = 0; v < vectors; v++) column[v] = WIDE(load)(q + 16 * v);
        for (int r = 0; r < DOPPEL_TILE_ROWS; r++) {
            const WIDE_VECTOR weight = WIDE(splat)(rows_at[r][d]);
            for (int v = 0; v < vectors; v++) acc[r][v] = WIDE(fma)(weight, column[v], acc[r][v]);
        }
    }
    float lanes[DOPPEL_TILE_ROWS][32];
    for (int r = 0; r < DOPPEL_TILE_ROWS; r++)
        for (int v = 0; v < vectors; v++) WIDE(store)(lanes[r] + 16 * v, acc[r][v]);
    for (int j = 0; j < 16 * vectors; j++) {
        const size_t query = first_query + (size_t)j;
        if (query >= count) break;
        float *target = out + query * ldo;
        for (size_t r = 0; r < rows; r++) target[r] = lanes[r][j];
    }
}

__attribute__((target(WIDE_TARGET))) static void WIDE_NAME(products)(
    const float *x, size_t rows, size_t dimension, const float *queries_t, size_t count, float *out, size_t ldo) {
    const size_t padded = (count + 7) / 8 * 8;
    for (size_t row = 0; row < rows; row += DOPPEL_TILE_ROWS) {
        const float *rows_at[DOPPEL_TILE_ROWS];
        const size_t here = row_group(x, rows, dimension, row, rows_at);
        float *target = out + row;
        size_t query = 0;
        for (; query + 32 <= padded; query += 32)
            WIDE_NAME(products_wide_tile)(rows_at, dimension, queries_t, padded, query, count, target, ldo, here, 2);
        if (query + 16 <= padded) {
            WIDE_NAME(products_wide_tile)(rows_at, dimension, queries_t, padded, query, count, target, ldo, here, 1);
            query += 16;
        }
        if (query < padded) products_tile(rows_at, dimension, queries_t, padded, query, count, target, ldo, here, 1);
    }
}

#undef WIDE_NAME
#undef WIDE
#undef WIDE_TARGET
#undef WIDE_VECTOR
