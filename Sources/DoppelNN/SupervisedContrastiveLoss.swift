// SPDX-License-Identifier: MIT
import Foundation

/// Supervised contrastive loss (Khosla et al. 2020; the multi-class N-pair loss of Sohn 2016
/// with several positives) over a batch of labelled embeddings. Every other row of the batch
/// is a candidate for each anchor at once, through a softmax over similarities:
///   L_a = -1/|P(a)| * sum_{p in P(a)} log( exp(s_ap) / sum_{j != a} exp(s_aj) )
/// with P(a) the other rows of a's identity and s = -d^2 / (2 t) for the euclidean metric,
/// -d / t for the cosine one — both (cos - 1) / t on l2-normalised embeddings, the paper's
/// cosine over a temperature t. Unlike a triplet, no mining: every negative pulls with the
/// weight the softmax gives it, so the hard ones count most without a hard threshold.
/// The loss is the mean over anchors that have a positive.
public struct SupervisedContrastiveLoss: Sendable, Equatable {
    public var temperature: Float
    public var metric: Metric

    public init(temperature: Float = 0.1, metric: Metric = .euclidean) {
        precondition(temperature > 0)
        self.temperature = temperature
        self.metric = metric
    }

    /// Similarity of two rows at distance `d`, and its derivative with respect to `d`.
    private func similarity(distance d: Float) -> (value: Float, derivative: Float) {
        switch metric {
        case .euclidean: (-d * d / (2 * temperature), -d / temperature)
        case .cosine: (-d / temperature, -1 / temperature)
        }
    }

    /// `embeddings`: `[N, D]`; `identities[i]`: the identity of row i. Writes dL/dembeddings
    /// into `gradient` and returns the loss and the number of anchors that had a positive.
    public func lossAndGradient(embeddings: UnsafePointer<Float>, count: Int, dimension: Int, identities: [Int],
                                gradient: UnsafeMutablePointer<Float>) -> (loss: Float, anchors: Int) {
        precondition(identities.count == count)
        gradient.update(repeating: 0, count: count * dimension)
        // Similarities and their derivatives by distance, for every ordered pair.
        let distances = metric.pairwiseDistances(embeddings, count: count, dimension: dimension)
        var similarity = distances, slope = distances
        for index in distances.indices { (similarity[index], slope[index]) = self.similarity(distance: distances[index]) }
        // dL/ds for each ordered pair (anchor a, row j): softmax_aj - [j in P(a)] / |P(a)|.
        var coefficient = [Float](repeating: 0, count: count * count)
        var total: Double = 0
        var anchors = 0
        for a in 0..<count {
            let positives = (0..<count).reduce(0) { $0 + ($1 != a && identities[$1] == identities[a] ? 1 : 0) }
            guard positives > 0 else { continue }
            anchors += 1
            // Log-sum-exp over j != a, shifted by the largest similarity for range.
            var largest = -Float.infinity
            for j in 0..<count where j != a { largest = max(largest, similarity[a * count + j]) }
            var sum: Double = 0
            for j in 0..<count where j != a { sum += Double(expf(similarity[a * count + j] - largest)) }
            let logSum = Double(largest) + log(sum)
            let share = 1 / Float(positives)
            for j in 0..<count where j != a {
                let s = similarity[a * count + j]
                var c = Float(exp(Double(s) - logSum))
                if identities[j] == identities[a] {
                    total -= Double(share) * (Double(s) - logSum)
                    c -= share
                }
                coefficient[a * count + j] = c
            }
        }
        guard anchors > 0 else { return (0, 0) }
        let scale = 1 / Float(anchors)
        for i in 0..<count {
            for j in 0..<count where coefficient[i * count + j] != 0 {
                metric.accumulateGradient(embeddings + i * dimension, embeddings + j * dimension, dimension: dimension,
                                          scale: coefficient[i * count + j] * slope[i * count + j] * scale,
                                          dA: gradient + i * dimension, dB: gradient + j * dimension)
            }
        }
        return (Float(total / Double(anchors)), anchors)
    }
}
