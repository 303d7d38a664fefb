// SPDX-License-Identifier: MIT
import Foundation
import Testing
@testable import DoppelGallery

@Suite struct SQLiteStoreTests {
    static let migrationsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Migrations").path

    static func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("doppel-gallery-\(UUID().uuidString).sqlite").path
    }

    static func sample(_ tag: Int, embedding: [Float]? = nil) -> NewSample {
        NewSample(image: [UInt8](repeating: UInt8(truncatingIfNeeded: tag), count: 10), width: 2, height: 5, contentHash: "hash\(tag)", embedding: embedding)
    }

    static func open(_ path: String) throws -> SQLiteStore {
        try SQLiteStore(path: path, migrations: try Migrator.load(directory: migrationsDirectory))
    }

    @Test func migratesFromEmptyAndRecordsTheVersion() throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try Self.open(path)
        let versions = try store.database.query("SELECT version, name FROM doppel_migrations")
        #expect(versions == [[.integer(1), .text("0001_init")], [.integer(2), .text("0002_index_stamps")],
                             [.integer(3), .text("0003_sample_ids_not_reused")]])
        #expect(try store.database.query("PRAGMA journal_mode").first?.first?.text == "wal")
        #expect(try store.database.query("PRAGMA foreign_keys").first?.first?.integer == 1)
        #expect(try store.database.query("SELECT name FROM galleries").first?.first?.text == "default")
        // Opening again applies nothing twice.
        let again = try Self.open(path)
        #expect(try again.database.query("SELECT COUNT(*) FROM doppel_migrations").first?.first?.integer == 3)
    }

    /// A gallery made before migration 0003 keeps its samples, and new ones are numbered above
    /// the largest present.
    @Test func migrationThreeKeepsSamplesAndNumbersAboveThem() throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let all = try Migrator.load(directory: Self.migrationsDirectory)
        let old = try SQLiteStore(path: path, migrations: Array(all.prefix(2)))
        // Written as that version's store did: the id left to SQLite.
        try old.database.query("INSERT INTO identities (gallery_id, external_id) VALUES (1, 'a')")
        for tag in [1, 2] {
            try old.database.query("INSERT INTO samples (identity_id, content_hash, width, height) VALUES (1, ?, 1, 1)", [.text("hash\(tag)")])
        }
        let before: [Int64] = [1, 2]
        let store = try Self.open(path)
        #expect(try store.database.query("SELECT value FROM sample_id_high_water") == [[.integer(2)]])
        #expect(try store.samples(gallery: "default", externalID: "a").map(\.id) == before)
        let added = try store.addSamples(gallery: "default", externalID: "a", samples: [Self.sample(3)], actor: "t")
        #expect(added == [3])
    }

    static func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int ?? 0) & 0o777
    }

    /// The gallery (images, embeddings), its WAL and the index snapshot are the owner's alone,
    /// whatever the umask; a symlink where the database or the snapshot's temporary file would
    /// be is refused or replaced, never written through.
    @Test func biometricFilesAreTheOwnersAlone() throws {
        let old = umask(0o022)
        defer { umask(old) }
        let path = Self.temporaryPath()
        defer { for suffix in ["", "-wal", "-shm", ".index", ".index.partial"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let store = try Self.open(path)
        try store.registerModel(id: "m", architecture: "dense(2)", dimension: 2, metric: "euclidean")
        _ = try store.createIdentity(gallery: "default", externalID: "a", samples: [Self.sample(1, embedding: [1, 0])], model: "m", actor: "t")
        #expect(try Self.mode(path) == 0o600 && Self.mode(path + "-wal") == 0o600)

        let index = GalleryIndex(dimension: 2, metric: .euclidean)
        index.add(sample: 1, identity: "a", vector: [1, 0])
        let target = path + ".elsewhere"
        #expect(FileManager.default.createFile(atPath: target, contents: Data("keep".utf8)))
        defer { try? FileManager.default.removeItem(atPath: target) }
        try FileManager.default.createSymbolicLink(atPath: path + ".index.partial", withDestinationPath: target)
        try GalleryIndex.writeSnapshot(["default": index], model: "m", stamp: IndexStamp(rows: 1, sampleSum: 1, changes: 1), to: path + ".index")
        #expect(try Self.mode(path + ".index") == 0o600)
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "keep", "the symlink's target is untouched")

        let linked = Self.temporaryPath()
        try FileManager.default.createSymbolicLink(atPath: linked, withDestinationPath: path)
        defer { try? FileManager.default.removeItem(atPath: linked) }
        #expect(throws: (any Error).self) { try Self.open(linked) }
    }

    @Test func aNewerDatabaseIsRefusedUntouched() throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try Self.open(path)
        try store.database.query("INSERT INTO doppel_migrations (version, name) VALUES (7, '0007_future')")
        let supported = try Migrator.load(directory: Self.migrationsDirectory).count
        #expect(throws: GalleryError.newerSchema(database: 7, supported: supported)) { try Self.open(path) }
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
    // Enrolment, deletion, pagination, the audit log and index loading are the stores' shared
    // contract: GalleryStoreContractTests runs them on SQLite and PostgreSQL alike.
}
