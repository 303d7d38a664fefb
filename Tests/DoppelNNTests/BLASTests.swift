// SPDX-License-Identifier: MIT
import Testing
@testable import DoppelNN

/// OpenBLAS against the three-loop reference, every transpose combination, odd sizes.
@Suite struct BLASTests {
    @Test(arguments: [BLAS.Transpose.none, .transposed], [BLAS.Transpose.none, .transposed])
    func gemmMatchesTheNaiveReference(transA: BLAS.Transpose, transB: BLAS.Transpose) {
        let (m, n, k) = (37, 29, 53)
        var generator = SeededGenerator(seed: 4)
        let a = (0..<(m * k)).map { _ in generator.nextGaussian() }
        let b = (0..<(k * n)).map { _ in generator.nextGaussian() }
        let c0 = (0..<(m * n)).map { _ in generator.nextGaussian() }
        var fast = c0, naive = c0
        let lda = transA == .none ? k : m, ldb = transB == .none ? n : k
        BLAS.gemm(transA, transB, m: m, n: n, k: k, alpha: 0.7, a: a, lda: lda, b: b, ldb: ldb, beta: 0.3, c: &fast, ldc: n)
        BLAS.gemmNaive(transA, transB, m: m, n: n, k: k, alpha: 0.7, a: a, lda: lda, b: b, ldb: ldb, beta: 0.3, c: &naive, ldc: n)
        let maxDifference = zip(fast, naive).map { abs($0 - $1) }.max()!
        print("gemm \(transA)/\(transB): max difference \(maxDifference)")
        #expect(maxDifference < 1e-4)
    }
}
