// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelImaging
import DoppelNN
import DoppelTraining
import Foundation

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a Siamese embedder, validate on held-out identities, calibrate its threshold.",
        discussion: """
            Examples:
              doppel train --preset faces --data photos/ --out faces.safetensors
              doppel train --preset omniglot --data omniglot/ --hold-out Korean
              doppel train --data products/ --loss triplet \\
                  --arch "conv(32,3,pad=1) relu maxpool(2) flatten dense(64) l2norm"
              doppel train --preset faces --data photos/ --init arcface.safetensors \\
                  --train-last 2 --learning-rate 0.0001

            Presets:
            """ + "\n" + Preset.allCases.map { "  \($0.rawValue): \($0.summary)" }.joined(separator: "\n")
    )

    @Option(help: "Dataset: a folder of identity folders, an IDX or CSV file, or builtin:NAME (default: the preset's).")
    var data: String?

    @Option(help: "Recipe to start from: \(Preset.allCases.map(\.rawValue).joined(separator: ", ")).")
    var preset: String = Preset.fashion.rawValue

    @Option(help: "Architecture string (overrides the preset's).")
    var arch: String?

    @Option(help: "Input CxHxW (overrides the preset's).")
    var input: String?

    @Option(help: "contrastive, triplet, bce (the Koch head) or supcon (supervised contrastive: a softmax over the batch).")
    var loss: TrainingRecipe.Loss?

    @Option(help: "Loss margin.") var margin: Float?
    @Option(help: "Which triplets a triplet batch trains on: semi-hard (FaceNet), batch-hard or batch-all.") var mining: TripletLoss.Mining?
    @Option(help: "Softmax temperature of the supcon loss (default 0.1).") var temperature: Float?
    @Option(help: "euclidean or cosine.") var metric: Metric?
    @Option(help: "Training steps.") var iterations: Int?
    @Option(help: "Pairs per step (contrastive, bce) or identities per step (triplet, supcon).") var batch: Int?
    @Option(help: "Samples per identity in a triplet or supcon batch.") var perIdentity: Int?
    @Option(help: "Learning rate.") var learningRate: Float?
    @Option(help: "L2 weight decay added to every gradient (default: the preset's, 0 for all).") var weightDecay: Float?
    @Option(help: "Seed for initialisation, splits and sampling.") var seed: UInt64?
    @Option(help: "Calibrate the threshold for this false accept rate instead of the equal error rate.") var targetFar: Double?
    @Option(parsing: .upToNextOption, help: "Identity-name prefixes to hold out as the test set (e.g. alphabets).") var holdOut: [String] = []
    @Option(parsing: .upToNextOption, help: "Identity-name prefixes to validate on, instead of a seeded share of the identities: they choose the kept step and calibrate the threshold, and eval scores them with any held-out ones (e.g. --validate-on Sandal Shirt Sneaker).")
    var validateOn: [String] = []
    @Flag(help: "Closed set: validate, calibrate and test on held-out images of the training identities rather than on held-out identities, for a gallery of the identities the model trained on.")
    var closedSet = false
    @Option(help: "Share of the identities (of each identity's images with --closed-set) held out for validation.") var validationFraction: Double?
    @Flag(inversion: .prefixedNo, help: "Random affine augmentation (default: the preset's).") var augment: Bool?
    @Option(help: "Augmentation in detail: rotation=10,shift=0.1,scale=0.1,shear=10,flip=1,brightness=0.1,contrast=0.2,p=0.8 (any subset; implies --augment).")
    var augmentation: String?
    @Flag(inversion: .prefixedNo, help: "Also train on each training identity turned 90, 180 and 270 degrees, as new identities (default: the preset's).")
    var rotatedIdentities: Bool?
    @Flag(inversion: .prefixedNo, help: "Also train on each training identity mirrored, as a new identity (default: the preset's).")
    var mirroredIdentities: Bool?
    @Flag(inversion: .prefixedNo, help: "Keep the last step's weights instead of the best validated ones (default: the preset's).")
    var keepLastWeights: Bool?
    @Flag(inversion: .prefixedNo, help: "Embed each image and its mirror image and average the two, in training's validation, eval and serving alike (default: the preset's; on for faces).")
    var mirrorAverage: Bool?
    @Option(help: "Also embed copies moved this many pixels up, down, left and right and average them all, in validation, eval and serving alike (0: off; default: the preset's).")
    var shiftAverage: Int?
    @Option(help: "Whiten the embeddings when training ends (fitted on the training identities; recorded in the model as a last dense and l2norm), with this floor on each direction's variance as a share of the largest (0: off; default: the preset's).")
    var whitening: Float?
    @Flag(inversion: .prefixedNo, help: "Triplet batches take identities family by family (e.g. alphabet by alphabet), for harder negatives (default: the preset's).")
    var familyBatches: Bool?

    @Option(help: "Where to write the model (default: models/<preset>.safetensors).")
    var out: String?

    @Option(help: "Write an HTML report into this folder.")
    var report: String?

    @Flag(help: "Continue from <out>.checkpoint if it exists.")
    var resume = false

    @Option(name: .customLong("init"), help: "Start from this model's weights (an imported one, say): its architecture and input spec are kept, the preset gives the loss and schedule.")
    var initModel: String?

    @Option(help: "Train only the last N weight layers; the others (and their batch norm statistics) stay frozen. 0 trains nothing: the --init model calibrated and scored on the recipe's split.")
    var trainLast: Int?

    @Option(help: "How an image of another aspect ratio becomes the input: stretch, fit (letterbox) or crop. Default: the preset's.")
    var resize: String?

    @Option(help: "With --resize fit: the grey level (0-255) the letterbox pads with (Siamese-pytorch: 128). Default black.")
    var pad: Int?

    @Option(help: "How pixels are resampled to the input size: area or bicubic (Pillow's). Default: the preset's.")
    var resampling: String?

    @Option(help: "With --loss bce: the learned head's dense layers on |a - b|, the last to one logit, e.g. 512,relu,1 (Siamese-pytorch's Keras twin) or 512,1 (its PyTorch version). Default 1: Koch's single layer.")
    var head: String?

    @OptionGroup var datasetOptions: DatasetOptions

    func run() throws {
        guard let preset = Preset(rawValue: preset) else {
            throw ValidationError("unknown preset '\(self.preset)'; known: \(Preset.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var recipe = preset.recipe
        var initial: ModelFile? = nil
        if let initModel {
            guard arch == nil, input == nil else { throw ValidationError("--init keeps the model's architecture and input: drop --arch and --input") }
            let file = try ModelFile.load(path: initModel)
            recipe.architecture = file.network.architecture.description
            recipe.input = try file.inputSpec()
            recipe.metric = file.metadata.metric
            recipe.initialModel = file.metadata.modelID
            // A whitening fitted on the preset's data is not the imported model's: asked for
            // explicitly (--whitening) or not at all, so fine-tuning never stacks one on another.
            recipe.whitening = nil
            initial = file
        }
        if let trainLast { recipe.trainLast = trainLast }
        if let head { recipe.head = head }
        if let arch { recipe.architecture = arch }
        if let input {
            let dims = input.split(separator: "x").compactMap { Int($0) }
            guard dims.count == 3 else { throw ValidationError("--input must be CxHxW, e.g. 1x28x28") }
            var spec = InputSpec(channels: dims[0], height: dims[1], width: dims[2], resize: recipe.input.resize, invert: recipe.input.invert)
            spec.mirrorAverage = recipe.input.mirrorAverage
            spec.shiftAverage = recipe.input.shiftAverage
            spec.pad = recipe.input.pad
            spec.resampling = recipe.input.resampling
            recipe.input = spec
        }
        if let resize {
            guard let mode = InputSpec.ResizeMode(rawValue: resize) else { throw ValidationError("--resize must be stretch, fit or crop") }
            recipe.input.resize = mode
        }
        if let pad {
            guard recipe.input.resize == .fit else { throw ValidationError("--pad sets the letterbox of --resize fit") }
            recipe.input.pad = pad
        }
        if let resampling {
            guard let filter = InputSpec.Resampling(rawValue: resampling) else { throw ValidationError("--resampling must be area or bicubic") }
            recipe.input.resampling = filter == .bicubic ? .bicubic : nil
        }
        if let loss { recipe.loss = loss }
        if let margin { recipe.margin = margin }
        if let mining {
            guard recipe.loss == .triplet else { throw ValidationError("--mining chooses triplets: it needs --loss triplet") }
            recipe.mining = mining
        }
        if let temperature { recipe.temperature = temperature }
        if let metric { recipe.metric = metric }
        if let iterations {
            // A cosine schedule spans the run: stretched or shrunk with it.
            if case .cosine(let total, let minimum) = recipe.optimizer.schedule, total == recipe.iterations {
                recipe.optimizer.schedule = .cosine(total: iterations, minimum: minimum)
            }
            recipe.iterations = iterations
        }
        if let batch { recipe.batch = batch }
        if let perIdentity { recipe.perIdentity = perIdentity }
        if let learningRate { recipe.optimizer.learningRate = learningRate }
        if let weightDecay { recipe.optimizer.weightDecay = weightDecay }
        if let seed { recipe.seed = seed }
        if let targetFar {
            guard targetFar > 0, targetFar < 1 else { throw ValidationError("--target-far must be between 0 and 1") }
            recipe.threshold = .falseAcceptRate(targetFar)
        }
        if !holdOut.isEmpty { recipe.holdOut = holdOut }
        if closedSet { recipe.closedSet = true }
        if !validateOn.isEmpty { recipe.validateOn = validateOn }
        if recipe.closedSet == true && !recipe.holdOut.isEmpty {
            throw ValidationError("--closed-set holds out images, not identities: drop --hold-out")
        }
        if recipe.closedSet == true && !(recipe.validateOn ?? []).isEmpty {
            throw ValidationError("--closed-set validates on images of every identity: drop --validate-on")
        }
        if validationFraction != nil && !validateOn.isEmpty {
            throw ValidationError("--validate-on names the validation identities: drop --validation-fraction")
        }
        if let validationFraction {
            guard validationFraction > 0, validationFraction < 1 else { throw ValidationError("--validation-fraction must be between 0 and 1") }
            recipe.validationFraction = validationFraction
        }
        if let augment { recipe.augmentation = augment ? (recipe.augmentation ?? Augmentation()) : nil }
        if let augmentation {
            do { recipe.augmentation = try Augmentation(parsing: augmentation) } catch { throw ValidationError("--augmentation: \(error)") }
        }
        if let rotatedIdentities { recipe.rotatedIdentities = rotatedIdentities }
        if let mirroredIdentities { recipe.mirroredIdentities = mirroredIdentities }
        if let familyBatches { recipe.familyBatches = familyBatches }
        if let mirrorAverage { recipe.input.mirrorAverage = mirrorAverage ? true : nil }
        if let shiftAverage { recipe.input.shiftAverage = shiftAverage > 0 ? shiftAverage : nil }
        if let keepLastWeights { recipe.keepLastWeights = keepLastWeights }
        if let whitening { recipe.whitening = whitening == 0 ? nil : whitening }
        if let problem = recipe.validationError() { throw ValidationError(problem) }
        // Check the architecture against the input before spending time on the data.
        _ = try Network(architecture: Architecture(parsing: recipe.architecture),
                        input: TensorShape(channels: recipe.input.channels, height: recipe.input.height, width: recipe.input.width), seed: 0)
        guard let source = data ?? preset.defaultData else {
            throw ValidationError("the \(preset.rawValue) preset needs --data (a folder with one folder per identity)")
        }

        let out = self.out ?? "models/\(preset.rawValue).safetensors"
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: out).deletingLastPathComponent(), withIntermediateDirectories: true)
        let log = Terminal.standardError
        log.line("loading \(source)")
        let dataset = try datasetOptions.loader.load(source)
        let split = try TrainingSplit.make(dataset, recipe: recipe)
        log.line("identities: \(split.train.identities.count) train, \(split.validation.identities.count) validation, \(split.test.identities.count) test; \(split.train.samples.count) training images")
        let trainer = try Trainer(recipe: recipe, split: split, initial: initial)
        if let initial {
            log.line("starting from \(initModel ?? "") (model \(initial.metadata.modelID))\(recipe.trainLast.map { ", training its last \($0) of \(trainer.network.weightLayerCount) weight layers" } ?? "")")
        }
        if trainer.imagesWithoutFace > 0 {
            log.line("no face found in \(trainer.imagesWithoutFace) images: left out of training and validation")
        }
        if trainer.trainingIdentities != split.train.identities.count {
            log.line("training on \(trainer.trainingIdentities) identities: the train identities with their mirrored and turned copies")
        }
        let checkpoint = out + ".checkpoint"
        if resume && FileManager.default.fileExists(atPath: checkpoint) {
            try trainer.resume(from: checkpoint)
            log.line("resumed from \(checkpoint) at step \(trainer.step)")
        }

        let interrupt = InterruptFlag()
        let bar = ProgressBar(output: log)
        try trainer.run(checkpoint: checkpoint, progress: { bar.update($0) }, shouldStop: { interrupt.isSet })
        bar.finish()
        if interrupt.isSet { log.line("stopped by Ctrl-C at step \(trainer.step); saving the best model so far (resume with --resume)") }

        var (model, calibration) = try trainer.finish(source: source)
        try model.save(to: out)
        if !interrupt.isSet && trainer.step >= recipe.iterations { try? FileManager.default.removeItem(atPath: checkpoint) }
        log.line(String(format: "validation (%d identities): ROC AUC %.4f, EER %.4f; threshold %.4f (%@): FAR %.4f, TAR %.4f",
                        calibration.identities, calibration.validation.rocAUC, calibration.validation.equalErrorRate,
                        calibration.threshold, calibration.policy, calibration.falseAcceptRate, calibration.trueAcceptRate))
        if calibration.identities < 10 {
            log.line("the threshold comes from \(calibration.identities) validation identities: before verifying against it, refit it on the population served with `doppel calibrate --model \(out) --data DIR`")
        }
        log.line(String(format: "%@ step %d; %.1f s", recipe.keepLastWeights == true ? "kept the last" : "best", trainer.history.bestStep, trainer.history.seconds))
        if let report {
            let path = try TrainingReport.write(model: model, history: trainer.history, calibration: calibration, split: split, recipe: recipe, into: report)
            log.line("report \(path)")
        }
        print(out)
    }
}
