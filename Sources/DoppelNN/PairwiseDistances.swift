// SPDX-License-Identifier: MIT

/// All distances between two sets of embeddings, by sgemm: |q - g|^2 = |q|^2 + |g|^2 - 2 q.g
/// (negative results of rounding clamped to 0, as FAISS does), cosine from the same product.
public enum PairwiseDistances {
    /// `[queries.count / dimension, gallery.count / dimension]` row-major distances.
    public static func compute(queries: UnsafePointer<Float>, queryCount: Int, gallery: UnsafePointer<Float>, galleryCount: Int,
                               dimension: Int, metric: Metric) -> [Float] {
        var out = [Float](repeating: 0, count: queryCount * galleryCount)
        guard queryCount > 0, galleryCount > 0 else { return out }
        func norms(_ x: UnsafePointer<Float>, _ n: Int) -> [Float] {
            (0..<n).map { i in
                var s: Float = 0
                for k in 0..<dimension { s += x[i * dimension + k] * x[i * dimension + k] }
                return s
            }
        }
        let qn = norms(queries, queryCount), gn = norms(gallery, galleryCount)
        out.withUnsafeMutableBufferPointer { d in
            // dot[Q, G] = queries[Q, D] gallery^T[D, G]
            BLAS.gemm(
                .none, .transposed,
                m: queryCount, n: galleryCount, k: dimension,
                a: queries, lda: dimension,
                b: gallery, ldb: dimension,
                beta: 0,
                c: d.baseAddress!, ldc: galleryCount)
            for i in 0..<queryCount {
                for j in 0..<galleryCount {
                    let dot = d[i * galleryCount + j]
                    switch metric {
                    case .euclidean: d[i * galleryCount + j] = max(qn[i] + gn[j] - 2 * dot, 0).squareRoot()
                    case .cosine:
                        let norms = (qn[i] * gn[j]).squareRoot()
                        d[i * galleryCount + j] = norms > Metric.tiny ? 1 - dot / norms : 1
                    }
                }
            }
        }
        return out
    }
}
