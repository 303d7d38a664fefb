// SPDX-License-Identifier: MIT
import Foundation
import Testing
import TestSupport
@testable import DoppelNN

/// Finite-difference checks of every loss and of the Koch head's own parameters.
@Suite struct LossGradientTests {
    static func randomEmbeddings(count: Int, dimension: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<(count * dimension)).map { _ in generator.nextGaussian() }
    }

    /// Checks `gradient` of `loss` with respect to every element of `values`.
    static func check(_ values: inout [Float], analytic: [Float], epsilon: Float = 1e-3, loss: ([Float]) -> Float) -> GradientCheck.Report {
        var report = GradientCheck.Report()
        for i in values.indices {
            let numeric = values.withUnsafeMutableBufferPointer { pointer in
                GradientCheck.derivative(pointer.baseAddress!, at: i, epsilon: epsilon) { Double(loss(Array(pointer))) }
            }
            report.compare(numeric: numeric, analytic: Double(analytic[i]), label: "[\(i)]")
        }
        return report
    }

    /// A labelled-batch loss as a function of the embeddings: (loss, gradient, count it reports).
    static func batchLoss(_ loss: @escaping (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> (Float, Int)) -> ([Float]) -> (Float, [Float], Int) {
        { embeddings in
            var gradient = [Float](repeating: 0, count: embeddings.count)
            let (value, counted) = embeddings.withUnsafeBufferPointer { e in gradient.withUnsafeMutableBufferPointer { loss(e.baseAddress!, $0.baseAddress!) } }
            return (value, gradient, counted)
        }
    }

    @Test(arguments: Metric.allCases, [Float(0.5), 3])
    func contrastive(metric: Metric, margin: Float) {
        let (pairs, dimension) = (6, 5)
        var embeddings = Self.randomEmbeddings(count: 2 * pairs, dimension: dimension, seed: 11)
        let labels: [Float] = [1, 0, 1, 0, 0, 1]
        let loss = ContrastiveLoss(margin: margin, metric: metric)
        func evaluate(_ e: [Float]) -> (Float, [Float]) {
            var gradient = [Float](repeating: 0, count: e.count)
            let value = e.withUnsafeBufferPointer { ep in gradient.withUnsafeMutableBufferPointer {
                loss.lossAndGradient(embeddings: ep.baseAddress!, pairs: pairs, dimension: dimension, labels: labels, gradient: $0.baseAddress!)
            } }
            return (value, gradient)
        }
        let (_, analytic) = evaluate(embeddings)
        let report = Self.check(&embeddings, analytic: analytic) { evaluate($0).0 }
        print("contrastive \(metric) margin \(margin): \(report)")
        #expect(report.maxRelativeError < GradientCheck.tolerance, "\(report)")
    }

    @Test func contrastiveKnownValue() {
        // One same pair at distance 3 (3-4-5 triangle minus ...) and one different pair at distance 0.5, margin 1.
        let embeddings: [Float] = [0, 0, 0, 0, 3, 0, 0.5, 0]
        var gradient = [Float](repeating: 0, count: 8)
        let value = ContrastiveLoss(margin: 1).lossAndGradient(embeddings: embeddings, pairs: 2, dimension: 2, labels: [1, 0], gradient: &gradient)
        // (9 / 2 + 0.25 / 2) / 2
        #expect(abs(value - 2.3125) <= Float(RoundingBound.operations(12, magnitude: 9)), "a dozen roundings of values up to 9")
    }

    @Test(arguments: TripletLoss.Mining.allCases, Metric.allCases)
    func triplet(mining: TripletLoss.Mining, metric: Metric) {
        let dimension = 4
        let identities = [0, 0, 1, 1, 1, 2, 2, 0]
        // Mining picks triplets by comparing distances, so the loss jumps where two candidates tie;
        // this seed keeps every distance comparison well away from a tie within epsilon.
        var embeddings = Self.randomEmbeddings(count: identities.count, dimension: dimension, seed: 6)
        let loss = TripletLoss(margin: metric == .cosine ? 0.3 : 1.0, metric: metric, mining: mining)
        let evaluate = Self.batchLoss { loss.lossAndGradient(embeddings: $0, count: identities.count, dimension: dimension, identities: identities, gradient: $1) }
        let (value, analytic, active) = evaluate(embeddings)
        #expect(active > 0 && value > 0, "the random batch must violate some margins for the check to mean anything")
        let report = Self.check(&embeddings, analytic: analytic) { evaluate($0).0 }
        print("triplet \(mining) \(metric): loss \(value), \(active) active; \(report)")
        #expect(report.maxRelativeError < GradientCheck.tolerance, "\(report)")
    }

    @Test func tripletKnownValue() {
        // Anchor 0 at origin, positive at distance 2, negatives at 1 and 5; margin 0.5.
        let embeddings: [Float] = [0, 2, 1, 5]
        var gradient = [Float](repeating: 0, count: 4)
        let hard = TripletLoss(margin: 0.5, mining: .batchHard)
        let (value, _) = hard.lossAndGradient(embeddings: embeddings, count: 4, dimension: 1, identities: [0, 0, 1, 2], gradient: &gradient)
        // Anchors 0 and 1 (identity 0) have triplets: a0: d(0,2)=2 - d(0,1)=1 + 0.5 = 1.5;
        // a1: d(2,0)=2 - d(2,1)=1 + 0.5 = 1.5; anchors 2 and 3 have no positive.
        #expect(abs(value - 1.5) <= Float(RoundingBound.operations(12, magnitude: 4)), "a dozen roundings of values up to 4")
    }

    @Test(arguments: Metric.allCases, [Float(0.1), 1])
    func supervisedContrastive(metric: Metric, temperature: Float) {
        let dimension = 4
        // Identity 3 has one row: it is only ever a negative.
        let identities = [0, 0, 1, 1, 1, 2, 2, 0, 3]
        // Unit rows, as the networks that use this loss end in l2norm: at t = 0.1 raw Gaussian
        // rows would put the logits in the hundreds and the loss beyond float differences.
        var embeddings = Self.randomEmbeddings(count: identities.count, dimension: dimension, seed: 6)
        for row in 0..<identities.count {
            let norm = (0..<dimension).reduce(Float(0)) { $0 + embeddings[row * dimension + $1] * embeddings[row * dimension + $1] }.squareRoot()
            for k in 0..<dimension { embeddings[row * dimension + k] /= norm }
        }
        let loss = SupervisedContrastiveLoss(temperature: temperature, metric: metric)
        let evaluate = Self.batchLoss { loss.lossAndGradient(embeddings: $0, count: identities.count, dimension: dimension, identities: identities, gradient: $1) }
        let (value, analytic, anchors) = evaluate(embeddings)
        #expect(anchors == 8 && value > 0)
        let report = Self.check(&embeddings, analytic: analytic) { evaluate($0).0 }
        print("supervised contrastive \(metric) t \(temperature): loss \(value); \(report)")
        #expect(report.maxRelativeError < GradientCheck.tolerance, "\(report)")
    }

    @Test func supervisedContrastiveKnownValue() {
        // 1-D, euclidean, t = 0.5, so s = -d^2. Rows 0 and 1 (identity 0) at 0 and 1, row 2
        // (identity 1) at 2. Anchor 0: s01 = -1, s02 = -4; anchor 1: s10 = -1, s12 = -1; anchor 2
        // has no positive. L = [-(-1 - log(e^-1 + e^-4)) - (-1 - log(e^-1 + e^-1))] / 2.
        let embeddings: [Float] = [0, 1, 2]
        var gradient = [Float](repeating: 0, count: 3)
        let (value, anchors) = SupervisedContrastiveLoss(temperature: 0.5).lossAndGradient(
            embeddings: embeddings, count: 3, dimension: 1, identities: [0, 0, 1], gradient: &gradient)
        let expected = ((1 + log(exp(-1.0) + exp(-4.0))) + (1 + log(2 * exp(-1.0)))) / 2
        #expect(anchors == 2)
        // Exponentials and logarithms of values up to 4 in Float: a few ulps each, a dozen operations.
        #expect(abs(Double(value) - expected) <= RoundingBound.operations(16, magnitude: 4))
    }

    /// Koch's one layer, Siamese-pytorch's two without activation, its Keras twin's with a
    /// ReLU between, and the squared distance: gradients to both embeddings and every parameter.
    @Test(arguments: [("1", SiameseHead.Distance.l1), ("3,1", .l1), ("6,relu,1", .l1), ("5,relu,3,relu,1", .squared)])
    func kochHeadInputsAndParameters(layers: String, distance: SiameseHead.Distance) throws {
        let (pairs, dimension) = (5, 4)
        var embeddings = Self.randomEmbeddings(count: 2 * pairs, dimension: dimension, seed: 9)
        let labels: [Float] = [1, 0, 0, 1, 1]
        let head = try SiameseHead(dimension: dimension, layers: SiameseHead.parseLayers(layers), seed: 2, distance: distance)
        if head.layers.count > 1 {
            // Weights large enough that the logits are not all near the last bias, and ReLUs
            // that both pass and block.
            var generator = SeededGenerator(seed: 17)
            head.parameters = head.parameters.map { _ in generator.nextGaussian() * 0.8 }
        }
        func evaluate(_ e: [Float]) -> (Float, [Float]) {
            var gradient = [Float](repeating: 0, count: e.count)
            let value = e.withUnsafeBufferPointer { ep in gradient.withUnsafeMutableBufferPointer {
                head.lossAndGradient(embeddings: ep.baseAddress!, pairs: pairs, labels: labels, gradient: $0.baseAddress!)
            } }
            return (value, gradient)
        }
        head.gradients = Array(repeating: 0, count: head.parameters.count)
        let (_, analytic) = evaluate(embeddings)
        let parameterGradient = head.gradients
        let inputs = Self.check(&embeddings, analytic: analytic) { evaluate($0).0 }
        var parameters = head.parameters
        let weights = Self.check(&parameters, analytic: parameterGradient) { values in
            head.parameters = values
            return evaluate(embeddings).0
        }
        print("head \(layers) on \(distance): inputs \(inputs); parameters \(weights)")
        #expect(inputs.maxRelativeError < GradientCheck.tolerance && weights.maxRelativeError < GradientCheck.tolerance)
    }
}
