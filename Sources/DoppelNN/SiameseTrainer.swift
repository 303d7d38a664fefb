// SPDX-License-Identifier: MIT

/// What a Siamese network is trained to do.
public enum Objective: Sendable, Equatable {
    /// Pairs with a distance margin (Hadsell et al.).
    case contrastive(ContrastiveLoss)
    /// Labelled batches with mined triplets (FaceNet).
    case triplet(TripletLoss)
    /// Pairs through the learned L1 head with binary cross-entropy (Koch et al.).
    case koch
    /// Labelled batches, every row against every other through a softmax (Khosla et al.).
    case supervisedContrastive(SupervisedContrastiveLoss)

    public var usesPairs: Bool {
        switch self {
        case .contrastive, .koch: true
        case .triplet, .supervisedContrastive: false
        }
    }
}

/// One optimisation step of a shared-weight network: both branches of a pair are one
/// forward pass over the concatenated batch `[left; right]`, so the two branches share every
/// weight by construction and the GEMMs are twice as wide.
public final class SiameseTrainer {
    public let network: Network
    public let objective: Objective
    /// The Koch head, when the objective is `.koch`.
    public let head: SiameseHead?
    public let optimizer: Optimizer
    private let embeddingGradient = FloatBuffer()

    /// `headLayers` shape the learned head of the `.koch` objective (Koch's one layer unless said).
    public init(network: Network, objective: Objective, optimizer config: OptimizerConfig, seed: UInt64,
                headLayers: [SiameseHead.Layer] = [SiameseHead.Layer(outputs: 1, relu: false)]) throws(SiameseHeadError) {
        self.network = network
        self.objective = objective
        let dimension = network.outputShape.count
        head = objective == .koch ? try SiameseHead(dimension: dimension, layers: headLayers, seed: seed) : nil
        // Frozen layers (`Network.freeze`) are outside the optimizer's blocks: it keeps no moments
        // for them and weight decay never touches them.
        optimizer = Optimizer(config: config, parameterCount: network.trainableParameters.values.count + (head.map { $0.parameters.count } ?? 0))
    }

    /// Trains on `pairs` pairs: `inputs` is `[2 * pairs, inputShape]`, the left samples then
    /// the right ones; `labels[i]` is 1 when pair i is the same identity. Returns the loss.
    @discardableResult
    public func trainPairs(_ inputs: UnsafePointer<Float>, pairs: Int, labels: [Float]) -> Float {
        precondition(objective.usesPairs, "batch objectives train on labelled batches: use trainBatch")
        let dimension = network.outputShape.count
        network.zeroGradients()
        let embeddings = network.forward(inputs, batch: 2 * pairs, mode: .training)
        let dEmbeddings = embeddingGradient.reserve(2 * pairs * dimension)
        let loss: Float
        switch objective {
        case .contrastive(let contrastive):
            loss = contrastive.lossAndGradient(embeddings: embeddings.baseAddress!, pairs: pairs, dimension: dimension,
                                               labels: labels, gradient: dEmbeddings)
        case .koch:
            for i in head!.gradients.indices { head!.gradients[i] = 0 }
            loss = head!.lossAndGradient(embeddings: embeddings.baseAddress!, pairs: pairs, labels: labels, gradient: dEmbeddings)
        case .triplet, .supervisedContrastive:
            preconditionFailure("unreachable")
        }
        network.backward(inputs, dOutput: dEmbeddings, batch: 2 * pairs)
        update()
        return loss
    }

    /// Trains on a labelled batch with the triplet or supervised contrastive objective.
    /// Returns the loss.
    @discardableResult
    public func trainBatch(_ inputs: UnsafePointer<Float>, count: Int, identities: [Int]) -> Float {
        precondition(!objective.usesPairs, "pair objectives train on pairs: use trainPairs")
        let dimension = network.outputShape.count
        network.zeroGradients()
        let embeddings = network.forward(inputs, batch: count, mode: .training)
        let dEmbeddings = embeddingGradient.reserve(count * dimension)
        let loss: Float
        switch objective {
        case .triplet(let triplet):
            loss = triplet.lossAndGradient(embeddings: embeddings.baseAddress!, count: count, dimension: dimension,
                                           identities: identities, gradient: dEmbeddings).loss
        case .supervisedContrastive(let supervised):
            loss = supervised.lossAndGradient(embeddings: embeddings.baseAddress!, count: count, dimension: dimension,
                                              identities: identities, gradient: dEmbeddings).loss
        case .contrastive, .koch:
            preconditionFailure("unreachable")
        }
        network.backward(inputs, dOutput: dEmbeddings, batch: count)
        update()
        return loss
    }

    private func update() {
        var blocks = [network.trainableParameters]
        if let head {
            head.parameters.withUnsafeMutableBufferPointer { values in
                head.gradients.withUnsafeMutableBufferPointer { gradients in
                    blocks.append(ParameterBlock(values: values, gradients: gradients))
                    optimizer.update(blocks)
                }
            }
        } else {
            optimizer.update(blocks)
        }
    }
}
