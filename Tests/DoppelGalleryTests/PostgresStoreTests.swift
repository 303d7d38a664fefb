// SPDX-License-Identifier: MIT
import Foundation
import Testing
import TestSupport
@testable import DoppelGallery

/// What only the PostgreSQL store does: migrations shared by replicas starting together, the
/// change log replicas follow, and connection strings kept out of logs.
@Suite(.slow) struct PostgresStoreTests {
    /// An `INSERT ... RETURNING` that returned no row is an error naming what was inserted,
    /// never an id of 0 handed on as if it were one.
    @Test func aMissingReturnedRowIsAnError() throws {
        #expect(throws: GalleryError.unexpected("inserting a sample returned no id")) { try PostgresStore.returned([], "sample") }
        #expect(throws: GalleryError.unexpected("inserting a change returned no id")) { try PostgresStore.returned([[.null]], "change") }
        #expect(try PostgresStore.returned([[.integer(42)]], "identity") == 42)
    }

    static func migrations() throws -> [Migration] { try Migrator.load(directory: GalleryStoreContractTests.postgresMigrations) }

    /// Four replicas starting at once on an empty database: one applies each migration, in a
    /// transaction, with its version recorded once; a database newer than the code is refused.
    @Test func concurrentStartsMigrateOnceAndANewerSchemaIsRefused() throws {
        let server = try PostgresServer.shared()
        let url = try server.createDatabase()
        let migrations = try Self.migrations()
        let failures = SendableBox<[String]>()
        failures.value = []
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do { _ = try PostgresStore(url: url, migrations: migrations) } catch {
                lock.withLock { failures.value!.append("\(error)") }
            }
        }
        #expect(failures.value == [])
        let database = PostgresServer.databaseName(in: url)
        let recorded = try server.psql(database, "SELECT version || ' ' || name FROM doppel_migrations ORDER BY version")
        #expect(recorded.split(separator: "\n").map(String.init) == migrations.map { "\($0.version) \($0.name)" })
        try server.psql(database, "INSERT INTO doppel_migrations (version, name) VALUES (99, '0099_future')")
        #expect(throws: GalleryError.newerSchema(database: 99, supported: migrations.last!.version)) {
            try PostgresStore(url: url, migrations: migrations)
        }
        // A migration that fails leaves nothing of itself behind.
        try server.psql(database, "DELETE FROM doppel_migrations WHERE version = 99")
        let broken = migrations + [Migration(version: migrations.last!.version + 1, name: "broken", sql: "CREATE TABLE half_done (x int); SELECT no_such_function();")]
        #expect(throws: GalleryError.self) { try PostgresStore(url: url, migrations: broken) }
        #expect(try server.psql(database, "SELECT count(*) FROM pg_tables WHERE tablename = 'half_done'") == "0\n")
        #expect(try server.psql(database, "SELECT max(version) FROM doppel_migrations") == "\(migrations.last!.version)\n")
    }

    /// Every write appends one numbered change in commit order; another store on the same
    /// database reads them in that order, and its own writes continue the numbering.
    @Test func writesAppendNumberedChangesOthersRead() throws {
        let server = try PostgresServer.shared()
        let url = try server.createDatabase()
        let writer = try PostgresStore(url: url, migrations: try Self.migrations())
        let follower = try PostgresStore(url: url, migrations: nil)
        try writer.registerModel(id: "m", architecture: "dense(2)", dimension: 2, metric: "euclidean")
        #expect(try follower.latestChange() == 0)
        let a = try writer.createIdentity(gallery: "default", externalID: "a", samples: [GalleryStoreContractTests.sample(1, embedding: [1, 0])], model: "m", actor: "t")
        #expect(writer.lastChange == 1)
        let added = try follower.addSamples(gallery: "default", externalID: "a", samples: [GalleryStoreContractTests.sample(2, embedding: [0, 1])], model: "m", actor: "t")
        #expect(follower.lastChange == 2)
        try writer.createIdentity(gallery: "other", externalID: "b", samples: [GalleryStoreContractTests.sample(3, embedding: [1, 1])], model: "m", actor: "t")
        let removed = try writer.deleteIdentity(gallery: "default", externalID: "a", actor: "t")
        let changes = try follower.changes(after: 0, limit: 100)
        #expect(changes.map(\.sequence) == [1, 2, 3, 4])
        #expect(changes.map(\.kind) == [.add, .add, .add, .remove])
        #expect(changes.map(\.gallery) == ["default", "default", "other", "default"])
        #expect(changes[0].samples == a.sampleIDs && changes[1].samples == added && Set(changes[3].samples) == Set(removed))
        #expect(try follower.changes(after: 2, limit: 1).map(\.sequence) == [3])
        #expect(try follower.latestChange() == 4)
        // Rows of samples that still exist, with their gallery and identity.
        let rows = try follower.embeddingRows(samples: changes.flatMap(\.samples), model: "m")
        #expect(rows.map(\.identity) == ["b"] && rows.first?.gallery == "other" && rows.first?.vector == [1, 1])
    }

    @Test func passwordsNeverReachLogs() {
        #expect(PostgresStore.redacted("postgres://doppel:s3cret@db.example:5432/gallery?sslmode=require")
                == "postgres://doppel:***@db.example:5432/gallery?sslmode=require")
        #expect(PostgresStore.redacted("host=db password=s3cret dbname=g") == "host=db password=*** dbname=g")
        #expect(PostgresStore.redacted("postgresql://doppel@/g?host=/tmp") == "postgresql://doppel@/g?host=/tmp")
        #expect(PostgresStore.redacted("postgres://doppel@db/g?password=s3cret&sslmode=require") == "postgres://doppel@db/g?password=***&sslmode=require")
        #expect(PostgresStore.redacted("postgres://doppel:a@db/g?password=b") == "postgres://doppel:***@db/g?password=***")
    }

    /// An unreachable server is `.unavailable` (the service's 503), not a crash or a hang.
    @Test func anUnreachableServerIsUnavailable() {
        #expect {
            try PostgresStore(url: "postgresql://doppel@/none?host=/nonexistent-doppel-socket&connect_timeout=2", migrations: nil)
        } throws: { error in
            if case GalleryError.unavailable = error { return true } else { return false }
        }
    }
}
