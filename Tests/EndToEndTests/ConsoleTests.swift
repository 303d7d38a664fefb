// SPDX-License-Identifier: MIT
import DoppelImaging
import Foundation
import Testing
import TestSupport

/// The web console: the page's security headers and its promises (no inline script, nothing
/// from the API inserted as HTML, a small dependency-free script), the admin image route its
/// thumbnails use, and the whole console worked in a real browser (Tests/Browser).
@Suite(.serialized, .slow) struct ConsoleTests {
    static let key = ServeTests.adminKey

    /// A server on the test fixture's model in a fresh folder, both gone when `body` returns.
    static func withFixtureServer(_ body: (ServeTests.Fixture, URL, ServerProcess, ServeTests.Checked) throws -> Void) throws {
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try ServerProcess(model: ServeTests.fixture.model, folder: folder)
        defer { server.stop() }
        try body(ServeTests.fixture, folder, server, try ServeTests.Checked(server))
    }

    static func get(_ server: ServerProcess, _ path: String, key: String? = nil) throws -> RawClient.Response {
        try server.client().send("GET", path, headers: key.map { [("Authorization", "Bearer \($0)")] } ?? [])
    }

    @Test func thePageIsSelfContainedAndLockedDown() throws {
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try ServerProcess(model: ServeTests.fixture.model, folder: folder)
        defer { server.stop() }
        let page = try Self.get(server, "/")
        #expect(page.status == 200 && page.header("Content-Type") == "text/html; charset=utf-8")
        let policy = page.header("Content-Security-Policy") ?? ""
        #expect(policy.contains("default-src 'none'") && policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"))
        #expect(!policy.contains("unsafe"), "the policy allows inline or eval: \(policy)")
        #expect(page.header("X-Frame-Options") == "DENY" && page.header("Referrer-Policy") == "no-referrer")
        #expect(page.header("X-Content-Type-Options") == "nosniff")
        // No inline script or style for the policy to have to allow; nothing fetched elsewhere.
        let html = page.text
        #expect(!html.contains("<script>") && !html.contains("<style") && !html.contains("style="))
        #expect(html.range(of: #"\son[a-z]+\s*="#, options: .regularExpression) == nil, "an inline event handler")
        #expect(!html.contains("http://") && !html.contains("https://"))
        let script = try Self.get(server, "/console.js")
        #expect(script.status == 200 && script.header("Content-Type") == "text/javascript; charset=utf-8")
        #expect(script.body.count < 40_000, "console.js is \(script.body.count) bytes")
        for risky in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "import(", "https://"] {
            #expect(!script.text.contains(risky), "console.js uses \(risky)")
        }
        // Its one URL is the SVG namespace's name, which is never fetched.
        #expect(script.text.replacingOccurrences(of: "'http://www.w3.org/2000/svg'", with: "").contains("http://") == false)
        #expect(try Self.get(server, "/console.css").header("Content-Type") == "text/css; charset=utf-8")
        #expect(try Self.get(server, "/favicon.svg").status == 200)
    }

    @Test func theConsoleCanBeTurnedOff() throws {
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try ServerProcess(model: ServeTests.fixture.model, folder: folder,
                                       environment: ["DOPPEL_ADMIN_KEYS": Self.key, "DOPPEL_CONSOLE": "false"])
        defer { server.stop() }
        #expect(try Self.get(server, "/").status == 404)
        #expect(try Self.get(server, "/console.js").status == 404)
        #expect(try Self.get(server, "/v1/model").status == 200)
    }

    /// The thumbnails' route: stored bytes with their media type, scaled PNGs, admin only, and
    /// a clear answer for every wrong request. The listing's prefix filter and first sample.
    @Test func sampleImagesAndTheListingTheGalleryViewUses() throws {
        try Self.withFixtureServer { f, folder, server, api in
            let alice = try api.form("POST", "/v1/identities", [("id", nil, Array("alice".utf8)), ("images", "a.png", f.image(1, 0)), ("images", "b.png", f.image(1, 1))])
            let samples = alice.json["samples"] as? [Int] ?? []
            _ = try api.form("POST", "/v1/identities", [("id", nil, Array("alina".utf8)), ("images", "c.png", f.image(2, 0))])
            _ = try api.form("POST", "/v1/identities", [("id", nil, Array("bob".utf8)), ("images", "d.png", f.image(3, 0))])
            let path = "/v1/identities/alice/samples/\(samples[0])/image"

            let original = try Self.get(server, path, key: Self.key)
            #expect(original.status == 200 && original.header("Content-Type") == "image/png" && original.body == f.image(1, 0))
            #expect(original.header("Cache-Control")?.contains("private") == true)
            let thumbnail = try Self.get(server, path + "?max_side=16", key: Self.key)
            let decoded = try ImageDecoder.decode(thumbnail.body)
            #expect(thumbnail.header("Content-Type") == "image/png" && max(decoded.width, decoded.height) <= 16)
            #expect(try Self.get(server, path + "?format=png", key: Self.key).status == 200)
            // Admin only; bad parameters, someone else's sample and unknown samples are refused.
            #expect(try Self.get(server, path).status == 401)
            #expect(try Self.get(server, path + "?max_side=4", key: Self.key).errorCode == "invalid_max_side")
            #expect(try Self.get(server, path + "?format=gif", key: Self.key).errorCode == "invalid_format")
            #expect(try Self.get(server, "/v1/identities/bob/samples/\(samples[0])/image", key: Self.key).status == 404)
            #expect(try Self.get(server, "/v1/identities/alice/samples/999999/image", key: Self.key).status == 404)
            #expect(try Self.get(server, "/v1/identities/alice/samples/x/image", key: Self.key).errorCode == "invalid_sample")

            let listed = try api.call("GET", "/v1/identities?prefix=ali")
            let identities = listed.json["identities"] as? [[String: Any]] ?? []
            #expect(identities.map { $0["id"] as? String } == ["alice", "alina"])
            #expect(identities.first?["first_sample"] as? Int == samples[0])
            #expect(try api.call("GET", "/v1/identities?prefix=ali&limit=1&after=alice").json["identities"].map { ($0 as? [[String: Any]])?.count } == 1)
        }
    }

    @Test func imagesNotStoredAreSaidSo() throws {
        let f = ServeTests.fixture
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = folder.appendingPathComponent("doppel.json")
        try Data(#"{"store_images": false}"#.utf8).write(to: config)
        let server = try ServerProcess(model: f.model, folder: folder, arguments: ["--config", config.path])
        defer { server.stop() }
        let api = try ServeTests.Checked(server)
        let created = try api.form("POST", "/v1/identities", [("id", nil, Array("carol".utf8)), ("images", "a.png", f.image(4, 0))])
        let sample = (created.json["samples"] as? [Int])?.first ?? 0
        #expect(try Self.get(server, "/v1/identities/carol/samples/\(sample)/image", key: Self.key).errorCode == "image_not_stored")
    }

    /// The console's script, as the file it is, parses (`node --check`; scripts/bootstrap
    /// --test installs Node.js for this).
    @Test func theConsoleScriptParses() throws {
        let script = ServerProcess.repository.appendingPathComponent("Sources/DoppelService/Resources/console.js").path
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/node"), "/usr/bin/node is missing: scripts/bootstrap --test installs it")
        let (status, output) = try runProgram("/usr/bin/node", ["--check", script])
        #expect(status == 0, "\(output)")
    }

    /// Tests/Browser/console_test.py in headless Chromium through Selenium: verify, search,
    /// the admin key, enroll from a file, its thumbnail, delete, the model view; no console
    /// error. Screenshots go to .build/console-screenshots.
    @Test func theConsoleWorksInARealBrowser() throws {
        try Self.withFixtureServer { f, folder, server, api in
            for identity in 0..<6 {
                _ = try api.form("POST", "/v1/identities", [("id", nil, Array("glyph\(identity)".utf8)), ("images", "0.png", f.image(identity, 0)),
                                                        ("images", "1.png", f.image(identity, 1))])
            }
            let images = try [(0, 2), (0, 3), (9, 0)].map { identity, index -> String in
                let file = folder.appendingPathComponent("upload-\(identity)-\(index).png")
                try Data(f.image(identity, index)).write(to: file)
                return file.path
            }
            let cache = ProcessInfo.processInfo.environment["DOPPEL_CACHE_DIR"] ?? (NSHomeDirectory() + "/.cache/doppel")
            let python = cache + "/venv/bin/python"
            try #require(FileManager.default.isExecutableFile(atPath: python), "\(python) is missing: scripts/bootstrap --test makes it (Selenium for the browser test)")
            let screenshots = ServerProcess.repository.appendingPathComponent(".build/console-screenshots").path
            let (status, text) = try runProgram(python, [ServerProcess.repository.appendingPathComponent("Tests/Browser/console_test.py").path,
                                                         "http://127.0.0.1:\(server.port)", Self.key] + images + [screenshots])
            #expect(status == 0, "the browser test failed: \(text)")
            for view in ["verify", "search", "gallery", "model"] {
                #expect(FileManager.default.fileExists(atPath: "\(screenshots)/console-\(view).png"))
            }
        }
    }
}
