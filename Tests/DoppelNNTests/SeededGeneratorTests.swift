// SPDX-License-Identifier: MIT
import Testing
@testable import DoppelNN

@Suite struct SeededGeneratorTests {
    @Test func sameSeedSameStream() {
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42), c = SeededGenerator(seed: 43)
        let first = (0..<8).map { _ in a.next() }
        #expect(first == (0..<8).map { _ in b.next() })
        #expect(first != (0..<8).map { _ in c.next() })
    }

    @Test func uniformAndGaussianMoments() {
        var generator = SeededGenerator(seed: 7)
        let n = 200_000
        let uniform = (0..<n).map { _ in generator.nextUnitFloat() }
        #expect(uniform.allSatisfy { $0 >= 0 && $0 < 1 })
        let uniformMean = uniform.reduce(0, +) / Float(n)
        #expect(abs(uniformMean - 0.5) < 0.005)
        let gaussian = (0..<n).map { _ in Double(generator.nextGaussian()) }
        let mean = gaussian.reduce(0, +) / Double(n)
        let variance = gaussian.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
        #expect(abs(mean) < 0.01 && abs(variance - 1) < 0.02, "mean \(mean), variance \(variance)")
    }
}
