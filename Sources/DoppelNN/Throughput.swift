// SPDX-License-Identifier: MIT
import Dispatch

/// Timing helpers shared by the benchmarks: the best rate over a few rounds, and the
/// machine's measured sgemm peak, which every benchmark prints beside its own figure.
public enum Throughput {
    /// Calls per second of `body`: `rounds` rounds of about `seconds / rounds`, best one counts.
    public static func callsPerSecond(seconds: Double, rounds: Int = 3, warmup: Int = 2, _ body: () -> Void) -> Double {
        for _ in 0..<warmup { body() }
        var best = 0.0
        for _ in 0..<rounds {
            var calls = 0
            let start = DispatchTime.now().uptimeNanoseconds
            var elapsed = 0.0
            repeat {
                body()
                calls += 1
                elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            } while elapsed < seconds / Double(rounds)
            best = max(best, Double(calls) / elapsed)
        }
        return best
    }

    /// GFLOP/s of a square single-precision GEMM of side `size` (2 n^3 flops per call).
    public static func sgemmGFLOPs(size: Int = 1024, seconds: Double = 1) -> Double {
        var generator = SeededGenerator(seed: 1)
        let a = (0..<(size * size)).map { _ in generator.nextUnitFloat() }
        let b = (0..<(size * size)).map { _ in generator.nextUnitFloat() }
        var c = [Float](repeating: 0, count: size * size)
        let rate = callsPerSecond(seconds: seconds) {
            BLAS.gemm(.none, .none, m: size, n: size, k: size, a: a, lda: size, b: b, ldb: size, beta: 0, c: &c, ldc: size)
        }
        return rate * 2 * Double(size * size * size) / 1e9
    }
}
