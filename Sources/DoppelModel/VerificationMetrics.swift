// SPDX-License-Identifier: MIT

/// Verification quality from the distances of same-identity and different-identity pairs.
/// Convention everywhere: a pair *matches* when its distance is at most the threshold, so
/// the false accept rate at t is the fraction of different pairs with d <= t and the true
/// accept rate the fraction of same pairs with d <= t.
public struct VerificationMetrics: Codable, Sendable, Equatable {
    public let samePairs: Int
    public let differentPairs: Int
    public let rocAUC: Double
    public let equalErrorRate: Double
    public let eerThreshold: Float
    /// True accept rate where the false accept rate is at most 1e-2 / 1e-3.
    public let tarAtFAR1e2: Double
    public let tarAtFAR1e3: Double

    public init(same: [Float], different: [Float]) {
        samePairs = same.count
        differentPairs = different.count
        rocAUC = Self.rocAUC(same: same, different: different)
        let eer = Self.equalErrorRate(same: same, different: different)
        equalErrorRate = eer.rate
        eerThreshold = eer.threshold
        tarAtFAR1e2 = Self.trueAcceptRate(same: same, atThreshold: Self.threshold(forFalseAcceptRate: 1e-2, different: different))
        tarAtFAR1e3 = Self.trueAcceptRate(same: same, atThreshold: Self.threshold(forFalseAcceptRate: 1e-3, different: different))
    }

    /// P(d_same < d_different), ties counting half: the area under the ROC curve, by sorting.
    public static func rocAUC(same: [Float], different: [Float]) -> Double {
        guard !same.isEmpty, !different.isEmpty else { return 0.5 }
        let sortedDifferent = different.sorted()
        var wins = 0.0
        for d in same {
            // Different pairs strictly farther than d, and those tied with it.
            let below = lowerBound(sortedDifferent, d), upTo = upperBound(sortedDifferent, d)
            wins += Double(sortedDifferent.count - upTo) + 0.5 * Double(upTo - below)
        }
        return wins / Double(same.count) / Double(different.count)
    }

    /// The rate where false accepts and false rejects are closest, and the threshold there.
    public static func equalErrorRate(same: [Float], different: [Float]) -> (rate: Double, threshold: Float) {
        guard !same.isEmpty, !different.isEmpty else { return (0.5, 0) }
        let sortedSame = same.sorted(), sortedDifferent = different.sorted()
        var best = (gap: Double.infinity, rate: 0.5, threshold: Float(0))
        for t in Set(same + different).sorted() {
            let far = Double(upperBound(sortedDifferent, t)) / Double(different.count)
            let frr = Double(sortedSame.count - upperBound(sortedSame, t)) / Double(same.count)
            if abs(far - frr) < best.gap { best = (abs(far - frr), (far + frr) / 2, t) }
        }
        return (best.rate, best.threshold)
    }

    /// The largest threshold whose false accept rate on `different` is at most `target`
    /// (just below the nearest different pair when even one accept would exceed it).
    public static func threshold(forFalseAcceptRate target: Double, different: [Float]) -> Float {
        let sorted = different.sorted()
        guard !sorted.isEmpty else { return 0 }
        let allowed = Int((target * Double(sorted.count)).rounded(.down))
        guard allowed < sorted.count else { return sorted.last! }
        // Just below the first pair that must be rejected: ties with it are rejected too.
        return sorted[allowed].nextDown
    }

    public static func trueAcceptRate(same: [Float], atThreshold t: Float) -> Double {
        same.isEmpty ? 0 : Double(same.filter { $0 <= t }.count) / Double(same.count)
    }

    public static func falseAcceptRate(different: [Float], atThreshold t: Float) -> Double {
        different.isEmpty ? 0 : Double(different.filter { $0 <= t }.count) / Double(different.count)
    }

    /// Fraction of pairs decided right at `t`.
    public static func accuracy(same: [Float], different: [Float], threshold t: Float) -> Double {
        let right = same.filter { $0 <= t }.count + different.filter { $0 > t }.count
        return Double(right) / Double(max(1, same.count + different.count))
    }

    /// ROC points (false accept rate, true accept rate) at every distinct threshold, from
    /// (0, 0) to (1, 1), thinned to at most `maxPoints` for plotting.
    public static func rocCurve(same: [Float], different: [Float], maxPoints: Int = 400) -> [(far: Double, tar: Double)] {
        let sortedSame = same.sorted(), sortedDifferent = different.sorted()
        var points: [(far: Double, tar: Double)] = [(0, 0)]
        for t in Set(same + different).sorted() {
            points.append((Double(upperBound(sortedDifferent, t)) / Double(max(1, different.count)),
                           Double(upperBound(sortedSame, t)) / Double(max(1, same.count))))
        }
        points.append((1, 1))
        guard points.count > maxPoints else { return points }
        let step = Double(points.count - 1) / Double(maxPoints - 1)
        return (0..<maxPoints).map { points[Int((Double($0) * step).rounded())] }
    }

    /// First index whose value is >= `value` in an ascending array.
    static func lowerBound(_ sorted: [Float], _ value: Float) -> Int {
        var low = 0, high = sorted.count
        while low < high {
            let mid = (low + high) / 2
            if sorted[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// First index whose value is > `value` in an ascending array.
    static func upperBound(_ sorted: [Float], _ value: Float) -> Int {
        var low = 0, high = sorted.count
        while low < high {
            let mid = (low + high) / 2
            if sorted[mid] <= value { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
