// SPDX-License-Identifier: MIT
import DoppelImaging
import Foundation
import Testing

/// `doppel dataset inspect` as a user runs it, on a folder the test draws.
@Suite(.slow) struct DatasetCommandTests {
    static func makeFolder() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("doppel-e2e-\(UUID().uuidString)")
        for (identity, count) in [("alphabet/char01", 3), ("alphabet/char02", 5), ("s3", 4)] {
            let folder = root.appendingPathComponent(identity)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for i in 0..<count {
                let image = Image(width: 12, height: 9, layout: .gray, filledWith: UInt8(i * 40))
                try Data(PNGEncoder.encode(image)).write(to: folder.appendingPathComponent("\(i).png"))
            }
        }
        try Data("not an image".utf8).write(to: root.appendingPathComponent("s3/notes.txt"))
        return root
    }

    @Test func inspectPrintsCountsAndWritesASheet() throws {
        let root = try Self.makeFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let sheet = root.appendingPathComponent("sheet.png").path
        let result = try DoppelBinary.run(["dataset", "inspect", root.path, "--sheet", sheet])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("identities   3"))
        #expect(result.stdout.contains("images       12"))
        #expect(result.stdout.contains("per identity min 3, median 4, max 5"))
        #expect(result.stdout.contains("image sizes  12x9 gray: 12"))
        #expect(result.stdout.contains("skipped      0 hidden, 1 not images, 0 undecodable"))
        let decoded = try ImageDecoder.decode(try Data(contentsOf: URL(fileURLWithPath: sheet)))
        #expect(decoded.height == 3 * 50 + 2)  // one 48-pixel row per identity plus gutters

        let json = try DoppelBinary.run(["dataset", "inspect", root.path, "--sheet", sheet, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["identities"] as? Int == 3 && object?["images"] as? Int == 12)
    }

    @Test func missingDatasetFailsWithAMessage() throws {
        let result = try DoppelBinary.run(["dataset", "inspect", "/nonexistent/folder", "--sheet", "/tmp/x.png"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("dataset not found at /nonexistent/folder"))
    }
}
