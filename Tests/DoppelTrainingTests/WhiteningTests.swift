// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelModel
import DoppelNN
import Foundation
import Testing
import TestSupport
@testable import DoppelTraining

/// Embedding whitening: the eigen-decomposition it rests on, what the fitted matrix does to
/// the spread of the embeddings it was fitted on, and the layer it becomes in a trained model.
@Suite struct WhiteningTests {
    static func randomMatrix(_ rows: Int, _ columns: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<(rows * columns)).map { _ in generator.nextGaussian() }
    }

    @Test func jacobiGivesOrthonormalEigenvectorsThatRebuildTheMatrix() {
        let d = 12
        let b = Self.randomMatrix(d, d, seed: 3).map(Double.init)
        // A symmetric matrix with a spread of eigenvalues: B B^T.
        var a = [Double](repeating: 0, count: d * d)
        for i in 0..<d { for j in 0..<d { for k in 0..<d { a[i * d + j] += b[i * d + k] * b[j * d + k] } } }
        let (values, v) = Whitening.symmetricEigen(a, dimension: d)
        for i in 0..<d {
            for j in 0..<d {
                let dot = (0..<d).reduce(0.0) { $0 + v[$1 * d + i] * v[$1 * d + j] }
                // Jacobi in Double: about 2^-52 per rotation, d^2 rotations a sweep, a few sweeps:
                // under 1e-12, so 1e-9 leaves room without hiding a wrong rotation (order 1).
                #expect(abs(dot - (i == j ? 1 : 0)) < 1e-9, "V^T V at \(i), \(j): \(dot)")
                let rebuilt = (0..<d).reduce(0.0) { $0 + v[i * d + $1] * values[$1] * v[j * d + $1] }
                #expect(abs(rebuilt - a[i * d + j]) < 1e-8 * (1 + abs(a[i * d + j])), "V L V^T at \(i), \(j): \(rebuilt) vs \(a[i * d + j])")
            }
        }
        #expect(values.allSatisfy { $0 > -1e-9 }, "B B^T has no negative eigenvalue: \(values)")
    }

    /// Embeddings stretched 10x along one direction come out with every direction's variance
    /// about equal (a tiny floor), and with the floor at the largest variance the stretched
    /// direction keeps only part of its lead.
    @Test func theFittedMatrixEvensOutTheSpread() {
        let count = 400, d = 4
        var embeddings = Self.randomMatrix(count, d, seed: 8)
        for n in 0..<count { embeddings[n * d] = 10 * embeddings[n * d] + 3; embeddings[n * d + 2] += embeddings[n * d] * 0.1 }
        func varianceAfter(_ strength: Float) -> [Float] {
            let (mean, w) = Whitening.fit(embeddings, count: count, dimension: d, strength: strength)
            var out = [Float](repeating: 0, count: count * d)
            for n in 0..<count { for i in 0..<d { out[n * d + i] = (0..<d).reduce(Float(0)) { $0 + w[i * d + $1] * (embeddings[n * d + $1] - mean[$1]) } } }
            return (0..<d).map { i in (0..<count).reduce(Float(0)) { $0 + out[$1 * d + i] * out[$1 * d + i] } / Float(count - 1) }
        }
        // The floor, 1e-6 x the largest variance (about 100: the stretched direction), over the
        // smallest (about 1, as low as 0.7 in 400 draws) lowers a whitened variance by up to
        // 1.5e-4; the Float sums of 400 products (and of 4 per value) add gamma(404) = 2.4e-5
        // relative: within 2e-4 of one.
        for variance in varianceAfter(1e-6) { #expect(abs(variance - 1) < 2e-4, "whitened variances \(varianceAfter(1e-6))") }
        let floored = varianceAfter(1)
        #expect(floored[0] > 2 * floored[1] && floored[0] < 1, "with the floor at the largest variance: \(floored)")
    }

    /// The appended layers compute normalise(W (e - mean)) of the trained network's
    /// embedding e, and training with `whitening` ends with them, calibrated after them.
    @Test func aWhitenedModelEmbedsThroughTheAppendedLayer() throws {
        var recipe = TrainerTests.recipe(iterations: 20)
        recipe.whitening = 0.1
        let split = try TrainingSplit.make(TrainerTests.glyphDataset(), recipe: recipe)
        let trainer = try Trainer(recipe: recipe, split: split)
        try trainer.run()
        let (model, calibration) = try trainer.finish(source: "glyphs")
        #expect(model.network.architecture.description.hasSuffix("dense(16) l2norm dense(16) l2norm"))
        #expect(model.metadata.threshold == calibration.threshold)
        let plain = EmbeddingModel(network: trainer.network, head: nil, metric: .euclidean, spec: recipe.input)
        let trained = plain.embed(trainer.train)
        let fitted = Whitening.fit(trained, count: trainer.train.count, dimension: 16, strength: 0.1)
        let served = try EmbeddingModel(model)
        let validation = trainer.validation
        let raw = plain.embed(validation), whitened = served.embed(validation)
        // The served network computes the appended dense layer in its own order; the rest is the
        // same network: its rounding at unit scale (embeddings are normalised), plus this loop's.
        let bound = Float(RoundingBound.forward(served.network, scale: 1) + RoundingBound.operations(40, magnitude: 1))
        for n in 0..<validation.count {
            var expected = (0..<16).map { i in (0..<16).reduce(Float(0)) { $0 + fitted.matrix[i * 16 + $1] * (raw[n * 16 + $1] - fitted.mean[$1]) } }
            let norm = expected.reduce(0) { $0 + $1 * $1 }.squareRoot()
            expected = expected.map { $0 / norm }
            for i in 0..<16 { #expect(abs(whitened[n * 16 + i] - expected[i]) <= bound, "sample \(n) value \(i)") }
        }
        // Saved and loaded, the model embeds the same.
        var file = model
        let reloaded = try EmbeddingModel(try ModelFile.load(bytes: file.serialized()))
        #expect(reloaded.embed(validation) == whitened)
    }

    /// A recipe from before the field (no "whitening" key) decodes as unwhitened, and a
    /// whitened one keeps its floor through the model file's JSON.
    @Test func recipesFromBeforeWhiteningStillDecode() throws {
        let old = TrainerTests.recipe()
        let json = String(decoding: try JSONEncoder().encode(old), as: UTF8.self)
        #expect(!json.contains("whitening"))
        #expect(try JSONDecoder().decode(TrainingRecipe.self, from: Data(json.utf8)).whitening == nil)
        var whitened = old
        whitened.whitening = 0.25
        #expect(try JSONDecoder().decode(TrainingRecipe.self, from: JSONEncoder().encode(whitened)).whitening == 0.25)
    }

    @Test func whiteningIsRefusedWhereItCannotApply() {
        var recipe = TrainerTests.recipe()
        recipe.whitening = 0
        #expect(recipe.validationError()?.contains("whitening must be in") == true)
        recipe.whitening = 0.1
        recipe.architecture = "conv(8,3,pad=1) relu maxpool(2) flatten dense(16)"
        #expect(recipe.validationError()?.contains("ending in l2norm") == true)
        recipe.architecture = TrainerTests.recipe().architecture
        recipe.loss = .bce
        #expect(recipe.validationError()?.contains("Koch head") == true)
    }
}
