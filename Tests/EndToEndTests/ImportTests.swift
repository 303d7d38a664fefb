// SPDX-License-Identifier: MIT
import DoppelNN
import Foundation
import Testing
import TestSupport

/// `doppel import` and `doppel embed` as users run them, and imported models served: the
/// fixtures are `Tests/DoppelONNXTests/Fixtures` (made by scripts/compare/onnx_models.py).
@Suite(.serialized, .slow) struct ImportTests {
    static let fixtures = ServerProcess.repository.appendingPathComponent("Tests/DoppelONNXTests/Fixtures")
    static func fixture(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    @Test func importedModelsEmbedAsOnnxruntimeDid() throws {
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = folder.appendingPathComponent("mixed.safetensors").path
        let imported = try DoppelBinary.run(["import", Self.fixture("fixture.onnx"), "--out", model, "--input", "3x24x24"])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stderr.contains("no threshold yet: run doppel calibrate"), "\(imported.stderr)")
        let out = folder.appendingPathComponent("embeddings.npy").path
        let embedded = try DoppelBinary.run(["embed", "--model", model, "--npy", Self.fixture("fixture.input.npy"), "--out", out])
        #expect(embedded.status == 0, "\(embedded.stderr)")
        let ours = try NumpyArray(contentsOf: out), theirs = try NumpyArray(contentsOf: Self.fixture("fixture.output.npy"))
        #expect(ours.shape == theirs.shape)
        let difference = zip(ours.values, theirs.values).map { abs($0 - $1) }.max()!
        let bound = try RoundingBound.embedding(model: model, scale: Double(theirs.values.map { abs($0) }.max()!))
        #expect(Double(difference) <= bound, "max |doppel - onnxruntime| \(difference), bound \(bound)")
        // Image files too, as JSON, one embedding each.
        let glyph = ServeTests.fixture.folder.appendingPathComponent("group0/glyph0/0.png").path
        let json = try DoppelBinary.run(["embed", "--model", model, glyph, glyph, "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let rows = object?["embeddings"] as? [[String: Any]]
        #expect(rows?.count == 2 && (rows?[0]["embedding"] as? [Double])?.count == 16 && object?["dimension"] as? Int == 16)
    }

    @Test func anUnsupportedOperatorStopsTheImportAndWritesNothing() throws {
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = folder.appendingPathComponent("never.safetensors")
        let result = try DoppelBinary.run(["import", Self.fixture("unsupported.onnx"), "--out", model.path, "--input", "1x8x8"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("is a CumSum, which doppel does not import; supported operators: Abs, Add,"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: model.path))
        let wrongShape = try DoppelBinary.run(["import", Self.fixture("fixture.onnx"), "--out", model.path, "--input", "3x32x32"])
        #expect(wrongShape.status != 0 && wrongShape.stderr.contains("--input 3x32x32"), "\(wrongShape.stderr)")
        #expect(!FileManager.default.fileExists(atPath: model.path))
    }

    /// Twin-tower exports answer verify with the probability onnxruntime gives the pair:
    /// Koch's one-layer head, Siamese-pytorch's two Linear layers, and its Keras twin (NHWC,
    /// Relu between the dense layers).
    @Test(arguments: [("fixture_siamese", "1x20x20", "pgm", "1"), ("fixture_siamese_torch", "3x12x12", "ppm", "16,1"),
                      ("fixture_siamese_keras", "3x12x12", "ppm", "16,relu,1")])
    func aSiameseExportVerifiesAsOnnxruntimeDoes(name: String, input: String, suffix: String, layers: String) throws {
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = folder.appendingPathComponent("siamese.safetensors").path
        let imported = try DoppelBinary.run(["import", Self.fixture("\(name).onnx"), "--out", model, "--input", input])
        #expect(imported.status == 0 && imported.stderr.contains("Siamese head"), "\(imported.stderr)")
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("\(name).pair.json"))) as! [String: Double]
        let server = try ServerProcess(model: model, folder: folder)
        defer { server.stop() }
        let api = try ServeTests.Checked(server)
        let pair = try (0..<2).map { [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent("\(name).pair\($0).\(suffix)"))) }
        let verify = try api.form("POST", "/v1/verify", key: nil, [("image1", "a.\(suffix)", pair[0]), ("image2", "b.\(suffix)", pair[1])])
        #expect(verify.status == 200, "\(verify.text)")
        let probability = verify.json["similarity"] as? Double ?? -1
        let head = try #require(try ModelFile.load(path: model).head)
        #expect(head.layerDescription == layers)
        var bound = 1e-4  // the acceptance line for deeper heads (the unit test argues their rounding)
        if head.layers.count == 1 {
            // The towers within the network's rounding e of onnxruntime's (embeddings of the
            // fixture's scale, under 4); the logit moves by at most sum |w| 2e, the sigmoid by a quarter.
            let weightSum = head.parameters.dropLast().reduce(0.0) { $0 + abs(Double($1)) }
            bound = 0.25 * weightSum * 2 * (try RoundingBound.embedding(model: model, scale: 4))
        }
        #expect(abs(probability - expected["probability"]!) <= bound, "doppel \(probability), onnxruntime \(expected["probability"]!), bound \(bound)")
        #expect(verify.json["match"] as? Bool == (expected["probability"]! >= 0.5))
        #expect(verify.json["threshold"] as? Double == 0.5)
    }

    /// An imported embedder: refused until calibrated, then it serves; a gallery enrolled
    /// under a trained model is re-embedded when the imported one takes over.
    @Test func anImportedEmbedderIsCalibratedServedAndReindexesTheGallery() throws {
        let f = ServeTests.fixture
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = folder.appendingPathComponent("mixed.safetensors").path
        #expect(try DoppelBinary.run(["import", Self.fixture("fixture.onnx"), "--out", model, "--input", "3x24x24"]).status == 0)
        let refused = try DoppelBinary.run(["serve", "--model", model, "--db", folder.appendingPathComponent("g.sqlite").path,
                                            "--migrations", ServerProcess.repository.appendingPathComponent("Migrations").path],
                                           environment: ["DOPPEL_ADMIN_KEYS": ServeTests.adminKey])
        #expect(refused.status != 0 && refused.stderr.contains("run `doppel calibrate --model") && refused.stderr.contains("--threshold"), "\(refused.stderr)")
        let calibrated = try DoppelBinary.run(["calibrate", "--model", model, "--data", f.folder.path, "--pairs", "400"])
        #expect(calibrated.status == 0, "\(calibrated.stderr)")
        #expect(try ModelFile.load(path: model).metadata.threshold != nil)

        // Enrolled under the trained model, then served by the imported one.
        var server = try ServerProcess(model: f.model, folder: folder)
        for id in 0..<3 {
            let response = try ServeTests.Checked(server).form("POST", "/v1/identities", [("id", nil, Array("glyph\(id)".utf8)), ("images", "a.png", f.image(id, 0)),
                                                                                        ("images", "b.png", f.image(id, 1))])
            #expect(response.status == 201)
        }
        #expect(server.stop() == 0)
        server = try ServerProcess(model: model, folder: folder)
        let api = try ServeTests.Checked(server)
        #expect(try api.call("GET", "/readyz", key: nil).json["samples"] as? Int == 6)
        let search = try api.form("POST", "/v1/search", key: nil, [("image", "q.png", f.image(2, 1))])
        #expect((search.json["matches"] as? [[String: Any]])?.first?["identity"] as? String == "glyph2", "\(search.text)")
        let verify = try api.form("POST", "/v1/verify", key: nil, [("image1", "a.png", f.image(1, 0)), ("image2", "b.png", f.image(1, 0))])
        #expect(verify.json["match"] as? Bool == true, "\(verify.text)")
        #expect(server.stop() == 0)
        #expect(server.stderr.contains("reindexed 6 stored images"), "\(server.stderr)")
    }
}

extension ImportTests {
    /// Fine-tuning an imported model: its architecture and input spec are kept, the frozen
    /// layers come out bit for bit as they went in, the trained ones move, and the recipe says
    /// where training started.
    @Test func anImportedModelFineTunesWithItsLastLayersOnly() throws {
        let f = ServeTests.fixture
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let imported = folder.appendingPathComponent("mixed.safetensors").path
        #expect(try DoppelBinary.run(["import", Self.fixture("fixture.onnx"), "--out", imported, "--input", "3x24x24", "--metric", "euclidean"]).status == 0)
        let tuned = folder.appendingPathComponent("tuned.safetensors").path
        let train = try DoppelBinary.run(["train", "--data", f.folder.path, "--preset", "faces", "--init", imported, "--train-last", "2",
                                          "--iterations", "20", "--batch", "16", "--learning-rate", "0.001", "--out", tuned])
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stderr.contains("training its last 2 of"), "\(train.stderr)")
        let before = try ModelFile.load(path: imported), after = try ModelFile.load(path: tuned)
        #expect(after.network.architecture == before.network.architecture)
        #expect(after.metadata.inputSpec == before.metadata.inputSpec)
        let old = Dictionary(uniqueKeysWithValues: before.network.namedTensors().map { ($0.name, $0.values) })
        let new = Dictionary(uniqueKeysWithValues: after.network.namedTensors().map { ($0.name, $0.values) })
        // The last two weight layers are the two dense layers, then the batch norm between them
        // counts as one too: find them from the network, not by name.
        let trained = after.network.trainableTensorNames(lastWeightLayers: 2)
        #expect(!trained.isEmpty)
        for (name, values) in old where !trained.contains(name) { #expect(new[name] == values, "\(name) changed although frozen") }
        #expect(trained.contains { old[$0] != new[$0] }, "the trained layers did not move")
        let recipe = try #require(after.metadata.recipe)
        #expect(recipe.contains("\"initialModel\":\"\(before.metadata.modelID)\"") && recipe.contains("\"trainLast\":2"))
        // Without --train-last every layer trains.
        let all = try DoppelBinary.run(["train", "--data", f.folder.path, "--preset", "faces", "--init", imported, "--iterations", "10", "--batch", "16",
                                        "--out", folder.appendingPathComponent("all.safetensors").path])
        #expect(all.status == 0, "\(all.stderr)")
        let conflicting = try DoppelBinary.run(["train", "--data", f.folder.path, "--init", imported, "--arch", "flatten dense(4)", "--out", tuned])
        #expect(conflicting.status != 0 && conflicting.stderr.contains("--init keeps the model's architecture"), "\(conflicting.stderr)")
    }
}
