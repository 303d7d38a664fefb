// SPDX-License-Identifier: MIT
import Testing
@testable import DoppelNN

/// Tiny networks trained on generated glyphs with each objective must tell apart glyph
/// classes they never saw, and the same seed must give the same weights.
@Suite struct SiameseTrainingTests {
    enum Kind: String, CaseIterable, Sendable { case contrastive, tripletSemiHard, tripletBatchHard, koch, supervisedContrastive }

    static let trainClasses = 0..<12
    static let heldOutClasses = 12..<18

    /// Trains and returns the held-out verification AUC and the final weights.
    static func train(_ kind: Kind, architecture: String, seed: UInt64, steps: Int = 250) throws -> (auc: Double, weights: [Float]) {
        let glyphs = Glyphs(classes: 18, seed: 99)
        let input = TensorShape(channels: 1, height: glyphs.side, width: glyphs.side)
        let network = try Network(architecture: Architecture(parsing: architecture), input: input, seed: seed)
        let objective: Objective = switch kind {
        case .contrastive: .contrastive(ContrastiveLoss(margin: 1))
        case .tripletSemiHard: .triplet(TripletLoss(margin: 0.5, mining: .semiHard))
        case .tripletBatchHard: .triplet(TripletLoss(margin: 0.5, mining: .batchHard))
        case .koch: .koch
        case .supervisedContrastive: .supervisedContrastive(SupervisedContrastiveLoss(temperature: 0.1))
        }
        let trainer = try SiameseTrainer(network: network, objective: objective, optimizer: .adam(learningRate: 2e-3), seed: seed)
        var generator = SeededGenerator(seed: seed &+ 1)
        let classes = Array(trainClasses)
        for _ in 0..<steps {
            if objective.usesPairs {
                let pairs = 32
                var left = [Float](), right = [Float](), labels = [Float]()
                for i in 0..<pairs {
                    let a = classes[Int(generator.next() % UInt64(classes.count))]
                    var b = a
                    if i % 2 == 1 { while b == a { b = classes[Int(generator.next() % UInt64(classes.count))] } }
                    left += glyphs.sample(a, using: &generator)
                    right += glyphs.sample(b, using: &generator)
                    labels.append(a == b ? PairLabel.same : PairLabel.different)
                }
                trainer.trainPairs(left + right, pairs: pairs, labels: labels)
            } else {
                var batch = [Float](), identities = [Int]()
                for _ in 0..<8 {
                    let label = classes[Int(generator.next() % UInt64(classes.count))]
                    for _ in 0..<4 {
                        batch += glyphs.sample(label, using: &generator)
                        identities.append(label)
                    }
                }
                trainer.trainBatch(batch, count: identities.count, identities: identities)
            }
        }

        // Held-out classes: 10 samples each, every same and different pair scored.
        var evaluation = SeededGenerator(seed: 12345)
        let held = Array(heldOutClasses)
        let samples = held.flatMap { label in (0..<10).map { _ in (label, glyphs.sample(label, using: &evaluation)) } }
        let embeddings = network.forward(samples.flatMap(\.1), batch: samples.count)
        let d = network.outputShape.count
        var same = [Float](), different = [Float]()
        embeddings.withUnsafeBufferPointer { e in
            for i in samples.indices {
                for j in (i + 1)..<samples.count {
                    let a = e.baseAddress! + i * d, b = e.baseAddress! + j * d
                    let score = trainer.head.map { $0.probability(a, b) } ?? -Metric.euclidean.distance(a, b, dimension: d)
                    if samples[i].0 == samples[j].0 { same.append(score) } else { different.append(score) }
                }
            }
        }
        return (rocAUC(same: same, different: different), Array(network.parameters))
    }

    static let mlp = "flatten dense(128) relu dense(16) l2norm"

    /// Glyphs shift by up to two pixels, so an untrained network scores about 0.57: the
    /// trained one must beat both chance (0.5) and that by a wide margin.
    @Test(arguments: Kind.allCases)
    func heldOutVerificationBeatsChance(kind: Kind) throws {
        let untrained = try Self.train(kind, architecture: Self.mlp, seed: 7, steps: 0).auc
        let (auc, _) = try Self.train(kind, architecture: Self.mlp, seed: 7, steps: 450)
        print("\(kind): held-out glyph verification ROC AUC \(auc), untrained \(untrained), chance 0.5")
        #expect(auc > 0.68, "AUC \(auc)")
        #expect(auc - untrained > 0.08, "AUC \(auc) against \(untrained) untrained")
    }

    @Test func convolutionalNetworkTrainsToo() throws {
        let architecture = "conv(8,3,pad=1) relu maxpool(2) conv(16,3,pad=1) relu maxpool(2) flatten dense(16) l2norm"
        let untrained = try Self.train(.contrastive, architecture: architecture, seed: 7, steps: 0).auc
        let (auc, _) = try Self.train(.contrastive, architecture: architecture, seed: 7, steps: 300)
        print("conv contrastive: held-out glyph verification ROC AUC \(auc), untrained \(untrained)")
        #expect(auc > 0.8 && auc - untrained > 0.1, "AUC \(auc) against \(untrained) untrained")
    }

    @Test func sameSeedSameWeightsOtherSeedOtherWeights() throws {
        let architecture = "conv(4,3,pad=1) relu maxpool(2) flatten dropout(0.2) dense(8) batchnorm"
        let a = try Self.train(.contrastive, architecture: architecture, seed: 5, steps: 20)
        let b = try Self.train(.contrastive, architecture: architecture, seed: 5, steps: 20)
        let c = try Self.train(.contrastive, architecture: architecture, seed: 6, steps: 20)
        #expect(a.weights == b.weights)
        #expect(a.weights != c.weights)
    }
}
