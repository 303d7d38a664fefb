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

    /// The mirrored batch when the spec averages each image with its mirror.
    private var augmented: [Float] = []

    public init(network: Network, head: KochHead?, metric: Metric, spec: InputSpec) {
        self.network = network
        self.head = head
        self.metric = metric
        self.spec = spec
    }

    /// Embeds `count` preprocessed images `x` into `y` (`[count, dimension]`): the one path
    /// every embedding takes (training's validation, eval, calibrate, embed, gallery import and
    /// reindex, serve), so test-time augmentation is the same everywhere. With
    /// `spec.mirrorAverage` each image and its mirror go through one forward pass of 2 x count
    /// and their embeddings are averaged (then put back on the unit sphere when the network
    /// ends in l2norm). Not thread-safe: one caller at a time, like the network.
    public func embed(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        guard spec.mirrorAverage == true else {
            y.update(from: network.forward(x, batch: count, mode: .inference).baseAddress!, count: count * dimension)
            return
        }
        let elements = spec.elementCount
        if augmented.count < 2 * count * elements { augmented = [Float](repeating: 0, count: 2 * count * elements) }
        augmented.withUnsafeMutableBufferPointer { buffer in
            let both = buffer.baseAddress!
            both.update(from: x, count: count * elements)
            spec.writeMirrored(x, count: count, into: both + count * elements)
            let e = network.forward(both, batch: 2 * count, mode: .inference).baseAddress!
            for i in 0..<(count * dimension) { y[i] = 0.5 * (e[i] + e[count * dimension + i]) }
        }
        if network.architecture.endsInL2Normalize {
            for n in 0..<count {
                let row = y + n * dimension
                var sum: Float = 0
                for i in 0..<dimension { sum += row[i] * row[i] }
                let scale = 1 / max(sum.squareRoot(), 1e-12)
                for i in 0..<dimension { row[i] *= scale }
            }
        }
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
                    embed(x.baseAddress! + start * spec.elementCount, count: n, into: y.baseAddress! + start * dimension)
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
