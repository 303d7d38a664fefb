// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelModel
import DoppelNN
import DoppelTraining
import Foundation

/// `doppel calibrate`: refits a model's threshold and similarity calibration on labelled
/// images of the population it will serve, without touching its weights.
struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Refit a model's threshold and similarity calibration on identities of the population it will serve.",
        discussion: """
            Training calibrates on a few held-out identities of the training data; on another population \
            (new alphabets, other cameras) the false accept rate drifts. This draws same- and different-identity \
            pairs from --data, chooses the threshold (at the EER, or at --target-far) and fits distance -> \
            probability, and writes them into the model. The weights, and so the model id and every gallery \
            embedding, stay as they were. When --data is the dataset the model trained on, only the identities \
            it did not train on are used.
            """
    )

    @Option(help: "The model file.") var model: String
    @Option(help: "Labelled images of the population to serve: one folder per identity, or any dataset doppel reads.") var data: String
    @Option(help: "Calibrate the threshold for this false accept rate instead of the equal error rate.") var targetFar: Double?
    @Option(help: "Same-identity plus different-identity pairs to draw.") var pairs: Int = 10000
    @Option(help: "Seed for the pairs.") var seed: UInt64 = 7
    @Option(help: "Where to write the calibrated model (default: over --model, atomically).") var out: String?
    @OptionGroup var datasetOptions: DatasetOptions

    func validate() throws {
        guard pairs >= 10 else { throw ValidationError("--pairs must be at least 10") }
        if let targetFar, !(targetFar > 0 && targetFar < 1) { throw ValidationError("--target-far must be between 0 and 1") }
    }

    func run() throws {
        var file = try ModelFile.load(path: model)
        let embedder = try EmbeddingModel(file)
        var dataset = try datasetOptions.loader.load(data)
        var population = "identities of \(data)"
        let trained = try TrainedRecipe.of(file)
        if let trained, data == trained.data {
            dataset = try trained.unseenPart(of: dataset).dataset
            population = trained.recipe.closedSet == true ? "identities of \(data), images not seen in training" : "identities of \(data) not seen in training"
        }
        let samples = TensorDataset(dataset, input: try ModelInput(file))
        let usable = samples.samplesByIdentity.filter { $0.count >= 2 }.count
        guard usable >= 2 else {
            throw ValidationError("calibration needs at least 2 identities with 2 or more images each; \(data) has \(usable)")
        }
        let (same, different) = embedder.pairDistances(samples, embeddings: embedder.embed(samples), count: pairs, seed: seed)
        let policy: ThresholdPolicy = targetFar.map { .falseAcceptRate($0) } ?? .equalErrorRate
        let record = CalibrationRecord(policy: policy, identities: samples.identityNames.count, same: same, different: different)
        let before = file.metadata.threshold
        try file.metadata.record(record, population: population)
        let destination = out ?? model
        try file.save(to: destination)
        Terminal.standardError.line(String(
            format: "%d identities, %d + %d pairs: ROC AUC %.4f, EER %.4f; threshold %@ -> %.4f (%@): FAR %.4f, TAR %.4f",
            record.identities, record.samePairs, record.differentPairs, record.validation.rocAUC, record.validation.equalErrorRate,
            before.map { String(format: "%.4f", $0) } ?? "none", record.threshold, record.policy, record.falseAcceptRate, record.trueAcceptRate))
        print(destination)
    }
}
