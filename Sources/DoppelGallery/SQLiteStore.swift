// SPDX-License-Identifier: MIT
import Foundation

/// An image to enrol: its bytes (kept when `storeImages` is on), size, content hash, and
/// optionally its embedding under a model.
public struct NewSample: Sendable {
    public let image: [UInt8]
    public let width: Int
    public let height: Int
    public let contentHash: String
    public let embedding: [Float]?

    public init(image: [UInt8], width: Int, height: Int, contentHash: String, embedding: [Float]? = nil) {
        self.image = image
        self.width = width
        self.height = height
        self.contentHash = contentHash
        self.embedding = embedding
    }
}

public struct IdentityRecord: Sendable, Equatable {
    public let gallery: String
    public let externalID: String
    public let displayName: String?
    public let metadata: String
    public let sampleIDs: [Int64]
    public var createdAt: String?
    public var updatedAt: String?

    public init(gallery: String, externalID: String, displayName: String?, metadata: String, sampleIDs: [Int64],
                createdAt: String? = nil, updatedAt: String? = nil) {
        self.gallery = gallery
        self.externalID = externalID
        self.displayName = displayName
        self.metadata = metadata
        self.sampleIDs = sampleIDs
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// The gallery's persistent memory in SQLite: galleries, identities, samples with their
/// original bytes, embeddings per model, and the append-only audit log. Every change is one
/// transaction (all of it or none), and synchronous=FULL means a returned call is on disk.
/// Not thread-safe: one store per thread, or serialise calls (the service's writer does).
public final class SQLiteStore: GalleryStore, SizeCappedStore {
    public let database: SQLiteDatabase
    public let storeImages: Bool
    public var backend: String { "sqlite" }
    /// One server owns the file: no change log to follow.
    public var lastChange: Int64 { 0 }
    /// The connection was opened read-only (a read-only file or file system): reads work,
    /// writes fail with SQLITE_READONLY until the file is writable again.
    public var isReadOnly: Bool { database.isReadOnly }

    /// Opens (creating if needed) and migrates the database at `path`.
    public init(path: String, migrations: [Migration], storeImages: Bool = true) throws(GalleryError) {
        do { database = try SQLiteDatabase(path: path) } catch { throw .database(error) }
        self.storeImages = storeImages
        try Migrator.migrate(database, migrations)
    }

    /// Runs `body` as one transaction, mapping SQLite's failures to gallery errors.
    /// A connection opened on a read-only file stays read-only, so each write first tries a
    /// fresh connection: once the file system is writable again, writes resume without a restart.
    private func write<T>(_ body: () throws -> T) throws(GalleryError) -> T {
        if database.isReadOnly { try? database.reopen() }
        return try read { try database.transaction(body) }
    }

    /// Runs `body` (reads, or a transaction), mapping every failure to a gallery error.
    private func read<T>(_ body: () throws -> T) throws(GalleryError) -> T {
        do { return try body() } catch let error as GalleryError {
            throw error
        } catch let error as SQLiteError {
            throw .database(error)
        } catch {
            throw .invalid("\(error)")
        }
    }

    private func galleryID(_ name: String, create: Bool) throws -> Int64 {
        if let id = try database.query("SELECT id FROM galleries WHERE name = ?", [.text(name)]).first?.first?.integer { return id }
        guard create else { throw GalleryError.notFound("gallery '\(name)'") }
        try database.query("INSERT INTO galleries (name) VALUES (?)", [.text(name)])
        return database.lastInsertedRowID
    }

    private func identityID(gallery: String, externalID: String) throws -> Int64 {
        let rows = try database.query("""
            SELECT identities.id FROM identities JOIN galleries ON galleries.id = identities.gallery_id
            WHERE galleries.name = ? AND identities.external_id = ?
            """, [.text(gallery), .text(externalID)])
        guard let id = rows.first?.first?.integer else { throw GalleryError.notFound("identity '\(externalID)' in gallery '\(gallery)'") }
        return id
    }

    /// Records a model so embeddings can refer to it (idempotent).
    public func registerModel(id: String, architecture: String, dimension: Int, metric: String) throws(GalleryError) {
        // Looked up first, so that a read-only gallery that knows the model can still serve.
        let known = try read { try database.query("SELECT 1 FROM models WHERE id = ?", [.text(id)]) }
        guard known.isEmpty else { return }
        _ = try write {
            try database.query("INSERT OR IGNORE INTO models (id, architecture, dimension, metric) VALUES (?, ?, ?, ?)",
                               [.text(id), .text(architecture), .integer(Int64(dimension)), .text(metric)])
        }
    }

    /// Creates an identity with its samples, all or nothing. A taken id or an image given twice
    /// is a conflict and leaves the gallery unchanged.
    @discardableResult
    public func createIdentity(gallery: String, externalID: String, displayName: String? = nil, metadata: String = "{}",
                               samples: [NewSample], model: String? = nil, actor: String) throws(GalleryError) -> IdentityRecord {
        try write {
            let galleryRow = try galleryID(gallery, create: true)
            do throws(SQLiteError) {
                try database.query("INSERT INTO identities (gallery_id, external_id, display_name, metadata) VALUES (?, ?, ?, ?)",
                                   [.integer(galleryRow), .text(externalID), displayName.map(SQLiteValue.text) ?? .null, .text(metadata)])
            } catch {
                if error.isUniqueViolation { throw GalleryError.conflict("identity '\(externalID)' already exists in gallery '\(gallery)'") }
                throw error
            }
            let identity = database.lastInsertedRowID
            let ids = try insertSamples(samples, identity: identity, model: model)
            try audit(actor: actor, action: "create_identity", gallery: gallery, subject: externalID, detail: "{\"samples\":\(ids.count)}")
            return IdentityRecord(gallery: gallery, externalID: externalID, displayName: displayName, metadata: metadata, sampleIDs: ids)
        }
    }

    /// Adds samples to an existing identity, all or nothing. Returns their ids.
    @discardableResult
    public func addSamples(gallery: String, externalID: String, samples: [NewSample], model: String? = nil, actor: String) throws(GalleryError) -> [Int64] {
        try write {
            let identity = try identityID(gallery: gallery, externalID: externalID)
            let ids = try insertSamples(samples, identity: identity, model: model)
            try database.query("UPDATE identities SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?", [.integer(identity)])
            try audit(actor: actor, action: "add_samples", gallery: gallery, subject: externalID, detail: "{\"samples\":\(ids.count)}")
            return ids
        }
    }

    private func insertSamples(_ samples: [NewSample], identity: Int64, model: String?) throws -> [Int64] {
        var ids = [Int64]()
        for sample in samples {
            do throws(SQLiteError) {
                try database.query("INSERT INTO samples (identity_id, content_hash, image, width, height) VALUES (?, ?, ?, ?, ?)",
                                   [.integer(identity), .text(sample.contentHash), storeImages ? .blob(sample.image) : .null,
                                    .integer(Int64(sample.width)), .integer(Int64(sample.height))])
            } catch {
                if error.isUniqueViolation {
                    throw GalleryError.conflict("the same image (sha256 \(sample.contentHash.prefix(12))) is already enrolled for this identity")
                }
                throw error
            }
            let id = database.lastInsertedRowID
            ids.append(id)
            if let model, let vector = sample.embedding {
                try database.query("INSERT INTO embeddings (sample_id, model_id, vector) VALUES (?, ?, ?)",
                                   [.integer(id), .text(model), .blob(vector.withUnsafeBytes { Array($0) })])
            }
        }
        return ids
    }

    /// Deletes an identity and, by cascade, its samples and embeddings. Returns the sample ids removed.
    @discardableResult
    public func deleteIdentity(gallery: String, externalID: String, actor: String) throws(GalleryError) -> [Int64] {
        try write {
            let identity = try identityID(gallery: gallery, externalID: externalID)
            let samples = try database.query("SELECT id FROM samples WHERE identity_id = ?", [.integer(identity)]).compactMap { $0.first?.integer }
            try database.query("DELETE FROM identities WHERE id = ?", [.integer(identity)])
            try audit(actor: actor, action: "delete_identity", gallery: gallery, subject: externalID, detail: "{\"samples\":\(samples.count)}")
            return samples
        }
    }

    /// Deletes one sample of an identity (and its embeddings, by cascade).
    public func deleteSample(gallery: String, externalID: String, sample: Int64, actor: String) throws(GalleryError) {
        _ = try write {
            let identity = try identityID(gallery: gallery, externalID: externalID)
            try database.query("DELETE FROM samples WHERE id = ? AND identity_id = ?", [.integer(sample), .integer(identity)])
            guard database.changes == 1 else { throw GalleryError.notFound("sample \(sample) of identity '\(externalID)'") }
            try database.query("UPDATE identities SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?", [.integer(identity)])
            try audit(actor: actor, action: "delete_sample", gallery: gallery, subject: externalID, detail: "{\"sample\":\(sample)}")
        }
    }

    /// One identity with its sample ids.
    public func identity(gallery: String, externalID: String) throws(GalleryError) -> IdentityRecord {
        try read {
            let rows = try database.query("""
                SELECT i.display_name, i.metadata, (SELECT group_concat(s.id) FROM samples s WHERE s.identity_id = i.id),
                       i.created_at, i.updated_at
                FROM identities i JOIN galleries g ON g.id = i.gallery_id WHERE g.name = ? AND i.external_id = ?
                """, [.text(gallery), .text(externalID)])
            guard let row = rows.first else { throw GalleryError.notFound("identity '\(externalID)' in gallery '\(gallery)'") }
            return IdentityRecord(gallery: gallery, externalID: externalID, displayName: row[0].text, metadata: row[1].text ?? "{}",
                                  sampleIDs: (row[2].text ?? "").split(separator: ",").compactMap { Int64($0) }.sorted(),
                                  createdAt: row[3].text, updatedAt: row[4].text)
        }
    }

    /// The embeddings under `model` of the given samples.
    public func vectors(samples: [Int64], model: String) throws(GalleryError) -> [Int64: [Float]] {
        var out = [Int64: [Float]]()
        do {
            for sample in samples {
                if let blob = try database.query("SELECT vector FROM embeddings WHERE sample_id = ? AND model_id = ?",
                                                 [.integer(sample), .text(model)]).first?.first?.blob {
                    out[sample] = blob.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                }
            }
        } catch { throw .database(error) }
        return out
    }

    /// Identities of a gallery ordered by external id, `limit` after `after` (keyset pagination).
    public func identities(gallery: String, limit: Int, after: String?, prefix: String?) throws(GalleryError) -> [IdentityRecord] {
        do {
            let rows = try database.query("""
                SELECT i.external_id, i.display_name, i.metadata, (SELECT group_concat(s.id) FROM samples s WHERE s.identity_id = i.id)
                FROM identities i JOIN galleries g ON g.id = i.gallery_id
                WHERE g.name = ? AND i.external_id > ? AND substr(i.external_id, 1, ?) = ? ORDER BY i.external_id LIMIT ?
                """, [.text(gallery), .text(after ?? ""), .integer(Int64((prefix ?? "").count)), .text(prefix ?? ""), .integer(Int64(max(0, limit)))])
            return rows.map { row in
                IdentityRecord(gallery: gallery, externalID: row[0].text ?? "", displayName: row[1].text, metadata: row[2].text ?? "{}",
                               sampleIDs: (row[3].text ?? "").split(separator: ",").compactMap { Int64($0) }.sorted())
            }
        } catch { throw .database(error) }
    }

    /// Every embedding under `model`, for loading the index: sample, gallery, identity, vector.
    public func embeddings(model: String) throws(GalleryError) -> [(sample: Int64, gallery: String, identity: String, vector: [Float])] {
        do {
            return try database.query("""
                SELECT e.sample_id, g.name, i.external_id, e.vector FROM embeddings e
                JOIN samples s ON s.id = e.sample_id JOIN identities i ON i.id = s.identity_id JOIN galleries g ON g.id = i.gallery_id
                WHERE e.model_id = ? ORDER BY e.sample_id
                """, [.text(model)]).map { row in
                let bytes = row[3].blob ?? []
                let vector = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                return (row[0].integer ?? 0, row[1].text ?? "", row[2].text ?? "", vector)
            }
        } catch { throw .database(error) }
    }

    /// Asks the kernel to read the database file into its cache now, in large sequential reads,
    /// ahead of a full scan: the scan walks the B-tree, whose pages are not in file order, so
    /// on a cold cache it would otherwise wait for one small random read after another.
    public func prefetch() {
        let fd = open(database.path, O_RDONLY)
        guard fd >= 0 else { return }
        posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED)
        close(fd)
    }

    /// Every identity's gallery, external id and sample count by row id, for loading the index
    /// (the counts let the loader size its arrays once).
    public func identityNames() throws(GalleryError) -> [Int64: StoredIdentity] {
        try read {
            var names = [Int64: StoredIdentity]()
            try database.forEachRow("""
                SELECT i.id, g.name, i.external_id, (SELECT count(*) FROM samples s WHERE s.identity_id = i.id)
                FROM identities i JOIN galleries g ON g.id = i.gallery_id
                """) { row in
                names[row.integer(0)] = StoredIdentity(gallery: row.text(1), id: row.text(2), samples: Int(row.integer(3)))
            }
            return names
        }
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

    private func audit(actor: String, action: String, gallery: String, subject: String, detail: String) throws {
        try database.query("INSERT INTO audit_log (actor, action, gallery, subject, detail) VALUES (?, ?, ?, ?, ?)",
                           [.text(actor), .text(action), .text(gallery), .text(subject), .text(detail)])
    }

    public func hasIdentity(gallery: String, externalID: String) throws(GalleryError) -> Bool {
        do {
            return try database.query("""
                SELECT 1 FROM identities i JOIN galleries g ON g.id = i.gallery_id WHERE g.name = ? AND i.external_id = ?
                """, [.text(gallery), .text(externalID)]).isEmpty == false
        } catch { throw .database(error) }
    }

    /// Up to `limit` samples after sample id `after` with stored image bytes and no embedding
    /// under `model`, in id order.
    public func samplesMissingEmbedding(model: String, after: Int64 = 0, limit: Int) throws(GalleryError) -> [(sample: Int64, image: [UInt8])] {
        do {
            return try database.query("""
                SELECT s.id, s.image FROM samples s WHERE s.image IS NOT NULL AND s.id > ?
                AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.sample_id = s.id AND e.model_id = ?) ORDER BY s.id LIMIT ?
                """, [.integer(after), .text(model), .integer(Int64(limit))]).map { ($0[0].integer ?? 0, $0[1].blob ?? []) }
        } catch { throw .database(error) }
    }

    public func sampleCount() throws(GalleryError) -> Int {
        try read { Int(try database.query("SELECT COUNT(*) FROM samples").first?.first?.integer ?? 0) }
    }

    /// Samples that cannot be re-embedded because their images were not stored.
    public func samplesWithoutImages(missing model: String) throws(GalleryError) -> Int {
        do {
            return Int(try database.query("""
                SELECT COUNT(*) FROM samples s WHERE s.image IS NULL
                AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.sample_id = s.id AND e.model_id = ?)
                """, [.text(model)]).first?.first?.integer ?? 0)
        } catch { throw .database(error) }
    }

    /// Stores embeddings under `model` in one transaction.
    public func insertEmbeddings(_ rows: [(sample: Int64, vector: [Float])], model: String) throws(GalleryError) {
        _ = try write {
            for row in rows {
                // An upsert, not INSERT OR REPLACE: the replace's implicit delete would skip the
                // stamp's delete trigger (SQLite fires it only with recursive triggers on).
                try database.query("""
                    INSERT INTO embeddings (sample_id, model_id, vector) VALUES (?, ?, ?)
                    ON CONFLICT (sample_id, model_id) DO UPDATE SET vector = excluded.vector
                    """,
                                   [.integer(row.sample), .text(model), .blob(row.vector.withUnsafeBytes { Array($0) })])
            }
        }
    }

    /// The stamp of the embeddings under `model` (migration 0002's triggers keep it), which an
    /// index snapshot must carry to be used.
    public func indexStamp(model: String) throws(GalleryError) -> IndexStamp {
        try read {
            let row = try database.query("SELECT rows, sample_sum, changes FROM embedding_stamps WHERE model_id = ?", [.text(model)]).first
            return IndexStamp(rows: row?[0].integer ?? 0, sampleSum: row?[1].integer ?? 0, changes: row?[2].integer ?? 0)
        }
    }

    /// One identity's samples: id, content hash, size.
    public func samples(gallery: String, externalID: String) throws(GalleryError) -> [(id: Int64, hash: String, width: Int, height: Int)] {
        try read {
            let identity = try identityID(gallery: gallery, externalID: externalID)
            return try database.query("SELECT id, content_hash, width, height FROM samples WHERE identity_id = ? ORDER BY id", [.integer(identity)])
                .map { ($0[0].integer ?? 0, $0[1].text ?? "", Int($0[2].integer ?? 0), Int($0[3].integer ?? 0)) }
        }
    }

    /// Counts per gallery: identities and samples; and embeddings per model.
    public func stats() throws(GalleryError) -> (galleries: [(name: String, identities: Int, samples: Int)], embeddings: [(model: String, count: Int)]) {
        do {
            let galleries = try database.query("""
                SELECT g.name, (SELECT COUNT(*) FROM identities i WHERE i.gallery_id = g.id),
                       (SELECT COUNT(*) FROM samples s JOIN identities i ON i.id = s.identity_id WHERE i.gallery_id = g.id)
                FROM galleries g ORDER BY g.name
                """).map { (name: $0[0].text ?? "", identities: Int($0[1].integer ?? 0), samples: Int($0[2].integer ?? 0)) }
            let embeddings = try database.query("SELECT model_id, COUNT(*) FROM embeddings GROUP BY model_id ORDER BY model_id")
                .map { (model: $0[0].text ?? "", count: Int($0[1].integer ?? 0)) }
            return (galleries, embeddings)
        } catch { throw .database(error) }
    }

    public func sampleImage(gallery: String, externalID: String, sample: Int64) throws(GalleryError) -> [UInt8]? {
        try read {
            let rows = try database.query("""
                SELECT s.image FROM samples s JOIN identities i ON i.id = s.identity_id JOIN galleries g ON g.id = i.gallery_id
                WHERE g.name = ? AND i.external_id = ? AND s.id = ?
                """, [.text(gallery), .text(externalID), .integer(sample)])
            guard let row = rows.first else { throw GalleryError.notFound("sample \(sample) of identity '\(externalID)' in gallery '\(gallery)'") }
            return row[0].blob
        }
    }

    public func makeVectorReader(model: String) throws(GalleryError) -> any ExactVectorSource {
        try EmbeddingReader(path: database.path, model: model)
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
