// SPDX-License-Identifier: MIT
import CGEMMKernels
import DoppelNN
import Testing

/// The packed-weights product (`CGEMMKernels`) against a plain triple loop in Double: every
/// column tail (the 16- and 8-wide tiles, the masked one, the thin 1-5 column one), row counts
/// that leave a panel part-filled, panel sub-ranges (how threads split it), no bias.
@Suite struct PackedGEMMTests {
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

    @Test(arguments: [(1, 1, 1), (6, 9, 16), (7, 5, 3), (13, 33, 1), (11, 17, 38), (64, 147, 53), (130, 100, 49), (12, 40, 30), (5, 300, 21)])
    func matchesTheReference(shape: (Int, Int, Int)) {
        let (m, k, n) = shape
        var generator = SeededGenerator(seed: UInt64(m * 1_000_003 + k * 1_009 + n))
        let a = (0..<(m * k)).map { _ in generator.nextGaussian() }
        let b = (0..<(k * n)).map { _ in generator.nextGaussian() }
        let bias = (0..<m).map { _ in generator.nextGaussian() }
        var packed = [Float](repeating: .nan, count: doppel_gemm_packed_floats(m, k))
        doppel_gemm_pack(a, m, k, k, &packed)
        let panels = (m + Int(DOPPEL_GEMM_PANEL_ROWS) - 1) / Int(DOPPEL_GEMM_PANEL_ROWS)
        for withBias in [true, false] {
            let expected = Self.reference(a, b, bias: withBias ? bias : nil, m: m, k: k, n: n)
            // Whole, then in two panel ranges as two threads would.
            for split in Set([0, panels / 2]) {
                var c = [Float](repeating: .nan, count: m * n)
                bias.withUnsafeBufferPointer { biasPointer in
                    let biasArgument = withBias ? biasPointer.baseAddress : nil
                    doppel_gemm_packed(packed, m, k, 0, split, b, n, n, biasArgument, &c, n)
                    doppel_gemm_packed(packed, m, k, split, panels, b, n, n, biasArgument, &c, n)
                }
                let worst = zip(c, expected).map { abs(Double($0) - $1) / (1 + abs($1)) }.max()!
                #expect(worst < 1e-5, "m \(m) k \(k) n \(n) bias \(withBias) split \(split): \(worst)")
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
        var c = [Float](repeating: 7, count: m * n)
        b.withUnsafeBufferPointer { b in
            c.withUnsafeMutableBufferPointer { c in
                doppel_gemm_packed(packed, m, k, 0, 2, b.baseAddress! + 11, n, 19, nil, c.baseAddress! + 11, n)
            }
        }
        let expected = Self.reference(a, b, bias: nil, m: m, k: k, n: n)
        for i in 0..<m {
            for j in 0..<n {
                if (11..<30).contains(j) {
                    #expect(abs(Double(c[i * n + j]) - expected[i * n + j]) < 1e-4)
                } else {
                    #expect(c[i * n + j] == 7, "row \(i) column \(j) written")
                }
            }
        }
    }
}
