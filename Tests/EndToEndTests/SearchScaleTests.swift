// SPDX-License-Identifier: MIT
import DoppelGallery
import Foundation
import Testing
import TestSupport

/// Search under load and at scale, through the real server: concurrent searches batched into
/// one pass answer exactly what each would alone; compact indexes; the index snapshot written
/// beside the database, used when it matches and rebuilt when it does not.
@Suite(.serialized, .slow) struct SearchScaleTests {
    /// Every glyph identity enrolled with its first two images (one where they are the same
    /// picture: a horizontal glyph does not wobble).
    static func enrollAll(_ server: ServerProcess) throws {
        let f = ServeTests.fixture
        for id in 0..<12 {
            var parts: [(name: String, filename: String?, bytes: [UInt8])] = [("id", nil, Array("glyph\(id)".utf8)), ("images", "a.png", f.image(id, 0))]
            if f.image(id, 1) != f.image(id, 0) { parts.append(("images", "b.png", f.image(id, 1))) }
            let response = try ServeTests.Checked(server).form("POST", "/v1/identities", parts)
            #expect(response.status == 201, "\(response.text)")
        }
    }

    static func search(_ server: ServerProcess, _ image: [UInt8], k: Int = 5) throws -> [(String, Double)] {
        let (type, body) = Body.multipart([("image", "q.png", image)])
        let response = try server.client().send("POST", "/v1/search?k=\(k)", headers: [("Content-Type", type)], body: body)
        #expect(response.status == 200, "\(response.text)")
        return (response.json["matches"] as? [[String: Any]] ?? []).map { ($0["identity"] as? String ?? "", $0["distance"] as? Double ?? -1) }
    }

    static func config(_ folder: URL, _ json: String) throws -> String {
        let path = folder.appendingPathComponent("config-\(UUID().uuidString).json")
        try Data(json.utf8).write(to: path)
        return path.path
    }

    @Test func concurrentSearchesAreBatchedAndAnswerWhatEachWouldAlone() throws {
        let f = ServeTests.fixture
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // The reference: batching off.
        var server = try ServerProcess(model: f.model, folder: folder, arguments: ["--config", try Self.config(folder, #"{"search_batching": {"max_batch": 1}}"#)])
        try Self.enrollAll(server)
        let queries = (0..<12).flatMap { id in (2..<6).map { f.image(id, $0) } }
        let distanceBound = try RoundingBound.distance(model: f.model)
        let alone = try queries.map { try Self.search(server, $0, k: 4) }
        #expect(server.stop() == 0)
        // Batched: 48 searches from 12 threads at once, the batch waiting up to 20 ms for company.
        server = try ServerProcess(model: f.model, folder: folder,
                                   arguments: ["--config", try Self.config(folder, #"{"search_batching": {"max_batch": 64, "max_wait_us": 20000}}"#)])
        let results = SendableBox<[Int: [(String, Double)]]>()
        results.value = [:]
        let lock = NSLock()
        let port = server.port
        DispatchQueue.concurrentPerform(iterations: 12) { thread in
            for i in stride(from: thread, to: queries.count, by: 12) {
                guard let client = try? RawClient(port: port) else { continue }
                let (type, body) = Body.multipart([("image", "q.png", queries[i])])
                let response = try? client.send("POST", "/v1/search?k=4", headers: [("Content-Type", type)], body: body)
                let matches = (response?.json["matches"] as? [[String: Any]] ?? []).map { ($0["identity"] as? String ?? "", $0["distance"] as? Double ?? -1) }
                lock.withLock { results.value![i] = matches }
            }
        }
        for (i, expected) in alone.enumerated() {
            let got = results.value?[i] ?? []
            #expect(got.map(\.0) == expected.map(\.0), "query \(i): batched \(got.map(\.0)), alone \(expected.map(\.0))")
            // Each query embedded in another batch: its distances move by at most its own shift.
            #expect(zip(got, expected).allSatisfy { abs($0.1 - $1.1) <= distanceBound }, "query \(i): distances differ")
        }
        // Batches of more than one search happened.
        let metrics = try server.client().send("GET", "/metrics").text
        let counts = metrics.split(separator: "\n").filter { $0.hasPrefix("doppel_search_batch_size_queries_bucket{le=\"1.0\"}") || $0.hasPrefix("doppel_search_batch_size_queries_count") }
        let single = Double(counts.first { $0.contains("le=") }?.split(separator: " ").last ?? "") ?? -1
        let total = Double(counts.first { $0.contains("_count") }?.split(separator: " ").last ?? "") ?? -1
        #expect(total > 0 && single < total, "every search ran alone: \(counts)")
        #expect(server.stop() == 0)
    }

    @Test func int8WithRerankingAnswersAsFloat32AndReportsItsSize() throws {
        let f = ServeTests.fixture
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var server = try ServerProcess(model: f.model, folder: folder)
        try Self.enrollAll(server)
        let queries = (0..<12).map { f.image($0, 3) }
        let exact = try queries.map { try Self.search(server, $0) }
        #expect(server.stop() == 0)
        let config = try Self.config(folder, #"{"index": {"precision": "int8", "rerank": 4, "snapshot": false}}"#)
        server = try ServerProcess(model: f.model, folder: folder, arguments: ["--config", config])
        let distanceBound = try RoundingBound.distance(model: f.model)
        let ready = try server.client().send("GET", "/readyz").json["index"] as? [String: Any]
        #expect(ready?["precision"] as? String == "int8")
        // 23 rows is below the size at which int8 learns its ranges from the gallery, and a
        // server trains it on what it loads: one byte per value.
        #expect(ready?["bytes_per_vector"] as? Int == 16, "\(ready ?? [:])")
        for (query, want) in zip(queries, exact) {
            let got = try Self.search(server, query)
            #expect(got.map(\.0) == want.map(\.0))
            // Re-ranked from the stored float32 vectors by the routine the float32 index uses; the
            // query alone may embed differently between the two servers' batches.
            #expect(zip(got, want).allSatisfy { abs($0.1 - $1.1) <= distanceBound }, "re-ranked distances are the exact ones")
        }
        let metrics = try server.client().send("GET", "/metrics").text
        #expect(metrics.contains("doppel_index_vector_bytes 16"), "\(metrics.prefix(400))")
        #expect(server.stop() == 0)
    }

    /// The snapshot is written on shutdown, read on the next start, and rebuilt (never
    /// trusted) when a sample was added behind the server's back or the file was cut short.
    @Test func theIndexSnapshotIsUsedOnlyWhenItMatchesTheDatabase() throws {
        let f = ServeTests.fixture
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var server = try ServerProcess(model: f.model, folder: folder)
        try Self.enrollAll(server)
        let model = try server.client().send("GET", "/v1/model").json["id"] as? String ?? "?"
        #expect(server.stop() == 0)
        let snapshot = folder.appendingPathComponent("gallery.sqlite.\(model).index")
        #expect(server.stderr.contains("index snapshot written"), "\(server.stderr)")
        #expect(FileManager.default.fileExists(atPath: snapshot.path))

        server = try ServerProcess(model: f.model, folder: folder)
        #expect(try server.client().send("GET", "/readyz").json["samples"] as? Int == 23)
        #expect(server.stop() == 0)
        #expect(server.stderr.contains("index snapshot") && server.stderr.contains("loaded in"), "\(server.stderr)")

        // A sample enrolled behind the server's back (another process wrote the database).
        let store = try SQLiteStore(path: folder.appendingPathComponent("gallery.sqlite").path,
                                     migrations: try Migrator.load(directory: ServerProcess.repository.appendingPathComponent("Migrations").path))
        let vector = try #require(try store.vectors(samples: [1], model: model)[1])
        _ = try store.createIdentity(gallery: "default", externalID: "intruder",
                                     samples: [NewSample(image: f.image(5, 7), width: 16, height: 16, contentHash: "intruder", embedding: vector)],
                                     model: model, actor: "test")
        server = try ServerProcess(model: f.model, folder: folder)
        #expect(try server.client().send("GET", "/readyz").json["samples"] as? Int == 24)
        #expect(server.stop() == 0)
        #expect(server.stderr.contains("not used: stale"), "\(server.stderr)")

        // Cut short: refused as damaged, rebuilt from the database, and written anew.
        let bytes = try Data(contentsOf: snapshot)
        try bytes.prefix(bytes.count - 100).write(to: snapshot)
        server = try ServerProcess(model: f.model, folder: folder)
        #expect(try server.client().send("GET", "/readyz").json["samples"] as? Int == 24)
        let hits = try Self.search(server, f.image(7, 0))
        #expect(hits.first?.0 == "glyph7")
        #expect(server.stop() == 0)
        #expect(server.stderr.contains("not used: damaged"), "\(server.stderr)")
        #expect(server.stderr.contains("index snapshot written"), "\(server.stderr)")
    }
}
