// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelModel
import DoppelNN
import DoppelTraining
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Verification, identification and N-way one-shot accuracy on identities the model did not train on.",
        discussion: """
            By default the identities are those the model's recipe kept out of training (validation and test), \
            when --data is the dataset it trained on; other data is evaluated whole. --enroll DATA also ranks \
            every --data image against every DATA image (e.g. Fashion-MNIST's test set against its training set).
            """
    )

    @Option(help: "The model file.") var model: String
    @Option(help: "Dataset (default: the one the model trained on).") var data: String?
    @Option(help: "Also identify --data's images against this dataset's.") var enroll: String?
    @Flag(help: "Evaluate every identity, including those the model trained on.") var allIdentities = false
    @Flag(help: "Only the recipe's test identities (or test images, closed-set): not the validation ones that chose the kept step and the threshold. The figure to report.")
    var testOnly = false
    @Option(help: "Pairs for verification.") var pairs: Int = 10000
    @Option(help: "Episodes per N-way test.") var episodes: Int = 400
    @Option(parsing: .upToNextOption, help: "N of the N-way one-shot tests.") var ways: [Int] = [5, 20]
    @Option(help: "Seed for pairs and episodes (change it for a fresh sample).") var seed: UInt64 = 2024
    @Option(parsing: .upToNextOption, help: "Images enrolled per identity in the identification tests.") var enrolled: [Int] = [1, 5]
    @Option(help: "Random choices of the enrolled images each identification figure is the mean of (which photo is enrolled moves rank-1 by points on a small set).")
    var draws: Int = 100
    @Option(parsing: .upToNextOption, help: "How several enrolled images score a query: best, mean-of-best:M, centroid (several: one test each; the first also scores --enroll). The default is the server's.")
    var aggregation: [String] = ["best"]
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var datasetOptions: DatasetOptions

    func validate() throws {
        guard pairs >= 10, episodes >= 1, ways.allSatisfy({ $0 >= 2 }) else { throw ValidationError("pairs >= 10, episodes >= 1, ways >= 2") }
        guard enrolled.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--enrolled counts must be at least 1") }
        guard (1...10_000).contains(draws) else { throw ValidationError("--draws must be in 1...10000") }
        guard !(testOnly && allIdentities) else { throw ValidationError("--test-only and --all-identities choose different identities: give one") }
        for text in aggregation where EnrollmentAggregation(text) == nil {
            throw ValidationError("--aggregation \(text) is not best, mean-of-best:M or centroid")
        }
    }

    func run() throws {
        let file = try ModelFile.load(path: model)
        let embedder = try EmbeddingModel(file)
        let input = try ModelInput(file)
        let trained = try TrainedRecipe.of(file)
        guard let source = data ?? trained?.data else { throw ValidationError("the model records no training data; give --data") }
        let loader = datasetOptions.loader
        var dataset = try loader.load(source)
        var identitySet = "all"
        if !allIdentities, let trained, source == trained.data {
            (dataset, identitySet) = try trained.unseenPart(of: dataset, testOnly: testOnly)
        }
        let calibration = try file.calibrationRecord()
        var report = Evaluation.run(model: embedder, input: input, modelID: file.metadata.modelID, threshold: file.metadata.threshold,
                                    calibratedFalseAcceptRate: calibration?.falseAcceptRate, dataset: dataset,
                                    identitySet: identitySet, pairs: pairs, episodes: episodes, ways: ways, seed: seed,
                                    enrolled: enrolled, aggregations: aggregation.compactMap(EnrollmentAggregation.init), draws: draws)
        if let enroll {
            let queries = try loader.load(source)
            report.enrolled = enroll
            report.enrolledIdentification = Evaluation.enrolledIdentification(model: embedder, input: input, queries: queries, enrolled: try loader.load(enroll),
                                                                              aggregation: aggregation.first.flatMap(EnrollmentAggregation.init) ?? .best)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        let v = report.verification
        print("model \(report.model) on \(report.data): \(report.identities) identities, \(report.images) images (\(report.identitySet))"
              + (report.imagesWithoutFace.map { "; \($0) images without a face left out" } ?? ""))
        print(String(format: "verification: ROC AUC %.4f, EER %.4f, TAR %.4f at FAR 1e-2, %.4f at FAR 1e-3 (%d + %d pairs)",
                     v.rocAUC, v.equalErrorRate, v.tarAtFAR1e2, v.tarAtFAR1e3, v.samePairs, v.differentPairs))
        if let t = report.atModelThreshold {
            print(String(format: "at the model's threshold %.4f: accuracy %.4f, FAR %.4f, TAR %.4f", t.threshold, t.accuracy, t.falseAcceptRate, t.trueAcceptRate)
                  + (t.calibratedFalseAcceptRate.map { String(format: " (calibrated for FAR %.4f: %.2fx)", $0, t.falseAcceptRatio ?? .nan) } ?? ""))
        }
        for i in report.identification {
            let how = i.enrolledPerIdentity > 1 ? " (\(i.aggregation ?? "best"))" : ""
            let drawn = i.draws.map { String(format: " each, mean of %d choices of the enrolled images; rank-1 standard error %.4f", $0, i.rank1StandardError ?? 0) } ?? ""
            print(String(format: "identification, %d enrolled per identity%@: rank-1 %.4f, rank-5 %.4f (%d queries%@)", i.enrolledPerIdentity, how, i.rank1, i.rank5, i.queries, drawn))
        }
        for o in report.oneShot {
            print(String(format: "%d-way %d-shot%@: %.4f over %d episodes", o.ways, o.shots, o.withinGroup ? " within group" : "", o.accuracy, o.episodes))
        }
        if let e = report.enrolledIdentification {
            print(String(format: "against %@ enrolled (%@): rank-1 %.4f, rank-5 %.4f (%d queries)", enroll ?? "", e.aggregation ?? "best", e.rank1, e.rank5,
                         e.queries))
        }
    }
}
