// SPDX-License-Identifier: MIT
import Foundation

/// Why the gallery store refused an operation.
public enum GalleryError: Error, Equatable, Sendable, CustomStringConvertible {
    case newerSchema(database: Int, supported: Int)
    case badMigrations(String)
    case conflict(String)
    case notFound(String)
    case invalid(String)
    case database(SQLiteError)
    /// The database cannot be reached now (PostgreSQL down or unreachable): retry later.
    case unavailable(String)
    case postgres(PostgresError)
    /// The database answered a statement with something it cannot have meant (no row from an
    /// `INSERT ... RETURNING`): an error, never a made-up value.
    case unexpected(String)

    public var description: String {
        switch self {
        case .newerSchema(let database, let supported):
            "the gallery database has schema version \(database), newer than this build's \(supported); use a newer doppel"
        case .badMigrations(let detail): "migrations are not usable: \(detail)"
        case .conflict(let detail): "conflict: \(detail)"
        case .notFound(let detail): "not found: \(detail)"
        case .invalid(let detail): "invalid: \(detail)"
        case .database(let error): "database error: \(error)"
        case .unavailable(let detail): "the database is unavailable: \(detail)"
        case .postgres(let error): "database error: \(error)"
        case .unexpected(let detail): "the database answered unexpectedly: \(detail)"
        }
    }
}

/// One schema step: `Migrations/NNNN_name.sql`.
public struct Migration: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let sql: String
}

/// Applies `Migrations/*.sql` in order, each in its own transaction with its version recorded
/// in `doppel_migrations` (the model: GRDB's DatabaseMigrator). A database whose recorded
/// version is newer than the newest migration is refused, never modified.
public enum Migrator {
    /// `NNNN_name.sql` files of `directory`, which must number 1, 2, 3 ... without gaps.
    public static func load(directory: String) throws(GalleryError) -> [Migration] {
        let files: [String]
        do { files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql") }.sorted() } catch {
            throw .badMigrations("cannot read \(directory): \(error.localizedDescription)")
        }
        var migrations = [Migration]()
        for file in files {
            guard let underscore = file.firstIndex(of: "_"), let version = Int(file[..<underscore]) else {
                throw .badMigrations("\(file) is not named NNNN_name.sql")
            }
            guard version == migrations.count + 1 else { throw .badMigrations("\(file): expected version \(migrations.count + 1)") }
            guard let sql = try? String(contentsOfFile: (directory as NSString).appendingPathComponent(file), encoding: .utf8) else {
                throw .badMigrations("cannot read \(file)")
            }
            migrations.append(Migration(version: version, name: String(file.dropLast(4)), sql: sql))
        }
        guard !migrations.isEmpty else { throw .badMigrations("no migrations in \(directory)") }
        return migrations
    }

    /// Brings `database` up to the last migration; returns the versions before and after.
    @discardableResult
    public static func migrate(_ database: SQLiteDatabase, _ migrations: [Migration]) throws(GalleryError) -> (from: Int, to: Int) {
        let current: Int
        do {
            try database.execute("""
                CREATE TABLE IF NOT EXISTS doppel_migrations (
                    version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))
                """)
            current = Int(try database.query("SELECT COALESCE(MAX(version), 0) FROM doppel_migrations").first?.first?.integer ?? 0)
        } catch {
            throw .database(error)
        }
        let newest = migrations.last?.version ?? 0
        guard current <= newest else { throw .newerSchema(database: current, supported: newest) }
        for migration in migrations where migration.version > current {
            do {
                try database.transaction {
                    try database.execute(migration.sql)
                    try database.query("INSERT INTO doppel_migrations (version, name) VALUES (?, ?)",
                                       [.integer(Int64(migration.version)), .text(migration.name)])
                }
            } catch let error as SQLiteError {
                throw .database(error)
            } catch {
                throw .badMigrations("\(migration.name): \(error)")
            }
        }
        return (current, max(current, newest))
    }
}
