// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelNN
import Foundation

/// A trained network with what it takes to compare two images: the input spec, the metric,
/// and the Koch head when the model has one (its distance is then 1 - P(same)).
public final class EmbeddingModel {
    public let network: Network
    public let head: KochHead?
    public let metric: Metric
    public let spec: InputSpec
    public var dimension: Int { network.outputShape.count }
    /// Embeddings per forward pass when embedding a whole dataset.
    static let batchSize = 256

    public init(network: Network, head: KochHead?, metric: Metric, spec: InputSpec) {
        self.network = network
        self.head = head
        self.metric = metric
        self.spec = spec
    }

    /// The model of a model file; its input spec is decoded from the metadata.
    public convenience init(_ file: ModelFile) throws {
        let spec = try JSONDecoder().decode(InputSpec.self, from: Data(file.metadata.inputSpec.utf8))
        self.init(network: file.network, head: file.head, metric: file.metadata.metric, spec: spec)
    }

    /// Embeddings of every sample, `[count, dimension]`.
    public func embed(_ data: TensorDataset) -> [Float] {
        embed(values: data.values, count: data.count)
    }

    public func embed(values: [Float], count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count * dimension)
        values.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { y in
                var start = 0
                while start < count {
                    let n = min(Self.batchSize, count - start)
                    let e = network.forward(x.baseAddress! + start * spec.elementCount, batch: n, mode: .inference)
                    (y.baseAddress! + start * dimension).update(from: e.baseAddress!, count: n * dimension)
                    start += n
                }
            }
        }
        return out
    }

    /// The distance between embeddings `i` and `j` of `embeddings` (lower = more alike).
    public func distance(_ embeddings: UnsafePointer<Float>, _ i: Int, _ j: Int) -> Float {
        let a = embeddings + i * dimension, b = embeddings + j * dimension
        if let head { return 1 - head.probability(a, b) }
        return metric.distance(a, b, dimension: dimension)
    }

    /// Distances of index pairs over one embedding matrix.
    public func distances(_ embeddings: [Float], pairs: [(Int, Int)]) -> [Float] {
        embeddings.withUnsafeBufferPointer { e in pairs.map { distance(e.baseAddress!, $0.0, $0.1) } }
    }
}
