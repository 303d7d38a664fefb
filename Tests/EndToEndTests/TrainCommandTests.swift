// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelNN
import Foundation
import Testing

/// `doppel train` then `doppel eval`, as a user runs them, on a folder of drawn glyphs.
@Suite(.slow) struct TrainCommandTests {
    static func makeGlyphFolder() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("doppel-train-\(UUID().uuidString)")
        for identity in 0..<12 {
            let folder = root.appendingPathComponent("group\(identity / 6)/glyph\(identity)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let angle = Double(identity % 6) * .pi / 6
            for index in 0..<8 {
                var image = Image(width: 16, height: 16, layout: .gray, filledWith: 255)
                let wobble = Double(index % 3 - 1) * 0.08
                for step in -24...24 {
                    let t = Double(step) / 4
                    let x = Int((8 + Double(identity / 6) * 3 - 1.5 + t * cos(angle + wobble)).rounded())
                    let y = Int((8 + t * sin(angle + wobble)).rounded())
                    if x >= 0, x < 16, y >= 0, y < 16 { image[x, y, 0] = 0 }
                }
                try Data(PNGEncoder.encode(image)).write(to: folder.appendingPathComponent("\(index).png"))
            }
        }
        return root
    }

    /// `doppel train` of the tiny glyph network on `root`, writing `root/name`, with the
    /// test's own options (preset, loss, steps, ...).
    static func trainGlyphModel(_ root: URL, _ name: String, _ options: [String]) throws -> (model: String, output: DoppelBinary.Output) {
        let model = root.appendingPathComponent(name).path
        let output = try DoppelBinary.run(["train", "--data", root.path, "--input", "1x16x16", "--arch", "conv(8,3,pad=1) relu maxpool(2) flatten dense(16) l2norm",
                                           "--out", model] + options)
        return (model, output)
    }

    @Test func trainThenEvaluate() throws {
        let root = try Self.makeGlyphFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let report = root.appendingPathComponent("report").path
        let (model, train) = try Self.trainGlyphModel(root, "model.safetensors", ["--preset", "faces", "--iterations", "40", "--batch", "16", "--report", report])
        #expect(train.status == 0, "stderr: \(train.stderr)")
        #expect(train.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == model)
        #expect(train.stderr.contains("identities: "))
        #expect(train.stderr.contains("threshold"))
        #expect(FileManager.default.fileExists(atPath: report + "/index.html"))
        #expect(!FileManager.default.fileExists(atPath: model + ".checkpoint"), "a finished run removes its checkpoint")

        let eval = try DoppelBinary.run(["eval", "--model", model, "--json", "--episodes", "50", "--ways", "2", "--pairs", "200"])
        #expect(eval.status == 0, "stderr: \(eval.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any]
        let verification = object?["verification"] as? [String: Any]
        #expect((verification?["rocAUC"] as? Double).map { $0 > 0 && $0 <= 1 } == true)
        let identitySet = object?["identitySet"] as? String ?? ""
        #expect(identitySet.hasPrefix("not seen in training"), "\(identitySet)")
        // The best validated step was kept, so the figure is chosen on some of these identities: said.
        #expect(identitySet.contains("the kept step was chosen by validating on "), "\(identitySet)")
        #expect((object?["oneShot"] as? [Any])?.isEmpty == false)
    }

    @Test func withTheLastStepKeptEvalClaimsNoValidationChoice() throws {
        let root = try Self.makeGlyphFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (model, train) = try Self.trainGlyphModel(root, "last.safetensors", ["--preset", "faces", "--keep-last-weights", "--iterations", "20", "--batch", "16"])
        #expect(train.status == 0, "stderr: \(train.stderr)")
        let eval = try DoppelBinary.run(["eval", "--model", model, "--json", "--episodes", "20", "--ways", "2", "--pairs", "100"])
        #expect(eval.status == 0, "stderr: \(eval.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any]
        let identitySet = object?["identitySet"] as? String ?? ""
        #expect(identitySet.hasPrefix("not seen in training") && !identitySet.contains("kept step"), "\(identitySet)")
    }

    @Test func closedSetTrainsOnEveryIdentityAndEvaluatesOnUnseenImages() throws {
        let root = try Self.makeGlyphFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (model, train) = try Self.trainGlyphModel(root, "closed.safetensors", [
            "--preset", "faces", "--closed-set", "--validation-fraction", "0.25", "--iterations", "40", "--batch", "16",
        ])
        #expect(train.status == 0, "stderr: \(train.stderr)")
        // All 12 glyphs in every part: of each glyph's 8 images 2 validate (0.25), 1 tests (the
        // preset's 0.15) and 5 train.
        #expect(train.stderr.contains("identities: 12 train, 12 validation, 12 test; 60 training images"), "stderr: \(train.stderr)")
        let eval = try DoppelBinary.run(["eval", "--model", model, "--json", "--episodes", "20", "--ways", "2", "--pairs", "100"])
        #expect(eval.status == 0, "stderr: \(eval.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any]
        #expect(object?["identitySet"] as? String == "trained identities, images not seen in training")
        #expect(object?["identities"] as? Int == 12 && object?["images"] as? Int == 36)
        try Self.expectRefused(["train", "--data", root.path, "--preset", "faces", "--closed-set", "--hold-out", "group0"], saying: "drop --hold-out")
    }

    @Test func whiteningFromTheCommandLine() throws {
        let root = try Self.makeGlyphFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (model, train) = try Self.trainGlyphModel(root, "whitened.safetensors", ["--preset", "faces", "--whitening", "0.1", "--iterations", "20", "--batch", "16"])
        #expect(train.status == 0, "stderr: \(train.stderr)")
        // The whitening is the model's last dense and l2norm, so every path that embeds has it.
        let metadata = try Self.metadata(of: model)
        #expect(metadata?["architecture"]?.hasSuffix("dense(16) l2norm dense(16) l2norm") == true, "\(metadata?["architecture"] ?? "")")
        #expect(abs((try Self.recordedRecipe(of: model)?["whitening"] as? Double ?? 0) - 0.1) < 1e-6)
        let eval = try DoppelBinary.run(["eval", "--model", model, "--json", "--episodes", "20", "--ways", "2", "--pairs", "100"])
        #expect(eval.status == 0, "stderr: \(eval.stderr)")
        try Self.expectRefused(["train", "--data", root.path, "--preset", "faces", "--whitening", "20"], saying: "whitening must be in (0, 10]")
    }

    @Test func supervisedContrastiveLossFromTheCommandLine() throws {
        let root = try Self.makeGlyphFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (model, train) = try Self.trainGlyphModel(root, "supcon.safetensors", [
            "--preset", "fashion", "--loss", "supcon", "--temperature", "0.2", "--iterations", "30", "--batch", "4",
        ])
        #expect(train.status == 0, "stderr: \(train.stderr)")
        // The model records the loss and its temperature.
        let metadata = try Self.metadata(of: model)
        #expect(metadata?["objective"] == "supcon")
        #expect(try Self.recordedRecipe(of: model)?["temperature"] as? Double == 0.2)
        let eval = try DoppelBinary.run(["eval", "--model", model, "--json", "--episodes", "20", "--ways", "2", "--pairs", "100"])
        #expect(eval.status == 0, "stderr: \(eval.stderr)")

        try Self.expectRefused(["train", "--data", root.path, "--preset", "fashion", "--loss", "supcon", "--temperature", "0"], saying: "temperature must be positive")
    }

    /// The reference Siamese head (two dense layers, a ReLU between, on |a - b|) trains from
    /// the command line with a letterbox of grey, is saved with its layers and input spec,
    /// answers verify with its probability, and loads again.
    @Test func aTwoLayerHeadTrainsAndServes() throws {
        let root = try Self.makeGlyphFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (model, train) = try Self.trainGlyphModel(root, "head.safetensors", [
            "--preset", "faces", "--loss", "bce", "--whitening", "0", "--input", "1x16x16", "--arch", "conv(4,3,pad=1) relu maxpool(2) flatten",
            "--head", "8,relu,1", "--resize", "fit", "--pad", "128", "--iterations", "30", "--batch", "8",
        ])
        #expect(train.status == 0, "stderr: \(train.stderr)")
        let metadata = try Self.metadata(of: model)
        #expect(metadata?["objective"] == "koch" && metadata?["head_layers"] == "8,relu,1", "\(metadata ?? [:])")
        #expect(metadata?["input_spec"]?.contains("\"pad\":128") == true, "\(metadata?["input_spec"] ?? "")")
        let loaded = try ModelFile.load(path: model)
        #expect(loaded.head?.layerDescription == "8,relu,1" && loaded.head?.parameters.count == 8 * 256 + 8 + 8 + 1)
        let eval = try DoppelBinary.run(["eval", "--model", model, "--json", "--episodes", "20", "--ways", "2", "--pairs", "100"])
        #expect(eval.status == 0, "stderr: \(eval.stderr)")
        try Self.expectRefused(["train", "--data", root.path, "--preset", "faces", "--loss", "bce", "--head", "8,relu,2"], saying: "ends in one logit")
        try Self.expectRefused(["train", "--data", root.path, "--preset", "fashion", "--head", "8,relu,1"], saying: "trained with the bce loss")
    }

    @Test func tripletMiningFromTheCommandLine() throws {
        let root = try Self.makeGlyphFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (model, train) = try Self.trainGlyphModel(root, "batch-all.safetensors", [
            "--preset", "fashion", "--mining", "batch-all", "--margin", "0.05", "--iterations", "30", "--batch", "4",
        ])
        #expect(train.status == 0, "stderr: \(train.stderr)")
        let recorded = try Self.recordedRecipe(of: model)
        #expect(recorded?["mining"] as? String == "batch-all" && recorded?["margin"] as? Double == 0.05, "\(recorded ?? [:])")

        // Mining chooses triplets: with another loss it would be silently ignored, so it is refused.
        try Self.expectRefused(["train", "--data", root.path, "--preset", "fashion", "--loss", "contrastive", "--mining", "batch-hard"], saying: "--mining chooses triplets: it needs --loss triplet")
        try Self.expectRefused(["train", "--data", root.path, "--mining", "hardest"], saying: "'batch-all', 'batch-hard' or 'semi-hard'")
    }

    @Test func optimizerSettingsFromTheCommandLine() throws {
        let root = try Self.makeGlyphFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (model, train) = try Self.trainGlyphModel(root, "decayed.safetensors", [
            "--preset", "fashion", "--learning-rate", "0.0005", "--weight-decay", "0.001", "--iterations", "30", "--batch", "4",
        ])
        #expect(train.status == 0, "stderr: \(train.stderr)")
        let optimizer = try Self.recordedRecipe(of: model)?["optimizer"] as? [String: Any]
        #expect(optimizer?["learningRate"] as? Double == 0.0005 && optimizer?["weightDecay"] as? Double == 0.001, "\(optimizer ?? [:])")

        for (option, message) in [("--weight-decay=-0.1", "weight decay must be 0 or more"), ("--learning-rate=0", "learning rate must be positive")] {
            try Self.expectRefused(["train", "--data", root.path, "--preset", "fashion", option], saying: message)
        }
    }

    /// `--validate-on` names the identities to validate on (and so to evaluate on): the
    /// "train on seven classes, evaluate on these three" protocol with the three chosen.
    @Test func namedValidationIdentities() throws {
        let root = try Self.makeGlyphFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (model, train) = try Self.trainGlyphModel(root, "named.safetensors", [
            "--preset", "fashion", "--validate-on", "group1", "--iterations", "30", "--batch", "4",
        ])
        #expect(train.status == 0, "stderr: \(train.stderr)")
        #expect(try Self.recordedRecipe(of: model)?["validateOn"] as? [String] == ["group1"])
        let eval = try DoppelBinary.run(["eval", "--model", model, "--json", "--episodes", "20", "--ways", "2", "--pairs", "100"])
        #expect(eval.status == 0, "stderr: \(eval.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any]
        let group1 = (6..<12).map { "group1/glyph\($0)" }.sorted().joined(separator: ", ")
        #expect(report?["identitySet"] as? String == "not seen in training (\(group1)); the kept step was chosen by validating on 6 of them",
                "\(report?["identitySet"] ?? "")")

        try Self.expectRefused(["train", "--data", root.path, "--preset", "fashion", "--validate-on", "group7"], saying: "no identity matches the validation names")
        try Self.expectRefused(["train", "--data", root.path, "--preset", "fashion", "--validate-on", "group1", "--hold-out", "group1/glyph6"],
                               saying: "group1/glyph6 is named both for validation and as held out")
        try Self.expectRefused(["train", "--data", root.path, "--validate-on", "group1", "--validation-fraction", "0.3"], saying: "drop --validation-fraction")
        try Self.expectRefused(["train", "--data", root.path, "--closed-set", "--validate-on", "group1"], saying: "drop --validate-on")
    }

    /// Runs `doppel` with `arguments` and expects a refusal: a failing status and `message` on stderr.
    static func expectRefused(_ arguments: [String], saying message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let run = try DoppelBinary.run(arguments)
        #expect(run.status != 0 && run.stderr.contains(message), "doppel \(arguments.joined(separator: " ")): stderr: \(run.stderr)",
                sourceLocation: sourceLocation)
    }

    /// The training recipe a model file records (its metadata's `recipe.recipe` object).
    static func recordedRecipe(of path: String) throws -> [String: Any]? {
        let recipe = try metadata(of: path)?["recipe"].flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        return recipe?["recipe"] as? [String: Any]
    }

    /// The `__metadata__` strings of a safetensors model file.
    static func metadata(of path: String) throws -> [String: String]? {
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = file.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: file.subdata(in: 8..<(8 + headerLength))) as? [String: Any]
        return header?["__metadata__"] as? [String: String]
    }

    @Test func calibrateRefitsTheThresholdOnAnotherPopulation() throws {
        let root = try Self.makeGlyphFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (model, train) = try Self.trainGlyphModel(root, "model.safetensors", [
            "--preset", "faces", "--hold-out", "group1", "--validation-fraction", "0.34", "--iterations", "30", "--batch", "16",
        ])
        #expect(train.status == 0, "stderr: \(train.stderr)")
        #expect(train.stderr.contains("from 2 validation identities") && train.stderr.contains("doppel calibrate --model \(model)"),
                "a threshold from few identities comes with the advice to recalibrate; stderr: \(train.stderr)")
        let trainedBytes = try Data(contentsOf: URL(fileURLWithPath: model))
        let trained = try #require(try Self.metadata(of: model))

        // group1's six glyphs, which the model never saw, as the population to serve.
        let population = root.appendingPathComponent("group1").path
        let calibrated = root.appendingPathComponent("calibrated.safetensors").path
        let run = try DoppelBinary.run(["calibrate", "--model", model, "--data", population, "--target-far", "0.1", "--out", calibrated])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == calibrated)
        #expect(try Data(contentsOf: URL(fileURLWithPath: model)) == trainedBytes, "--out leaves the original as it was")
        let metadata = try #require(try Self.metadata(of: calibrated))
        #expect(metadata["model_id"] == trained["model_id"], "same weights, same id: gallery embeddings stay valid")
        #expect(metadata["threshold_method"]?.hasPrefix("far=0.1 on 6 identities of \(population)") == true, "\(metadata["threshold_method"] ?? "")")
        let record = try #require(try JSONSerialization.jsonObject(with: Data((metadata["calibration"] ?? "").utf8)) as? [String: Any])
        let falseAcceptRate = try #require(record["falseAcceptRate"] as? Double)
        #expect(falseAcceptRate <= 0.1 && record["identities"] as? Int == 6)
        #expect(metadata["threshold"].flatMap(Float.init) == (record["threshold"] as? Double).map(Float.init))
        // eval on the same population measures against the new calibration.
        let eval = try DoppelBinary.run(["eval", "--model", calibrated, "--data", population, "--json", "--episodes", "10", "--ways", "2", "--pairs", "400"])
        let atThreshold = (try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])?["atModelThreshold"] as? [String: Any]
        #expect(atThreshold?["calibratedFalseAcceptRate"] as? Double == falseAcceptRate, "stderr: \(eval.stderr)")

        // On its own training data it calibrates on the identities it did not train on, in place.
        let onTraining = try DoppelBinary.run(["calibrate", "--model", model, "--data", root.path])
        #expect(onTraining.status == 0, "stderr: \(onTraining.stderr)")
        #expect(try Self.metadata(of: model)?["threshold_method"]?.contains("not seen in training") == true)

        try Self.expectRefused(["calibrate", "--model", model, "--data", population, "--target-far", "2"], saying: "--target-far must be between 0 and 1")
        let lone = root.appendingPathComponent("group1-one")
        try FileManager.default.createDirectory(at: lone, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: root.appendingPathComponent("group1/glyph6"), to: lone.appendingPathComponent("glyph6"))
        try Self.expectRefused(["calibrate", "--model", calibrated, "--data", lone.path], saying: "at least 2 identities")
        #expect(try Self.metadata(of: calibrated)?["threshold_method"]?.hasPrefix("far=0.1") == true, "a refused calibration changes nothing")
    }

    @Test func badOptionsFailWithAMessage() throws {
        try Self.expectRefused(["train", "--preset", "nope"], saying: "unknown preset 'nope'")
        try Self.expectRefused(["train", "--preset", "omniglot"], saying: "needs --data")
        try Self.expectRefused(["train", "--preset", "fashion", "--arch", "dense(0)", "--data", "/nonexistent"], saying: "dense(0) at token 1: units must be an integer >= 1")
        let badShape = try DoppelBinary.run(["train", "--preset", "fashion", "--arch", "conv(8,3) dense(4)", "--data", "/nonexistent"])
        #expect(badShape.stderr.contains("add flatten"), "stderr: \(badShape.stderr)")
    }
}
