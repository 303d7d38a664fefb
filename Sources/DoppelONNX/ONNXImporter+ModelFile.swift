// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelModel
import DoppelNN
import Foundation

extension ONNXImporter {
    /// An ONNX file as a Doppel model file: the network built and loaded, the Siamese head
    /// when the graph ends in one (deciding by its own p(same) >= 0.5 unless `threshold` is
    /// given), the origin recorded. Also returns what the import found, for reporting.
    public static func modelFile(path: String, spec: InputSpec, metric: Metric, threshold: Float?) throws -> (ModelFile, ImportedModel) {
        let shape = TensorShape(channels: spec.channels, height: spec.height, width: spec.width)
        let imported = try importModel(path: path, input: shape)
        let network = try Network(architecture: imported.architecture, input: shape, seed: 0)
        try network.load(tensors: imported.tensors)
        var head: SiameseHead? = nil
        if let siamese = imported.head {
            do { head = try siamese.siameseHead(dimension: network.outputShape.count) } catch {
                throw ONNXImportError.graph(detail: "the Siamese head: \(error)")
            }
        }
        let origin = [
            "file": (path as NSString).lastPathComponent, "producer": imported.producer, "opset": String(imported.opset),
            "sha256": SHA256.hex([UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))),
        ]
        let rule = threshold.map { ($0, "given at import (--threshold)") }
            ?? (head != nil ? (Float(0.5), "the imported Siamese head's own rule, p(same) >= 0.5") : nil)
        return (try ModelFile.imported(network: network, head: head, spec: spec, metric: metric, threshold: rule, origin: origin), imported)
    }
}
