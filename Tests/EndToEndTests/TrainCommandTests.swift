// SPDX-License-Identifier: MIT
import DoppelImaging
import Foundation
import Testing

/// `doppel train` then `doppel eval`, as a user runs them, on a folder of drawn glyphs.
@Suite struct TrainCommandTests {
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

    @Test func trainThenEvaluate() throws {
        let root = try Self.makeGlyphFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let model = root.appendingPathComponent("model.safetensors").path
        let report = root.appendingPathComponent("report").path
        let train = try DoppelBinary.run([
            "train", "--data", root.path, "--preset", "faces", "--input", "1x16x16",
            "--arch", "conv(8,3,pad=1) relu maxpool(2) flatten dense(16) l2norm", "--iterations", "40", "--batch", "16",
            "--out", model, "--report", report,
        ])
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
        #expect((object?["identitySet"] as? String)?.hasPrefix("not seen in training") == true)
        #expect((object?["oneShot"] as? [Any])?.isEmpty == false)
    }

    @Test func closedSetTrainsOnEveryIdentityAndEvaluatesOnUnseenImages() throws {
        let root = try Self.makeGlyphFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let model = root.appendingPathComponent("closed.safetensors").path
        let train = try DoppelBinary.run([
            "train", "--data", root.path, "--preset", "faces", "--input", "1x16x16", "--closed-set", "--validation-fraction", "0.25",
            "--arch", "conv(8,3,pad=1) relu maxpool(2) flatten dense(16) l2norm", "--iterations", "40", "--batch", "16", "--out", model,
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
        let conflicting = try DoppelBinary.run(["train", "--data", root.path, "--preset", "faces", "--closed-set", "--hold-out", "group0"])
        #expect(conflicting.status != 0 && conflicting.stderr.contains("drop --hold-out"), "stderr: \(conflicting.stderr)")
    }

    @Test func supervisedContrastiveLossFromTheCommandLine() throws {
        let root = try Self.makeGlyphFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let model = root.appendingPathComponent("supcon.safetensors").path
        let train = try DoppelBinary.run([
            "train", "--data", root.path, "--preset", "fashion", "--input", "1x16x16", "--loss", "supcon", "--temperature", "0.2",
            "--arch", "conv(8,3,pad=1) relu maxpool(2) flatten dense(16) l2norm", "--iterations", "30", "--batch", "4", "--out", model,
        ])
        #expect(train.status == 0, "stderr: \(train.stderr)")
        // The model records the loss and its temperature.
        let file = try Data(contentsOf: URL(fileURLWithPath: model))
        let headerLength = file.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: file.subdata(in: 8..<(8 + headerLength))) as? [String: Any]
        let metadata = header?["__metadata__"] as? [String: String]
        #expect(metadata?["objective"] == "supcon")
        let recipe = try metadata?["recipe"].flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect((recipe?["recipe"] as? [String: Any])?["temperature"] as? Double == 0.2)
        let eval = try DoppelBinary.run(["eval", "--model", model, "--json", "--episodes", "20", "--ways", "2", "--pairs", "100"])
        #expect(eval.status == 0, "stderr: \(eval.stderr)")

        let badTemperature = try DoppelBinary.run(["train", "--data", root.path, "--preset", "fashion", "--loss", "supcon", "--temperature", "0"])
        #expect(badTemperature.status != 0 && badTemperature.stderr.contains("temperature must be positive"), "stderr: \(badTemperature.stderr)")
    }

    @Test func badOptionsFailWithAMessage() throws {
        let unknown = try DoppelBinary.run(["train", "--preset", "nope"])
        #expect(unknown.status != 0 && unknown.stderr.contains("unknown preset 'nope'"))
        let noData = try DoppelBinary.run(["train", "--preset", "omniglot"])
        #expect(noData.status != 0 && noData.stderr.contains("needs --data"))
        let badArch = try DoppelBinary.run(["train", "--preset", "fashion", "--arch", "dense(0)", "--data", "/nonexistent"])
        #expect(badArch.status != 0 && badArch.stderr.contains("dense(0) at token 1: units must be an integer >= 1"), "stderr: \(badArch.stderr)")
        let badShape = try DoppelBinary.run(["train", "--preset", "fashion", "--arch", "conv(8,3) dense(4)", "--data", "/nonexistent"])
        #expect(badShape.stderr.contains("add flatten"), "stderr: \(badShape.stderr)")
    }
}
