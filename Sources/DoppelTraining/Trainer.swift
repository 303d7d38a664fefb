// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelModel
import DoppelNN
import Foundation

/// What a training run records over time (loss curve, validation), kept in the model file
/// and drawn by the report.
public struct TrainingHistory: Codable, Sendable, Equatable {
    public struct Validation: Codable, Sendable, Equatable {
        public let step: Int
        public let rocAUC: Double
        public let equalErrorRate: Double
    }

    /// Mean training loss over each block of `lossEvery` steps.
    public var lossEvery = 10
    public var losses: [Float] = []
    public var validations: [Validation] = []
    public var bestStep = 0
    public var seconds = 0.0

    public init() {}
}

/// Trains a Siamese embedder on the train identities of a split, validating on its
/// validation identities, and calibrates the threshold and similarity on them at the end.
public final class Trainer {
    public struct Progress: Sendable {
        public let step: Int
        public let iterations: Int
        public let loss: Float
        public let samplesPerSecond: Double
        public let elapsed: Double
        public let validation: TrainingHistory.Validation?
        public var eta: Double { step > 0 ? elapsed / Double(step) * Double(iterations - step) : 0 }
    }

    public let recipe: TrainingRecipe
    public let network: Network
    public let trainer: SiameseTrainer
    public internal(set) var history = TrainingHistory()
    public internal(set) var step = 0
    let train: TensorDataset
    let validation: TensorDataset
    /// What the initial model carries besides its network (a face stage's detector and
    /// landmarks), kept as it is in the trained model.
    let attachments: [(name: String, tensor: SafeTensors.Tensor)]
    /// Images the initial model's face stage found no face in, left out of training and validation.
    public var imagesWithoutFace: Int { train.withoutFace.count + validation.withoutFace.count }
    /// Identities trained on, copies made by the recipe included.
    public var trainingIdentities: Int { train.identityNames.count }
    /// A family index per training identity when the recipe asks for family batches.
    let trainFamilies: [Int]?
    var bestParameters: [String: [Float]] = [:]
    var bestHead: [Float] = []
    var bestAUC = -1.0

    /// A trainer for `recipe` on `split`, starting from `initial`'s weights (and Koch head,
    /// for the bce loss) when given: the recipe's architecture must be that model's.
    public init(recipe: TrainingRecipe, split: DatasetSplit, initial: ModelFile? = nil) throws {
        if let problem = recipe.validationError() { throw DatasetError.cannotSplit(detail: problem) }
        guard split.validation.identities.count >= 2 else {
            throw DatasetError.cannotSplit(detail: "validation needs at least 2 identities (has \(split.validation.identities.count)); raise the validation fraction")
        }
        self.recipe = recipe
        let input = TensorShape(channels: recipe.input.channels, height: recipe.input.height, width: recipe.input.width)
        network = try Network(architecture: Architecture(parsing: recipe.architecture), input: input, seed: recipe.seed)
        if let initial {
            guard initial.network.architecture == network.architecture, initial.network.inputShape == input else {
                throw DatasetError.cannotSplit(detail: "the initial model is \(initial.network.architecture) on \(initial.network.inputShape); the recipe trains \(network.architecture) on \(input)")
            }
            try network.load(tensors: Dictionary(uniqueKeysWithValues: initial.network.namedTensors().map { ($0.name, $0.values) }))
        }
        if recipe.whitening != nil {
            // The whitening is appended when training ends: check now that it can be.
            _ = try Network(architecture: Architecture(parsing: network.architecture.description + " dense(\(network.outputShape.count)) l2norm"), input: input, seed: 0)
        }
        if let trainLast = recipe.trainLast { network.freeze(allButTheLast: trainLast) }
        let headLayers = try recipe.head.map { try SiameseHead.parseLayers($0) } ?? [SiameseHead.Layer(outputs: 1, relu: false)]
        trainer = try SiameseTrainer(network: network, objective: recipe.objective, optimizer: recipe.optimizer, seed: recipe.seed,
                                     headLayers: headLayers)
        if let head = trainer.head, let initialHead = initial?.head, initialHead.dimension == head.dimension, initialHead.distance == head.distance,
           initialHead.layers == head.layers {
            head.parameters = initialHead.parameters
        }
        var trainSet = split.train
        if recipe.mirroredIdentities == true { trainSet = trainSet.addingMirroredIdentities() }
        if recipe.rotatedIdentities == true { trainSet = trainSet.addingRotatedIdentities() }
        // A face model trains on the chips its face stage cuts (the stage itself is not trained).
        let initialInput = try initial.map { try ModelInput($0) } ?? ModelInput(spec: recipe.input, faceStage: nil)
        guard initialInput.spec.face == recipe.input.face else {
            throw DatasetError.cannotSplit(detail: "the recipe's input has a face stage the initial model does not carry")
        }
        attachments = initial?.attachments ?? []
        train = TensorDataset(trainSet, input: ModelInput(spec: recipe.input, faceStage: initialInput.faceStage))
        trainFamilies = recipe.familyBatches == true ? Self.families(of: train.identityNames) : nil
        validation = TensorDataset(split.validation, input: ModelInput(spec: recipe.input, faceStage: initialInput.faceStage))
    }

    /// Family of each name: the part before its last `/` plus any `@turn` suffix
    /// ("Greek/character01@90" -> "Greek@90"); names without `/` are each their own family.
    static func families(of names: [String]) -> [Int] {
        var index = [String: Int]()
        return names.map { name in
            let turn = name.firstIndex(of: "@").map { String(name[$0...]) } ?? ""
            let family = name.lastIndex(of: "/").map { String(name[..<$0]) + turn } ?? name
            if let known = index[family] { return known }
            index[family] = index.count
            return index.count - 1
        }
    }

    /// The value a blank image preprocesses to, per channel (augmentation's fill).
    private var blank: [Float] {
        // Background is 0 before normalisation either way: black, or white inverted.
        (0..<recipe.input.channels).map { c in -recipe.input.mean[c] / recipe.input.std[c] }
    }

    var model: EmbeddingModel { EmbeddingModel(network: network, head: trainer.head, metric: recipe.metric, spec: recipe.input) }

    /// Runs from the current step to `recipe.iterations`, or until `shouldStop` says so
    /// (checked every step: Ctrl-C stops within one step with a usable model).
    public func run(checkpoint: String? = nil, progress: (Progress) -> Void = { _ in }, shouldStop: () -> Bool = { false }) throws {
        let started = DispatchTime.now().uptimeNanoseconds
        let secondsBefore = history.seconds
        var inputs = [Float]()
        var blockLoss: Float = 0, blockSteps = 0
        var samplesDone = 0
        while step < recipe.iterations && !shouldStop() {
            // Each step draws from its own generator, so a resumed run repeats the same batches.
            var generator = SeededGenerator(seed: recipe.seed &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15)
            let loss: Float
            switch recipe.loss {
            case .contrastive, .bce:
                let pairs = Samplers.balancedPairs(train.samplesByIdentity, count: recipe.batch, using: &generator)
                let rows = pairs.left + pairs.right
                loss = withBatch(rows, into: &inputs, using: &generator) { trainer.trainPairs($0, pairs: recipe.batch, labels: pairs.labels) }
                samplesDone += rows.count
            case .triplet, .supcon:
                let batch = Samplers.identityBatch(train.samplesByIdentity, identities: recipe.batch, perIdentity: recipe.perIdentity,
                                                   families: trainFamilies, using: &generator)
                loss = withBatch(batch.samples, into: &inputs, using: &generator) {
                    trainer.trainBatch($0, count: batch.samples.count, identities: batch.identities)
                }
                samplesDone += batch.samples.count
            }
            step += 1
            blockLoss += loss
            blockSteps += 1
            if blockSteps == history.lossEvery || step == recipe.iterations {
                history.losses.append(blockLoss / Float(blockSteps))
                (blockLoss, blockSteps) = (0, 0)
            }
            var validated: TrainingHistory.Validation? = nil
            if step % recipe.validationEvery == 0 || step == recipe.iterations {
                validated = validate()
                if let checkpoint { try saveCheckpoint(to: checkpoint) }
            }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            history.seconds = secondsBefore + elapsed
            progress(Progress(step: step, iterations: recipe.iterations, loss: history.losses.last ?? loss,
                              samplesPerSecond: Double(samplesDone) / max(elapsed, 1e-9), elapsed: elapsed, validation: validated))
        }
        if history.validations.last?.step != step {
            _ = validate()
            if let checkpoint { try saveCheckpoint(to: checkpoint) }
        }
    }

    /// Gathers `rows` into the reusable input buffer, augments them, and runs `body` on it.
    private func withBatch(_ rows: [Int], into inputs: inout [Float], using generator: inout SeededGenerator,
                           _ body: (UnsafePointer<Float>) -> Float) -> Float {
        let size = train.elementCount
        if inputs.count < rows.count * size { inputs = [Float](repeating: 0, count: rows.count * size) }
        return inputs.withUnsafeMutableBufferPointer { buffer in
            train.gather(rows, into: buffer.baseAddress!)
            if let augmentation = recipe.augmentation {
                augmentation.apply(buffer.baseAddress!, count: rows.count, shape: network.inputShape, blank: blank, using: &generator)
            }
            return body(buffer.baseAddress!)
        }
    }

    /// ROC AUC and EER on fixed validation pairs; keeps the best weights, the later ones on a
    /// tie: a small validation set saturates (AUC 1.0 from early on with 5 Omniglot
    /// characters), and then the end of the planned schedule is the one to keep, not the first
    /// step that reached the ceiling. A recipe that keeps the last weights keeps no copies.
    private func validate() -> TrainingHistory.Validation {
        let embeddings = model.embed(validation)
        let (same, different) = model.pairDistances(validation, embeddings: embeddings, count: recipe.validationPairs, seed: recipe.seed ^ 0x7661_6C69)
        let metrics = VerificationMetrics(same: same, different: different)
        let point = TrainingHistory.Validation(step: step, rocAUC: metrics.rocAUC, equalErrorRate: metrics.equalErrorRate)
        history.validations.append(point)
        if recipe.keepLastWeights != true && metrics.rocAUC >= bestAUC {
            bestAUC = metrics.rocAUC
            history.bestStep = step
            bestParameters = Dictionary(uniqueKeysWithValues: network.namedTensors().map { ($0.name, $0.values) })
            bestHead = trainer.head?.parameters ?? []
        }
        return point
    }

    /// Restores the best validated weights (unless the recipe keeps the last), calibrates on
    /// the validation identities with pairs other than the ones used for model selection, and
    /// returns the model file.
    public func finish(source: String) throws -> (model: ModelFile, calibration: CalibrationRecord) {
        if recipe.keepLastWeights == true {
            history.bestStep = step
        } else if !bestParameters.isEmpty {
            try network.load(tensors: bestParameters)
            if let head = trainer.head { head.parameters = bestHead }
        }
        var final = network
        if let strength = recipe.whitening {
            let trained = self.model
            let fitted = Whitening.fit(trained.embed(train), count: train.count, dimension: trained.dimension, strength: strength)
            final = try Whitening.appended(to: network, mean: fitted.mean, matrix: fitted.matrix, seed: recipe.seed)
        }
        // Calibrated as served: through the whitening when there is one.
        let served = EmbeddingModel(network: final, head: trainer.head, metric: recipe.metric, spec: recipe.input)
        let embeddings = served.embed(validation)
        let pairs = max(recipe.validationPairs, 4000)
        let (same, different) = served.pairDistances(validation, embeddings: embeddings, count: pairs, seed: recipe.seed ^ 0x6361_6C69)
        let record = CalibrationRecord(policy: recipe.threshold, identities: validation.identityNames.count, same: same, different: different)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func json<T: Encodable>(_ value: T) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) }
        var metadata = ModelMetadata(
            architecture: final.architecture, inputShape: final.inputShape, objective: recipe.objectiveName, metric: recipe.metric,
            inputSpec: try json(recipe.input), recipe: try json(TrainedRecipe(recipe: recipe, data: source)), metrics: try json(history))
        try metadata.record(record, population: recipe.closedSet == true ? "trained identities (their held-out validation images)" : "held-out validation identities")
        return (ModelFile(network: final, head: trainer.head, metadata: metadata, attachments: attachments), record)
    }
}

/// The recipe as stored in a model: with the data it ran on, so `doppel eval` can rebuild
/// the same identity split.
public struct TrainedRecipe: Codable, Sendable {
    public let recipe: TrainingRecipe
    public let data: String

    /// The recipe a model file records: nil for a model Doppel did not train (imported), an
    /// error when the record does not decode.
    public static func of(_ file: ModelFile) throws(ModelMetadataError) -> TrainedRecipe? {
        guard let text = file.metadata.recipe else { return nil }
        do { return try JSONDecoder().decode(TrainedRecipe.self, from: Data(text.utf8)) } catch {
            throw .unreadable(field: "recipe", detail: "\(error)")
        }
    }
}

extension TrainedRecipe {
    /// The part of the dataset the model trained on that training never saw: the held-out
    /// identities (validation and test; only test with `testOnly`), or with a closed-set recipe
    /// the held-out images of every identity; with its description in words, which says when
    /// validation identities among them chose the kept step (a figure on them is then slightly
    /// optimistic: the test identities alone give the figure to report).
    public func unseenPart(of dataset: Dataset, testOnly: Bool = false) throws -> (dataset: Dataset, description: String) {
        let split = try TrainingSplit.make(dataset, recipe: recipe)
        if recipe.closedSet == true {
            let heldOut = Set((testOnly ? split.test.samples : split.validation.samples + split.test.samples).map(\.origin))
            return (dataset.filteringSamples { heldOut.contains($0.origin) }, "trained identities, images not seen in training")
        }
        let unseen = Set(testOnly ? split.test.identities : split.validation.identities + split.test.identities)
        let part = dataset.subset(identities: dataset.identities.indices.filter { unseen.contains(dataset.identities[$0]) }, source: "not seen in training")
        var description = "\(testOnly ? "test identities" : "not seen in training") (\(unseen.sorted().joined(separator: ", ").prefix(200)))"
        if !testOnly, recipe.keepLastWeights != true, !split.validation.identities.isEmpty {
            description += "; the kept step was chosen by validating on \(split.validation.identities.count) of them"
        }
        return (part, description)
    }
}
