// SPDX-License-Identifier: MIT
import CGEMMKernels
import CKernelLevels
import DoppelNN
import Testing

/// The packed-weights product (`CGEMMKernels`), every body this processor runs, against a
/// plain triple loop in Double: every column tail (the 64-, 32- and 16-wide tiles of the
/// 16-lane body, the 16- and 8-wide AVX2 tiles, the masked one, the thin 1-5 column one), row
/// counts that leave a panel part-filled, panel sub-ranges (how threads split it), no bias.
@Suite struct PackedGEMMTests {
    /// Portable everywhere; AVX2, and the AVX-512 body's code on AVX2 registers, where the
    /// processor has AVX2; AVX-512 where it has that.
    static let runnableLevels: [Int32] = [DOPPEL_KERNELS_PORTABLE, DOPPEL_KERNELS_AVX2, DOPPEL_KERNELS_AVX512, DOPPEL_KERNELS_AVX512_ON_AVX2]
        .map { Int32($0) }.filter { doppel_gemm_self_check($0) >= 0 }

    /// Each float result sums k products and the bias: within (k + 1) 2^-24 sum |term| of the
    /// exact sum, in any order.
    static func bound(_ a: [Float], _ b: [Float], bias: [Float]?, m: Int, k: Int, n: Int, i: Int, j: Int) -> Double {
        let magnitude = (0..<k).reduce(abs(Double(bias?[i] ?? 0))) { $0 + abs(Double(a[i * k + $1]) * Double(b[$1 * n + j])) }
        return Double(k + 1) * 0x1p-24 * magnitude
    }

    @Test func everyRunnableBodyPassesItsSelfCheck() {
        for level in Self.runnableLevels { #expect(doppel_gemm_self_check(level) == 1, "level \(level)") }
        #expect(doppel_gemm_self_check_failures() == 0)
        #expect(Self.runnableLevels.count == 1 || doppel_gemm_level() > DOPPEL_KERNELS_PORTABLE || doppel_kernels_ceiling() == DOPPEL_KERNELS_PORTABLE,
                "a vector body runs here but the portable one was selected")
    }
    static func reference(_ a: [Float], _ b: [Float], bias: [Float]?, m: Int, k: Int, n: Int) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum = Double(bias?[i] ?? 0)
                for kk in 0..<k { sum += Double(a[i * k + kk]) * Double(b[kk * n + j]) }
                c[i * n + j] = sum
            }
        }
        return c
    }

    @Test(arguments: [(1, 1, 1), (6, 9, 16), (7, 5, 3), (13, 33, 1), (11, 17, 38), (64, 147, 53), (130, 100, 49), (12, 40, 30), (5, 300, 21),
                      (7, 11, 64), (9, 13, 127), (6, 20, 200)])
    func matchesTheReference(shape: (Int, Int, Int)) {
        let (m, k, n) = shape
        var generator = SeededGenerator(seed: UInt64(m * 1_000_003 + k * 1_009 + n))
        let a = (0..<(m * k)).map { _ in generator.nextGaussian() }
        let b = (0..<(k * n)).map { _ in generator.nextGaussian() }
        let bias = (0..<m).map { _ in generator.nextGaussian() }
        var packed = [Float](repeating: .nan, count: doppel_gemm_packed_floats(m, k))
        doppel_gemm_pack(a, m, k, k, &packed)
        let panels = (m + Int(DOPPEL_GEMM_PANEL_ROWS) - 1) / Int(DOPPEL_GEMM_PANEL_ROWS)
        for level in Self.runnableLevels {
            for withBias in [true, false] {
                let expected = Self.reference(a, b, bias: withBias ? bias : nil, m: m, k: k, n: n)
                // Whole, then in two panel ranges as two threads would.
                for split in Set([0, panels / 2]) {
                    var c = [Float](repeating: .nan, count: m * n)
                    bias.withUnsafeBufferPointer { biasPointer in
                        let biasArgument = withBias ? biasPointer.baseAddress : nil
                        _ = doppel_gemm_packed_at(level, packed, m, k, 0, split, b, n, n, biasArgument, &c, n)
                        _ = doppel_gemm_packed_at(level, packed, m, k, split, panels, b, n, n, biasArgument, &c, n)
                    }
                    var outside = 0
                    for i in 0..<m {
                        for j in 0..<n where !(abs(Double(c[i * n + j]) - expected[i * n + j])
                                              <= Self.bound(a, b, bias: withBias ? bias : nil, m: m, k: k, n: n, i: i, j: j)) {
                            outside += 1
                        }
                    }
                    #expect(outside == 0, "level \(level) m \(m) k \(k) n \(n) bias \(withBias) split \(split): \(outside) values outside their bound")
                }
            }
        }
    }

    /// A column range (how rows of a wide map are split): only those columns are written.
    @Test func writesOnlyItsColumns() {
        let (m, k, n) = (9, 7, 40)
        var generator = SeededGenerator(seed: 5)
        let a = (0..<(m * k)).map { _ in generator.nextGaussian() }
        let b = (0..<(k * n)).map { _ in generator.nextGaussian() }
        var packed = [Float](repeating: 0, count: doppel_gemm_packed_floats(m, k))
        doppel_gemm_pack(a, m, k, k, &packed)
        let expected = Self.reference(a, b, bias: nil, m: m, k: k, n: n)
        for level in Self.runnableLevels {
            var c = [Float](repeating: 7, count: m * n)
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    _ = doppel_gemm_packed_at(level, packed, m, k, 0, 2, b.baseAddress! + 11, n, 19, nil, c.baseAddress! + 11, n)
                }
            }
            for i in 0..<m {
                for j in 0..<n {
                    if (11..<30).contains(j) {
                        #expect(abs(Double(c[i * n + j]) - expected[i * n + j]) <= Self.bound(a, b, bias: nil, m: m, k: k, n: n, i: i, j: j))
                    } else {
                        #expect(c[i * n + j] == 7, "level \(level) row \(i) column \(j) written")
                    }
                }
            }
        }
    }
}
