// SPDX-License-Identifier: MIT
import Foundation

/// distance -> probability of the same identity, P = sigmoid(a + b d), fitted by logistic
/// regression (Newton's method) on held-out pairs with the two classes weighted equally, so
/// the probability assumes even prior odds whatever the pair counts were.
public struct SimilarityCalibration: Codable, Sendable, Equatable {
    public var intercept: Double
    public var slope: Double

    public init(intercept: Double, slope: Double) {
        self.intercept = intercept
        self.slope = slope
    }

    public func probability(distance: Float) -> Double { 1 / (1 + exp(-(intercept + slope * Double(distance)))) }

    public static func fit(same: [Float], different: [Float], iterations: Int = 50) -> SimilarityCalibration {
        guard !same.isEmpty, !different.isEmpty else { return SimilarityCalibration(intercept: 0, slope: -1) }
        let samples = same.map { (Double($0), 1.0, 0.5 / Double(same.count)) } + different.map { (Double($0), 0.0, 0.5 / Double(different.count)) }
        var a = 0.0, b = 0.0
        for _ in 0..<iterations {
            // Gradient and Hessian of the weighted negative log-likelihood; a small ridge keeps
            // the step finite when the classes separate perfectly.
            var ga = 0.0, gb = 0.0, haa = 1e-6, hab = 0.0, hbb = 1e-6
            for (d, y, w) in samples {
                let p = 1 / (1 + exp(-(a + b * d)))
                ga += w * (p - y)
                gb += w * (p - y) * d
                let s = w * p * (1 - p)
                haa += s
                hab += s * d
                hbb += s * d * d
            }
            gb += 1e-6 * b
            let det = haa * hbb - hab * hab
            guard det.isFinite, abs(det) > 1e-18 else { break }
            let da = (hbb * ga - hab * gb) / det, db = (haa * gb - hab * ga) / det
            a -= da
            b -= db
            if abs(da) + abs(db) < 1e-10 { break }
        }
        return SimilarityCalibration(intercept: a, slope: b)
    }
}

/// How the decision threshold is chosen on held-out pairs.
public enum ThresholdPolicy: Codable, Sendable, Equatable, CustomStringConvertible {
    /// Where false accepts equal false rejects.
    case equalErrorRate
    /// The largest threshold whose false accept rate is at most the target.
    case falseAcceptRate(Double)

    public var description: String {
        switch self {
        case .equalErrorRate: "eer"
        case .falseAcceptRate(let target): "far=\(target)"
        }
    }

    public func threshold(same: [Float], different: [Float]) -> Float {
        switch self {
        case .equalErrorRate: VerificationMetrics.equalErrorRate(same: same, different: different).threshold
        case .falseAcceptRate(let target): VerificationMetrics.threshold(forFalseAcceptRate: target, different: different)
        }
    }
}

/// One point of the false-accept curve: at `threshold`, a fraction `rate` of different-identity
/// pairs is accepted.
public struct FalseAcceptPoint: Codable, Sendable, Equatable {
    public let threshold: Float
    public let rate: Double

    public init(threshold: Float, rate: Double) {
        self.threshold = threshold
        self.rate = rate
    }

    /// The curve at log-spaced rates from 1e-4 to 1 (the low end is where servers operate),
    /// thresholds increasing.
    public static func curve(different: [Float]) -> [FalseAcceptPoint] {
        let sorted = different.sorted()
        guard !sorted.isEmpty else { return [] }
        let rates = [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0]
        var points = [FalseAcceptPoint(threshold: sorted[0].nextDown, rate: 0)]
        for rate in rates {
            let accepted = Int((rate * Double(sorted.count)).rounded(.down))
            guard accepted > 0 else { continue }
            let threshold = sorted[accepted - 1]
            if let last = points.last, threshold <= last.threshold { continue }
            points.append(FalseAcceptPoint(threshold: threshold, rate: Double(sorted.filter { $0 <= threshold }.count) / Double(sorted.count)))
        }
        return points
    }

    /// The false accept rate at `threshold`, interpolated linearly between curve points (0
    /// below the first, 1 above the last); nil for an empty curve.
    public static func rate(at threshold: Float, on curve: [FalseAcceptPoint]) -> Double? {
        guard let first = curve.first, let last = curve.last else { return nil }
        if threshold <= first.threshold { return first.rate }
        if threshold >= last.threshold { return last.rate }
        let upper = curve.firstIndex { $0.threshold >= threshold }!
        let a = curve[upper - 1], b = curve[upper]
        let t = Double(threshold - a.threshold) / Double(b.threshold - a.threshold)
        return a.rate + t * (b.rate - a.rate)
    }
}
