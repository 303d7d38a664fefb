// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelNN
import Foundation

extension ModelFile {
    /// A model file for a network imported from another format (ONNX, dlib): the one place an
    /// importer's network becomes a Doppel model, so every import records its origin, its
    /// input spec and how its threshold was chosen the same way.
    /// - `threshold`: a distance given by the user, or (for a Siamese head) the head's own rule,
    ///   with the words saying which; nil leaves the model to `doppel calibrate`.
    /// - `origin`: what the file was (name, producer, digest), kept as JSON.
    public static func imported(network: Network, head: SiameseHead?, spec: InputSpec, metric: Metric,
                                threshold: (value: Float, method: String)?, origin: [String: String],
                                attachments: [(name: String, tensor: SafeTensors.Tensor)] = []) throws -> ModelFile {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let shape = TensorShape(channels: spec.channels, height: spec.height, width: spec.width)
        var metadata = ModelMetadata(architecture: network.architecture, inputShape: shape, objective: head == nil ? "imported" : "koch",
                                     metric: metric, inputSpec: String(decoding: try encoder.encode(spec), as: UTF8.self))
        metadata.origin = String(decoding: try encoder.encode(origin), as: UTF8.self)
        if let threshold {
            metadata.threshold = threshold.value
            metadata.thresholdMethod = threshold.method
        }
        return ModelFile(network: network, head: head, metadata: metadata, attachments: attachments)
    }
}
