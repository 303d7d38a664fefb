// SPDX-License-Identifier: MIT
import Foundation
import Testing
import TestSupport
@testable import DoppelGallery

/// What every gallery store promises, run once per backend: SQLite (a file) and PostgreSQL (a
/// server the tests start in a scratch folder).
@Suite struct GalleryStoreContractTests {
    enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case sqlite, postgresql
        var testDescription: String { rawValue }
    }

    static let postgresMigrations = URL(fileURLWithPath: SQLiteStoreTests.migrationsDirectory).appendingPathComponent("postgres").path

    /// A fresh, migrated store of `backend`, with a way to count a table's rows behind its back.
    static func store(_ backend: Backend) throws -> (store: any GalleryStore, count: (String) throws -> Int) {
        switch backend {
        case .sqlite:
            let store = try SQLiteStoreTests.open(try ScratchFolder.make("doppel-contract").appendingPathComponent("gallery.sqlite").path)
            return (store, { Int(try store.database.query("SELECT count(*) FROM \($0)").first?.first?.integer ?? -1) })
        case .postgresql:
            let server = try PostgresServer.shared()
            let url = try server.createDatabase()
            let store = try PostgresStore(url: url, migrations: try Migrator.load(directory: postgresMigrations))
            return (store, { Int(try store.connection.query("SELECT count(*) FROM \($0)").first?.first?.integer ?? -1) })
        }
    }

    static func sample(_ tag: Int, embedding: [Float]? = nil) -> NewSample { SQLiteStoreTests.sample(tag, embedding: embedding) }

    @Test(arguments: Backend.allCases)
    func enrolmentIsAllOrNothingAndDuplicatesConflict(_ backend: Backend) throws {
        let (store, count) = try Self.store(backend)
        try store.registerModel(id: "m1", architecture: "dense(2)", dimension: 2, metric: "euclidean")
        try store.registerModel(id: "m1", architecture: "dense(2)", dimension: 2, metric: "euclidean")  // idempotent
        let alice = try store.createIdentity(gallery: "default", externalID: "alice", displayName: "Alice", metadata: #"{"team": "b"}"#,
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
        #expect(try count("samples") == 3)
        #expect(throws: GalleryError.self) { try store.addSamples(gallery: "default", externalID: "alice", samples: [Self.sample(2)], actor: "admin") }
        #expect(throws: GalleryError.notFound("identity 'nobody' in gallery 'default'")) {
            try store.addSamples(gallery: "default", externalID: "nobody", samples: [Self.sample(9)], actor: "admin")
        }
        let record = try store.identity(gallery: "default", externalID: "alice")
        #expect(record.displayName == "Alice" && record.metadata == #"{"team": "b"}"# && record.sampleIDs == alice.sampleIDs)
        #expect(record.createdAt?.hasSuffix("Z") == true && record.createdAt?.count == 24, "\(record.createdAt ?? "nil")")
        #expect(try store.vectors(samples: alice.sampleIDs, model: "m1") == [alice.sampleIDs[0]: [1, 2], alice.sampleIDs[1]: [3, 4]])
        #expect(try store.hasIdentity(gallery: "default", externalID: "alice") && !(try store.hasIdentity(gallery: "default", externalID: "bob")))
        let added = try store.addSamples(gallery: "default", externalID: "alice", samples: [Self.sample(7, embedding: [5, 6])], model: "m1", actor: "admin")
        #expect(try store.samples(gallery: "default", externalID: "alice").map(\.id) == alice.sampleIDs + added)
        #expect(try store.sampleImage(gallery: "default", externalID: "alice", sample: added[0]) == Self.sample(7).image)
        #expect(throws: GalleryError.self) { try store.sampleImage(gallery: "tenant-b", externalID: "alice", sample: added[0]) }
    }

    @Test(arguments: Backend.allCases)
    func deletesCascadePaginationAndTheAuditLog(_ backend: Backend) throws {
        let (store, count) = try Self.store(backend)
        try store.registerModel(id: "m1", architecture: "dense(2)", dimension: 2, metric: "euclidean")
        for i in 0..<5 {
            try store.createIdentity(gallery: "default", externalID: "id\(i)", samples: [Self.sample(i, embedding: [Float(i), 0])], model: "m1", actor: "admin")
        }
        let removed = try store.deleteIdentity(gallery: "default", externalID: "id2", actor: "admin")
        #expect(removed.count == 1)
        #expect(try count("samples") == 4 && count("embeddings") == 4)
        #expect(try store.identities(gallery: "default", limit: 2, after: nil).map(\.externalID) == ["id0", "id1"])
        #expect(try store.identities(gallery: "default", limit: 2, after: "id1").map(\.externalID) == ["id3", "id4"])
        // A prefix narrows the listing; `_` and `%` are plain characters, not patterns.
        #expect(try store.identities(gallery: "default", limit: 10, after: nil, prefix: "id4").map(\.externalID) == ["id4"])
        #expect(try store.identities(gallery: "default", limit: 10, after: nil, prefix: "id_").isEmpty)
        #expect(try store.identities(gallery: "default", limit: 10, after: nil, prefix: "id%").isEmpty)
        let id4 = try store.identity(gallery: "default", externalID: "id4").sampleIDs[0]
        try store.deleteSample(gallery: "default", externalID: "id4", sample: id4, actor: "admin")
        #expect(throws: GalleryError.self) { try store.deleteSample(gallery: "default", externalID: "id4", sample: id4, actor: "admin") }
        #expect(try count("audit_log") == 7)
        #expect(throws: (any Error).self) {
            switch backend {
            case .sqlite: try (store as! SQLiteStore).database.query("DELETE FROM audit_log")
            case .postgresql: try (store as! PostgresStore).connection.query("DELETE FROM audit_log")
            }
        }
        let stats = try store.stats()
        #expect(stats.galleries.first { $0.name == "default" }?.identities == 4 && stats.embeddings.first?.count == 3)
        #expect(try store.integrityCheck() == "ok")
    }

    /// The index loads what the store holds, chunk by chunk, equal to one built row by row.
    @Test(arguments: Backend.allCases)
    func theIndexLoadsWhatTheStoreHolds(_ backend: Backend) throws {
        let (store, _) = try Self.store(backend)
        try store.registerModel(id: "m1", architecture: "dense(2)", dimension: 2, metric: "euclidean")
        try store.registerModel(id: "m2", architecture: "dense(2)", dimension: 2, metric: "euclidean")
        var rows = [(sample: Int64, gallery: String, identity: String, vector: [Float])]()
        for i in 0..<6 {
            let vectors: [[Float]] = [[Float(i), 0], [Float(i), 1]]
            let record = try store.createIdentity(gallery: i < 3 ? "default" : "other", externalID: "id\(i)",
                                                  samples: [Self.sample(2 * i, embedding: vectors[0]), Self.sample(2 * i + 1, embedding: vectors[1])],
                                                  model: "m1", actor: "admin")
            for (sample, vector) in zip(record.sampleIDs, vectors) { rows.append((sample, record.gallery, "id\(i)", vector)) }
        }
        let later = try store.addSamples(gallery: "default", externalID: "id0", samples: [Self.sample(40, embedding: [7, 3])], model: "m1", actor: "admin")
        rows.append((later[0], "default", "id0", [7, 3]))
        for metric in [GalleryIndex.IndexMetric.euclidean, .cosine] {
            // Chunks of 2 rows cross the reader-to-indexer hand-over many times.
            let loaded = try GalleryIndex.load(from: store, model: "m1", dimension: 2, metric: metric, chunkRows: 2)
            #expect(loaded.keys.sorted() == ["default", "other"])
            for (gallery, galleryRows) in Dictionary(grouping: rows, by: \.gallery) {
                let reference = GalleryIndex(dimension: 2, metric: metric)
                for row in galleryRows { reference.add(sample: row.sample, identity: row.identity, vector: row.vector) }
                #expect(loaded[gallery]?.count == reference.count && loaded[gallery]?.identityCount == reference.identityCount)
                for query: [Float] in [[6.5, 2.5], [0, 0.4], [3, -1]] {
                    for aggregation in [Aggregation.best, .meanOfBest(2), .centroid] {
                        #expect(loaded[gallery]?.search(query, k: 4, aggregation: aggregation) == reference.search(query, k: 4, aggregation: aggregation))
                    }
                }
            }
        }
        #expect(try GalleryIndex.load(from: store, model: "m2", dimension: 2, metric: .euclidean).isEmpty)
        // A vector of the wrong length is corrupt data: the load stops.
        switch backend {
        case .sqlite: try (store as! SQLiteStore).database.query("UPDATE embeddings SET vector = x'00000000' WHERE sample_id = \(rows[2].sample)")
        case .postgresql: try (store as! PostgresStore).connection.query("UPDATE embeddings SET vector = '\\x00000000' WHERE sample_id = \(rows[2].sample)")
        }
        #expect(throws: GalleryError.self) { try GalleryIndex.load(from: store, model: "m1", dimension: 2, metric: .euclidean, chunkRows: 5) }
    }

    /// Re-embedding: samples missing an embedding under a new model are found, their vectors
    /// stored (or replaced) in one transaction, and the stamp follows every change.
    @Test(arguments: Backend.allCases)
    func reembeddingAndTheIndexStamp(_ backend: Backend) throws {
        let (store, _) = try Self.store(backend)
        try store.registerModel(id: "old", architecture: "dense(2)", dimension: 2, metric: "euclidean")
        try store.registerModel(id: "new", architecture: "dense(2)", dimension: 2, metric: "euclidean")
        let a = try store.createIdentity(gallery: "default", externalID: "a", samples: [Self.sample(1, embedding: [1, 0]), Self.sample(2, embedding: [0, 1])], model: "old", actor: "t")
        #expect(try store.indexStamp(model: "old") == IndexStamp(rows: 2, sampleSum: a.sampleIDs.reduce(0, +), changes: 2))
        #expect(try store.indexStamp(model: "new") == IndexStamp(rows: 0, sampleSum: 0, changes: 0))
        // The start-up's shortcut: stamp rows equal to the sample count means none is missing.
        #expect(try store.sampleCount() == 2)
        let missing = try store.samplesMissingEmbedding(model: "new", after: 0, limit: 10)
        #expect(missing.map(\.sample) == a.sampleIDs && missing.first?.image == Self.sample(1).image)
        #expect(try store.samplesMissingEmbedding(model: "new", after: a.sampleIDs[0], limit: 10).map(\.sample) == [a.sampleIDs[1]])
        try store.insertEmbeddings(missing.map { ($0.sample, [9, 9]) }, model: "new")
        #expect(try store.samplesMissingEmbedding(model: "new", after: 0, limit: 10).isEmpty)
        try store.insertEmbeddings([(a.sampleIDs[0], [8, 8])], model: "new")  // replaced in place
        #expect(try store.vectors(samples: [a.sampleIDs[0]], model: "new")[a.sampleIDs[0]] == [8, 8])
        #expect(try store.indexStamp(model: "new") == IndexStamp(rows: 2, sampleSum: a.sampleIDs.reduce(0, +), changes: 3))
        #expect(try store.samplesWithoutImages(missing: "new") == 0)
        try store.deleteIdentity(gallery: "default", externalID: "a", actor: "t")
        #expect(try store.indexStamp(model: "new") == IndexStamp(rows: 0, sampleSum: 0, changes: 5))
        #expect(try store.sampleCount() == 0)
    }

    /// The vector reader works on its own connection beside the store's.
    @Test(arguments: Backend.allCases)
    func theVectorReaderReadsStoredVectors(_ backend: Backend) throws {
        let (store, _) = try Self.store(backend)
        try store.registerModel(id: "m", architecture: "dense(2)", dimension: 2, metric: "euclidean")
        let a = try store.createIdentity(gallery: "default", externalID: "a", samples: [Self.sample(1, embedding: [1, 2])], model: "m", actor: "t")
        let reader = try store.makeVectorReader(model: "m")
        #expect(try reader.vectors(of: a.sampleIDs + [999]) == [a.sampleIDs[0]: [1, 2]])
    }

    /// Listing follows byte order on both backends (whatever PostgreSQL's collation), a prefix
    /// of several-byte characters narrows it, and reads of many samples at once (more than one
    /// statement's worth of ids) return each.
    @Test(arguments: Backend.allCases)
    func listingIsInByteOrderAndManySamplesReadAtOnce(_ backend: Backend) throws {
        let (store, _) = try Self.store(backend)
        let ids = ["zoe", "Émile", "a", "Zoë", "émile-2", "B"]
        for (tag, id) in ids.enumerated() { try store.createIdentity(gallery: "default", externalID: id, samples: [Self.sample(tag)], actor: "t") }
        let byteOrder = ids.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        #expect(byteOrder == ["B", "Zoë", "a", "zoe", "Émile", "émile-2"])
        #expect(try store.identities(gallery: "default", limit: 10).map(\.externalID) == byteOrder)
        #expect(try store.identities(gallery: "default", limit: 2, after: "Zoë").map(\.externalID) == ["a", "zoe"])
        #expect(try store.identities(gallery: "default", limit: 10, after: nil, prefix: "é").map(\.externalID) == ["émile-2"])
        #expect(try store.identities(gallery: "default", limit: 10, after: nil, prefix: "Zo").map(\.externalID) == ["Zoë"])

        try store.registerModel(id: "m", architecture: "dense(1)", dimension: 1, metric: "euclidean")
        let many = (0..<1_100).map { Self.sample(1_000 + $0, embedding: [Float($0)]) }
        let record = try store.createIdentity(gallery: "default", externalID: "many", samples: many, model: "m", actor: "t")
        let vectors = try store.vectors(samples: record.sampleIDs, model: "m")
        #expect(vectors.count == 1_100 && zip(record.sampleIDs, 0...).allSatisfy { vectors[$0] == [Float($1)] })
    }

    /// A deleted sample's id is never given to another: a client or the audit log may still
    /// name it. (SQLite numbers a new row above the largest present, so it took the newest
    /// deleted sample's id before migration 0003.)
    @Test(arguments: Backend.allCases)
    func sampleIDsAreNeverReused(_ backend: Backend) throws {
        let (store, _) = try Self.store(backend)
        let a = try store.createIdentity(gallery: "default", externalID: "a", samples: [Self.sample(1), Self.sample(2)], actor: "t")
        var given = Set(a.sampleIDs)
        try store.deleteSample(gallery: "default", externalID: "a", sample: a.sampleIDs.max()!, actor: "t")
        let b = try store.addSamples(gallery: "default", externalID: "a", samples: [Self.sample(3)], actor: "t")
        #expect(given.isDisjoint(with: b) && b.allSatisfy { $0 > a.sampleIDs.max()! })
        given.formUnion(b)
        // Deleting the identity that holds the newest samples (a cascade) keeps their ids too.
        let c = try store.createIdentity(gallery: "default", externalID: "c", samples: [Self.sample(4), Self.sample(5)], actor: "t")
        given.formUnion(c.sampleIDs)
        try store.deleteIdentity(gallery: "default", externalID: "c", actor: "t")
        let d = try store.createIdentity(gallery: "default", externalID: "d", samples: [Self.sample(6)], actor: "t")
        #expect(given.isDisjoint(with: d.sampleIDs) && d.sampleIDs.allSatisfy { $0 > given.max()! })
    }
}
