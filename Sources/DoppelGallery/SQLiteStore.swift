// SPDX-License-Identifier: MIT
import Foundation

/// The gallery's persistent memory in SQLite: one file, one server (the default backend).
/// The statements are `SQLGalleryStore`'s; this adds the connection, transactions (each
/// change one IMMEDIATE transaction; synchronous=FULL means a returned call is on disk), and
/// SQLite's own fast paths. Not thread-safe: one store per thread, or serialise calls (the
/// service's writer does).
public final class SQLiteStore: SQLGalleryStore, SizeCappedStore {
    public let database: SQLiteDatabase
    public let storeImages: Bool
    public var backend: String { "sqlite" }
    public var dialect: SQLDialect { .sqlite }
    /// One server owns the file: no change log to follow.
    public var lastChange: Int64 { 0 }
    /// The connection was opened read-only (a read-only file or file system): reads work,
    /// writes fail with SQLITE_READONLY until the file is writable again.
    public var isReadOnly: Bool { database.isReadOnly }

    /// Opens (creating if needed) the database at `path` and migrates it; with no
    /// `migrations`, opens it as it is (a second connection to a gallery already open).
    public init(path: String, migrations: [Migration]?, storeImages: Bool = true) throws(GalleryError) {
        do { database = try SQLiteDatabase(path: path) } catch { throw .database(error) }
        self.storeImages = storeImages
        if let migrations { try Migrator.migrate(database, migrations) }
    }

    // MARK: the connection, for SQLGalleryStore

    public func forEachRow(_ sql: String, _ parameters: [SQLValue], _ body: (SQLRow) throws -> Void) throws {
        try database.forEachRow(sql, parameters) { row in try body(SQLRow((0..<row.columnCount).map(row.value))) }
    }

    public func insert(_ sql: String, _ parameters: [SQLValue]) throws -> Int64 {
        try database.query(sql, parameters)
        return database.lastInsertedRowID
    }

    /// Runs `body` (reads, or a transaction), mapping every failure to a gallery error.
    public func read<T>(_ body: () throws -> T) throws(GalleryError) -> T {
        do { return try body() } catch let error as GalleryError {
            throw error
        } catch let error as SQLiteError {
            throw .database(error)
        } catch {
            throw .invalid("\(error)")
        }
    }

    /// Runs `body` as one transaction (one server: no change log to append to).
    /// A connection opened on a read-only file stays read-only, so each write first tries a
    /// fresh connection: once the file system is writable again, writes resume without a restart.
    public func write<T>(change: ((T) -> StoreChange)?, _ body: () throws -> T) throws(GalleryError) -> T {
        if database.isReadOnly { try? database.reopen() }
        return try read { try database.transaction(body) }
    }

    public func isUniqueViolation(_ error: any Error) -> Bool { (error as? SQLiteError)?.isUniqueViolation == true }

    // MARK: SQLite's own

    /// Asks the kernel to read the database file into its cache now, in large sequential reads,
    /// ahead of a full scan: the scan walks the B-tree, whose pages are not in file order, so
    /// on a cold cache it would otherwise wait for one small random read after another.
    public func prefetch() {
        let fd = open(database.path, O_RDONLY)
        guard fd >= 0 else { return }
        posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED)
        close(fd)
    }

    /// Streams every embedding under `model` in chunks of up to `rows` rows, for loading the
    /// index. Each full chunk (and the last) goes to `body`, which hands back an empty chunk to
    /// fill next, so a loader can recycle its buffers instead of allocating (and faulting in)
    /// fresh ones per chunk. A vector of the wrong length is corrupt data and stops the load.
    public func forEachEmbeddingChunk(model: String, dimension: Int, rows: Int,
                                      _ body: (consuming EmbeddingChunk) -> EmbeddingChunk) throws(GalleryError) {
        try read {
            var chunk = EmbeddingChunk(dimension: dimension, capacity: rows)
            // The samples join gives the identity; the identity names are read once, apart
            // (1 M rows: the three-table join per row was half of the start-up time).
            try database.forEachRow("""
                SELECT e.sample_id, s.identity_id, e.vector FROM embeddings e JOIN samples s ON s.id = e.sample_id WHERE e.model_id = ?
                """, [.text(model)]) { row in
                let vector = row.blob(2)
                guard vector.count == dimension * 4 else {
                    throw GalleryError.invalid("embedding of sample \(row.integer(0)) under model \(model) has \(vector.count) bytes, not \(dimension * 4)")
                }
                chunk.samples.append(row.integer(0))
                chunk.identities.append(row.integer(1))
                // Copied as bytes: a blob need not be aligned for Float.
                let end = chunk.vectors.count
                chunk.vectors.append(contentsOf: repeatElement(0, count: dimension))
                chunk.vectors.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: end * 4).copyMemory(from: vector.baseAddress!, byteCount: dimension * 4) }
                if chunk.count == rows { chunk = body(chunk) }
            }
            if chunk.count > 0 { _ = body(chunk) }
        }
    }

    public func makeVectorReader(model: String) throws(GalleryError) -> any ExactVectorSource {
        StoreVectorReader(store: try SQLiteStore(path: database.path, migrations: nil, storeImages: storeImages), model: model)
    }

    /// `PRAGMA integrity_check`'s verdict ("ok" when the file is sound).
    public func integrityCheck() throws(GalleryError) -> String {
        do { return try database.query("PRAGMA integrity_check").first?.first?.text ?? "no answer" } catch { throw .database(error) }
    }
}

extension SQLiteStore {
    /// SQLite answers SQLITE_FULL past this many megabytes, exactly as on a full disk.
    public func capSize(megabytes: Int) throws(GalleryError) {
        do {
            let pageSize = try database.query("PRAGMA page_size").first?.first?.integer ?? 4096
            try database.query("PRAGMA max_page_count = \(Int64(megabytes) * 1_048_576 / pageSize)")
        } catch {
            throw .database(error)
        }
    }
}
