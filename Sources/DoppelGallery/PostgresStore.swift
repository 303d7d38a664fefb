// SPDX-License-Identifier: MIT
import Foundation

/// The gallery in PostgreSQL through libpq, for several `doppel serve` replicas sharing one
/// gallery. The statements are `SQLGalleryStore`'s; each write is one transaction that first
/// takes a transaction-scoped advisory lock (writers take turns, so change numbers commit in
/// order), makes its change, appends it to the change log and NOTIFYs `doppel_changes`.
/// A lost connection is retried once by reconnecting; if PostgreSQL cannot be reached the
/// call throws `.unavailable` (the service answers 503 and serves reads from memory).
public final class PostgresStore: SQLGalleryStore, SharedGalleryStore, ChangeFollower {
    /// The store's own connection, for tools that fill or inspect the database directly.
    public let connection: PostgresConnection
    private let url: String
    private let password: String?
    public let storeImages: Bool
    public var backend: String { "postgresql" }
    public var dialect: SQLDialect { .postgres }
    public var isReadOnly: Bool { false }
    public private(set) var lastChange: Int64 = 0
    /// Transaction-scoped advisory lock keys: writers, migrations, re-embedding.
    static let writeLock: Int64 = 0x446F_7070_656C_0001
    static let migrationLock: Int64 = 0x446F_7070_656C_0002
    static let notifyChannel = "doppel_changes"

    /// Connects and brings the schema up to the last of `migrations` (PostgreSQL's own folder,
    /// `Migrations/postgres`), under an advisory lock so replicas starting together take turns.
    public init(url: String, password: String? = nil, migrations: [Migration]?, storeImages: Bool = true) throws(GalleryError) {
        self.url = url
        self.password = password
        self.storeImages = storeImages
        do { connection = try PostgresConnection(url: url, password: password) } catch { throw Self.mapped(error) }
        if let migrations { try migrate(migrations) }
    }

    /// A connection string with its password replaced by `***`, for logs.
    /// Both places libpq reads one from are covered: `user:password@` in a URL, and a
    /// `password=` parameter (a URL's query or a key=value string).
    public static func redacted(_ url: String) -> String {
        var text = url.replacingOccurrences(of: #"password=[^&\s]*"#, with: "password=***", options: .regularExpression)
        guard let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].firstIndex(of: "@") else { return text }
        let credentials = text[scheme.upperBound..<at]
        if let colon = credentials.firstIndex(of: ":") { text = String(text[..<colon]) + ":***" + String(text[at...]) }
        return text
    }

    static func mapped(_ error: PostgresError) -> GalleryError {
        error.isConnectionFailure ? .unavailable(error.message.trimmingCharacters(in: .whitespacesAndNewlines)) : .postgres(error)
    }

    /// Runs `body`, mapping failures; on a lost connection, reconnects and tries once more.
    public func read<T>(_ body: () throws -> T) throws(GalleryError) -> T {
        for attempt in 0..<2 {
            do {
                if !connection.isConnected { try connection.reconnect() }
                return try body()
            } catch let error as GalleryError {
                throw error
            } catch let error as PostgresError {
                guard error.isConnectionFailure, attempt == 0 else { throw Self.mapped(error) }
                // The server may have restarted: one fresh connection, then give up.
                try? connection.reconnect()
            } catch {
                throw .invalid("\(error)")
            }
        }
        throw .unavailable("no connection")
    }

    /// One write transaction: the writers' lock, `body`, and its change-log row (announced
    /// on commit). Not retried: a write whose COMMIT was lost cannot be known to have failed,
    /// so the caller is told the store is unavailable and nothing is acknowledged.
    public func write<T>(change: ((T) -> StoreChange)?, _ body: () throws -> T) throws(GalleryError) -> T {
        do {
            if !connection.isConnected { try connection.reconnect() }
            var sequence: Int64 = 0
            let value = try connection.transaction { () throws -> T in
                try connection.query("SELECT pg_advisory_xact_lock($1)", [.integer(Self.writeLock)])
                let value = try body()
                if let change {
                    let entry = change(value)
                    sequence = try Self.returned(connection.query("INSERT INTO changes (kind, gallery, samples) VALUES ($1, $2, $3) RETURNING seq",
                                                                  [.text(entry.kind.rawValue), .text(entry.gallery), .integers(entry.samples)]), "change")
                    try connection.query("SELECT pg_notify($1, $2)", [.text(Self.notifyChannel), .text(String(sequence))])
                }
                return value
            }
            if sequence > 0 { lastChange = sequence }
            return value
        } catch let error as GalleryError {
            throw error
        } catch let error as PostgresError {
            throw Self.mapped(error)
        } catch {
            throw .invalid("\(error)")
        }
    }

    // MARK: schema

    private func migrate(_ migrations: [Migration]) throws(GalleryError) {
        try read { () throws -> Void in
            try connection.query("SELECT pg_advisory_lock($1)", [.integer(Self.migrationLock)])
            defer { _ = try? connection.query("SELECT pg_advisory_unlock($1)", [.integer(Self.migrationLock)]) }
            try connection.execute("""
                CREATE TABLE IF NOT EXISTS doppel_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """)
            let current = Int(try number("SELECT COALESCE(MAX(version), 0)::bigint FROM doppel_migrations"))
            let newest = migrations.last?.version ?? 0
            guard current <= newest else { throw GalleryError.newerSchema(database: current, supported: newest) }
            for migration in migrations where migration.version > current {
                try connection.transaction {
                    try connection.execute(migration.sql)
                    try connection.query("INSERT INTO doppel_migrations (version, name) VALUES ($1::integer, $2)",
                                         [.integer(Int64(migration.version)), .text(migration.name)])
                }
            }
        }
    }

    /// The id an `INSERT ... RETURNING` row carries; no row is an error, never id 0.
    static func returned(_ rows: [[PostgresValue]], _ what: String) throws(GalleryError) -> Int64 {
        guard let id = rows.first?.first?.integer else { throw .unexpected("inserting a \(what) returned no id") }
        return id
    }

    // MARK: the connection, for SQLGalleryStore

    public func forEachRow(_ sql: String, _ parameters: [SQLValue], _ body: (SQLRow) throws -> Void) throws {
        for row in try connection.query(dialect.statement(sql), parameters.map(Self.bound)) { try body(SQLRow(row.map(Self.value))) }
    }

    public func insert(_ sql: String, _ parameters: [SQLValue]) throws -> Int64 {
        try Self.returned(connection.query(dialect.statement(sql + " RETURNING id"), parameters.map(Self.bound)), "row")
    }

    public func isUniqueViolation(_ error: any Error) -> Bool { (error as? PostgresError)?.isUniqueViolation == true }

    static func bound(_ value: SQLValue) -> PostgresValue {
        switch value {
        case .null: .null
        case .integer(let v): .integer(v)
        case .real(let v): .double(v)
        case .text(let v): .text(v)
        case .bytes(let v): .bytes(v)
        }
    }

    /// A column as the shared statements read it: a bigint[] as the comma-joined list
    /// `SQLDialect.commaList` makes, a boolean as 0 or 1.
    static func value(_ value: PostgresValue) -> SQLValue {
        switch value {
        case .null: .null
        case .integer(let v): .integer(v)
        case .double(let v): .real(v)
        case .text(let v): .text(v)
        case .bytes(let v): .bytes(v)
        case .bool(let v): .integer(v ? 1 : 0)
        case .integers(let v): .text(v.map(String.init).joined(separator: ","))
        }
    }

    // MARK: PostgreSQL's own

    public func prefetch() {}

    /// One `COPY ... (FORMAT binary)` of every embedding under `model`, parsed as it streams:
    /// per row a field count (int16), then per field its length (int32) and bytes.
    public func forEachEmbeddingChunk(model: String, dimension: Int, rows: Int,
                                      _ body: (consuming EmbeddingChunk) -> EmbeddingChunk) throws(GalleryError) {
        try read {
            var chunk = EmbeddingChunk(dimension: dimension, capacity: rows)
            var pending = [UInt8]()
            var sawHeader = false
            let escaped = model.replacingOccurrences(of: "'", with: "''")
            try connection.copyOut("""
                COPY (SELECT e.sample_id, s.identity_id, e.vector FROM embeddings e JOIN samples s ON s.id = e.sample_id
                      WHERE e.model_id = '\(escaped)') TO STDOUT (FORMAT binary)
                """) { data in
                pending.append(contentsOf: data)
                var offset = 0
                if !sawHeader {
                    // "PGCOPY\n\377\r\n\0", flags (int32), header extension length (int32) and extension.
                    guard pending.count >= 19 else { return }
                    let extensionLength = Int(Self.int32(pending, 15))
                    guard pending.count >= 19 + extensionLength else { return }
                    offset = 19 + extensionLength
                    sawHeader = true
                }
                while offset + 2 <= pending.count {
                    let fields = Int(Int16(bitPattern: UInt16(pending[offset]) << 8 | UInt16(pending[offset + 1])))
                    if fields == -1 {
                        offset = pending.count
                        break
                    }
                    guard fields == 3 else { throw GalleryError.invalid("COPY row with \(fields) fields") }
                    // Three fields: 4 + 8, 4 + 8, 4 + vector bytes.
                    let vectorBytes = dimension * 4
                    guard offset + 2 + 12 + 12 + 4 + vectorBytes <= pending.count else { break }
                    var p = offset + 2
                    guard Self.int32(pending, p) == 8 else { throw GalleryError.invalid("COPY sample id") }
                    let sample = Self.int64(pending, p + 4)
                    p += 12
                    guard Self.int32(pending, p) == 8 else { throw GalleryError.invalid("COPY identity id") }
                    let identity = Self.int64(pending, p + 4)
                    p += 12
                    let length = Int(Self.int32(pending, p))
                    guard length == vectorBytes else {
                        throw GalleryError.invalid("embedding of sample \(sample) under model \(model) has \(length) bytes, not \(vectorBytes)")
                    }
                    p += 4
                    chunk.samples.append(sample)
                    chunk.identities.append(identity)
                    let end = chunk.vectors.count
                    chunk.vectors.append(contentsOf: repeatElement(0, count: dimension))
                    pending.withUnsafeBytes { source in
                        chunk.vectors.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: end * 4).copyMemory(from: source.baseAddress!.advanced(by: p), byteCount: vectorBytes) }
                    }
                    offset = p + vectorBytes
                    if chunk.count == rows {
                        let full = chunk
                        chunk = EmbeddingChunk(dimension: dimension, capacity: 0)
                        chunk = body(full)
                    }
                }
                pending.removeFirst(offset)
            }
            if chunk.count > 0 {
                let last = chunk
                _ = body(last)
            }
        }
    }

    static func int32(_ bytes: [UInt8], _ at: Int) -> Int32 {
        Int32(bitPattern: UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3]))
    }

    static func int64(_ bytes: [UInt8], _ at: Int) -> Int64 {
        var value: UInt64 = 0
        for i in 0..<8 { value = value << 8 | UInt64(bytes[at + i]) }
        return Int64(bitPattern: value)
    }

    /// Foreign keys hold by construction; this checks what PostgreSQL cannot: that every
    /// embedding has the right number of bytes for its model, and that the stamps agree with
    /// the embeddings.
    public func integrityCheck() throws(GalleryError) -> String {
        try read {
            let wrong = try number("""
                SELECT count(*) FROM embeddings e JOIN models m ON m.id = e.model_id WHERE octet_length(e.vector) <> m.dimension * 4
                """)
            let stamps = try number("""
                SELECT count(*) FROM embedding_stamps st
                WHERE st.rows <> (SELECT count(*) FROM embeddings e WHERE e.model_id = st.model_id)
                """)
            return wrong == 0 && stamps == 0 ? "ok" : "\(wrong) embeddings of the wrong length, \(stamps) stamps out of step"
        }
    }

    public func makeVectorReader(model: String) throws(GalleryError) -> any ExactVectorSource {
        StoreVectorReader(store: try PostgresStore(url: url, password: password, migrations: nil, storeImages: storeImages), model: model)
    }

    /// Another store on its own connection, listening for change announcements, for a
    /// replica's follower thread.
    public func makeFollower() throws(GalleryError) -> PostgresStore {
        try followerFactory()()
    }

    /// Makes followers (a new connection each time: after a lost connection, the follower
    /// starts over), without sharing this store across threads.
    public func makeFollower() -> @Sendable () throws(GalleryError) -> any ChangeFollower {
        let make = followerFactory()
        return { () throws(GalleryError) -> any ChangeFollower in try make() }
    }

    public func followerFactory() -> @Sendable () throws(GalleryError) -> PostgresStore {
        let (url, password, storeImages) = (self.url, self.password, self.storeImages)
        return { () throws(GalleryError) -> PostgresStore in
            let follower = try PostgresStore(url: url, password: password, migrations: nil, storeImages: storeImages)
            try follower.listen()
            return follower
        }
    }

    // MARK: change feed

    private func listen() throws(GalleryError) {
        try read { try connection.execute("LISTEN \(Self.notifyChannel)") }
    }

    /// Waits up to `timeout` seconds for a change announcement; true when one came. A lost
    /// connection is reconnected (and LISTENs again) before it throws `.unavailable`.
    public func waitForChanges(timeout: Double) throws(GalleryError) -> Bool {
        do {
            if !connection.isConnected {
                try connection.reconnect()
                try connection.execute("LISTEN \(Self.notifyChannel)")
            }
            return !(try connection.notifications(timeout: timeout)).isEmpty
        } catch {
            try? connection.reconnect()
            try? connection.execute("LISTEN \(Self.notifyChannel)")
            throw Self.mapped(error)
        }
    }

    public func latestChange() throws(GalleryError) -> Int64 {
        try read { try number("SELECT COALESCE(MAX(seq), 0)::bigint FROM changes") }
    }

    public func changes(after sequence: Int64, limit: Int) throws(GalleryError) -> [GalleryChange] {
        try read {
            try rows("SELECT seq, kind, gallery, samples, committed_at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                     [.integer(sequence), .integer(Int64(limit))]).map { row in
                let kind = try row.text(1)
                guard let known = GalleryChange.Kind(rawValue: kind) else { throw GalleryError.unexpected("change \(try row.integer(0)) is of kind '\(kind)'") }
                return GalleryChange(sequence: try row.integer(0), kind: known, gallery: try row.text(2),
                                     samples: try row.text(3).split(separator: ",").compactMap { Int64($0) }, committedAt: try row.real(4))
            }
        }
    }

    /// The change number and a function to run with the database as of one moment: for
    /// loading an index and knowing from which change to follow on. Runs `body` inside a
    /// REPEATABLE READ transaction whose first statement reads the newest change number.
    public func consistentRead<T>(_ body: (Int64) throws -> T) throws -> T {
        try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        do {
            let horizon = try number("SELECT COALESCE(MAX(seq), 0)::bigint FROM changes")
            let value = try body(horizon)
            try connection.execute("COMMIT")
            return value
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }

    /// Holds PostgreSQL's session advisory lock `key` while `body` runs (one replica
    /// re-embeds a gallery for a new model; the others wait here, then find it done).
    public func exclusively<T>(key: Int64, _ body: () throws -> T) throws -> T {
        try connection.query("SELECT pg_advisory_lock($1)", [.integer(key)])
        defer { _ = try? connection.query("SELECT pg_advisory_unlock($1)", [.integer(key)]) }
        return try body()
    }
}
