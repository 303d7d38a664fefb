// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelModel
import DoppelNN
import Foundation
import Testing
import TestSupport
@testable import DoppelTraining

/// The training loop on generated glyph images: identification metrics by hand, checkpoint
/// resume, calibration records and the report.
@Suite struct TrainerTests {
    /// 16 identities x 12 images: a bar at an identity-specific angle and position, jittered.
    static func glyphDataset() -> Dataset {
        var generator = SeededGenerator(seed: 5)
        var samples = [Dataset.Sample]()
        for identity in 0..<16 {
            let angle = Float(identity % 8) * .pi / 8, offset = Float(identity / 8) * 4 - 2
            for index in 0..<12 {
                var image = Image(width: 16, height: 16, layout: .gray)
                let jitter = generator.nextGaussian() * 0.1
                for t in stride(from: Float(-6), through: 6, by: 0.25) {
                    let x = Int((8 + offset + t * cosf(angle + jitter)).rounded()), y = Int((8 + t * sinf(angle + jitter)).rounded())
                    if x >= 0, x < 16, y >= 0, y < 16 { image[x, y, 0] = 255 }
                }
                samples.append(Dataset.Sample(identity: identity, origin: "g\(identity)/\(index)", image: image))
            }
        }
        return Dataset(identities: (0..<16).map { "group\($0 / 8)/g\($0)" }, samples: samples, source: "glyphs")
    }

    static func recipe(iterations: Int = 60) -> TrainingRecipe {
        TrainingRecipe(architecture: "conv(8,3,pad=1) relu maxpool(2) flatten dense(16) l2norm", input: InputSpec(channels: 1, height: 16, width: 16),
                       loss: .contrastive, margin: 1, optimizer: .adam(learningRate: 3e-3), iterations: iterations, batch: 32,
                       validationFraction: 0.25, testFraction: 0.25, validationEvery: 20, validationPairs: 200, seed: 9)
    }

    @Test func identificationByHand() {
        // Three 1-D embeddings per identity 0 at 0, identity 1 at 10; a query at 1 (identity 0)
        // and one at 6 (identity 1, nearer to identity 1's enrolled 10 than to 0? no: 4 vs 6).
        let model = EmbeddingModel(network: try! Network(architecture: Architecture(parsing: "flatten"), input: TensorShape(channels: 1), seed: 1),
                                   head: nil, metric: .euclidean, spec: InputSpec(channels: 1, height: 1, width: 1))
        let embeddings: [Float] = [0, 10, 1, 6, 4]
        // queryIdentity is per sample: samples 2, 3, 4 are identities 0, 1, 0 (0 and 1 are the gallery).
        let metrics = model.identification(embeddings, queries: [2, 3, 4], queryIdentity: [1, 0, 0, 1, 0], gallery: [0, 1],
                                           galleryIdentity: [0, 1], enrolledPerIdentity: 1)
        // Query 2 (at 1): nearest 0 -> right. Query 3 (at 6, identity 1): 10 is 4 away, 0 is 6 away -> right.
        // Query 4 (at 4, identity 0): 0 is 4 away, 10 is 6 away -> right.
        #expect(metrics.rank1 == 1 && metrics.rank5 == 1 && metrics.queries == 3)
        let wrong = model.identification(embeddings, queries: [3], queryIdentity: [1, 1, 1, 0, 1], gallery: [0, 1],
                                         galleryIdentity: [0, 1], enrolledPerIdentity: 1)
        #expect(wrong.rank1 == 0 && wrong.rank5 == 1)
    }

    /// Two identities on a line, A at 0 and 3, B at 5 and 6, one enrolled each: the query is
    /// right in every choice of the enrolled images but one (A's 0 and B's 5 enrolled: A's 3
    /// is nearer B's 5), where one of the two queries fails, so rank-1 is 0.5 or 1 on one draw
    /// and 0.875 on average. Many draws give that mean, with its standard error.
    @Test func identificationOverManyDrawsIsTheMeanOverChoicesOfTheEnrolledImages() {
        let model = EmbeddingModel(network: try! Network(architecture: Architecture(parsing: "flatten"), input: TensorShape(channels: 1), seed: 1),
                                   head: nil, metric: .euclidean, spec: InputSpec(channels: 1, height: 1, width: 1))
        var samples = [Dataset.Sample]()
        for identity in 0..<2 { for index in 0..<2 { samples.append(Dataset.Sample(identity: identity, origin: "\(identity)/\(index)", image: Image(width: 1, height: 1, layout: .gray))) } }
        let data = TensorDataset(Dataset(identities: ["A", "B"], samples: samples, source: "line"), spec: model.spec)
        let embeddings: [Float] = [0, 3, 5, 6]
        let one = model.identification(data, embeddings: embeddings, perIdentity: 1, seed: 7)
        #expect(one.rank1 == 0.5 || one.rank1 == 1)
        #expect(one.draws == nil && one.queries == 2)
        let many = model.identification(data, embeddings: embeddings, perIdentity: 1, seed: 7, draws: 4000)
        #expect(many.draws == 4000 && many.queries == 2)
        #expect(abs(many.rank1 - 0.875) < 0.015, "mean rank-1 \(many.rank1)")
        // Per draw 0.5 with probability 1/4, else 1: variance 3/64, so the standard error of the mean is sqrt(3/64/4000).
        let expected = (3.0 / 64 / 4000).squareRoot()
        #expect(abs((many.rank1StandardError ?? 0) - expected) < 0.2 * expected, "standard error \(many.rank1StandardError ?? -1)")
        // The first draw is the one-draw figure.
        #expect(model.identification(data, embeddings: embeddings, perIdentity: 1, seed: 7, draws: 1) == one)
    }

    @Test func trainsCalibratesAndResumesExactly() throws {
        let split = try TrainingSplit.make(Self.glyphDataset(), recipe: Self.recipe())
        let whole = try Trainer(recipe: Self.recipe(), split: split)
        try whole.run()
        let straightWeights = Array(whole.network.parameters)  // before finish() restores the best step's
        let (model, calibration) = try whole.finish(source: "glyphs")
        #expect(calibration.validation.rocAUC > 0.8, "validation AUC \(calibration.validation.rocAUC)")
        #expect(model.metadata.threshold == calibration.threshold)
        #expect(abs(calibration.falseAcceptRate - calibration.validation.equalErrorRate) < 0.1)
        #expect(whole.history.validations.map(\.step) == [20, 40, 60])

        let checkpoint = FileManager.default.temporaryDirectory.appendingPathComponent("doppel-ckpt-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: checkpoint) }
        let first = try Trainer(recipe: Self.recipe(), split: split)
        try first.run(checkpoint: checkpoint, shouldStop: { first.step >= 40 })
        #expect(first.step == 40)
        let resumed = try Trainer(recipe: Self.recipe(), split: split)
        try resumed.resume(from: checkpoint)
        #expect(resumed.step == 40)
        try resumed.run(checkpoint: checkpoint)
        let resumedWeights = Array(resumed.network.parameters)
        #expect(resumedWeights.count == straightWeights.count)
        #expect(zip(resumedWeights, straightWeights).allSatisfy { $0 == $1 }, "a resumed run must end with the uninterrupted run's weights")
        #expect(resumed.history.validations.map(\.step) == [20, 40, 60])

        var other = Self.recipe()
        other.seed = 10
        #expect(throws: DatasetError.self) { try Trainer(recipe: other, split: split).resume(from: checkpoint) }
    }

    @Test func aSaturatedValidationKeepsTheLastStep() throws {
        // Every identity is one fixed image (a bright square at its own place), so validation
        // pairs are separated perfectly at every validation: ROC AUC 1 throughout.
        var samples = [Dataset.Sample]()
        for identity in 0..<6 {
            var image = Image(width: 16, height: 16, layout: .gray)
            for y in 0..<4 { for x in 0..<4 { image[(identity % 3) * 5 + x, (identity / 3) * 8 + y, 0] = 255 } }
            for index in 0..<4 { samples.append(Dataset.Sample(identity: identity, origin: "s\(identity)/\(index)", image: image)) }
        }
        let dataset = Dataset(identities: (0..<6).map { "s\($0)" }, samples: samples, source: "squares")
        var recipe = Self.recipe()
        (recipe.validationFraction, recipe.testFraction) = (0.34, 0)
        let split = try TrainingSplit.make(dataset, recipe: recipe)
        let trainer = try Trainer(recipe: recipe, split: split)
        try trainer.run()
        #expect(trainer.history.validations.map(\.rocAUC) == [1, 1, 1])
        #expect(trainer.history.bestStep == 60, "on a tie the later weights are kept")
    }

    @Test func keepLastWeightsSkipsTheBestOfChoice() throws {
        // On this recipe validation peaks at step 40 of 60, so best and last differ.
        var recipe = Self.recipe()
        let split = try TrainingSplit.make(Self.glyphDataset(), recipe: recipe)
        let best = try Trainer(recipe: recipe, split: split)
        try best.run()
        let lastWeights = Array(best.network.parameters)
        _ = try best.finish(source: "glyphs")
        #expect(best.history.bestStep == 40 && Array(best.network.parameters) != lastWeights)

        recipe.keepLastWeights = true
        let last = try Trainer(recipe: recipe, split: split)
        try last.run()
        let (model, _) = try last.finish(source: "glyphs")
        #expect(last.history.bestStep == 60)
        #expect(model.network.namedTensors().flatMap(\.values) == lastWeights, "the kept weights are the last step's")
    }

    @Test func rotatedIdentitiesGrowOnlyTheTrainingSet() throws {
        var recipe = Self.recipe(iterations: 4)
        recipe.rotatedIdentities = true
        let split = try TrainingSplit.make(Self.glyphDataset(), recipe: recipe)
        let trainer = try Trainer(recipe: recipe, split: split)
        #expect(trainer.train.identityNames.count == 4 * split.train.identities.count)
        #expect(trainer.validation.identityNames == split.validation.identities, "validation identities are never turned")
        try trainer.run()
        // Recorded in the model, and read back from it.
        let (model, _) = try trainer.finish(source: "glyphs")
        let recorded = try JSONDecoder().decode(TrainedRecipe.self, from: Data(model.metadata.recipe!.utf8))
        #expect(recorded.recipe.rotatedIdentities == true)
    }

    @Test func reportIsOnePageWithEveryPlot() throws {
        let split = try TrainingSplit.make(Self.glyphDataset(), recipe: Self.recipe(iterations: 20))
        let trainer = try Trainer(recipe: Self.recipe(iterations: 20), split: split)
        try trainer.run()
        let (model, calibration) = try trainer.finish(source: "glyphs")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("doppel-report-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try TrainingReport.write(model: model, history: trainer.history, calibration: calibration, split: split,
                                            recipe: Self.recipe(iterations: 20), into: directory)
        let html = try String(contentsOfFile: path, encoding: .utf8)
        for caption in ["Training loss", "Validation ROC AUC", "ROC curve", "Distances of same", "embeddings", "Nearest neighbours"] {
            #expect(html.contains(caption), "missing \(caption)")
        }
        #expect(html.components(separatedBy: "<svg").count - 1 == 5)
        #expect(html.components(separatedBy: "data:image/png;base64,").count - 1 == 60)  // 6 queries x (1 + 9)
        // Self-contained: no scripts, and no address but the SVG namespace.
        #expect(!html.contains("<script"))
        #expect(!html.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "").contains("http"))
    }
}

/// The one embedding path: without mirror averaging it is the network's forward pass; with
/// it, the normalised mean of the image's and its mirror's embeddings.
@Suite struct EmbeddingPathTests {
    @Test func mirrorAveragingIsTheMeanOfBothViewsAndOffMeansTheForwardPass() throws {
        let network = try Network(architecture: Architecture(parsing: "conv(4,3,pad=1) relu flatten dense(6) l2norm"),
                                  input: TensorShape(channels: 1, height: 5, width: 7), seed: 3)
        var spec = InputSpec(channels: 1, height: 5, width: 7)
        var generator = SeededGenerator(seed: 1)
        let x = (0..<(3 * 35)).map { _ in generator.nextGaussian() }
        let plain = EmbeddingModel(network: network, head: nil, metric: .euclidean, spec: spec).embed(values: x, count: 3)
        #expect(plain == network.forward(x, batch: 3, mode: .inference))
        spec.mirrorAverage = true
        let averaged = EmbeddingModel(network: network, head: nil, metric: .euclidean, spec: spec).embed(values: x, count: 3)
        var mirrored = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { source in mirrored.withUnsafeMutableBufferPointer { spec.writeMirrored(source.baseAddress!, count: 3, into: $0.baseAddress!) } }
        #expect(mirrored[0] == x[6] && mirrored[6] == x[0] && mirrored[35] == x[41])
        let a = network.forward(x, batch: 3, mode: .inference), b = network.forward(mirrored, batch: 3, mode: .inference)
        for n in 0..<3 {
            let mean = (0..<6).map { (a[n * 6 + $0] + b[n * 6 + $0]) / 2 }
            let norm = mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
            // Batches of other sizes sum in other orders: the network's rounding at unit scale, plus
            // the mean and the norm's dozen roundings.
            let bound = Float(RoundingBound.forward(network, scale: 1) + RoundingBound.operations(12, magnitude: 1))
            for i in 0..<6 { #expect(abs(averaged[n * 6 + i] - mean[i] / norm) <= bound) }
        }
        #expect(averaged != plain)
        // An old spec (JSON without the field) decodes with the option off.
        let old = try JSONDecoder().decode(InputSpec.self, from: Data(#"{"channels":1,"height":5,"width":7,"resize":"stretch","invert":false,"mean":[0],"std":[1]}"#.utf8))
        #expect(old.mirrorAverage == nil)
        #expect(old.shiftAverage == nil && old.testViews.count == 1)
    }

    @Test func shiftAveragingIsTheMeanOfEveryViewOfTheImageAndItsMirror() throws {
        let network = try Network(architecture: Architecture(parsing: "conv(4,3,pad=1) relu flatten dense(6) l2norm"),
                                  input: TensorShape(channels: 1, height: 5, width: 7), seed: 3)
        var spec = InputSpec(channels: 1, height: 5, width: 7)
        spec.mirrorAverage = true
        spec.shiftAverage = 1
        #expect(spec.validationError() == nil)
        let views = spec.testViews
        #expect(views.count == 10 && views.filter(\.mirrored).count == 5)
        var generator = SeededGenerator(seed: 2)
        let x = (0..<(3 * 35)).map { _ in generator.nextGaussian() }
        // A move right by one repeats the first column; a move up by one repeats the last row.
        var moved = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { source in moved.withUnsafeMutableBufferPointer { spec.writeShifted(source.baseAddress!, count: 3, dx: 1, dy: 0, into: $0.baseAddress!) } }
        #expect(moved[0] == x[0] && moved[1] == x[0] && moved[6] == x[5] && moved[35 + 8] == x[35 + 7])
        x.withUnsafeBufferPointer { source in moved.withUnsafeMutableBufferPointer { spec.writeShifted(source.baseAddress!, count: 3, dx: 0, dy: -1, into: $0.baseAddress!) } }
        #expect(moved[0] == x[7] && moved[28] == x[28] && moved[21] == x[28] && moved[35] == x[42])

        let averaged = EmbeddingModel(network: network, head: nil, metric: .euclidean, spec: spec).embed(values: x, count: 3)
        var mirrored = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { source in mirrored.withUnsafeMutableBufferPointer { spec.writeMirrored(source.baseAddress!, count: 3, into: $0.baseAddress!) } }
        var sum = [Float](repeating: 0, count: 18)
        for view in views {
            var input = [Float](repeating: 0, count: x.count)
            (view.mirrored ? mirrored : x).withUnsafeBufferPointer { source in
                input.withUnsafeMutableBufferPointer { spec.writeShifted(source.baseAddress!, count: 3, dx: view.dx, dy: view.dy, into: $0.baseAddress!) }
            }
            let e = network.forward(input, batch: 3, mode: .inference)
            for i in 0..<18 { sum[i] += e[i] }
        }
        for n in 0..<3 {
            let norm = (0..<6).reduce(Float(0)) { $0 + sum[n * 6 + $1] * sum[n * 6 + $1] }.squareRoot()
            // Ten views each within the network's rounding, summed: ten times it, plus the norm's.
            let bound = Float(10 * RoundingBound.forward(network, scale: 1) + RoundingBound.operations(20, magnitude: 1))
            for i in 0..<6 { #expect(abs(averaged[n * 6 + i] - sum[n * 6 + i] / norm) <= bound) }
        }
        // One image alone embeds as it does in a batch (serve embeds one at a time).
        let alone = EmbeddingModel(network: network, head: nil, metric: .euclidean, spec: spec).embed(values: Array(x[35..<70]), count: 1)
        let aloneBound = Float(2 * 10 * RoundingBound.forward(network, scale: 1) + RoundingBound.operations(20, magnitude: 1))
        for i in 0..<6 { #expect(abs(alone[i] - averaged[6 + i]) <= aloneBound) }
        spec.shiftAverage = 2
        #expect(spec.validationError() != nil, "a 5-pixel-high input cannot move by 2 and keep its middle row")
    }
}
