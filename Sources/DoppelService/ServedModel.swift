// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelNN
import DoppelTraining
import Foundation

/// The model being served and what its metadata says about deciding: the calibrated
/// threshold, distance -> probability of same identity, and what a threshold costs in false
/// accepts. Loading refuses a model that does not say how to decide.
public final class ServedModel: @unchecked Sendable {
    public let file: ModelFile
    public let id: String
    public let spec: InputSpec
    public let metric: Metric
    public let dimension: Int
    public let threshold: Float
    public let calibration: CalibrationRecord?
    let head: KochHead?
    /// The model's one embedding path (test-time augmentation included); the batching
    /// embedder's thread is its only caller.
    let embedder: EmbeddingModel

    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    public convenience init(path: String) throws {
        let file: ModelFile
        guard FileManager.default.fileExists(atPath: path) else {
            throw LoadError(description: "no model file at \(path): name one with --model, DOPPEL_MODEL or \"model\" in the config "
                + "(doppel train makes one, doppel import converts an ONNX file, scripts/demo trains the demo's)")
        }
        do { file = try ModelFile.load(path: path) } catch {
            throw LoadError(description: "cannot load the model \(path): \(error)")
        }
        try self.init(file, path: path)
    }

    public init(_ file: ModelFile, path: String = "model") throws {
        self.file = file
        id = file.metadata.modelID
        metric = file.metadata.metric
        head = file.head
        dimension = file.network.outputShape.count
        do { spec = try JSONDecoder().decode(InputSpec.self, from: Data(file.metadata.inputSpec.utf8)) } catch {
            throw LoadError(description: "\(path): the input spec in its metadata is unreadable: \(error)")
        }
        guard let threshold = file.metadata.threshold, threshold.isFinite else {
            throw LoadError(description: "\(path) has no calibrated threshold in its metadata: run `doppel calibrate --model \(path) --data DIR` on labelled images of the population it will serve (one folder per identity), or import it again with --threshold")
        }
        self.threshold = threshold
        embedder = EmbeddingModel(network: file.network, head: file.head, metric: metric, spec: spec)
        calibration = file.metadata.calibration.flatMap { try? JSONDecoder().decode(CalibrationRecord.self, from: Data($0.utf8)) }
    }

    /// Whether embeddings are unit length (the architecture ends in l2norm), which bounds
    /// euclidean distances by 2.
    var normalizesEmbeddings: Bool { file.network.architecture.description.hasSuffix("l2norm") }

    /// The largest threshold a request may ask for: the metric's natural bound.
    var naturalMaxThreshold: Float {
        if head != nil { return 1 }
        switch metric {
        case .cosine: return 2
        case .euclidean: return normalizesEmbeddings ? 2 : max(threshold * 10, 1)
        }
    }

    /// Distance between two embeddings under the model's decision rule (Koch head: 1 - P(same)).
    func distance(_ a: [Float], _ b: [Float]) -> Float {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                if let head { return 1 - head.probability(pa.baseAddress!, pb.baseAddress!) }
                return metric.distance(pa.baseAddress!, pb.baseAddress!, dimension: dimension)
            }
        }
    }

    /// The calibrated probability that two images at `distance` show the same identity.
    func similarity(distance: Float) -> Double {
        if head != nil { return Double(1 - distance) }
        if let calibration { return calibration.similarity.probability(distance: distance) }
        return distance <= threshold ? 1 : 0
    }

    /// The estimated false accept rate of one comparison at `threshold`, from the calibration
    /// pairs; nil when the model does not carry the curve and the threshold is not its own.
    func falseAcceptRate(at threshold: Float) -> Double? {
        if let curve = calibration?.falseAcceptCurve, let rate = FalseAcceptPoint.rate(at: threshold, on: curve) { return rate }
        if threshold == self.threshold { return calibration?.falseAcceptRate }
        return nil
    }
}
