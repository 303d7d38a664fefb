// SPDX-License-Identifier: MIT

/// Pair labels, the one place the convention is stated: **1 = same identity, 0 = different**
/// (Hadsell et al. 2006 use the opposite; every Doppel loss, sampler and metric uses this one).
public enum PairLabel {
    public static let same: Float = 1
    public static let different: Float = 0
}

/// Contrastive loss (Hadsell, Chopra, LeCun 2006) over pairs of embeddings:
/// L = 1/N sum_i [ y_i d_i^2 / 2 + (1 - y_i) max(0, m - d_i)^2 / 2 ],  d_i = distance(a_i, b_i)
/// dL/dd_i = (y_i d_i - (1 - y_i) max(0, m - d_i)) / N
public struct ContrastiveLoss: Sendable, Equatable {
    public var margin: Float
    public var metric: Metric

    public init(margin: Float = 1, metric: Metric = .euclidean) {
        self.margin = margin
        self.metric = metric
    }

    /// `embeddings` holds `[2N, D]`: the N left embeddings, then the N right ones (the output
    /// of one forward pass over both branches). Writes dL/dembeddings into `gradient`.
    public func lossAndGradient(embeddings: UnsafePointer<Float>, pairs: Int, dimension: Int, labels: [Float],
                                gradient: UnsafeMutablePointer<Float>) -> Float {
        precondition(labels.count == pairs)
        gradient.update(repeating: 0, count: 2 * pairs * dimension)
        var total: Double = 0
        let n = Float(pairs)
        for i in 0..<pairs {
            let a = embeddings + i * dimension, b = embeddings + (pairs + i) * dimension
            let y = labels[i]
            let d = metric.distance(a, b, dimension: dimension)
            let hinge = max(0, margin - d)
            total += Double(y * d * d / 2 + (1 - y) * hinge * hinge / 2)
            let dLdd = (y * d - (1 - y) * hinge) / n
            if dLdd != 0 {
                metric.accumulateGradient(a, b, dimension: dimension, scale: dLdd,
                                          dA: gradient + i * dimension, dB: gradient + (pairs + i) * dimension)
            }
        }
        return Float(total / Double(pairs))
    }
}
