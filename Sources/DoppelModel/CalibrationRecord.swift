// SPDX-License-Identifier: MIT
import DoppelNN
import Foundation

/// The numbers a threshold and a similarity calibration came from.
public struct CalibrationRecord: Codable, Sendable, Equatable {
    public let policy: String
    public let threshold: Float
    public let identities: Int
    public let samePairs: Int
    public let differentPairs: Int
    public let falseAcceptRate: Double
    public let trueAcceptRate: Double
    public let similarity: SimilarityCalibration
    public let validation: VerificationMetrics
    /// False accept rate against threshold on the calibration pairs, so a server can say
    /// what any threshold it is asked to use costs (absent in models from before it existed).
    public var falseAcceptCurve: [FalseAcceptPoint]?

    /// The threshold by `policy` and the similarity calibration, fitted to distances of same-
    /// and different-identity pairs drawn from `identities` identities.
    public init(policy: ThresholdPolicy, identities: Int, same: [Float], different: [Float]) {
        let threshold = policy.threshold(same: same, different: different)
        self.policy = policy.description
        self.threshold = threshold
        self.identities = identities
        samePairs = same.count
        differentPairs = different.count
        falseAcceptRate = VerificationMetrics.falseAcceptRate(different: different, atThreshold: threshold)
        trueAcceptRate = VerificationMetrics.trueAcceptRate(same: same, atThreshold: threshold)
        similarity = SimilarityCalibration.fit(same: same, different: different)
        validation = VerificationMetrics(same: same, different: different)
        falseAcceptCurve = FalseAcceptPoint.curve(different: different)
    }
}
