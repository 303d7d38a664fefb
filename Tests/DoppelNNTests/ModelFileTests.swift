// SPDX-License-Identifier: MIT
import Foundation
import Testing
@testable import DoppelNN

@Suite struct ModelFileTests {
    static let architecture = "conv(4,3,pad=1) relu batchnorm maxpool(2) flatten dense(5) l2norm"
    static let input = TensorShape(channels: 1, height: 6, width: 6)

    static func makeModel(objective: String = "contrastive") throws -> ModelFile {
        let network = try Network(architecture: Architecture(parsing: architecture), input: input, seed: 2)
        // One training-mode pass so batch norm's running statistics are not their defaults.
        _ = network.forward((0..<(4 * 36)).map { Float($0 % 7) }, batch: 4, mode: .training)
        let metadata = ModelMetadata(architecture: network.architecture, inputShape: input, objective: objective, metric: .cosine,
                                     inputSpec: #"{"channels":1,"height":6,"width":6}"#, threshold: 0.42,
                                     thresholdMethod: "eer on 3 held-out identities", calibration: #"{"a":-3,"b":1}"#)
        return ModelFile(network: network, head: objective == "koch" ? SiameseHead(dimension: 5, seed: 1) : nil, metadata: metadata)
    }

    @Test func roundTripKeepsEverything() throws {
        var model = try Self.makeModel()
        let bytes = model.serialized()
        let loaded = try ModelFile.load(bytes: bytes)
        #expect(loaded.metadata == model.metadata)
        #expect(loaded.metadata.modelID.count == 16)
        #expect(loaded.network.namedTensors().map(\.values) == model.network.namedTensors().map(\.values))
        let x = (0..<(3 * 36)).map { Float($0) / 50 }
        #expect(loaded.network.forward(x, batch: 3) == model.network.forward(x, batch: 3))
        // Tensor names follow a PyTorch nn.Sequential state dict.
        let names = loaded.network.tensorSpecs.map(\.name)
        #expect(names == ["0.weight", "0.bias", "2.weight", "2.bias", "2.running_mean", "2.running_var", "5.weight", "5.bias"])
    }

    @Test func kochHeadIsSaved() throws {
        var model = try Self.makeModel(objective: "koch")
        let loaded = try ModelFile.load(bytes: model.serialized())
        #expect(loaded.head?.parameters == model.head?.parameters)
    }

    @Test func theIDChangesWithTheWeights() throws {
        var a = try Self.makeModel()
        var b = try Self.makeModel()
        _ = a.serialized()
        b.network.parameters[0] += 1
        _ = b.serialized()
        #expect(a.metadata.modelID != b.metadata.modelID)
    }

    /// Rewrites the header of a valid file (keeping the data) with `edit` applied.
    static func editHeader(_ bytes: [UInt8], _ edit: (inout [String: Any]) -> Void) -> [UInt8] {
        var length = 0
        for i in 0..<8 { length |= Int(bytes[i]) << (8 * i) }
        var header = try! JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + length)])) as! [String: Any]
        edit(&header)
        var json = [UInt8](try! JSONSerialization.data(withJSONObject: header))
        while json.count < length { json.append(0x20) }
        precondition(json.count == length, "edited header must not grow in this helper")
        return Array(bytes[0..<8]) + json + bytes[(8 + length)...]
    }

    @Test func loadSaysExactlyWhatIsWrong() throws {
        var model = try Self.makeModel()
        let bytes = model.serialized()

        let newer = Self.editHeader(bytes) { header in
            var meta = header["__metadata__"] as! [String: String]
            meta["format_version"] = "9"
            header["__metadata__"] = meta
        }
        #expect(throws: ModelFileError.newerFormat(found: 9, supported: 1)) { try ModelFile.load(bytes: newer) }

        let otherArchitecture = Self.editHeader(bytes) { header in
            var meta = header["__metadata__"] as! [String: String]
            meta["architecture"] = "conv(4,3,pad=1) relu batchnorm maxpool(2) flatten dense(6) l2norm"
            meta["embedding_dim"] = "6"
            header["__metadata__"] = meta
        }
        #expect(throws: ModelFileError.shapeMismatch(name: "5.weight", expected: [6, 36], found: [5, 36])) {
            try ModelFile.load(bytes: otherArchitecture)
        }

        let missing = Self.editHeader(bytes) { header in header["5.bias"] = nil }
        #expect(throws: ModelFileError.missingTensor(name: "5.bias", expectedShape: [5])) { try ModelFile.load(bytes: missing) }

        var tampered = bytes
        tampered[tampered.count - 1] ^= 0x01
        #expect(throws: ModelFileError.self) { try ModelFile.load(bytes: tampered) }
        do {
            _ = try ModelFile.load(bytes: tampered)
        } catch {
            guard case .modelIDMismatch = error else { Issue.record("expected a model id mismatch, got \(error)"); return }
        }

        #expect(throws: ModelFileError.container(.tooShort(bytes: 3))) { try ModelFile.load(bytes: [1, 2, 3]) }
        for cut in [9, 100, bytes.count / 2, bytes.count - 1] {
            #expect(throws: ModelFileError.self) { try ModelFile.load(bytes: Array(bytes.prefix(cut))) }
        }
        #expect {
            try ModelFile.load(path: "/nonexistent.safetensors")
        } throws: { error in
            guard case ModelFileError.unreadable(let path, _) = error else { return false }
            return path == "/nonexistent.safetensors"
        }
    }

    @Test func saveIsAtomicAndLoadable() throws {
        var model = try Self.makeModel()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("doppel-model-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try model.save(to: path)
        #expect(try ModelFile.load(path: path).metadata.modelID == model.metadata.modelID)
    }
}

/// SHA-256 against FIPS 180-4's examples, fed whole and in pieces that straddle block edges.
@Suite struct SHA256Tests {
    @Test func knownAnswers() {
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let twoBlocks = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA256.hex(twoBlocks) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SHA256.hex(million) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        for pieceLength in [1, 7, 63, 64, 65, 1000] {
            var hash = SHA256()
            var start = 0
            while start < million.count {
                hash.update(million[start..<min(start + pieceLength, million.count)])
                start += pieceLength
            }
            #expect(hash.finalize() == { var whole = SHA256(); whole.update(million); return whole.finalize() }(), "pieces of \(pieceLength)")
        }
    }
}
