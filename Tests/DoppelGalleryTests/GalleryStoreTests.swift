// SPDX-License-Identifier: MIT
import Foundation
import Testing
@testable import DoppelGallery

@Suite struct GalleryStoreTests {
    static let migrationsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Migrations").path

    static func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("doppel-gallery-\(UUID().uuidString).sqlite").path
    }

    static func sample(_ tag: Int, embedding: [Float]? = nil) -> NewSample {
        NewSample(image: [UInt8](repeating: UInt8(tag), count: 10), width: 2, height: 5, contentHash: "hash\(tag)", embedding: embedding)
    }

    static func open(_ path: String) throws -> GalleryStore {
        try GalleryStore(path: path, migrations: try Migrator.load(directory: migrationsDirectory))
    }

    @Test func migratesFromEmptyAndRecordsTheVersion() throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try Self.open(path)
        let versions = try store.database.query("SELECT version, name FROM doppel_migrations")
        #expect(versions == [[.integer(1), .text("0001_init")], [.integer(2), .text("0002_index_stamps")]])
        #expect(try store.database.query("PRAGMA journal_mode").first?.first?.text == "wal")
        #expect(try store.database.query("PRAGMA foreign_keys").first?.first?.integer == 1)
        #expect(try store.database.query("SELECT name FROM galleries").first?.first?.text == "default")
        // Opening again applies nothing twice.
        let again = try Self.open(path)
        #expect(try again.database.query("SELECT COUNT(*) FROM doppel_migrations").first?.first?.integer == 2)
    }

    @Test func aNewerDatabaseIsRefusedUntouched() throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try Self.open(path)
        try store.database.query("INSERT INTO doppel_migrations (version, name) VALUES (7, '0007_future')")
        #expect(throws: GalleryError.newerSchema(database: 7, supported: 2)) { try Self.open(path) }
    }

    /// The embeddings' stamp follows every change, cascaded deletes and upserts included, and
    /// a row written behind the store's back.
    @Test func theIndexStampFollowsEveryEmbeddingChange() throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try Self.open(path)
        try store.registerModel(id: "m", architecture: "dense(2)", dimension: 2, metric: "euclidean")
        #expect(try store.indexStamp(model: "m") == IndexStamp(rows: 0, sampleSum: 0, changes: 0))
        let a = try store.createIdentity(gallery: "default", externalID: "a", samples: [Self.sample(1, embedding: [1, 0]), Self.sample(2, embedding: [0, 1])], model: "m", actor: "t")
        let b = try store.createIdentity(gallery: "default", externalID: "b", samples: [Self.sample(3, embedding: [1, 1])], model: "m", actor: "t")
        let ids = a.sampleIDs + b.sampleIDs
        var stamp = try store.indexStamp(model: "m")
        #expect(stamp == IndexStamp(rows: 3, sampleSum: ids.reduce(0, +), changes: 3))
        try store.insertEmbeddings([(sample: ids[0], vector: [2, 2])], model: "m")  // re-embedded in place
        #expect(try store.indexStamp(model: "m") == IndexStamp(rows: 3, sampleSum: stamp.sampleSum, changes: 4))
        _ = try store.deleteIdentity(gallery: "default", externalID: "a", actor: "t")  // cascades to two embeddings
        stamp = try store.indexStamp(model: "m")
        #expect(stamp == IndexStamp(rows: 1, sampleSum: ids[2], changes: 6))
        try store.database.query("DELETE FROM embeddings WHERE sample_id = ?", [.integer(ids[2])])  // behind the store's back
        #expect(try store.indexStamp(model: "m") == IndexStamp(rows: 0, sampleSum: 0, changes: 7))
    }

    @Test func badMigrationFoldersAreRejected() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("doppel-migrations-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(throws: GalleryError.self) { try Migrator.load(directory: folder.path) }
        try "CREATE TABLE a (x);".write(to: folder.appendingPathComponent("0002_gap.sql"), atomically: true, encoding: .utf8)
        #expect(throws: GalleryError.badMigrations("0002_gap.sql: expected version 1")) { try Migrator.load(directory: folder.path) }
    }

    @Test func enrolmentIsAllOrNothingAndDuplicatesConflict() throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try Self.open(path)
        try store.registerModel(id: "m1", architecture: "dense(2)", dimension: 2, metric: "euclidean")
        let alice = try store.createIdentity(gallery: "default", externalID: "alice", displayName: "Alice",
                                             samples: [Self.sample(1, embedding: [1, 2]), Self.sample(2, embedding: [3, 4])], model: "m1", actor: "admin")
        #expect(alice.sampleIDs.count == 2)
        #expect(throws: GalleryError.conflict("identity 'alice' already exists in gallery 'default'")) {
            try store.createIdentity(gallery: "default", externalID: "alice", samples: [Self.sample(3)], actor: "admin")
        }
        // The same id in another gallery is another identity.
        try store.createIdentity(gallery: "tenant-b", externalID: "alice", samples: [Self.sample(1)], actor: "admin")
        // A duplicate image inside one request: nothing of the request stays.
        #expect(throws: GalleryError.self) {
            try store.createIdentity(gallery: "default", externalID: "bob", samples: [Self.sample(5), Self.sample(5)], actor: "admin")
        }
        #expect(try store.identities(gallery: "default").map(\.externalID) == ["alice"])
        #expect(throws: GalleryError.self) { try store.addSamples(gallery: "default", externalID: "alice", samples: [Self.sample(2)], actor: "admin") }
        #expect(throws: GalleryError.notFound("identity 'nobody' in gallery 'default'")) {
            try store.addSamples(gallery: "default", externalID: "nobody", samples: [Self.sample(9)], actor: "admin")
        }
        let vectors = try store.embeddings(model: "m1")
        #expect(vectors.map(\.vector) == [[1, 2], [3, 4]] && vectors.allSatisfy { $0.identity == "alice" && $0.gallery == "default" })
    }

    @Test func deletesCascadeAndTheAuditLogIsAppendOnly() throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try Self.open(path)
        try store.registerModel(id: "m1", architecture: "dense(2)", dimension: 2, metric: "euclidean")
        for i in 0..<5 {
            try store.createIdentity(gallery: "default", externalID: "id\(i)", samples: [Self.sample(i, embedding: [Float(i), 0])], model: "m1", actor: "admin")
        }
        let removed = try store.deleteIdentity(gallery: "default", externalID: "id2", actor: "admin")
        #expect(removed.count == 1)
        #expect(try store.database.query("SELECT COUNT(*) FROM samples").first?.first?.integer == 4)
        #expect(try store.database.query("SELECT COUNT(*) FROM embeddings").first?.first?.integer == 4)
        // Keyset pagination.
        #expect(try store.identities(gallery: "default", limit: 2).map(\.externalID) == ["id0", "id1"])
        #expect(try store.identities(gallery: "default", limit: 2, after: "id1").map(\.externalID) == ["id3", "id4"])
        let actions = try store.database.query("SELECT action FROM audit_log ORDER BY id").compactMap { $0.first?.text }
        #expect(actions == Array(repeating: "create_identity", count: 5) + ["delete_identity"])
        #expect(throws: SQLiteError.self) { try store.database.query("DELETE FROM audit_log") }
        #expect(throws: SQLiteError.self) { try store.database.query("UPDATE audit_log SET actor = 'x'") }
        #expect(try store.integrityCheck() == "ok")
    }

    @Test func theIndexLoadsWhatTheStoreHolds() throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try Self.open(path)
        try store.registerModel(id: "m1", architecture: "dense(2)", dimension: 2, metric: "euclidean")
        try store.registerModel(id: "m2", architecture: "dense(2)", dimension: 2, metric: "euclidean")
        for i in 0..<6 {
            try store.createIdentity(gallery: i < 3 ? "default" : "other", externalID: "id\(i)",
                                     samples: [Self.sample(2 * i, embedding: [Float(i), 0]), Self.sample(2 * i + 1, embedding: [Float(i), 1])],
                                     model: "m1", actor: "admin")
        }
        // Chunks of 5 rows: two full chunks and a partial one cross the reader-to-indexer hand-over.
        let indexes = try GalleryIndex.load(from: store, model: "m1", dimension: 2, metric: .euclidean, chunkRows: 5)
        #expect(indexes.keys.sorted() == ["default", "other"])
        #expect(indexes["default"]?.count == 6 && indexes["other"]?.count == 6)
        let nearest = indexes["other"]!.search([4.1, 0], k: 2)
        #expect(nearest.map(\.identity) == ["id4", "id5"])  // 0.1 and 0.9 away; id3 is 1.1
        #expect(nearest.first?.sample == 9)  // id4's first sample, [4, 0]
        #expect(indexes["default"]!.search([4.1, 0], k: 1).map(\.identity) == ["id2"])
        #expect(try GalleryIndex.load(from: store, model: "m2", dimension: 2, metric: .euclidean).isEmpty)
        // A sample added later is read after other identities' samples; the loaded index
        // (slots resolved once per identity, buffers recycled between chunks) must equal one
        // built sample by sample, centroids and norms included.
        _ = try store.addSamples(gallery: "default", externalID: "id0", samples: [Self.sample(40, embedding: [7, 3])], model: "m1", actor: "admin")
        for metric in [GalleryIndex.IndexMetric.euclidean, .cosine] {
            let loaded = try GalleryIndex.load(from: store, model: "m1", dimension: 2, metric: metric, chunkRows: 2)
            for (gallery, rows) in Dictionary(grouping: try store.embeddings(model: "m1"), by: \.gallery) {
                let reference = GalleryIndex(dimension: 2, metric: metric)
                for row in rows { reference.add(sample: row.sample, identity: row.identity, vector: row.vector) }
                #expect(loaded[gallery]?.count == reference.count && loaded[gallery]?.identityCount == reference.identityCount)
                for query: [Float] in [[6.5, 2.5], [0, 0.4], [3, -1]] {
                    for aggregation in [Aggregation.best, .meanOfBest(2), .centroid] {
                        #expect(loaded[gallery]?.search(query, k: 4, aggregation: aggregation) == reference.search(query, k: 4, aggregation: aggregation))
                    }
                    #expect(loaded[gallery]?.searchSamples(query, k: 10) == reference.searchSamples(query, k: 10))
                }
            }
        }
        // A vector of the wrong length is corrupt data: the load stops with the sample named.
        try store.database.query("UPDATE embeddings SET vector = x'00000000' WHERE sample_id = 3")
        #expect(throws: GalleryError.self) { try GalleryIndex.load(from: store, model: "m1", dimension: 2, metric: .euclidean, chunkRows: 5) }
    }
}
