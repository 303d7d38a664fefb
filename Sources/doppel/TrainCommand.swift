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
        let initial = try initModel.map { try ModelFile.load(path: $0) }
        var overrides = TrainingRecipe.Overrides()
        overrides.architecture = arch
        overrides.input = input
        overrides.resize = resize
        overrides.pad = pad
        overrides.resampling = resampling
        overrides.loss = loss
        overrides.margin = margin
        overrides.mining = mining
        overrides.temperature = temperature
        overrides.metric = metric
        overrides.iterations = iterations
        overrides.batch = batch
        overrides.perIdentity = perIdentity
        overrides.learningRate = learningRate
        overrides.weightDecay = weightDecay
        overrides.seed = seed
        overrides.targetFalseAcceptRate = targetFar
        overrides.holdOut = holdOut
        overrides.validateOn = validateOn
        overrides.closedSet = closedSet
        overrides.validationFraction = validationFraction
        overrides.augment = augment
        overrides.augmentation = augmentation
        overrides.rotatedIdentities = rotatedIdentities
        overrides.mirroredIdentities = mirroredIdentities
        overrides.familyBatches = familyBatches
        overrides.mirrorAverage = mirrorAverage
        overrides.shiftAverage = shiftAverage
        overrides.keepLastWeights = keepLastWeights
        overrides.whitening = whitening
        overrides.trainLast = trainLast
        overrides.head = head
        let recipe: TrainingRecipe
        do { recipe = try preset.recipe.applying(overrides, initial: initial) } catch let error as TrainingRecipe.OverrideError {
            throw ValidationError(error.description)
        }
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
