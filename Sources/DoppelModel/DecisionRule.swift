// SPDX-License-Identifier: MIT
import DoppelNN
import Foundation

/// How a model decides whether two embeddings show one identity: the distance (its metric,
/// or 1 - P(same) of its Siamese head), the calibrated threshold, and what the calibration
/// says a distance means (a probability of the same identity) and costs (false accepts).
public struct DecisionRule: @unchecked Sendable {
    public let metric: Metric
    /// The learned head, when the model has one; it is read only.
    public let head: SiameseHead?
    public let threshold: Float
    public let calibration: CalibrationRecord?
    public let dimension: Int
    /// Whether embeddings are unit length (the network ends in l2norm), which bounds
    /// euclidean distances by 2.
    public let normalizesEmbeddings: Bool

    /// The rule a model file states; a model without a threshold, or with a damaged
    /// calibration, cannot decide.
    public init(_ file: ModelFile) throws(ModelMetadataError) {
        guard let threshold = file.metadata.threshold, threshold.isFinite else { throw .noThreshold }
        self.threshold = threshold
        metric = file.metadata.metric
        head = file.head
        dimension = file.network.outputShape.count
        normalizesEmbeddings = file.network.architecture.endsInL2Normalize
        calibration = try file.calibrationRecord()
    }

    /// The largest threshold a request may ask for: the metric's natural bound.
    public var naturalMaxThreshold: Float {
        if head != nil { return 1 }
        switch metric {
        case .cosine: return 2
        case .euclidean: return normalizesEmbeddings ? 2 : max(threshold * 10, 1)
        }
    }

    /// Distance between two embeddings under the rule (Siamese head: 1 - P(same)).
    public func distance(_ a: [Float], _ b: [Float]) -> Float {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                if let head { return 1 - head.probability(pa.baseAddress!, pb.baseAddress!) }
                return metric.distance(pa.baseAddress!, pb.baseAddress!, dimension: dimension)
            }
        }
    }

    /// The calibrated probability that two images at `distance` show the same identity.
    public func similarity(distance: Float) -> Double {
        if head != nil { return Double(1 - distance) }
        if let calibration { return calibration.similarity.probability(distance: distance) }
        return distance <= threshold ? 1 : 0
    }

    /// The estimated false accept rate of one comparison at `threshold`, from the calibration
    /// pairs; nil when the model does not carry the curve and the threshold is not its own.
    public func falseAcceptRate(at threshold: Float) -> Double? {
        if let curve = calibration?.falseAcceptCurve, let rate = FalseAcceptPoint.rate(at: threshold, on: curve) { return rate }
        if threshold == self.threshold { return calibration?.falseAcceptRate }
        return nil
    }
}
