// SPDX-License-Identifier: MIT
import Foundation

/// A head that cannot be built as described, and why.
public struct SiameseHeadError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A learned Siamese head: the two towers' embeddings meet as h = |e1 - e2| (or (e1 - e2)^2),
/// which goes through dense layers (optionally ReLU between them), the last to one logit z;
/// p = sigmoid(z) is the probability of the same identity, trained with binary cross-entropy
/// (label 1 = same, `PairLabel`). One layer is Koch, Zemel, Salakhutdinov (2015); two (512,
/// then 1) is the head of Siamese-pytorch and its Keras twin.
///   L = 1/N sum_i [ max(z_i, 0) - z_i y_i + log(1 + exp(-|z_i|)) ]   (BCE on logits, stable)
///   dL/dz_i = (p_i - y_i) / N, then back through the layers (dW += dY^T X, dX = dY W, ReLU's
///   mask), and de1 = dh * dh/de1 (sign(e1 - e2), or 2 (e1 - e2)); de2 = -de1.
/// The layers of a batch of pairs run as matrix products.
public final class SiameseHead {
    /// How two embeddings become the head's input.
    public enum Distance: String, Sendable, Codable, CaseIterable {
        /// |e1 - e2| (Koch et al.)
        case l1
        /// (e1 - e2)^2
        case squared
    }

    /// One dense layer: its width, and whether a ReLU follows it (never after the last).
    public struct Layer: Sendable, Equatable {
        public var outputs: Int
        public var relu: Bool
        public init(outputs: Int, relu: Bool) {
            self.outputs = outputs
            self.relu = relu
        }
    }

    public let dimension: Int
    public let distance: Distance
    /// The layers in order; the last has one output and no ReLU.
    public let layers: [Layer]
    /// `[W0 ([outputs, inputs], row-major), b0, W1, b1, ...]`; for one layer `[w (dimension), b]`.
    public var parameters: [Float]
    public var gradients: [Float]

    /// Koch's head: one dense layer to the logit.
    public convenience init(dimension: Int, seed: UInt64, distance: Distance = .l1) {
        try! self.init(dimension: dimension, layers: [Layer(outputs: 1, relu: false)], seed: seed, distance: distance)
    }

    public init(dimension: Int, layers: [Layer], seed: UInt64, distance: Distance = .l1) throws(SiameseHeadError) {
        guard let last = layers.last, last.outputs == 1, !last.relu else {
            throw SiameseHeadError("a Siamese head's last layer maps to one logit, with no activation after it")
        }
        guard layers.allSatisfy({ $0.outputs >= 1 && $0.outputs <= 65_536 }), layers.count <= 8 else {
            throw SiameseHeadError("a Siamese head has 1 to 8 layers of 1 to 65536 outputs")
        }
        self.dimension = dimension
        self.distance = distance
        self.layers = layers
        var generator = SeededGenerator(seed: seed ^ 0x4B6F_6368)
        if layers.count == 1 {
            // Small negative weights and a positive bias: from the first step, equal embeddings
            // mean "same" and a growing |e1 - e2| lowers the probability.
            parameters = (0..<dimension).map { _ in -abs(generator.nextGaussian()) * 0.1 } + [1]
        } else {
            // He-initialised hidden layers, a small last layer and a positive last bias: equal
            // embeddings (h = 0) start at p = sigmoid(1).
            var values = [Float]()
            var inputs = dimension
            for (index, layer) in layers.enumerated() {
                let isLast = index == layers.count - 1
                let scale = isLast ? 0.01 : (2 / Float(inputs)).squareRoot()
                values += (0..<(layer.outputs * inputs)).map { _ in generator.nextGaussian() * scale }
                values += [Float](repeating: isLast ? 1 : 0, count: layer.outputs)
                inputs = layer.outputs
            }
            parameters = values
        }
        gradients = Array(repeating: 0, count: parameters.count)
    }

    /// The layers as `--head` writes them: widths, with `relu` after a layer that has one
    /// (`512,relu,1`; Koch's is `1`).
    public var layerDescription: String { Self.describe(layers) }

    public static func describe(_ layers: [Layer]) -> String {
        layers.map { $0.relu ? "\($0.outputs),relu" : "\($0.outputs)" }.joined(separator: ",")
    }

    /// `512,relu,1` -> the layers; the last must be 1.
    public static func parseLayers(_ text: String) throws(SiameseHeadError) -> [Layer] {
        var layers = [Layer]()
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if part == "relu" {
                guard let previous = layers.last, !previous.relu else { throw SiameseHeadError("'relu' must follow a layer width in the head '\(text)'") }
                layers[layers.count - 1].relu = true
            } else if let width = Int(part), width >= 1 {
                layers.append(Layer(outputs: width, relu: false))
            } else {
                throw SiameseHeadError("'\(part)' in the head '\(text)' is neither a layer width nor relu")
            }
        }
        guard let last = layers.last, last.outputs == 1, !last.relu else {
            throw SiameseHeadError("a Siamese head ends in one logit: '\(text)' should end with ,1")
        }
        return layers
    }

    /// Where layer `index`'s weights and bias start in `parameters`, and its input width.
    func offsets(_ index: Int) -> (weights: Int, bias: Int, inputs: Int) {
        var offset = 0, inputs = dimension
        for layer in layers.prefix(index) {
            offset += layer.outputs * inputs + layer.outputs
            inputs = layer.outputs
        }
        return (offset, offset + layers[index].outputs * inputs, inputs)
    }

    /// The head's input for `pairs` pairs: `[pairs, dimension]`.
    private func difference(_ embeddings: UnsafePointer<Float>, pairs: Int, right: UnsafePointer<Float>? = nil) -> [Float] {
        let b = right ?? embeddings + pairs * dimension
        var h = [Float](repeating: 0, count: pairs * dimension)
        for i in 0..<(pairs * dimension) {
            let d = embeddings[i] - b[i]
            h[i] = distance == .l1 ? abs(d) : d * d
        }
        return h
    }

    /// Every layer's output for a batch (`activations[0]` is the input h), after ReLUs.
    private func forward(_ h: [Float], pairs: Int) -> [[Float]] {
        var activations = [h]
        parameters.withUnsafeBufferPointer { p in
            for (index, layer) in layers.enumerated() {
                let (w, b, inputs) = offsets(index)
                var y = [Float](repeating: 0, count: pairs * layer.outputs)
                for i in 0..<pairs { for o in 0..<layer.outputs { y[i * layer.outputs + o] = p[b + o] } }
                activations[index].withUnsafeBufferPointer { x in
                    y.withUnsafeMutableBufferPointer { out in
                        BLAS.gemm(.none, .transposed, m: pairs, n: layer.outputs, k: inputs, a: x.baseAddress!, lda: inputs,
                                  b: p.baseAddress! + w, ldb: inputs, beta: 1, c: out.baseAddress!, ldc: layer.outputs)
                    }
                }
                if layer.relu { for i in y.indices where y[i] < 0 { y[i] = 0 } }
                activations.append(y)
            }
        }
        return activations
    }

    /// The logit z for one pair.
    public func logit(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) -> Float {
        forward(difference(a, pairs: 1, right: b), pairs: 1).last![0]
    }

    /// Probability that a and b are the same identity.
    public func probability(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) -> Float { 1 / (1 + expf(-logit(a, b))) }

    /// Probabilities of `pairs` pairs at once (`left` and `right` each `[pairs, dimension]`):
    /// the layers run as matrix products over the batch, which a deep head needs (one pair
    /// through a 4608 x 512 layer is a matrix-vector product, all memory traffic).
    public func probabilities(_ left: UnsafePointer<Float>, _ right: UnsafePointer<Float>, pairs: Int) -> [Float] {
        guard pairs > 0 else { return [] }
        return forward(difference(left, pairs: pairs, right: right), pairs: pairs).last!.map { 1 / (1 + expf(-$0)) }
    }

    /// `embeddings`: `[2N, D]`, left then right. Accumulates into `gradients` (+=) and writes
    /// dL/dembeddings into `gradient`.
    public func lossAndGradient(embeddings: UnsafePointer<Float>, pairs: Int, labels: [Float],
                                gradient: UnsafeMutablePointer<Float>) -> Float {
        let activations = forward(difference(embeddings, pairs: pairs), pairs: pairs)
        var total: Double = 0
        var dY = [Float](repeating: 0, count: pairs)
        for i in 0..<pairs {
            let z = activations.last![i], y = labels[i]
            total += Double(max(z, 0) - z * y + log1pf(expf(-abs(z))))
            dY[i] = (1 / (1 + expf(-z)) - y) / Float(pairs)
        }
        parameters.withUnsafeBufferPointer { p in
            gradients.withUnsafeMutableBufferPointer { g in
                for index in layers.indices.reversed() {
                    let layer = layers[index]
                    let (w, b, inputs) = offsets(index)
                    let x = activations[index]
                    // dW += dY^T X; db += column sums of dY.
                    BLAS.gemm(.transposed, .none, m: layer.outputs, n: inputs, k: pairs, a: dY, lda: layer.outputs,
                              b: x, ldb: inputs, beta: 1, c: g.baseAddress! + w, ldc: inputs)
                    for i in 0..<pairs { for o in 0..<layer.outputs { g[b + o] += dY[i * layer.outputs + o] } }
                    // dX = dY W, then the ReLU before this layer (x > 0 where it let through).
                    var dX = [Float](repeating: 0, count: pairs * inputs)
                    dX.withUnsafeMutableBufferPointer { out in
                        BLAS.gemm(.none, .none, m: pairs, n: inputs, k: layer.outputs, a: dY, lda: layer.outputs,
                                  b: p.baseAddress! + w, ldb: inputs, beta: 0, c: out.baseAddress!, ldc: inputs)
                    }
                    if index > 0, layers[index - 1].relu { for i in dX.indices where x[i] <= 0 { dX[i] = 0 } }
                    dY = dX
                }
            }
        }
        // dY is now dL/dh: through |a - b| or (a - b)^2 to both embeddings.
        let right = embeddings + pairs * dimension
        for i in 0..<(pairs * dimension) {
            let d = embeddings[i] - right[i]
            let g: Float = distance == .l1 ? (d > 0 ? dY[i] : (d < 0 ? -dY[i] : 0)) : 2 * dY[i] * d
            gradient[i] = g
            gradient[pairs * dimension + i] = -g
        }
        return Float(total / Double(pairs))
    }
}
