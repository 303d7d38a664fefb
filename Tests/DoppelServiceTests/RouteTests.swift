// SPDX-License-Identifier: MIT
import DoppelHTTP
import DoppelImaging
import DoppelNN
import Foundation
import Logging
import Testing
@testable import DoppelService

/// The routes in-process, through `Service.respond(to:)`: no socket, no subprocess, so each
/// case costs milliseconds. The model is a small untrained network with a threshold (what the
/// routes do with answers does not depend on a model being good), the gallery a SQLite file
/// in a scratch folder. EndToEndTests drive the real binary over HTTP.
@Suite struct RouteTests {
    static let adminKey = "route-tests-admin-key-0123456789"
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A service on a fresh folder: `flatten dense(8) l2norm` over 8x8 grey images, euclidean,
    /// threshold 0.5.
    final class Fixture {
        let folder: URL
        let service: Service

        init() throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("doppel-routes-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let input = TensorShape(channels: 1, height: 8, width: 8)
            let network = try Network(architecture: Architecture(parsing: "flatten dense(8) l2norm"), input: input, seed: 3)
            let spec = String(decoding: try JSONEncoder().encode(InputSpec(channels: 1, height: 8, width: 8)), as: UTF8.self)
            var metadata = ModelMetadata(architecture: network.architecture, inputShape: input, objective: "test", metric: .euclidean, inputSpec: spec)
            metadata.threshold = 0.5
            var file = ModelFile(network: network, head: nil, metadata: metadata)
            let model = folder.appendingPathComponent("model.safetensors").path
            try file.save(to: model)
            var configuration = ServiceConfiguration()
            configuration.model = model
            configuration.database = folder.appendingPathComponent("gallery.sqlite").path
            configuration.dataDirectory = folder.appendingPathComponent("data").path
            configuration.migrations = RouteTests.repository.appendingPathComponent("Migrations").path
            configuration.adminKeys = [RouteTests.adminKey]
            service = try Service(configuration: configuration, logger: Logger(label: "route-tests"))
            try service.prepare()
        }

        deinit {
            service.stop()
            try? FileManager.default.removeItem(at: folder)
        }

        /// A request as the parser would hand it over, `Host: localhost`.
        func send(_ method: String, _ path: String, query: [(String, String)] = [], admin: Bool = false,
                  contentType: String? = nil, body: [UInt8] = []) -> (status: Int, json: [String: Any]) {
            var headers = [("Host", "localhost"), ("Content-Length", String(body.count))]
            if admin { headers.append(("Authorization", "Bearer \(RouteTests.adminKey)")) }
            if let contentType { headers.append(("Content-Type", contentType)) }
            let response = service.respond(to: HTTPRequest(method: method, path: path, query: query.map { (name: $0.0, value: $0.1) },
                                                          headers: HTTPHeaders(headers), body: body))
            return (response.status, ((try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]) ?? [:])
        }
    }

    /// An 8x8 grey PNG: a bright square at one of 16 places, so images differ.
    static func image(_ n: Int) -> [UInt8] {
        var image = Image(width: 8, height: 8, layout: .gray, filledWith: 20)
        let (x, y) = (2 * (n % 4), 2 * ((n / 4) % 4))
        for dy in 0..<2 { for dx in 0..<2 { image.pixels[(y + dy) * 8 + x + dx] = 235 } }
        return PNGEncoder.encode(image)
    }

    static func code(_ json: [String: Any]) -> String? { (json["error"] as? [String: Any])?["code"] as? String }

    @Test func enrollThenSearchFindsTheIdentityAndVerifyMatchesAnImageWithItself() throws {
        let f = try Fixture()
        let created = f.send("POST", "/v1/identities", query: [("id", "square0")], admin: true, contentType: "image/png", body: Self.image(0))
        #expect(created.status == 201 && created.json["id"] as? String == "square0", "\(created)")
        #expect(f.send("POST", "/v1/identities", query: [("id", "square9")], admin: true, contentType: "image/png", body: Self.image(9)).status == 201)
        let search = f.send("POST", "/v1/search", query: [("k", "2")], contentType: "image/png", body: Self.image(0))
        let first = (search.json["matches"] as? [[String: Any]])?.first
        #expect(search.status == 200 && first?["identity"] as? String == "square0" && (first?["distance"] as? Double ?? 1) < 1e-5, "\(search)")
        let same = f.send("POST", "/v1/identities/square0/verify", contentType: "image/png", body: Self.image(0))
        #expect(same.status == 200 && same.json["match"] as? Bool == true, "\(same)")
        #expect(f.send("GET", "/readyz").json["samples"] as? Int == 2)
    }

    @Test func errorsCarryTheirCodeAndStatus() throws {
        let f = try Fixture()
        let cases: [(response: (status: Int, json: [String: Any]), status: Int, code: String)] = [
            (f.send("POST", "/v1/search", contentType: "image/png", body: Array("not an image".utf8)), 400, "invalid_image"),
            (f.send("POST", "/v1/search", query: [("k", "0")], contentType: "image/png", body: Self.image(1)), 400, "invalid_k"),
            (f.send("POST", "/v1/search", query: [("treshold", "1")], contentType: "image/png", body: Self.image(1)), 400, "unknown_field"),
            (f.send("POST", "/v1/search", query: [("face", "largest")], contentType: "image/png", body: Self.image(1)), 400, "invalid_face"),
            (f.send("POST", "/v1/verify", contentType: "image/png", body: Self.image(1)), 400, "missing_image"),
            (f.send("POST", "/v1/identities", query: [("id", "x")], contentType: "image/png", body: Self.image(1)), 401, "unauthorized"),
            (f.send("GET", "/v1/identities/nobody", admin: true), 404, "not_found"),
            (f.send("POST", "/v1/search", contentType: "text/plain", body: Array("x".utf8)), 415, "unsupported_media_type"),
            (f.send("POST", "/v1/identities", query: [("id", "a/b")], admin: true, contentType: "image/png", body: Self.image(1)), 400, "invalid_id"),
        ]
        for (response, status, code) in cases {
            #expect(response.status == status && Self.code(response.json) == code, "\(status) \(code): \(response)")
        }
        // Each code is the one its ErrorCode case carries with that status.
        for (_, status, code) in cases {
            #expect(ErrorCode.allCases.contains { $0.code == code && $0.status == status }, "\(status) \(code)")
        }
    }

    @Test func aDuplicateIdIsAConflictAndChangesNothing() throws {
        let f = try Fixture()
        #expect(f.send("POST", "/v1/identities", query: [("id", "a")], admin: true, contentType: "image/png", body: Self.image(2)).status == 201)
        let again = f.send("POST", "/v1/identities", query: [("id", "a")], admin: true, contentType: "image/png", body: Self.image(3))
        #expect(again.status == 409 && Self.code(again.json) == "conflict", "\(again)")
        let shown = f.send("GET", "/v1/identities/a", admin: true)
        #expect((shown.json["samples"] as? [[String: Any]])?.count == 1, "\(shown)")
        #expect(f.send("DELETE", "/v1/identities/a", admin: true).status == 200)
        #expect(f.send("GET", "/v1/identities/a", admin: true).status == 404)
    }
}
