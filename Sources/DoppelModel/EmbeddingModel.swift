// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelNN
import Foundation

/// A trained network with what it takes to compare two images: the input spec, the metric,
/// and the Koch head when the model has one (its distance is then 1 - P(same)).
public final class EmbeddingModel {
    public let network: Network
    public let head: SiameseHead?
    public let metric: Metric
    public let spec: InputSpec
    public var dimension: Int { network.outputShape.count }
    /// Embeddings per forward pass when embedding a whole dataset.
    static let batchSize = 256

    /// The views of a batch going through one forward pass, and the batch mirrored, when the
    /// spec averages test-time views.
    private var augmented: [Float] = []
    private var mirrored: [Float] = []
    /// `spec.testViews`, worked out once.
    private let views: [(mirrored: Bool, dx: Int, dy: Int)]

    public init(network: Network, head: SiameseHead?, metric: Metric, spec: InputSpec) {
        self.network = network
        self.head = head
        self.metric = metric
        self.spec = spec
        views = spec.testViews
    }

    /// Embeds `count` preprocessed images `x` into `y` (`[count, dimension]`): the one path
    /// every embedding takes (training's validation, eval, calibrate, embed, gallery import and
    /// reindex, serve), so test-time augmentation is the same everywhere. With
    /// `spec.mirrorAverage` and `spec.shiftAverage` each image's views (`spec.testViews`) are
    /// embedded and averaged, then put back on the unit sphere when the network ends in
    /// l2norm. An image and its mirror go through one forward pass of 2 x count; more views
    /// one pass each, so the activations stay those of `count` images. Not thread-safe: one
    /// caller at a time, like the network.
    public func embed(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        guard views.count > 1 else {
            y.update(from: network.forward(x, batch: count, mode: .inference).baseAddress!, count: count * dimension)
            return
        }
        let elements = spec.elementCount, values = count * dimension
        let viewsPerPass = views.count == 2 ? 2 : 1
        if augmented.count < viewsPerPass * count * elements { augmented = [Float](repeating: 0, count: viewsPerPass * count * elements) }
        if spec.mirrorAverage == true && mirrored.count < count * elements { mirrored = [Float](repeating: 0, count: count * elements) }
        y.update(repeating: 0, count: values)
        augmented.withUnsafeMutableBufferPointer { batch in
            mirrored.withUnsafeMutableBufferPointer { flipped in
                if spec.mirrorAverage == true { spec.writeMirrored(x, count: count, into: flipped.baseAddress!) }
                for first in stride(from: 0, to: views.count, by: viewsPerPass) {
                    for slot in 0..<viewsPerPass {
                        let view = views[first + slot]
                        spec.writeShifted(view.mirrored ? UnsafePointer(flipped.baseAddress!) : x, count: count, dx: view.dx, dy: view.dy,
                                          into: batch.baseAddress! + slot * count * elements)
                    }
                    let e = network.forward(batch.baseAddress!, batch: viewsPerPass * count, mode: .inference).baseAddress!
                    for slot in 0..<viewsPerPass {
                        for i in 0..<values { y[i] += e[slot * values + i] }
                    }
                }
            }
        }
        let share = 1 / Float(views.count)
        for i in 0..<values { y[i] *= share }
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
    public convenience init(_ file: ModelFile) throws(ModelMetadataError) {
        self.init(network: file.network, head: file.head, metric: file.metadata.metric, spec: try file.inputSpec())
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

    /// Distances of index pairs over one embedding matrix; a head scores them in batches.
    public func distances(_ embeddings: [Float], pairs: [(Int, Int)]) -> [Float] {
        guard let head else { return embeddings.withUnsafeBufferPointer { e in pairs.map { distance(e.baseAddress!, $0.0, $0.1) } } }
        var out = [Float]()
        out.reserveCapacity(pairs.count)
        let chunk = 1024
        for start in stride(from: 0, to: pairs.count, by: chunk) {
            let part = pairs[start..<min(start + chunk, pairs.count)]
            let left = part.flatMap { embeddings[($0.0 * dimension)..<(($0.0 + 1) * dimension)] }
            let right = part.flatMap { embeddings[($0.1 * dimension)..<(($0.1 + 1) * dimension)] }
            out += head.probabilities(left, right, pairs: part.count).map { 1 - $0 }
        }
        return out
    }
}
