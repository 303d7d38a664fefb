// SPDX-License-Identifier: MIT
import Foundation
import Testing
import TestSupport

/// The documentation holds: the README's and docs/api.md's runnable shell blocks run as
/// written against a server laid out like the demo's; docs/api.md describes exactly the
/// operations the OpenAPI document has; every relative link points at a file; the README
/// stays short; scripts/demo prints the README's examples.
@Suite(.slow) struct DocsTests {
    static let repository = ServerProcess.repository

    static func read(_ path: String) throws -> String {
        try String(contentsOf: repository.appendingPathComponent(path), encoding: .utf8)
    }

    /// The shell blocks marked `<!-- runnable -->` in a Markdown file.
    static func runnableBlocks(_ markdown: String) -> [String] {
        var blocks = [String]()
        var rest = Substring(markdown)
        while let marker = rest.range(of: "<!-- runnable -->\n```sh\n") {
            guard let end = rest[marker.upperBound...].range(of: "\n```") else { break }
            blocks.append(String(rest[marker.upperBound..<end.lowerBound]))
            rest = rest[end.upperBound...]
        }
        return blocks
    }

    /// A folder laid out like the demo's (data/demo/gallery and queries with the demo's class
    /// names, data/gallery.sqlite, data/admin.key), from the test fixture's images, and a
    /// server on it.
    static func demoLikeServer() throws -> (server: ServerProcess, folder: URL) {
        let f = ServeTests.fixture
        let folder = try ServeTests.freshFolder()
        let classes = ["ankle-boot", "bag", "dress", "sandal", "sneaker", "t-shirt-top", "trouser"]
        for (identity, name) in classes.enumerated() {
            // The fixture draws a few distinct images per identity (the rest repeat them): one
            // enrolled, the others (then the enrolled one again) as queries, so queries 0 and 1
            // differ from each other.
            var distinct = [[UInt8]]()
            for index in 0..<8 where !distinct.contains(f.image(identity, index)) { distinct.append(f.image(identity, index)) }
            let gallery = [distinct[0]]
            let queries = [distinct[1 % distinct.count], distinct[2 % distinct.count], distinct[0]]
            for (kind, images) in [("gallery", gallery), ("queries", queries)] {
                let directory = folder.appendingPathComponent("data/demo/\(kind)/\(name)")
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                for (index, image) in images.enumerated() { try Data(image).write(to: directory.appendingPathComponent("\(index).png")) }
            }
        }
        let database = folder.appendingPathComponent("data/gallery.sqlite").path
        let imported = try DoppelBinary.run(["gallery", "import", folder.appendingPathComponent("data/demo/gallery").path, "--model", f.model,
                                             "--db", database, "--migrations", repository.appendingPathComponent("Migrations").path])
        #expect(imported.status == 0, "\(imported.stderr)")
        try Data(ServeTests.adminKey.utf8).write(to: folder.appendingPathComponent("data/admin.key"))
        return (try ServerProcess(model: f.model, folder: folder, database: database), folder)
    }

    @Test func runnableShellBlocksRunAsWritten() throws {
        let blocks = try ["README.md", "docs/api.md"].flatMap { Self.runnableBlocks(try Self.read($0)) }
        #expect(blocks.count >= 2, "no runnable blocks found")
        let (server, folder) = try Self.demoLikeServer()
        defer { server.stop(); try? FileManager.default.removeItem(at: folder) }
        for block in blocks {
            // curl fails on an HTTP error here, so a block that gets one fails.
            let script = "set -euo pipefail\ncurl() { command curl --fail-with-body \"$@\"; }\n"
                + block.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:\(server.port)")
            let (status, text) = try runProgram("/bin/bash", ["-c", script], in: folder)
            #expect(status == 0, "this block failed:\n\(block)\n--- output:\n\(text)")
        }
    }

    @Test func theAPIPageDescribesExactlyTheOpenAPIOperations() throws {
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try ServerProcess(model: ServeTests.fixture.model, folder: folder)
        defer { server.stop() }
        let document = try server.client().send("GET", "/openapi.json").json
        var operations = Set<String>()
        for (path, item) in document["paths"] as? [String: [String: Any]] ?? [:] {
            for method in item.keys where ["get", "post", "put", "patch", "delete"].contains(method) {
                operations.insert("\(method.uppercased()) \(path)")
            }
        }
        #expect(operations.count >= 15)
        let page = try Self.read("docs/api.md")
        var documented = Set<String>()
        for line in page.split(separator: "\n") where line.hasPrefix("### `") {
            documented.insert(String(line.dropFirst(5).prefix { $0 != "`" }))
        }
        #expect(operations.subtracting(documented).isEmpty, "in OpenAPI, not in docs/api.md: \(operations.subtracting(documented).sorted())")
        #expect(documented.subtracting(operations).isEmpty, "in docs/api.md, not in OpenAPI: \(documented.subtracting(operations).sorted())")
        // Every error code the page lists is one the OpenAPI document or the server knows.
        #expect(page.contains("`storage_unavailable`") && page.contains("`image_not_stored`"))
    }

    static var markdownFiles: [String] {
        get throws {
            ["README.md"] + (try FileManager.default.contentsOfDirectory(atPath: repository.appendingPathComponent("docs").path)
                .filter { $0.hasSuffix(".md") }.sorted().map { "docs/\($0)" })
        }
    }

    /// The anchors GitHub gives a Markdown file's headings: lowercased, punctuation other
    /// than `-` and `_` dropped, spaces as `-`; a repeated heading gets `-1`, `-2`.
    static func anchors(_ markdown: String) -> Set<String> {
        var anchors = Set<String>(), seen = [String: Int]()
        var inCode = false
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") { inCode.toggle() }
            guard !inCode, line.hasPrefix("#") else { continue }
            let title = line.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces)
            let slug = String(title.lowercased().unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_" || $0 == " " })
                .replacingOccurrences(of: " ", with: "-")
            let count = seen[slug, default: 0]
            anchors.insert(count == 0 ? slug : "\(slug)-\(count)")
            seen[slug] = count + 1
        }
        return anchors
    }

    @Test func linksAndTheirAnchorsResolveAndTheReadmeIsShort() throws {
        let regex = try NSRegularExpression(pattern: #"\]\(([^)#\s]*)(#[^)\s]*)?\)"#)
        for file in try Self.markdownFiles {
            let text = try Self.read(file)
            let base = (file as NSString).deletingLastPathComponent
            for match in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let target = String(text[Range(match.range(at: 1), in: text)!])
                if target.contains("://") { continue }
                let path = target.isEmpty ? file : (base.isEmpty ? target : "\(base)/\(target)")
                let resolved = (path as NSString).standardizingPath
                guard FileManager.default.fileExists(atPath: Self.repository.appendingPathComponent(resolved).path) else {
                    Issue.record("\(file) links to \(target), which is missing")
                    continue
                }
                if let range = Range(match.range(at: 2), in: text), resolved.hasSuffix(".md") {
                    let anchor = String(text[range].dropFirst())
                    #expect(Self.anchors(try Self.read(resolved)).contains(anchor), "\(file) links to \(target)#\(anchor): no such heading in \(resolved)")
                }
            }
        }
        let readme = try Self.read("README.md")
        #expect(readme.split(separator: "\n", omittingEmptySubsequences: false).count < 250)
        #expect(readme.hasPrefix("# Doppel") && readme.contains("scripts/demo") && readme.contains("scripts/test"))
    }

    /// Every image kept in docs/ is shown by some page.
    @Test func everyImageInDocsIsUsed() throws {
        let pages = try Self.markdownFiles.map { try Self.read($0) }.joined(separator: "\n")
        let images = try FileManager.default.contentsOfDirectory(atPath: Self.repository.appendingPathComponent("docs").path)
            .filter { $0.hasSuffix(".png") || $0.hasSuffix(".jpg") || $0.hasSuffix(".svg") }
        for image in images {
            #expect(pages.contains(image), "docs/\(image) is not used by any page")
        }
    }

    /// Every `DOPPEL_*` environment variable the code reads is in docs/operations.md.
    @Test func everyEnvironmentVariableIsDocumented() throws {
        let regex = try NSRegularExpression(pattern: #""(DOPPEL_[A-Z_]+)""#)
        let sources = Self.repository.appendingPathComponent("Sources")
        var read = Set<String>()
        for file in FileManager.default.enumerator(atPath: sources.path)!.compactMap({ $0 as? String }) where file.hasSuffix(".swift") {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            for m in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) { read.insert(String(text[Range(m.range(at: 1), in: text)!])) }
        }
        #expect(read.count >= 10, "\(read.sorted())")
        let page = try Self.read("docs/operations.md")
        let missing = read.filter { !page.contains("`\($0)`") }
        #expect(missing.isEmpty, "not in docs/operations.md: \(missing.sorted())")
    }

    /// docs/cli.md is what scripts/cli-reference makes from this build's own help.
    @Test func theCommandLineReferenceIsTheBinarysHelp() throws {
        let (status, generated) = try runProgram("/bin/bash", [Self.repository.appendingPathComponent("scripts/cli-reference").path, DoppelBinary.url.path])
        #expect(status == 0, "\(generated)")
        let page = try Self.read("docs/cli.md")
        #expect(generated == page, "docs/cli.md is stale: run scripts/cli-reference > docs/cli.md")
        #expect(page.contains("## doppel serve") && page.contains("## doppel gallery import"))
    }

    /// docs/operations.md's metrics table names exactly the metrics `/metrics` exposes.
    @Test func theMetricsTableListsWhatTheServerExposes() throws {
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try ServerProcess(model: ServeTests.fixture.model, folder: folder)
        defer { server.stop() }
        let f = ServeTests.fixture
        // An enrollment and a search, so every metric has a sample to show (gallery sizes
        // appear once a gallery has an identity).
        _ = try ServeTests.Checked(server).form("POST", "/v1/identities", [("id", nil, Array("a".utf8)), ("image", "a.png", f.image(0, 0))])
        _ = try server.client().send("POST", "/v1/search", headers: [("Content-Type", "image/png")], body: f.image(0, 1))
        let text = try server.client().send("GET", "/metrics").text
        let exposed = Set(text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { String($0.split(separator: " ")[2]) })
        let page = try Self.read("docs/operations.md")
        let section = page.components(separatedBy: "## Metrics")[1].components(separatedBy: "\n## ")[0]
        let documented = Set(section.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("| `doppel_") else { return nil }
            return String(line.dropFirst(3).prefix { $0 != "`" })
        })
        #expect(exposed.count >= 8, "\(text.prefix(500))")
        #expect(exposed == documented, "exposed, not documented: \(exposed.subtracting(documented).sorted()); documented, not exposed: \(documented.subtracting(exposed).sorted())")
    }

    /// scripts/demo prints the README's curl examples, so what a new user copies from the
    /// terminal is what the README (and the test above) runs.
    @Test func theDemoPrintsTheReadmesExamples() throws {
        let readmeBlock = try #require(Self.runnableBlocks(try Self.read("README.md")).first)
        let demo = try Self.read("scripts/demo")
        let printed = readmeBlock.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.isEmpty ? "" : "  " + $0 }.joined(separator: "\n")
        #expect(demo.contains(printed), "scripts/demo's printed examples differ from the README's first runnable block")
    }
}
