// SPDX-License-Identifier: MIT
import DoppelModel
import DoppelNN
import Foundation

/// What `doppel eval` measures and prints.
public struct EvaluationReport: Codable, Sendable {
    public struct AtThreshold: Codable, Sendable {
        public let threshold: Float
        public let accuracy: Double
        public let falseAcceptRate: Double
        public let trueAcceptRate: Double
        /// The false accept rate the threshold was calibrated for (on the calibration pairs),
        /// and the measured rate over it: how far the threshold can be trusted on new pairs.
        public var calibratedFalseAcceptRate: Double?
        public var falseAcceptRatio: Double?
    }

    public let model: String
    public let data: String
    /// Which identities were evaluated ("not seen in training", "all").
    public let identitySet: String
    public let identities: Int
    public let images: Int
    /// Images the model's face stage found no face in, left out of every figure (nil without
    /// a face stage).
    public var imagesWithoutFace: Int?
    public let verification: VerificationMetrics
    public let atModelThreshold: AtThreshold?
    public let identification: [IdentificationMetrics]
    public let oneShot: [OneShotMetrics]
    /// Queries from `data` against every image of `enrolled` (e.g. the test set against the training set).
    public var enrolledIdentification: IdentificationMetrics?
    public var enrolled: String?
}

public enum Evaluation {
    /// Verification on `pairs` seeded balanced pairs, identification with 1 and 5 enrolled
    /// images per identity (the mean over `draws` random choices of them), and N-way one-shot
    /// episodes (within groups when identity names have a `group/` prefix).
    /// `input` is the model's input path (its face stage); nil: the whole image by the spec.
    public static func run(model: EmbeddingModel, input: ModelInput? = nil, modelID: String, threshold: Float?, calibratedFalseAcceptRate: Double? = nil,
                           dataset: Dataset, identitySet: String,
                           pairs: Int = 10000, episodes: Int = 400, ways: [Int] = [5, 20], seed: UInt64 = 2024,
                           enrolled: [Int] = [1, 5], aggregations: [EnrollmentAggregation] = [.best], draws: Int = 1) -> EvaluationReport {
        let data = TensorDataset(dataset, input: input ?? ModelInput(spec: model.spec, faceStage: nil))
        let embeddings = model.embed(data)
        let (same, different) = model.pairDistances(data, embeddings: embeddings, count: pairs, seed: seed)
        let verification = VerificationMetrics(same: same, different: different)
        let atThreshold = threshold.map { t in
            let far = VerificationMetrics.falseAcceptRate(different: different, atThreshold: t)
            return EvaluationReport.AtThreshold(threshold: t, accuracy: VerificationMetrics.accuracy(same: same, different: different, threshold: t),
                                                falseAcceptRate: far, trueAcceptRate: VerificationMetrics.trueAcceptRate(same: same, atThreshold: t),
                                                calibratedFalseAcceptRate: calibratedFalseAcceptRate,
                                                falseAcceptRatio: calibratedFalseAcceptRate.flatMap { $0 > 0 ? far / $0 : nil })
        }
        // One image enrolled is the same under every aggregation: measured once.
        let identification = enrolled.flatMap { count in
            (count == 1 ? [EnrollmentAggregation.best] : aggregations).map {
                model.identification(data, embeddings: embeddings, perIdentity: count, seed: seed, aggregation: $0, draws: draws)
            }
        }.filter { $0.queries > 0 }
        let grouped = dataset.identities.allSatisfy { $0.contains("/") }
        let group: ((String) -> String)? = grouped ? { String($0.split(separator: "/").dropLast().joined(separator: "/")) } : nil
        var oneShot = [OneShotMetrics]()
        for n in ways {
            if let result = model.oneShot(data, embeddings: embeddings, ways: n, shots: 1, episodes: episodes, seed: seed &+ UInt64(n), group: group) {
                oneShot.append(result)
            }
            if grouped, let result = model.oneShot(data, embeddings: embeddings, ways: n, shots: 1, episodes: episodes, seed: seed &+ UInt64(n)) {
                oneShot.append(result)
            }
        }
        var report = EvaluationReport(model: modelID, data: dataset.source, identitySet: identitySet, identities: dataset.identities.count,
                                      images: data.count, verification: verification, atModelThreshold: atThreshold,
                                      identification: identification, oneShot: oneShot)
        if input?.faceStage != nil { report.imagesWithoutFace = data.withoutFace.count }
        return report
    }

    /// Rank-1/5 of every query image against the enrolled identities (matched by name), each
    /// scored from its enrolled images by `aggregation`.
    public static func enrolledIdentification(model: EmbeddingModel, input: ModelInput? = nil, queries: Dataset, enrolled: Dataset,
                                              aggregation: EnrollmentAggregation = .best) -> IdentificationMetrics {
        let input = input ?? ModelInput(spec: model.spec, faceStage: nil)
        var names = enrolled.identities
        var index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        for name in queries.identities where index[name] == nil {
            index[name] = names.count
            names.append(name)
        }
        let gallery = TensorDataset(enrolled, input: input), probe = TensorDataset(queries, input: input)
        let all = model.embed(values: gallery.values + probe.values, count: gallery.count + probe.count)
        let galleryIdentity = gallery.identities.map { index[enrolled.identities[$0]]! }
        let queryIdentity = Array(repeating: -1, count: gallery.count) + probe.identities.map { index[queries.identities[$0]]! }
        return model.identification(all, queries: Array(gallery.count..<(gallery.count + probe.count)), queryIdentity: queryIdentity,
                                    gallery: Array(0..<gallery.count), galleryIdentity: galleryIdentity, enrolledPerIdentity: 0,
                                    aggregation: aggregation)
    }
}
