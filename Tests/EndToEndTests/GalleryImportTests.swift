// SPDX-License-Identifier: MIT
import DoppelImaging
import Foundation
import Testing

/// `doppel gallery import` killed with SIGKILL mid-import: the database stays sound, every
/// identity the command acknowledged is there, and re-running resumes to a complete gallery.
@Suite(.slow) struct GalleryImportTests {
    static let migrations = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Migrations").path

    @Test func sigkillDuringImportLosesNothingAcknowledged() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("doppel-import-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let identities = 150
        for identity in 0..<identities {
            let folder = root.appendingPathComponent("faces/person\(String(format: "%03d", identity))")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for index in 0..<4 {
                var image = Image(width: 16, height: 16, layout: .gray)
                for i in 0..<256 { image.pixels[i] = UInt8((i * (identity + 3) + index * 17) % 251) }
                try Data(PNGEncoder.encode(image)).write(to: folder.appendingPathComponent("\(index).png"))
            }
        }
        let model = root.appendingPathComponent("model.safetensors").path
        let saved = try DoppelBinary.run(["bench", "embed", "--arch", "flatten dense(8)", "--input", "1x16x16", "--batch", "1",
                                          "--train-pairs", "0", "--seconds", "0.01", "--save-model", model])
        #expect(saved.status == 0, "stderr: \(saved.stderr)")
        let db = root.appendingPathComponent("gallery.sqlite").path
        let common = ["--model", model, "--db", db, "--migrations", Self.migrations]

        var acknowledged = Set<String>()
        for round in 0..<3 {
            let process = Process()
            process.executableURL = DoppelBinary.url
            process.arguments = ["gallery", "import", root.appendingPathComponent("faces").path] + common
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Kill in the middle: once a few more identities have been acknowledged this round.
            var output = Data()
            let target = acknowledged.count + 10 + 15 * round
            while String(decoding: output, as: UTF8.self).split(separator: "\n").count < target - acknowledged.count {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                output.append(chunk)
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            output.append(out.fileHandleForReading.readDataToEndOfFile())
            let lines = String(decoding: output, as: UTF8.self).split(separator: "\n")
            acknowledged.formUnion(lines.filter { $0.hasPrefix("imported ") }.map { String($0.dropFirst("imported ".count)) })
            print("import round \(round): killed after \(acknowledged.count) of \(identities) identities acknowledged")
            #expect(acknowledged.count < identities, "the kill must land before the import ends")

            let stats = try DoppelBinary.run(["gallery", "stats", "--db", db, "--migrations", Self.migrations])
            #expect(stats.stdout.contains("integrity: ok"), "round \(round): \(stats.stdout) \(stats.stderr)")
            let listed = try DoppelBinary.run(["gallery", "list", "--limit", "1000", "--db", db, "--migrations", Self.migrations])
            let present = Set(listed.stdout.split(separator: "\n").map { String($0.split(separator: "\t")[0]) })
            #expect(acknowledged.isSubset(of: present), "round \(round): acknowledged but missing: \(acknowledged.subtracting(present))")
            // An identity is there with all its samples or not at all.
            #expect(listed.stdout.split(separator: "\n").allSatisfy { $0.contains("\t4 samples") })
        }
        let finish = try DoppelBinary.run(["gallery", "import", root.appendingPathComponent("faces").path] + common)
        #expect(finish.status == 0, "stderr: \(finish.stderr)")
        let stats = try DoppelBinary.run(["gallery", "stats", "--db", db, "--migrations", Self.migrations])
        #expect(stats.stdout.contains("gallery default: \(identities) identities, \(identities * 4) samples"), "\(stats.stdout)")
        #expect(stats.stdout.contains(": \(identities * 4) embeddings"))

        // A new model: reindex embeds every stored image once (and a second run finds nothing to do).
        let second = root.appendingPathComponent("model2.safetensors").path
        _ = try DoppelBinary.run(["bench", "embed", "--arch", "flatten dense(4)", "--input", "1x16x16", "--batch", "1",
                                  "--train-pairs", "0", "--seconds", "0.01", "--save-model", second])
        let reindex = try DoppelBinary.run(["gallery", "reindex", "--model", second, "--db", db, "--migrations", Self.migrations])
        #expect(reindex.stdout.contains("reindexed \(identities * 4) images"), "\(reindex.stdout) \(reindex.stderr)")
        let again = try DoppelBinary.run(["gallery", "reindex", "--model", second, "--db", db, "--migrations", Self.migrations])
        #expect(again.stdout.contains("reindexed 0 images"))
        let export = try DoppelBinary.run(["gallery", "export", "--db", db, "--migrations", Self.migrations])
        let lines = export.stdout.split(separator: "\n")
        #expect(lines.count == identities)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any]
        #expect(first?["id"] as? String == "person000" && (first?["samples"] as? [Any])?.count == 4)
    }
}
