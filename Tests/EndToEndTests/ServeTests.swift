// SPDX-License-Identifier: MIT
import DoppelGallery
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `doppel serve` as users drive it: enroll over HTTP, verify and search with images in every
/// input form, restart and find everything still there, and every documented error status
/// with its JSON body; each response checked against the server's own OpenAPI document.
@Suite(.serialized, .slow) struct ServeTests {
    static let adminKey = "test-admin-key-0123456789abcdef"

    /// A tiny model trained once on generated glyphs (12 identities of 8 images, 16x16).
    struct Fixture {
        let folder: URL
        let model: String
        func image(_ identity: Int, _ index: Int) -> [UInt8] {
            [UInt8](try! Data(contentsOf: folder.appendingPathComponent("group\(identity / 6)/glyph\(identity)/\(index).png")))
        }
    }

    static let fixture: Fixture = {
        let folder = try! TrainCommandTests.makeGlyphFolder()
        ScratchFolder.removeAtExit(folder.path)
        let model = folder.appendingPathComponent("model.safetensors").path
        let train = try! DoppelBinary.run([
            "train", "--data", folder.path, "--preset", "faces", "--input", "1x16x16",
            "--arch", "conv(8,3,pad=1) relu maxpool(2) flatten dense(16) l2norm", "--iterations", "60", "--batch", "16", "--out", model,
            // A model without test-time mirroring (the faces preset has it): MirrorAverageTests
            // checks that such a model embeds an image and its mirror differently, as before.
            "--no-mirror-average",
        ])
        precondition(train.status == 0, "training the fixture failed: \(train.stderr)")
        return Fixture(folder: folder, model: model)
    }()

    static func freshFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("doppel-serve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// A client that checks every response against the OpenAPI document.
    struct Checked {
        let server: ServerProcess
        let contract: OpenAPIConformance

        init(_ server: ServerProcess) throws {
            self.server = server
            contract = try OpenAPIConformance(json: try server.client().send("GET", "/openapi.json").body)
        }

        @discardableResult
        func call(_ method: String, _ path: String, pattern: String? = nil, key: String? = ServeTests.adminKey, contentType: String? = nil,
                  body: [UInt8] = [], sourceLocation: SourceLocation = #_sourceLocation) throws -> RawClient.Response {
            var headers = [(String, String)]()
            if let key { headers.append(("Authorization", "Bearer \(key)")) }
            if let contentType { headers.append(("Content-Type", contentType)) }
            let response = try server.client().send(method, path, headers: headers, body: body)
            let route = pattern ?? String(path.split(separator: "?").first ?? "")
            let violations = contract.check(pattern: route, method: method, status: response.status, body: response.body)
            #expect(violations.isEmpty, "\(method) \(path) -> \(response.status): \(violations) \(response.text.prefix(300))", sourceLocation: sourceLocation)
            #expect(response.header("Content-Type") != nil, sourceLocation: sourceLocation)
            return response
        }

        func json(_ method: String, _ path: String, pattern: String? = nil, key: String? = ServeTests.adminKey, _ object: [String: Any],
                  sourceLocation: SourceLocation = #_sourceLocation) throws -> RawClient.Response {
            try call(method, path, pattern: pattern, key: key, contentType: "application/json", body: Body.json(object), sourceLocation: sourceLocation)
        }

        func form(_ method: String, _ path: String, pattern: String? = nil, key: String? = ServeTests.adminKey,
                  _ parts: [(name: String, filename: String?, bytes: [UInt8])], sourceLocation: SourceLocation = #_sourceLocation) throws -> RawClient.Response {
            let (type, body) = Body.multipart(parts)
            return try call(method, path, pattern: pattern, key: key, contentType: type, body: body, sourceLocation: sourceLocation)
        }
    }

    @Test func enrollVerifySearchInEveryFormAndSurviveARestart() throws {
        let f = Self.fixture
        let folder = try Self.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var server = try ServerProcess(model: f.model, folder: folder)
        var api = try Checked(server)

        // Enroll: multipart with two images, JSON base64, multipart then a raw-body sample.
        let created = try api.form("POST", "/v1/identities", [("id", nil, Array("glyph0".utf8)), ("name", nil, Array("Glyph zero".utf8)),
                                                              ("images", "0.png", f.image(0, 0)), ("images", "1.png", f.image(0, 1))])
        #expect(created.status == 201 && (created.json["samples"] as? [Int])?.count == 2 && created.json["name"] as? String == "Glyph zero")
        let second = try api.json("POST", "/v1/identities", ["id": "glyph3", "images": [Body.base64(f.image(3, 0))], "metadata": ["team": "b"]])
        #expect(second.status == 201)
        #expect(try api.form("POST", "/v1/identities", [("id", nil, Array("glyph7".utf8)), ("image", "a.png", f.image(7, 0))]).status == 201)
        let raw = try api.call("POST", "/v1/identities/glyph7/samples", pattern: "/v1/identities/{id}/samples", contentType: "image/png", body: f.image(7, 1))
        #expect(raw.status == 201 && (raw.json["samples"] as? [Int])?.count == 1)

        // Verify in both two-image forms; an image with itself is distance 0 and a match.
        let same = try api.form("POST", "/v1/verify", key: nil, [("image1", "a.png", f.image(0, 2)), ("image2", "b.png", f.image(0, 2))])
        // The two copies sit at different places of one batch: equal up to the network's rounding.
        let sameBound = try RoundingBound.distance(model: f.model)
        #expect(same.status == 200 && (same.json["distance"] as? Double ?? 1) <= sameBound && same.json["match"] as? Bool == true)
        let pair = try api.json("POST", "/v1/verify", key: nil, ["image1": Body.base64(f.image(0, 2)), "image2": Body.base64(f.image(3, 2))])
        #expect(pair.status == 200 && pair.json["model"] is String && pair.json["similarity"] is Double && pair.json["threshold"] is Double)

        // Search in all three forms with an enrolled image: that identity first, decision match.
        let searches = [
            try api.form("POST", "/v1/search?k=2", [("image", "q.png", f.image(3, 0))]),
            try api.json("POST", "/v1/search", ["image": Body.base64(f.image(3, 0)), "k": 2]),
            try api.call("POST", "/v1/search?k=2", contentType: "image/png", body: f.image(3, 0)),
        ]
        for search in searches {
            let matches = search.json["matches"] as? [[String: Any]] ?? []
            #expect(search.status == 200 && matches.count == 2 && matches.first?["identity"] as? String == "glyph3")
            #expect(search.json["decision"] as? String == "match" || search.json["decision"] as? String == "ambiguous")
            #expect(Set(matches.map { $0["identity"] as? String }).count == matches.count, "one row per identity")
        }
        let embedded = try api.call("POST", "/v1/embed", key: nil, contentType: "application/octet-stream", body: f.image(5, 0))
        #expect((embedded.json["embedding"] as? [Double])?.count == 16 && embedded.json["dimension"] as? Int == 16)
        let oneToOne = try api.form("POST", "/v1/identities/glyph0/verify", pattern: "/v1/identities/{id}/verify", [("image", "q.png", f.image(0, 1))])
        #expect(oneToOne.status == 200 && oneToOne.json["match"] as? Bool == true && oneToOne.json["identity"] as? String == "glyph0")
        #expect(oneToOne.json["distance"] is Double && oneToOne.json["sample"] is Int)

        // Without a key (loopback, no client keys): compare only. Search lists only identities
        // that match, an identity check says only whether it matches, and an id that does not
        // exist answers as one that does not match; the threshold may not be raised.
        let anonymous = try api.form("POST", "/v1/search?k=5", key: nil, [("image", "q.png", f.image(3, 0))])
        let full = try api.form("POST", "/v1/search?k=5", [("image", "q.png", f.image(3, 0))]).json["matches"] as? [[String: Any]] ?? []
        let listed = anonymous.json["matches"] as? [[String: Any]] ?? []
        #expect(anonymous.status == 200 && full.count == 3 && !listed.isEmpty)
        #expect(listed.map { $0["identity"] as? String } == full.filter { $0["match"] as? Bool == true }.map { $0["identity"] as? String })
        let anonymousOne = try api.form("POST", "/v1/identities/glyph0/verify", pattern: "/v1/identities/{id}/verify", key: nil, [("image", "q.png", f.image(0, 1))])
        #expect(anonymousOne.json["match"] as? Bool == true && anonymousOne.json["distance"] == nil && anonymousOne.json["sample"] == nil)
        let nobody = try api.form("POST", "/v1/identities/nobody/verify", pattern: "/v1/identities/{id}/verify", key: nil, [("image", "q.png", f.image(0, 1))])
        #expect(nobody.status == 200 && nobody.json["match"] as? Bool == false && nobody.json["distance"] == nil)
        let raised = try api.form("POST", "/v1/search?threshold=1.5", key: nil, [("image", "q.png", f.image(3, 0))])
        #expect(raised.status == 403 && raised.errorCode == "forbidden")

        // Read back, paginate, delete a sample.
        let shown = try api.call("GET", "/v1/identities/glyph0", pattern: "/v1/identities/{id}")
        #expect((shown.json["samples"] as? [Any])?.count == 2 && (shown.json["spread"] as? [String: Any])?["samples"] as? Int == 2)
        let page1 = try api.call("GET", "/v1/identities?limit=2")
        #expect((page1.json["identities"] as? [[String: Any]])?.map { $0["id"] as? String } == ["glyph0", "glyph3"] && page1.json["next"] as? String == "glyph3")
        let page2 = try api.call("GET", "/v1/identities?limit=2&after=glyph3")
        #expect((page2.json["identities"] as? [[String: Any]])?.map { $0["id"] as? String } == ["glyph7"] && page2.json["next"] is NSNull)
        let sampleID = (raw.json["samples"] as! [Int])[0]
        #expect(try api.call("DELETE", "/v1/identities/glyph7/samples/\(sampleID)", pattern: "/v1/identities/{id}/samples/{sample}").status == 200)
        #expect(try api.call("DELETE", "/v1/identities/glyph3", pattern: "/v1/identities/{id}").status == 200)
        let before = try api.form("POST", "/v1/search?k=5", [("image", "q.png", f.image(0, 0))]).json["matches"] as? [[String: Any]]

        // Restart: everything acknowledged is still there, and search answers the same.
        #expect(server.stop() == 0, "graceful exit: \(server.stderr)")
        server = try ServerProcess(model: f.model, folder: folder)
        api = try Checked(server)
        let list = try api.call("GET", "/v1/identities").json["identities"] as? [[String: Any]]
        #expect(list?.map { $0["id"] as? String } == ["glyph0", "glyph7"] && list?.map { $0["samples"] as? Int } == [2, 1])
        let after = try api.form("POST", "/v1/search?k=5", [("image", "q.png", f.image(0, 0))]).json["matches"] as? [[String: Any]]
        #expect(after?.map { $0["identity"] as? String } == before?.map { $0["identity"] as? String })
        #expect(after?.map { $0["sample"] as? Int } == before?.map { $0["sample"] as? Int })
        #expect(try api.call("GET", "/readyz", key: nil).json["samples"] as? Int == 3)
        let metrics = try api.call("GET", "/metrics", key: nil).text
        #expect(metrics.contains("doppel_http_requests_total{") && metrics.contains("doppel_embed_batch_size_images_bucket"))
        #expect(server.stop() == 0)
    }

    @Test func everyDocumentedErrorAnswersWithItsStatusAndJSON() throws {
        let f = Self.fixture
        let folder = try Self.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try ServerProcess.configured(#"{"limits": {"max_body_bytes": 65536, "max_k": 10, "header_timeout_ms": 300, "max_connections": 8}}"#, model: f.model, folder: folder)
        let api = try Checked(server)
        #expect(try api.form("POST", "/v1/identities", [("id", nil, Array("glyph0".utf8)), ("image", "a.png", f.image(0, 0))]).status == 201)

        func expectError(_ response: RawClient.Response, _ status: Int, _ code: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(response.status == status && response.errorCode == code, "\(response.status) \(response.text)", sourceLocation: sourceLocation)
            #expect((response.json["error"] as? [String: Any])?["message"] is String, sourceLocation: sourceLocation)
        }
        let png = f.image(1, 0)
        // 400s
        expectError(try api.call("POST", "/v1/verify", key: nil, contentType: "application/json", body: Array("{not json".utf8)), 400, "invalid_json")
        expectError(try api.json("POST", "/v1/verify", key: nil, ["image1": "%%%", "image2": Body.base64(png)]), 400, "invalid_base64")
        expectError(try api.json("POST", "/v1/verify", key: nil, ["image1": 5, "image2": Body.base64(png)]), 400, "invalid_image")
        expectError(try api.json("POST", "/v1/verify", key: nil, ["image1": Body.base64(png)]), 400, "missing_image")
        expectError(try api.json("POST", "/v1/verify", key: nil, ["image1": Body.base64(png), "image2": Body.base64(Array(png.prefix(40)))]), 400, "invalid_image")
        expectError(try api.json("POST", "/v1/verify", key: nil, ["image1": Body.base64(png), "image2": Body.base64(png), "treshold": 1]), 400, "unknown_field")
        expectError(try api.call("POST", "/v1/search?k=11", key: nil, contentType: "image/png", body: png), 400, "invalid_k")
        expectError(try api.call("POST", "/v1/search?k=0", key: nil, contentType: "image/png", body: png), 400, "invalid_k")
        expectError(try api.call("POST", "/v1/search?threshold=NaN", key: nil, contentType: "image/png", body: png), 400, "invalid_threshold")
        expectError(try api.call("POST", "/v1/search?threshold=-1", key: nil, contentType: "image/png", body: png), 400, "invalid_threshold")
        expectError(try api.form("POST", "/v1/identities", [("id", nil, Array("a/b".utf8)), ("image", "a.png", png)]), 400, "invalid_id")
        expectError(try api.form("POST", "/v1/identities", [("id", nil, [0x61, 0x01]), ("image", "a.png", png)]), 400, "invalid_id")
        expectError(try api.form("POST", "/v1/identities", [("id", nil, [0xFF, 0xFE]), ("image", "a.png", png)]), 400, "invalid_field")
        expectError(try api.call("POST", "/v1/verify", key: nil, contentType: "multipart/form-data; boundary=x", body: Array("--y\r\n".utf8)), 400, "invalid_multipart")
        // 401, 403
        expectError(try api.call("GET", "/v1/identities", key: nil), 401, "unauthorized")
        expectError(try api.call("GET", "/v1/identities", key: "not-the-admin-key-at-all"), 403, "forbidden")
        // 404, 405
        expectError(try api.call("GET", "/v1/identities/nobody", pattern: "/v1/identities/{id}"), 404, "not_found")
        expectError(try api.call("POST", "/v1/identities/nobody/verify", pattern: "/v1/identities/{id}/verify", contentType: "image/png", body: png), 404, "not_found")
        let unknownRoute = try server.client().send("GET", "/v2/nothing")
        expectError(unknownRoute, 404, "not_found")
        let wrongMethod = try server.client().send("PUT", "/v1/verify")
        expectError(wrongMethod, 405, "method_not_allowed")
        #expect(wrongMethod.header("Allow") == "POST")
        // 408: headers that never finish
        let slow = try server.client()
        try slow.write("POST /v1/verify HTTP/1.1\r\nHost: localhost\r\n")
        expectError(try slow.readResponse(), 408, "request_timeout")
        // 409: the id again, and the same image twice
        expectError(try api.form("POST", "/v1/identities", [("id", nil, Array("glyph0".utf8)), ("image", "a.png", png)]), 409, "conflict")
        expectError(try api.call("POST", "/v1/identities/glyph0/samples", pattern: "/v1/identities/{id}/samples", contentType: "image/png", body: f.image(0, 0)), 409, "conflict")
        // 411: a POST with no length
        let noLength = try server.client()
        try noLength.write("POST /v1/embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\n\r\n")
        expectError(try noLength.readResponse(), 411, "length_required")
        // 413: body over the configured limit, image over the pixel limit
        expectError(try api.call("POST", "/v1/embed", key: nil, contentType: "image/png", body: [UInt8](repeating: 0, count: 70_000)), 413, "payload_too_large")
        var bomb = Array("P5\n100000 100000\n255\n".utf8)
        bomb += [0, 0, 0]
        expectError(try api.call("POST", "/v1/embed", key: nil, contentType: "application/octet-stream", body: bomb), 413, "image_too_large")
        // 415
        expectError(try api.call("POST", "/v1/embed", key: nil, contentType: "text/plain", body: png), 415, "unsupported_media_type")
        // 422: strict enrollment of an image nearer another identity than its own
        let strict = try api.form("POST", "/v1/identities", [("id", nil, Array("copy".utf8)), ("strict", nil, Array("true".utf8)), ("image", "a.png", f.image(0, 1))])
        expectError(strict, 422, "enrollment_quality")
        #expect(((strict.json["error"] as? [String: Any])?["warnings"] as? [[String: Any]])?.first?["code"] as? String == "closer_to_other_identity")
        // 431
        let bigHeader = try server.client().send("GET", "/healthz", headers: [("X-Big", String(repeating: "a", count: 20_000))])
        expectError(bigHeader, 431, "headers_too_large")
        // 503: connections past the limit
        var held = [RawClient]()
        for _ in 0..<8 { held.append(try server.client()) }
        usleep(100_000)
        let excess = try server.client().send("GET", "/healthz")
        expectError(excess, 503, "overloaded")
        held.removeAll()
        usleep(300_000)

        // None of it changed the gallery, and the server still serves.
        let list = try api.call("GET", "/v1/identities").json["identities"] as? [[String: Any]]
        #expect(list?.map { $0["id"] as? String } == ["glyph0"] && list?.first?["samples"] as? Int == 1)
        // 500: the database broken behind the server's back (its audit table gone) is an
        // internal error with a JSON body, nothing more said, and the server goes on.
        let outside = try SQLiteDatabase(path: folder.appendingPathComponent("gallery.sqlite").path)
        try outside.execute("DROP TABLE audit_log")
        let broken = try api.form("POST", "/v1/identities", [("id", nil, Array("later".utf8)), ("image", "a.png", f.image(2, 0))])
        expectError(broken, 500, "internal")
        #expect(!broken.text.contains("audit"), "internal details stay in the log")
        #expect(try api.call("GET", "/healthz", key: nil).status == 200)
        #expect(server.stop() == 0)
    }

    @Test func adminRoutesNeedTheKeyAndTheGeneratedKeyIsPrivateAndNeverLogged() throws {
        let f = Self.fixture
        let folder = try Self.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try ServerProcess(model: f.model, folder: folder, environment: [:])
        let keyFile = folder.appendingPathComponent("data/admin.key").path
        let attributes = try FileManager.default.attributesOfItem(atPath: keyFile)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let key = try String(contentsOfFile: keyFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key.count == 64)
        let admin: [(String, String)] = [("POST", "/v1/identities"), ("GET", "/v1/identities"), ("GET", "/v1/identities/x"), ("DELETE", "/v1/identities/x"),
                                         ("POST", "/v1/identities/x/samples"), ("DELETE", "/v1/identities/x/samples/1")]
        for (method, path) in admin {
            let none = try server.client().send(method, path)
            #expect(none.status == 401, "\(method) \(path) without a key: \(none.status)")
            let wrong = try server.client().send(method, path, headers: [("Authorization", "Bearer " + String(key.reversed()))])
            #expect(wrong.status == 403, "\(method) \(path) with a wrong key: \(wrong.status)")
            let prefix = try server.client().send(method, path, headers: [("Authorization", "Bearer " + key.dropLast())])
            #expect(prefix.status == 403)
        }
        let allowed = try server.client().send("GET", "/v1/identities", headers: [("Authorization", "Bearer \(key)")])
        #expect(allowed.status == 200)
        #expect(server.stop() == 0)
        #expect(server.stderr.contains(keyFile), "the log says where the key is")
        #expect(!server.stderr.contains(key), "the key itself is never logged")
        #expect(server.stderr.contains("GET /v1/identities 200"), "access log lines")
    }

    @Test func badConfigurationAndModelsStopAtStartWithAMessage() throws {
        let folder = try Self.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = folder.appendingPathComponent("bad.json")
        try Data(#"{"prot": 80}"#.utf8).write(to: config)
        let unknown = try DoppelBinary.run(["serve", "--config", config.path])
        #expect(unknown.status != 0 && unknown.stderr.contains("unknown field prot"), "\(unknown.stderr)")
        try Data(#"{"batching": {"max_batch": 0}}"#.utf8).write(to: config)
        let range = try DoppelBinary.run(["serve", "--config", config.path])
        #expect(range.status != 0 && range.stderr.contains("batching.max_batch must be in 1...4096"), "\(range.stderr)")
        let corrupt = folder.appendingPathComponent("corrupt.safetensors")
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.fixture.model)))
        try Data(good.prefix(good.count / 2)).write(to: corrupt)
        let truncated = try DoppelBinary.run(["serve", "--model", corrupt.path, "--db", folder.appendingPathComponent("g.sqlite").path,
                                              "--migrations", ServerProcess.repository.appendingPathComponent("Migrations").path],
                                             environment: ["DOPPEL_ADMIN_KEYS": Self.adminKey])
        #expect(truncated.status != 0 && truncated.stderr.contains("cannot load the model"), "\(truncated.stderr)")
        // No model at all (a fresh container, a typo): what to do, in words.
        let missing = try DoppelBinary.run(["serve", "--model", folder.appendingPathComponent("absent.safetensors").path,
                                            "--db", folder.appendingPathComponent("g.sqlite").path],
                                           environment: ["DOPPEL_ADMIN_KEYS": Self.adminKey])
        #expect(missing.status != 0 && missing.stderr.contains("no model file at") && missing.stderr.contains("DOPPEL_MODEL"), "\(missing.stderr)")
    }

    /// A server started with a model the gallery has not indexed re-embeds the stored images
    /// before it is ready; without stored images it refuses to serve a mixed index.
    @Test func aNewModelReindexesTheGalleryAndAMixedIndexIsRefused() throws {
        let f = Self.fixture
        let folder = try Self.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let other = folder.appendingPathComponent("other.safetensors").path
        let train = try DoppelBinary.run([
            "train", "--data", f.folder.path, "--preset", "faces", "--input", "1x16x16", "--seed", "9",
            "--arch", "conv(4,3,pad=1) relu maxpool(2) flatten dense(8) l2norm", "--iterations", "20", "--batch", "16", "--out", other,
        ])
        #expect(train.status == 0, "\(train.stderr)")
        var server = try ServerProcess(model: f.model, folder: folder)
        for id in 0..<3 {
            let api = try Checked(server)
            #expect(try api.form("POST", "/v1/identities", [("id", nil, Array("glyph\(id)".utf8)), ("images", "a.png", f.image(id, 0)),
                                                            ("images", "b.png", f.image(id, 1))]).status == 201)
        }
        #expect(server.stop() == 0)
        server = try ServerProcess(model: other, folder: folder)
        let api = try Checked(server)
        #expect(try api.call("GET", "/readyz", key: nil).json["samples"] as? Int == 6)
        let model = try api.call("GET", "/v1/model", key: nil).json["id"] as? String
        let search = try api.form("POST", "/v1/search", key: nil, [("image", "q.png", f.image(2, 0))])
        #expect((search.json["matches"] as? [[String: Any]])?.first?["identity"] as? String == "glyph2")
        // The query is a stored image, so under the re-embedded index it is at distance 0 up to
        // the network's rounding (the reindex embeds it in a batch, the search alone); a stale
        // embedding of the old model would be 0.1 or more away.
        let nearest = (search.json["matches"] as? [[String: Any]])?.first?["distance"] as? Double ?? 1
        let nearestBound = try RoundingBound.distance(model: other)
        #expect(search.json["model"] as? String == model && nearest <= nearestBound, "nearest at \(nearest)")
        #expect(server.stop() == 0)
        #expect(server.stderr.contains("reindexed 6 stored images with model \(model ?? "?")"), "\(server.stderr)")

        // The same with images not stored: the old model's samples cannot be re-embedded.
        let bare = folder.appendingPathComponent("bare")
        try FileManager.default.createDirectory(at: bare, withIntermediateDirectories: true)
        let config = bare.appendingPathComponent("config.json")
        try Data(#"{"store_images": false}"#.utf8).write(to: config)
        var first = try ServerProcess(model: f.model, folder: bare, arguments: ["--config", config.path])
        #expect(try Checked(first).form("POST", "/v1/identities", [("id", nil, Array("glyph0".utf8)), ("image", "a.png", f.image(0, 0))]).status == 201)
        #expect(first.stop() == 0)
        first = try ServerProcess(model: other, folder: bare, arguments: ["--config", config.path], waitReady: false)
        let status = first.waitForExit()
        #expect(first.process.terminationReason == .exit && status == 1, "exit \(status)")
        #expect(first.stderr.contains("1 samples have no embedding under model"), "\(first.stderr)")
    }
}
