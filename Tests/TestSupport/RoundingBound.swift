// SPDX-License-Identifier: MIT
// Bounds on float32 rounding that the tests compare with, each following from the
// computation it covers (its length, its magnitudes, its order), never from what one
// machine's BLAS printed. Higham, "Accuracy and Stability of Numerical Algorithms": a sum of
// n terms computed in any order is within gamma_n sum |term| of the exact sum, gamma_n =
// n u / (1 - n u), u = 2^-24 in float32 (3.1); errors of random sign grow like sqrt(n) u
// sum |term| instead (3.6), the estimate used for whole networks below.
import DoppelNN

public enum RoundingBound {
    /// Float32's unit roundoff.
    public static let unit = 0x1p-24

    /// gamma_n: the relative error bound of an n-term sum (or dot product) in any order.
    public static func gamma(_ n: Int) -> Double {
        let nu = Double(n) * unit
        return nu / (1 - nu)
    }

    /// |computed - exact| for a float32 sum or dot product of `terms` terms whose absolute
    /// values add up to `magnitude`, whatever the order or vector width (FMA only rounds less).
    public static func sum(terms: Int, magnitude: Double) -> Double { gamma(terms) * magnitude }

    /// |a - b| for two float32 evaluations of the same sum in different orders: each is within
    /// `sum(terms:magnitude:)` of the exact value.
    public static func reordered(terms: Int, magnitude: Double) -> Double { 2 * sum(terms: terms, magnitude: magnitude) }

    /// Two evaluations of a chain of layers that differ only in summation order (BLAS blocking,
    /// threads, vector widths, batch position, fusion), whose largest output is `scale`. A
    /// layer summing n products of random sign has sum |term| near sqrt(n) |output| and a
    /// rounding error near sqrt(n) u sum |term| (Higham 3.6), so about n u of the output's
    /// scale; layers carry earlier errors with gain about 1 at this scale (normalised
    /// networks), so each evaluation is within u scale sum_l n_l, the two within twice that,
    /// and a factor 4 stands for every extra sum a layer makes (a Winograd layer's input and
    /// output transforms, four terms each side of its products).
    public static func chain(sumLengths: [Int], scale: Double) -> Double {
        2 * unit * scale * Double(sumLengths.reduce(0, +))
    }

    /// `chain` for a network's forward pass (its `dotProductLengths`, Winograd layers x 4).
    public static func forward(_ network: Network, scale: Double) -> Double {
        chain(sumLengths: network.dotProductLengths.map { $0.winograd ? 4 * $0.length : $0.length }, scale: scale)
    }

    /// `chain` for a training step of `batch` samples: the forward pass, then the backward
    /// pass's and the batch statistics' sums (`backwardSumLengths`).
    public static func training(_ network: Network, batch: Int, scale: Double) -> Double {
        forward(network, scale: scale) + chain(sumLengths: network.backwardSumLengths(batch: batch), scale: scale)
    }
}

extension RoundingBound {
    /// A result of `count` float32 operations (each correctly rounded) on values no larger
    /// than `magnitude`: within count u magnitude of the exact value, for the short known-value
    /// computations (an optimizer step, a loss of a few terms, a pixel's scaling).
    public static func operations(_ count: Int, magnitude: Double) -> Double { Double(count) * unit * magnitude }
}

extension RoundingBound {
    /// How far two evaluations of a model file's embedding of the same image may be apart per
    /// value (`forward` at the embeddings' `scale`, 1 for unit-length ones), with `views`
    /// test-time views (mirror, moves) averaged: each view within it, their mean too, and the
    /// final normalisation's 2 d roundings.
    public static func embedding(model path: String, views: Int = 1, scale: Double = 1) throws -> Double {
        let network = try ModelFile.load(path: path).network
        return Double(views) * forward(network, scale: scale) + operations(2 * network.outputShape.count, magnitude: scale)
    }

    /// The same for the distance between two such embeddings of one image: at most sqrt(d)
    /// times the per-value bound (d the embedding's width).
    public static func distance(model path: String, views: Int = 1) throws -> Double {
        let width = try ModelFile.load(path: path).network.outputShape.count
        return Double(width).squareRoot() * (try embedding(model: path, views: views))
    }
}
