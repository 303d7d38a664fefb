// SPDX-License-Identifier: MIT
import Foundation

/// The gallery in PostgreSQL through libpq, for several `doppel serve` replicas sharing one
/// gallery. The same operations as `SQLiteStore`; each write is one transaction that first
/// takes a transaction-scoped advisory lock (writers take turns, so change numbers commit in
/// order), makes its change, appends it to the change log and NOTIFYs `doppel_changes`.
/// A lost connection is retried once by reconnecting; if PostgreSQL cannot be reached the
/// call throws `.unavailable` (the service answers 503 and serves reads from memory).
public final class PostgresStore: SharedGalleryStore, ChangeFollower {
    /// The store's own connection, for tools that fill or inspect the database directly.
    public let connection: PostgresConnection
    private let url: String
    private let password: String?
    public let storeImages: Bool
    public var backend: String { "postgresql" }
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
    private func run<T>(_ body: () throws -> T) throws(GalleryError) -> T {
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
    private func write<T>(change: ((T) -> (kind: GalleryChange.Kind, gallery: String, samples: [Int64]))?, _ body: () throws -> T) throws(GalleryError) -> T {
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
        try run { () throws -> Void in
            try connection.query("SELECT pg_advisory_lock($1)", [.integer(Self.migrationLock)])
            defer { _ = try? connection.query("SELECT pg_advisory_unlock($1)", [.integer(Self.migrationLock)]) }
            try connection.execute("""
                CREATE TABLE IF NOT EXISTS doppel_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """)
            let current = Int(try connection.query("SELECT COALESCE(MAX(version), 0)::bigint FROM doppel_migrations").first?.first?.integer ?? 0)
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

    // MARK: writes

    /// The id an `INSERT ... RETURNING` row carries; no row is an error, never id 0.
    static func returned(_ rows: [[PostgresValue]], _ what: String) throws(GalleryError) -> Int64 {
        guard let id = rows.first?.first?.integer else { throw .unexpected("inserting a \(what) returned no id") }
        return id
    }

    private func galleryID(_ name: String, create: Bool) throws -> Int64 {
        if let id = try connection.query("SELECT id FROM galleries WHERE name = $1", [.text(name)]).first?.first?.integer { return id }
        guard create else { throw GalleryError.notFound("gallery '\(name)'") }
        return try Self.returned(connection.query("INSERT INTO galleries (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
                                                  [.text(name)]), "gallery")
    }

    private func identityID(gallery: String, externalID: String) throws -> Int64 {
        let rows = try connection.query("""
            SELECT i.id FROM identities i JOIN galleries g ON g.id = i.gallery_id WHERE g.name = $1 AND i.external_id = $2
            """, [.text(gallery), .text(externalID)])
        guard let id = rows.first?.first?.integer else { throw GalleryError.notFound("identity '\(externalID)' in gallery '\(gallery)'") }
        return id
    }

    public func registerModel(id: String, architecture: String, dimension: Int, metric: String) throws(GalleryError) {
        _ = try run {
            try connection.query("""
                INSERT INTO models (id, architecture, dimension, metric) VALUES ($1, $2, $3::integer, $4) ON CONFLICT (id) DO NOTHING
                """, [.text(id), .text(architecture), .integer(Int64(dimension)), .text(metric)])
        }
    }

    @discardableResult
    public func createIdentity(gallery: String, externalID: String, displayName: String? = nil, metadata: String = "{}",
                               samples: [NewSample], model: String? = nil, actor: String) throws(GalleryError) -> IdentityRecord {
        try write(change: { record in (.add, gallery, record.sampleIDs) }) {
            let galleryRow = try galleryID(gallery, create: true)
            let identity: Int64
            do {
                identity = try Self.returned(connection.query("""
                    INSERT INTO identities (gallery_id, external_id, display_name, metadata) VALUES ($1, $2, $3, CAST($4 AS json)) RETURNING id
                    """, [.integer(galleryRow), .text(externalID), displayName.map(PostgresValue.text) ?? .null, .text(metadata)]), "identity")
            } catch {
                // (A `catch where` on this typed error crashes Swift 6.3's SIL verifier.)
                if (error as? PostgresError)?.isUniqueViolation == true { throw GalleryError.conflict("identity '\(externalID)' already exists in gallery '\(gallery)'") }
                throw error
            }
            let ids = try insertSamples(samples, identity: identity, model: model)
            try audit(actor: actor, action: "create_identity", gallery: gallery, subject: externalID, detail: "{\"samples\":\(ids.count)}")
            return IdentityRecord(gallery: gallery, externalID: externalID, displayName: displayName, metadata: metadata, sampleIDs: ids)
        }
    }

    @discardableResult
    public func addSamples(gallery: String, externalID: String, samples: [NewSample], model: String? = nil, actor: String) throws(GalleryError) -> [Int64] {
        try write(change: { ids in (.add, gallery, ids) }) {
            let identity = try identityID(gallery: gallery, externalID: externalID)
            let ids = try insertSamples(samples, identity: identity, model: model)
            try connection.query("UPDATE identities SET updated_at = now() WHERE id = $1", [.integer(identity)])
            try audit(actor: actor, action: "add_samples", gallery: gallery, subject: externalID, detail: "{\"samples\":\(ids.count)}")
            return ids
        }
    }

    private func insertSamples(_ samples: [NewSample], identity: Int64, model: String?) throws -> [Int64] {
        var ids = [Int64]()
        for sample in samples {
            let rows: [[PostgresValue]]
            do {
                rows = try connection.query("""
                    INSERT INTO samples (identity_id, content_hash, image, width, height) VALUES ($1, $2, $3, $4::integer, $5::integer) RETURNING id
                    """, [.integer(identity), .text(sample.contentHash), storeImages ? .bytes(sample.image) : .null,
                          .integer(Int64(sample.width)), .integer(Int64(sample.height))])
            } catch {
                if error.isUniqueViolation {
                    throw GalleryError.conflict("the same image (sha256 \(sample.contentHash.prefix(12))) is already enrolled for this identity")
                }
                throw error
            }
            let id = try Self.returned(rows, "sample")
            ids.append(id)
            if let model, let vector = sample.embedding {
                try connection.query("INSERT INTO embeddings (sample_id, model_id, vector) VALUES ($1, $2, $3)",
                                     [.integer(id), .text(model), .bytes(vector.withUnsafeBytes { Array($0) })])
            }
        }
        return ids
    }

    @discardableResult
    public func deleteIdentity(gallery: String, externalID: String, actor: String) throws(GalleryError) -> [Int64] {
        try write(change: { samples in (.remove, gallery, samples) }) {
            let identity = try identityID(gallery: gallery, externalID: externalID)
            let samples = try connection.query("SELECT id FROM samples WHERE identity_id = $1 ORDER BY id", [.integer(identity)]).compactMap { $0.first?.integer }
            try connection.query("DELETE FROM identities WHERE id = $1", [.integer(identity)])
            try audit(actor: actor, action: "delete_identity", gallery: gallery, subject: externalID, detail: "{\"samples\":\(samples.count)}")
            return samples
        }
    }

    public func deleteSample(gallery: String, externalID: String, sample: Int64, actor: String) throws(GalleryError) {
        try write(change: { (_: Void) in (.remove, gallery, [sample]) }) {
            let identity = try identityID(gallery: gallery, externalID: externalID)
            let deleted = try connection.query("DELETE FROM samples WHERE id = $1 AND identity_id = $2 RETURNING id", [.integer(sample), .integer(identity)])
            guard deleted.count == 1 else { throw GalleryError.notFound("sample \(sample) of identity '\(externalID)'") }
            try connection.query("UPDATE identities SET updated_at = now() WHERE id = $1", [.integer(identity)])
            try audit(actor: actor, action: "delete_sample", gallery: gallery, subject: externalID, detail: "{\"sample\":\(sample)}")
        }
    }

    public func insertEmbeddings(_ rows: [(sample: Int64, vector: [Float])], model: String) throws(GalleryError) {
        guard !rows.isEmpty else { return }
        // Re-embedded samples are announced like enrolments: replicas serving this model add them.
        let gallery = try run { () throws -> String in
            try connection.query("""
                SELECT g.name FROM samples s JOIN identities i ON i.id = s.identity_id JOIN galleries g ON g.id = i.gallery_id WHERE s.id = $1
                """, [.integer(rows[0].sample)]).first?.first?.text ?? "default"
        }
        try write(change: { (_: Void) in (.add, gallery, rows.map(\.sample)) }) {
            for row in rows {
                try connection.query("""
                    INSERT INTO embeddings (sample_id, model_id, vector) VALUES ($1, $2, $3)
                    ON CONFLICT (sample_id, model_id) DO UPDATE SET vector = EXCLUDED.vector
                    """, [.integer(row.sample), .text(model), .bytes(row.vector.withUnsafeBytes { Array($0) })])
            }
        }
    }

    private func audit(actor: String, action: String, gallery: String, subject: String, detail: String) throws {
        try connection.query("INSERT INTO audit_log (actor, action, gallery, subject, detail) VALUES ($1, $2, $3, $4, CAST($5 AS json))",
                             [.text(actor), .text(action), .text(gallery), .text(subject), .text(detail)])
    }

    // MARK: reads

    /// ISO 8601 in UTC with milliseconds, as the SQLite store writes them.
    private static let isoTime = #"to_char(%@ AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"#

    public func identity(gallery: String, externalID: String) throws(GalleryError) -> IdentityRecord {
        try run {
            let rows = try connection.query("""
                SELECT i.display_name, i.metadata::text, ARRAY(SELECT s.id FROM samples s WHERE s.identity_id = i.id ORDER BY s.id),
                       \(String(format: Self.isoTime, "i.created_at")), \(String(format: Self.isoTime, "i.updated_at"))
                FROM identities i JOIN galleries g ON g.id = i.gallery_id WHERE g.name = $1 AND i.external_id = $2
                """, [.text(gallery), .text(externalID)])
            guard let row = rows.first else { throw GalleryError.notFound("identity '\(externalID)' in gallery '\(gallery)'") }
            return IdentityRecord(gallery: gallery, externalID: externalID, displayName: row[0].text, metadata: row[1].text ?? "{}",
                                  sampleIDs: row[2].integers ?? [], createdAt: row[3].text, updatedAt: row[4].text)
        }
    }

    public func hasIdentity(gallery: String, externalID: String) throws(GalleryError) -> Bool {
        try run {
            !(try connection.query("""
                SELECT 1 FROM identities i JOIN galleries g ON g.id = i.gallery_id WHERE g.name = $1 AND i.external_id = $2
                """, [.text(gallery), .text(externalID)]).isEmpty)
        }
    }

    public func identities(gallery: String, limit: Int, after: String?, prefix: String?) throws(GalleryError) -> [IdentityRecord] {
        try run {
            try connection.query("""
                SELECT i.external_id, i.display_name, i.metadata::text, ARRAY(SELECT s.id FROM samples s WHERE s.identity_id = i.id ORDER BY s.id)
                FROM identities i JOIN galleries g ON g.id = i.gallery_id
                WHERE g.name = $1 AND i.external_id > $2 COLLATE "C" AND starts_with(i.external_id, $4)
                ORDER BY i.external_id COLLATE "C" LIMIT $3
                """, [.text(gallery), .text(after ?? ""), .integer(Int64(max(0, limit))), .text(prefix ?? "")]).map { row in
                IdentityRecord(gallery: gallery, externalID: row[0].text ?? "", displayName: row[1].text, metadata: row[2].text ?? "{}",
                               sampleIDs: row[3].integers ?? [])
            }
        }
    }

    public func samples(gallery: String, externalID: String) throws(GalleryError) -> [(id: Int64, hash: String, width: Int, height: Int)] {
        try run {
            let identity = try identityID(gallery: gallery, externalID: externalID)
            return try connection.query("SELECT id, content_hash, width, height FROM samples WHERE identity_id = $1 ORDER BY id", [.integer(identity)])
                .map { ($0[0].integer ?? 0, $0[1].text ?? "", Int($0[2].integer ?? 0), Int($0[3].integer ?? 0)) }
        }
    }

    public func sampleImage(gallery: String, externalID: String, sample: Int64) throws(GalleryError) -> [UInt8]? {
        try run {
            let rows = try connection.query("""
                SELECT s.image FROM samples s JOIN identities i ON i.id = s.identity_id JOIN galleries g ON g.id = i.gallery_id
                WHERE g.name = $1 AND i.external_id = $2 AND s.id = $3
                """, [.text(gallery), .text(externalID), .integer(sample)])
            guard let row = rows.first else { throw GalleryError.notFound("sample \(sample) of identity '\(externalID)' in gallery '\(gallery)'") }
            return row[0].bytes
        }
    }

    public func vectors(samples: [Int64], model: String) throws(GalleryError) -> [Int64: [Float]] {
        guard !samples.isEmpty else { return [:] }
        return try run {
            var out = [Int64: [Float]]()
            for row in try connection.query("SELECT sample_id, vector FROM embeddings WHERE sample_id = ANY($1) AND model_id = $2",
                                            [.integers(samples), .text(model)]) {
                out[row[0].integer ?? 0] = (row[1].bytes ?? []).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            }
            return out
        }
    }

    public func prefetch() {}

    public func identityNames() throws(GalleryError) -> [Int64: StoredIdentity] {
        try run {
            var names = [Int64: StoredIdentity]()
            for row in try connection.query("""
                SELECT i.id, g.name, i.external_id, (SELECT count(*) FROM samples s WHERE s.identity_id = i.id)
                FROM identities i JOIN galleries g ON g.id = i.gallery_id
                """) {
                names[row[0].integer ?? 0] = StoredIdentity(gallery: row[1].text ?? "", id: row[2].text ?? "", samples: Int(row[3].integer ?? 0))
            }
            return names
        }
    }

    /// One `COPY ... (FORMAT binary)` of every embedding under `model`, parsed as it streams:
    /// per row a field count (int16), then per field its length (int32) and bytes.
    public func forEachEmbeddingChunk(model: String, dimension: Int, rows: Int,
                                      _ body: (consuming EmbeddingChunk) -> EmbeddingChunk) throws(GalleryError) {
        try run {
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

    public func indexStamp(model: String) throws(GalleryError) -> IndexStamp {
        try run {
            let row = try connection.query("SELECT rows, sample_sum, changes FROM embedding_stamps WHERE model_id = $1", [.text(model)]).first
            return IndexStamp(rows: row?[0].integer ?? 0, sampleSum: row?[1].integer ?? 0, changes: row?[2].integer ?? 0)
        }
    }

    public func samplesMissingEmbedding(model: String, after: Int64 = 0, limit: Int) throws(GalleryError) -> [(sample: Int64, image: [UInt8])] {
        try run {
            try connection.query("""
                SELECT s.id, s.image FROM samples s WHERE s.image IS NOT NULL AND s.id > $1
                AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.sample_id = s.id AND e.model_id = $2) ORDER BY s.id LIMIT $3
                """, [.integer(after), .text(model), .integer(Int64(limit))]).map { ($0[0].integer ?? 0, $0[1].bytes ?? []) }
        }
    }

    public func sampleCount() throws(GalleryError) -> Int {
        try run { Int(try connection.query("SELECT count(*) FROM samples").first?.first?.integer ?? 0) }
    }

    public func samplesWithoutImages(missing model: String) throws(GalleryError) -> Int {
        try run {
            Int(try connection.query("""
                SELECT count(*) FROM samples s WHERE s.image IS NULL
                AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.sample_id = s.id AND e.model_id = $1)
                """, [.text(model)]).first?.first?.integer ?? 0)
        }
    }

    public func stats() throws(GalleryError) -> (galleries: [(name: String, identities: Int, samples: Int)], embeddings: [(model: String, count: Int)]) {
        try run {
            let galleries = try connection.query("""
                SELECT g.name, (SELECT count(*) FROM identities i WHERE i.gallery_id = g.id),
                       (SELECT count(*) FROM samples s JOIN identities i ON i.id = s.identity_id WHERE i.gallery_id = g.id)
                FROM galleries g ORDER BY g.name
                """).map { (name: $0[0].text ?? "", identities: Int($0[1].integer ?? 0), samples: Int($0[2].integer ?? 0)) }
            let embeddings = try connection.query("SELECT model_id, count(*) FROM embeddings GROUP BY model_id ORDER BY model_id")
                .map { (model: $0[0].text ?? "", count: Int($0[1].integer ?? 0)) }
            return (galleries, embeddings)
        }
    }

    /// Foreign keys hold by construction; this checks what PostgreSQL cannot: that every
    /// embedding has the right number of bytes for its model, and that the stamps agree with
    /// the embeddings.
    public func integrityCheck() throws(GalleryError) -> String {
        try run {
            let wrong = try connection.query("""
                SELECT count(*) FROM embeddings e JOIN models m ON m.id = e.model_id WHERE octet_length(e.vector) <> m.dimension * 4
                """).first?.first?.integer ?? 0
            let stamps = try connection.query("""
                SELECT count(*) FROM embedding_stamps st
                WHERE st.rows <> (SELECT count(*) FROM embeddings e WHERE e.model_id = st.model_id)
                """).first?.first?.integer ?? 0
            return wrong == 0 && stamps == 0 ? "ok" : "\(wrong) embeddings of the wrong length, \(stamps) stamps out of step"
        }
    }

    public func makeVectorReader(model: String) throws(GalleryError) -> any ExactVectorSource {
        PostgresVectorReader(store: try PostgresStore(url: url, password: password, migrations: nil, storeImages: storeImages), model: model)
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
        try run { try connection.execute("LISTEN \(Self.notifyChannel)") }
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
        try run { try connection.query("SELECT COALESCE(MAX(seq), 0)::bigint FROM changes").first?.first?.integer ?? 0 }
    }

    public func changes(after sequence: Int64, limit: Int) throws(GalleryError) -> [GalleryChange] {
        try run {
            try connection.query("SELECT seq, kind, gallery, samples, committed_at FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                                 [.integer(sequence), .integer(Int64(limit))]).map { row in
                GalleryChange(sequence: row[0].integer ?? 0, kind: GalleryChange.Kind(rawValue: row[1].text ?? "") ?? .add,
                              gallery: row[2].text ?? "default", samples: row[3].integers ?? [], committedAt: row[4].double ?? 0)
            }
        }
    }

    public func embeddingRows(samples: [Int64], model: String) throws(GalleryError) -> [(sample: Int64, gallery: String, identity: String, vector: [Float])] {
        guard !samples.isEmpty else { return [] }
        return try run {
            try connection.query("""
                SELECT e.sample_id, g.name, i.external_id, e.vector FROM embeddings e
                JOIN samples s ON s.id = e.sample_id JOIN identities i ON i.id = s.identity_id JOIN galleries g ON g.id = i.gallery_id
                WHERE e.sample_id = ANY($1) AND e.model_id = $2 ORDER BY e.sample_id
                """, [.integers(samples), .text(model)]).map { row in
                (row[0].integer ?? 0, row[1].text ?? "", row[2].text ?? "", (row[3].bytes ?? []).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
            }
        }
    }

    /// The change number and a function to run with the database as of one moment: for
    /// loading an index and knowing from which change to follow on. Runs `body` inside a
    /// REPEATABLE READ transaction whose first statement reads the newest change number.
    public func consistentRead<T>(_ body: (Int64) throws -> T) throws -> T {
        try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        do {
            let horizon = try connection.query("SELECT COALESCE(MAX(seq), 0)::bigint FROM changes").first?.first?.integer ?? 0
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

/// Stored vectors on a connection of their own (re-ranking).
final class PostgresVectorReader: ExactVectorSource, @unchecked Sendable {
    private let store: PostgresStore
    private let model: String
    private let lock = NSLock()

    init(store: PostgresStore, model: String) {
        self.store = store
        self.model = model
    }

    func vectors(of samples: [Int64]) throws -> [Int64: [Float]] {
        try lock.withLock { try store.vectors(samples: samples, model: model) }
    }
}
