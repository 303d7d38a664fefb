// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelModel
import DoppelNN
import Foundation

/// The model being served: its file, its one embedding path, and its decision rule (the
/// calibrated threshold, distance -> probability of same identity, and what a threshold
/// costs in false accepts). Loading refuses a model that does not say how to decide.
public final class ServedModel: @unchecked Sendable {
    public let file: ModelFile
    public let id: String
    public let spec: InputSpec
    public let rule: DecisionRule
    /// How an image becomes the network's input: the image, or the chip of its largest face.
    public let input: ModelInput
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
        do {
            spec = try file.inputSpec()
            rule = try DecisionRule(file)
            input = try ModelInput(file)
        } catch {
            throw LoadError(description: "\(path): \(error)")
        }
        embedder = EmbeddingModel(network: file.network, head: file.head, metric: rule.metric, spec: spec)
    }

    /// Whether the model finds faces in photos before embedding them.
    public var findsFaces: Bool { input.faceStage != nil }
    public var metric: Metric { rule.metric }
    public var dimension: Int { rule.dimension }
    public var threshold: Float { rule.threshold }
    public var calibration: CalibrationRecord? { rule.calibration }
    var head: SiameseHead? { rule.head }
    var naturalMaxThreshold: Float { rule.naturalMaxThreshold }
    func distance(_ a: [Float], _ b: [Float]) -> Float { rule.distance(a, b) }
    func similarity(distance: Float) -> Double { rule.similarity(distance: distance) }
    func falseAcceptRate(at threshold: Float) -> Double? { rule.falseAcceptRate(at: threshold) }
}
