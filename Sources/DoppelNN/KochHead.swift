// SPDX-License-Identifier: MIT
import Foundation

/// The learned-distance head of Koch, Zemel, Salakhutdinov (2015): h = |e1 - e2|,
/// z = w . h + b, p = sigmoid(z) = probability of the same identity, trained with binary
/// cross-entropy (label 1 = same, `PairLabel`). Imported Siamese models may use h = (e1 - e2)^2.
/// L = 1/N sum_i [ max(z_i, 0) - z_i y_i + log(1 + exp(-|z_i|)) ]   (BCE on logits, stable)
/// dL/dz_i = (p_i - y_i) / N;  dw += dz h;  db += dz;  de1 = dz w dh/de1 (sign(e1 - e2), or
/// 2 (e1 - e2));  de2 = -de1
public final class KochHead {
    /// How two embeddings become the head's input.
    public enum Distance: String, Sendable, Codable, CaseIterable {
        /// |e1 - e2| (Koch et al.)
        case l1
        /// (e1 - e2)^2
        case squared
    }

    public let dimension: Int
    public let distance: Distance
    /// `[w (dimension), b]`
    public var parameters: [Float]
    public var gradients: [Float]

    public init(dimension: Int, seed: UInt64, distance: Distance = .l1) {
        self.dimension = dimension
        self.distance = distance
        var generator = SeededGenerator(seed: seed ^ 0x4B6F_6368)
        // Small negative weights and a positive bias: from the first step, equal embeddings
        // mean "same" and a growing |e1 - e2| lowers the probability.
        parameters = (0..<dimension).map { _ in -abs(generator.nextGaussian()) * 0.1 } + [1]
        gradients = Array(repeating: 0, count: dimension + 1)
    }

    /// The logit z for one pair.
    public func logit(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) -> Float {
        var z = parameters[dimension]
        switch distance {
        case .l1: for i in 0..<dimension { z += parameters[i] * abs(a[i] - b[i]) }
        case .squared: for i in 0..<dimension { z += parameters[i] * (a[i] - b[i]) * (a[i] - b[i]) }
        }
        return z
    }

    /// Probability that a and b are the same identity.
    public func probability(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) -> Float { 1 / (1 + expf(-logit(a, b))) }

    /// `embeddings`: `[2N, D]`, left then right. Accumulates into `gradients` (+=) and writes
    /// dL/dembeddings into `gradient`.
    public func lossAndGradient(embeddings: UnsafePointer<Float>, pairs: Int, labels: [Float],
                                gradient: UnsafeMutablePointer<Float>) -> Float {
        gradient.update(repeating: 0, count: 2 * pairs * dimension)
        var total: Double = 0
        for i in 0..<pairs {
            let a = embeddings + i * dimension, b = embeddings + (pairs + i) * dimension
            let z = logit(a, b), y = labels[i]
            total += Double(max(z, 0) - z * y + log1pf(expf(-abs(z))))
            let dz = (1 / (1 + expf(-z)) - y) / Float(pairs)
            let dA = gradient + i * dimension, dB = gradient + (pairs + i) * dimension
            for k in 0..<dimension {
                let difference = a[k] - b[k]
                let g: Float
                switch distance {
                case .l1:
                    gradients[k] += dz * abs(difference)
                    g = difference > 0 ? dz * parameters[k] : (difference < 0 ? -dz * parameters[k] : 0)
                case .squared:
                    gradients[k] += dz * difference * difference
                    g = 2 * dz * parameters[k] * difference
                }
                dA[k] += g
                dB[k] -= g
            }
            gradients[dimension] += dz
        }
        return Float(total / Double(pairs))
    }
}
