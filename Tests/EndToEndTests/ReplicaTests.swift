// SPDX-License-Identifier: MIT
import DoppelNN
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Several `doppel serve` replicas sharing one PostgreSQL gallery, as users run them: what one
/// writes the others see; nothing acknowledged is lost when a replica is killed mid-write or
/// PostgreSQL goes away; every replica's index ends equal to the database.
@Suite(.serialized, .slow) struct ReplicaTests {
    static let key = ServeTests.adminKey

    /// The digest `GET /v1/index/digest` gives, computed from the database: SHA-256 over the
    /// sorted "gallery TAB identity TAB sample" lines of the embeddings under `model`.
    static func databaseDigest(_ server: PostgresServer, url: String, model: String) throws -> (samples: Int, digest: String) {
        let database = PostgresServer.databaseName(in: url)
        let output = try server.psql(database, """
            SELECT g.name || E'\\t' || i.external_id || E'\\t' || s.id FROM embeddings e JOIN samples s ON s.id = e.sample_id
            JOIN identities i ON i.id = s.identity_id JOIN galleries g ON g.id = i.gallery_id WHERE e.model_id = '\(model)'
            """)
        let lines = output.split(separator: "\n").map { String($0) + "\n" }.sorted()
        var hash = SHA256()
        for line in lines { hash.update(Array(line.utf8)) }
        return (lines.count, SHA256.hex(hash.finalize()))
    }

    static func indexDigest(_ replica: ServerProcess) -> (samples: Int, digest: String)? {
        guard let response = try? replica.client().send("GET", "/v1/index/digest", headers: [("Authorization", "Bearer \(key)")]),
              response.status == 200 else { return nil }
        return (response.json["samples"] as? Int ?? -1, response.json["digest"] as? String ?? "")
    }

    static func enroll(_ replica: ServerProcess, id: String, image: [UInt8]) -> Int {
        let (type, body) = Body.multipart([("id", nil, Array(id.utf8)), ("images", "a.png", image)])
        do {
            return try replica.client().send("POST", "/v1/identities", headers: [("Authorization", "Bearer \(key)"), ("Content-Type", type)], body: body).status
        } catch {
            // -1 stands for "no HTTP answer"; what the client saw goes to the log for the failure's diagnosis.
            FileHandle.standardError.write(Data("enroll \(id): no answer: \(error)\n".utf8))
            return -1
        }
    }

    static func topMatch(_ replica: ServerProcess, _ image: [UInt8]) -> (String, Double)? {
        let (type, body) = Body.multipart([("image", "q.png", image)])
        guard let response = try? replica.client().send("POST", "/v1/search?k=1", headers: [("Content-Type", type)], body: body), response.status == 200,
              let first = (response.json["matches"] as? [[String: Any]])?.first else { return nil }
        return (first["identity"] as? String ?? "", first["distance"] as? Double ?? -1)
    }

    /// Polls `condition` every 20 ms for up to `seconds`; whether it came true.
    static func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    static func model(_ replica: ServerProcess) throws -> String {
        try replica.client().send("GET", "/v1/model").json["id"] as? String ?? "?"
    }

    @Test func whatOneReplicaWritesTheOtherSees() throws {
        let f = ServeTests.fixture
        let server = try PostgresServer.shared()
        let url = try server.createDatabase()
        let (folderA, folderB) = (try ServeTests.freshFolder(), try ServeTests.freshFolder())
        defer { [folderA, folderB].forEach { try? FileManager.default.removeItem(at: $0) } }
        // A password in the URL (the test server trusts local sockets and ignores it) must never be logged.
        let a = try ServerProcess(model: f.model, folder: folderA, database: url.replacingOccurrences(of: "doppel@", with: "doppel:hunter2-secret@"))
        let b = try ServerProcess(model: f.model, folder: folderB, database: url)
        defer { a.stop(); b.stop() }
        #expect(Self.enroll(a, id: "glyph3", image: f.image(3, 0)) == 201)
        // The writer sees its write at once; the other replica within its propagation delay.
        #expect(Self.topMatch(a, f.image(3, 0))?.0 == "glyph3")
        #expect(Self.eventually { Self.topMatch(b, f.image(3, 0))?.0 == "glyph3" }, "replica B never saw the enrolment")
        let ready = try b.client().send("GET", "/readyz").json
        #expect((ready["replication"] as? [String: Any])?["change_log"] as? String == "reachable", "\(ready)")
        // Samples added on B reach A; a delete on A reaches B.
        let (type, body) = Body.multipart([("images", "b.png", f.image(3, 1))])
        #expect(try b.client().send("POST", "/v1/identities/glyph3/samples", headers: [("Authorization", "Bearer \(Self.key)"), ("Content-Type", type)], body: body).status == 201)
        #expect(Self.eventually { Self.indexDigest(a)?.samples == 2 })
        #expect(try a.client().send("DELETE", "/v1/identities/glyph3", headers: [("Authorization", "Bearer \(Self.key)")]).status == 200)
        #expect(Self.eventually { Self.indexDigest(b)?.samples == 0 }, "replica B still holds the deleted identity")
        #expect(Self.topMatch(b, f.image(3, 0)) == nil)
        // And a replica started later loads everything, then follows.
        #expect(Self.enroll(a, id: "glyph5", image: f.image(5, 0)) == 201)
        let folderC = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folderC) }
        let c = try ServerProcess(model: f.model, folder: folderC, database: url)
        defer { c.stop() }
        #expect(Self.topMatch(c, f.image(5, 0))?.0 == "glyph5")
        #expect(Self.enroll(b, id: "glyph7", image: f.image(7, 0)) == 201)
        #expect(Self.eventually { Self.topMatch(c, f.image(7, 0))?.0 == "glyph7" })
        let expected = try Self.databaseDigest(server, url: url, model: try Self.model(a))
        #expect(Self.eventually { [a, b, c].allSatisfy { Self.indexDigest($0).map { $0 == expected } ?? false } })
        a.stop()
        #expect(a.stderr.contains("postgresql://") && !a.stderr.contains("hunter2-secret"), "the database password was logged: \(a.stderr.prefix(400))")
    }

    /// 20 rounds: both replicas take enrolment bursts while one of them is killed with SIGKILL
    /// mid-burst and started again. Every acknowledged enrolment is in PostgreSQL and in both
    /// replicas' indexes; each index equals the database.
    @Test func killedReplicasLoseNothingAcknowledged() throws {
        let f = ServeTests.fixture
        let server = try PostgresServer.shared()
        let url = try server.createDatabase()
        let folders = [try ServeTests.freshFolder(), try ServeTests.freshFolder()]
        defer { folders.forEach { try? FileManager.default.removeItem(at: $0) } }
        var replicas = try folders.map { try ServerProcess(model: f.model, folder: $0, database: url) }
        let acknowledged = SendableBox<Set<String>>()
        acknowledged.value = []
        let lock = NSLock()
        let image = f.image(2, 0)
        for round in 0..<20 {
            let victim = round % 2
            let ports = replicas.map(\.self)
            nonisolated(unsafe) let targets = ports
            let group = DispatchGroup()
            for side in 0..<2 {
                group.enter()
                DispatchQueue.global().async {
                    for i in 0..<6 {
                        let id = "r\(round)-s\(side)-\(i)"
                        if Self.enroll(targets[side], id: id, image: image) == 201 { lock.withLock { _ = acknowledged.value!.insert(id) } }
                    }
                    group.leave()
                }
            }
            usleep(useconds_t(30_000 + (round * 7919) % 60_000))
            kill(replicas[victim].process.processIdentifier, SIGKILL)
            group.wait()
            replicas[victim].process.waitUntilExit()
            replicas[victim] = try ServerProcess(model: f.model, folder: folders[victim], database: url)
        }
        defer { replicas.forEach { $0.stop() } }
        let ids = acknowledged.value ?? []
        #expect(ids.count > 60, "only \(ids.count) enrolments were acknowledged")
        let database = PostgresServer.databaseName(in: url)
        let stored = Set(try server.psql(database, "SELECT external_id FROM identities").split(separator: "\n").map(String.init))
        #expect(ids.subtracting(stored).isEmpty, "acknowledged but not stored: \(ids.subtracting(stored).sorted().prefix(5))")
        let expected = try Self.databaseDigest(server, url: url, model: try Self.model(replicas[0]))
        #expect(expected.samples == stored.count)
        print("replica kills: \(ids.count) enrolments acknowledged, \(ids.subtracting(stored).count) lost, \(stored.count) stored, digest \(expected.digest.prefix(12))")
        for replica in replicas {
            #expect(Self.eventually { Self.indexDigest(replica).map { $0 == expected } ?? false },
                    "a replica's index differs from the database: \(String(describing: Self.indexDigest(replica))) vs \(expected)")
        }
    }

    /// PostgreSQL stopped and started under load: writes answer 503 storage_unavailable while
    /// it is down, searches go on from memory, nothing acknowledged is lost, replicas converge.
    @Test func postgresGoingAwayUnderLoad() throws {
        let f = ServeTests.fixture
        let server = try PostgresServer()  // its own: the shared one must stay up for other tests
        defer { server.destroy() }
        let url = server.url()
        let folders = [try ServeTests.freshFolder(), try ServeTests.freshFolder()]
        defer { folders.forEach { try? FileManager.default.removeItem(at: $0) } }
        let replicas = try folders.map { try ServerProcess(model: f.model, folder: $0, database: url) }
        defer { replicas.forEach { $0.stop() } }
        #expect(Self.enroll(replicas[0], id: "seed", image: f.image(4, 0)) == 201)
        #expect(Self.eventually { Self.topMatch(replicas[1], f.image(4, 0))?.0 == "seed" })
        let statuses = SendableBox<[String: Int]>()
        statuses.value = [:]
        let searches = SendableBox<[Int]>()
        searches.value = []
        let lock = NSLock()
        let running = SendableBox<Bool>()
        running.value = true
        nonisolated(unsafe) let targets = replicas
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            var i = 0
            while running.value == true {
                let id = "load-\(i)"
                let status = Self.enroll(targets[i % 2], id: id, image: f.image(6, 0))
                lock.withLock { statuses.value![id] = status }
                i += 1
                usleep(20_000)
            }
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async {
            while running.value == true {
                let status = Self.topMatch(targets[1], f.image(4, 0)) != nil ? 200 : 0
                lock.withLock { searches.value!.append(status) }
                usleep(20_000)
            }
            group.leave()
        }
        usleep(500_000)
        server.stop()
        let downAt = lock.withLock { statuses.value!.count }
        usleep(1_500_000)
        // While it is down: writes refused with 503 storage_unavailable, searches answered.
        let whileDown = lock.withLock { statuses.value!.filter { Int($0.key.dropFirst(5))! > downAt + 2 }.map(\.value) }
        #expect(!whileDown.isEmpty && whileDown.allSatisfy { $0 == 503 }, "writes while PostgreSQL was down: \(whileDown)")
        let recentSearches = lock.withLock { searches.value!.suffix(20) }
        #expect(recentSearches.allSatisfy { $0 == 200 }, "searches failed while PostgreSQL was down")
        try server.start()
        usleep(2_000_000)
        running.value = false
        group.wait()
        let all = statuses.value ?? [:]
        #expect(all.values.contains(201) && all.values.contains(503))
        // Writes succeed again after the restart.
        #expect(Self.eventually { Self.enroll(replicas[0], id: "after-\(UUID().uuidString.prefix(6))", image: f.image(6, 1)) == 201 })
        let acknowledged = Set(all.filter { $0.value == 201 }.keys)
        let stored = Set(try server.psql("doppel", "SELECT external_id FROM identities").split(separator: "\n").map(String.init))
        #expect(acknowledged.subtracting(stored).isEmpty, "acknowledged but lost: \(acknowledged.subtracting(stored).sorted().prefix(5))")
        print("PostgreSQL restart: \(acknowledged.count) enrolments acknowledged, \(all.values.count { $0 == 503 }) answered 503 while it was down, \(acknowledged.subtracting(stored).count) lost")
        let expected = try Self.databaseDigest(server, url: url, model: try Self.model(replicas[0]))
        for replica in replicas {
            #expect(Self.eventually(15) { Self.indexDigest(replica).map { $0 == expected } ?? false }, "a replica did not converge")
        }
    }

    /// Replicas started together on a model the gallery has not indexed: one of them embeds the
    /// stored images (under PostgreSQL's advisory lock), the others wait and load the result.
    @Test func aNewModelIsEmbeddedOnceAcrossReplicas() throws {
        let f = ServeTests.fixture
        let server = try PostgresServer.shared()
        let url = try server.createDatabase()
        let folders = try (0..<3).map { _ in try ServeTests.freshFolder() }
        defer { folders.forEach { try? FileManager.default.removeItem(at: $0) } }
        let first = try ServerProcess(model: f.model, folder: folders[0], database: url)
        for id in 0..<4 {
            #expect(Self.enroll(first, id: "glyph\(id)", image: f.image(id, 0)) == 201)
        }
        #expect(first.stop() == 0)
        let other = folders[0].appendingPathComponent("other.safetensors").path
        let train = try DoppelBinary.run([
            "train", "--data", f.folder.path, "--preset", "faces", "--input", "1x16x16", "--seed", "9",
            "--arch", "conv(4,3,pad=1) relu maxpool(2) flatten dense(8) l2norm", "--iterations", "20", "--batch", "16", "--out", other,
        ])
        #expect(train.status == 0, "\(train.stderr)")
        let started = SendableBox<[Int: ServerProcess]>()
        started.value = [:]
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            if let replica = try? ServerProcess(model: other, folder: folders[i + 1], database: url) {
                lock.withLock { started.value![i] = replica }
            }
        }
        let replicas = (started.value ?? [:]).sorted { $0.key < $1.key }.map(\.value)
        try #require(replicas.count == 2, "a replica did not start")
        let expected = try Self.databaseDigest(server, url: url, model: try Self.model(replicas[0]))
        #expect(expected.samples == 4)
        for replica in replicas { #expect(Self.indexDigest(replica).map { $0 == expected } ?? false) }
        replicas.forEach { $0.stop() }
        let embedded = replicas.filter { $0.stderr.contains("reindexed 4 stored images") }
        #expect(embedded.count == 1, "replicas that embedded the gallery: \(embedded.count)")
    }
}
