// SPDX-License-Identifier: MIT
import DoppelModel
import Foundation
import Testing
@testable import DoppelTraining

@Suite struct VerificationMetricsTests {
    // Hand-computed case: same {0.1, 0.4, 0.35}, different {0.3, 0.8, 0.9, 0.45}.
    // Same-below-different comparisons: 0.1 beats all 4; 0.4 beats 0.8, 0.9, 0.45 (3); 0.35 beats 3.
    static let same: [Float] = [0.1, 0.4, 0.35]
    static let different: [Float] = [0.3, 0.8, 0.9, 0.45]

    @Test func rocAUCByHand() {
        #expect(abs(VerificationMetrics.rocAUC(same: Self.same, different: Self.different) - 10.0 / 12.0) < 1e-12)
        // Ties count half.
        #expect(VerificationMetrics.rocAUC(same: [0.5], different: [0.5]) == 0.5)
        #expect(VerificationMetrics.rocAUC(same: [0.1, 0.2], different: [0.3, 0.4]) == 1)
    }

    @Test func equalErrorRateByHand() {
        // At t = 0.3: FAR 1/4, FRR 2/3; at t = 0.4: FAR 1/4, FRR 0 ... the closest is t = 0.35:
        // FAR 1/4 (0.3 accepted), FRR 1/3 (0.4 rejected): gap 1/12, the smallest; EER = 7/24.
        let (rate, threshold) = VerificationMetrics.equalErrorRate(same: Self.same, different: Self.different)
        #expect(threshold == 0.35)
        #expect(abs(rate - 7.0 / 24.0) < 1e-12)
    }

    @Test func thresholdForAFalseAcceptRate() {
        let different = (1...100).map { Float($0) / 100 }
        let t = VerificationMetrics.threshold(forFalseAcceptRate: 0.05, different: different)
        #expect(VerificationMetrics.falseAcceptRate(different: different, atThreshold: t) == 0.05)
        #expect(t < 0.06 && t >= 0.05)
        // Ties at the cut are all rejected rather than overshooting the target.
        let tied: [Float] = [0.1, 0.2, 0.2, 0.2, 0.9]
        #expect(VerificationMetrics.falseAcceptRate(different: tied, atThreshold: VerificationMetrics.threshold(forFalseAcceptRate: 0.4, different: tied)) == 0.2)
        #expect(VerificationMetrics.threshold(forFalseAcceptRate: 0.001, different: tied) < 0.1)
    }

    @Test func summaryAndAccuracy() {
        let metrics = VerificationMetrics(same: Self.same, different: Self.different)
        #expect(metrics.samePairs == 3 && metrics.differentPairs == 4)
        // Below the nearest different pair (0.3) only 0.1 is accepted: TAR 1/3 at FAR 0.
        #expect(abs(metrics.tarAtFAR1e2 - 1.0 / 3.0) < 1e-12)
        #expect(VerificationMetrics.accuracy(same: Self.same, different: Self.different, threshold: 0.35) == 5.0 / 7.0)
        let curve = VerificationMetrics.rocCurve(same: Self.same, different: Self.different)
        #expect(curve.first! == (0, 0) && curve.last! == (1, 1))
    }

    @Test func logisticCalibrationRecoversAKnownCurve() {
        // Distances drawn so that P(same | d) = sigmoid(4 - 8 d) exactly, with equal class weights.
        var same = [Float](), different = [Float]()
        for i in 0..<400 {
            let d = Double(i) / 400
            let p = 1 / (1 + exp(-(4 - 8 * d)))
            // Weights proportional to p and 1 - p, expressed by repetition.
            for _ in 0..<Int((p * 20).rounded()) { same.append(Float(d)) }
            for _ in 0..<Int(((1 - p) * 20).rounded()) { different.append(Float(d)) }
        }
        let fit = SimilarityCalibration.fit(same: same, different: different)
        // Class balancing shifts the intercept by log(n_different / n_same) ~ 0 here.
        #expect(abs(fit.slope - -8) < 0.5, "slope \(fit.slope)")
        #expect(abs(fit.intercept - 4) < 0.4, "intercept \(fit.intercept)")
        #expect(fit.probability(distance: 0.5) > 0.4 && fit.probability(distance: 0.5) < 0.6)
    }

    /// The stored false-accept curve reads back the empirical rate at its points, interpolates
    /// between them, and is monotone.
    @Test func falseAcceptCurveMatchesTheEmpiricalRate() throws {
        let different = (0..<10_000).map { Float($0) / 10_000 }  // uniform on [0, 1): FAR(t) = t
        let curve = FalseAcceptPoint.curve(different: different)
        #expect(zip(curve, curve.dropFirst()).allSatisfy { $0.threshold < $1.threshold && $0.rate <= $1.rate })
        for point in curve {
            #expect(abs(point.rate - VerificationMetrics.falseAcceptRate(different: different, atThreshold: point.threshold)) < 1e-12)
        }
        for t: Float in [0.0003, 0.004, 0.05, 0.4, 0.85] {
            let estimate = try #require(FalseAcceptPoint.rate(at: t, on: curve))
            #expect(abs(estimate - Double(t)) < 0.0011, "FAR at \(t): \(estimate)")
        }
        #expect(FalseAcceptPoint.rate(at: -1, on: curve) == 0 && FalseAcceptPoint.rate(at: 2, on: curve) == 1)
        #expect(FalseAcceptPoint.rate(at: 0.5, on: []) == nil)
    }
}
