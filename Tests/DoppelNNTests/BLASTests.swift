// SPDX-License-Identifier: MIT
import DoppelKernels
import Testing
import TestSupport
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
        // Each element sums k products and beta c: the two evaluations differ by at most
        // twice gamma(k + 1) times the sum of those terms' magnitudes.
        func element(_ matrix: [Float], _ row: Int, _ column: Int, transposed: Bool, columns: Int, rows: Int) -> Float {
            transposed ? matrix[column * rows + row] : matrix[row * columns + column]
        }
        var outside = 0, worst = 0.0
        for i in 0..<m {
            for j in 0..<n {
                var magnitude = abs(0.3 * Double(c0[i * n + j]))
                for kk in 0..<k {
                    magnitude += 0.7 * abs(Double(element(a, i, kk, transposed: transA == .transposed, columns: k, rows: m))
                                           * Double(element(b, kk, j, transposed: transB == .transposed, columns: n, rows: k)))
                }
                let difference = Double(abs(fast[i * n + j] - naive[i * n + j]))
                worst = max(worst, difference)
                if difference > RoundingBound.reordered(terms: k + 2, magnitude: magnitude) { outside += 1 }
            }
        }
        print("gemm \(transA)/\(transB): max difference \(worst)")
        #expect(outside == 0, "\(outside) elements beyond their rounding bound")
    }

    /// A virtual CPU that OpenBLAS reads as Prescott but that has AVX-512 (this project's VM)
    /// gets the SkylakeX kernels; AVX2 alone gets Haswell; vector kernels already chosen, or a
    /// CPU without AVX2, are left alone.
    @Test func fasterKernelsAreNamedOnlyWhereTheCPUHasThem() {
        let cpuinfo = """
            processor\t: 0
            model name\t: Intel(R) Xeon(R) Processor
            flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx fma avx2 avx512f avx512dq avx512cd avx512bw avx512vl
            processor\t: 1
            flags\t\t: fpu sse
            """
        let avx512 = BLASKernels.cpuFlags(cpuinfo: cpuinfo)
        #expect(avx512.contains("avx512vl") && avx512.contains("fpu") && !avx512.contains("flags"))
        #expect(BLASKernels.better(than: "Prescott", cpuFlags: avx512) == "SkylakeX")
        #expect(BLASKernels.better(than: "Core2", cpuFlags: ["avx2", "fma", "avx512f"]) == "Haswell", "AVX-512F alone is not SkylakeX")
        #expect(BLASKernels.better(than: "Haswell", cpuFlags: avx512) == nil, "a vector kernel set is OpenBLAS's own choice")
        #expect(BLASKernels.better(than: "Prescott", cpuFlags: ["sse3", "avx"]) == nil, "nothing better to run")
        #expect(BLASKernels.cpuFlags(cpuinfo: "processor\t: 0\n").isEmpty)
    }
}
