// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelModel
import DoppelNN
import Foundation

extension TrainingRecipe {
    /// Changes to a preset's recipe, each nil or empty when not asked for: what `doppel train`'s
    /// flags say, merged into the recipe by `applied(to:)` with every rule about how one
    /// setting bears on another (a cosine schedule follows the step count, a new input size
    /// keeps the preset's resize and averaging, a model to start from brings its own
    /// architecture, input and metric).
    public struct Overrides: Sendable {
        public var architecture: String?
        /// `CxHxW`.
        public var input: String?
        public var resize: String?
        public var pad: Int?
        public var resampling: String?
        public var loss: Loss?
        public var margin: Float?
        public var mining: TripletLoss.Mining?
        public var temperature: Float?
        public var metric: Metric?
        public var iterations: Int?
        public var batch: Int?
        public var perIdentity: Int?
        public var learningRate: Float?
        public var weightDecay: Float?
        public var seed: UInt64?
        public var targetFalseAcceptRate: Double?
        public var holdOut: [String] = []
        public var validateOn: [String] = []
        public var closedSet = false
        public var validationFraction: Double?
        public var augment: Bool?
        /// `rotation=10,shift=0.1,...` (implies augmentation).
        public var augmentation: String?
        public var rotatedIdentities: Bool?
        public var mirroredIdentities: Bool?
        public var familyBatches: Bool?
        public var mirrorAverage: Bool?
        public var shiftAverage: Int?
        public var keepLastWeights: Bool?
        public var whitening: Float?
        public var trainLast: Int?
        public var head: String?

        public init() {}
    }

    /// A flag that cannot apply, with what to change (the command line's words).
    public struct OverrideError: Error, Equatable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// This recipe with `overrides` merged in, starting from `initial`'s weights when given;
    /// throws when flags contradict each other or the recipe, or the result is not a recipe
    /// that can train.
    public func applying(_ overrides: Overrides, initial: ModelFile? = nil) throws -> TrainingRecipe {
        var recipe = self
        let o = overrides
        if let initial {
            guard o.architecture == nil, o.input == nil else { throw OverrideError("--init keeps the model's architecture and input: drop --arch and --input") }
            recipe.architecture = initial.network.architecture.description
            recipe.input = try initial.inputSpec()
            recipe.metric = initial.metadata.metric
            recipe.initialModel = initial.metadata.modelID
            // A whitening fitted on the preset's data is not the imported model's: asked for
            // explicitly (--whitening) or not at all, so fine-tuning never stacks one on another.
            recipe.whitening = nil
        }
        if let trainLast = o.trainLast { recipe.trainLast = trainLast }
        if let head = o.head { recipe.head = head }
        if let architecture = o.architecture { recipe.architecture = architecture }
        if let input = o.input {
            let dims = input.split(separator: "x").compactMap { Int($0) }
            guard dims.count == 3 else { throw OverrideError("--input must be CxHxW, e.g. 1x28x28") }
            var spec = InputSpec(channels: dims[0], height: dims[1], width: dims[2], resize: recipe.input.resize, invert: recipe.input.invert)
            spec.mirrorAverage = recipe.input.mirrorAverage
            spec.shiftAverage = recipe.input.shiftAverage
            spec.pad = recipe.input.pad
            spec.resampling = recipe.input.resampling
            recipe.input = spec
        }
        if let resize = o.resize {
            guard let mode = InputSpec.ResizeMode(rawValue: resize) else { throw OverrideError("--resize must be stretch, fit or crop") }
            recipe.input.resize = mode
        }
        if let pad = o.pad {
            guard recipe.input.resize == .fit else { throw OverrideError("--pad sets the letterbox of --resize fit") }
            recipe.input.pad = pad
        }
        if let resampling = o.resampling {
            guard let filter = InputSpec.Resampling(rawValue: resampling) else { throw OverrideError("--resampling must be area or bicubic") }
            recipe.input.resampling = filter == .bicubic ? .bicubic : nil
        }
        if let loss = o.loss { recipe.loss = loss }
        if let margin = o.margin { recipe.margin = margin }
        if let mining = o.mining {
            guard recipe.loss == .triplet else { throw OverrideError("--mining chooses triplets: it needs --loss triplet") }
            recipe.mining = mining
        }
        if let temperature = o.temperature { recipe.temperature = temperature }
        if let metric = o.metric { recipe.metric = metric }
        if let iterations = o.iterations {
            // A cosine schedule spans the run: stretched or shrunk with it.
            if case .cosine(let total, let minimum) = recipe.optimizer.schedule, total == recipe.iterations {
                recipe.optimizer.schedule = .cosine(total: iterations, minimum: minimum)
            }
            recipe.iterations = iterations
        }
        if let batch = o.batch { recipe.batch = batch }
        if let perIdentity = o.perIdentity { recipe.perIdentity = perIdentity }
        if let learningRate = o.learningRate { recipe.optimizer.learningRate = learningRate }
        if let weightDecay = o.weightDecay { recipe.optimizer.weightDecay = weightDecay }
        if let seed = o.seed { recipe.seed = seed }
        if let far = o.targetFalseAcceptRate {
            guard far > 0, far < 1 else { throw OverrideError("--target-far must be between 0 and 1") }
            recipe.threshold = .falseAcceptRate(far)
        }
        if !o.holdOut.isEmpty { recipe.holdOut = o.holdOut }
        if o.closedSet { recipe.closedSet = true }
        if !o.validateOn.isEmpty { recipe.validateOn = o.validateOn }
        if recipe.closedSet == true && !recipe.holdOut.isEmpty {
            throw OverrideError("--closed-set holds out images, not identities: drop --hold-out")
        }
        if recipe.closedSet == true && !(recipe.validateOn ?? []).isEmpty {
            throw OverrideError("--closed-set validates on images of every identity: drop --validate-on")
        }
        if o.validationFraction != nil && !o.validateOn.isEmpty {
            throw OverrideError("--validate-on names the validation identities: drop --validation-fraction")
        }
        if let fraction = o.validationFraction {
            guard fraction > 0, fraction < 1 else { throw OverrideError("--validation-fraction must be between 0 and 1") }
            recipe.validationFraction = fraction
        }
        if let augment = o.augment { recipe.augmentation = augment ? (recipe.augmentation ?? Augmentation()) : nil }
        if let augmentation = o.augmentation {
            do { recipe.augmentation = try Augmentation(parsing: augmentation) } catch { throw OverrideError("--augmentation: \(error)") }
        }
        if let rotated = o.rotatedIdentities { recipe.rotatedIdentities = rotated }
        if let mirrored = o.mirroredIdentities { recipe.mirroredIdentities = mirrored }
        if let family = o.familyBatches { recipe.familyBatches = family }
        if let mirrorAverage = o.mirrorAverage { recipe.input.mirrorAverage = mirrorAverage ? true : nil }
        if let shiftAverage = o.shiftAverage { recipe.input.shiftAverage = shiftAverage > 0 ? shiftAverage : nil }
        if let keepLast = o.keepLastWeights { recipe.keepLastWeights = keepLast }
        if let whitening = o.whitening { recipe.whitening = whitening == 0 ? nil : whitening }
        if let problem = recipe.validationError() { throw OverrideError(problem) }
        return recipe
    }
}
