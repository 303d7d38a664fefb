// SPDX-License-Identifier: MIT
import Foundation

/// What a write changed, for a backend that keeps a log of changes (PostgreSQL's replicas
/// follow it); a backend without one ignores it.
public typealias StoreChange = (kind: GalleryChange.Kind, gallery: String, samples: [Int64])

/// A gallery store on a SQL database. Its statements are written once, in the extension
/// below, in the terms of the backend's `SQLDialect`; a backend (`SQLiteStore`,
/// `PostgresStore`) supplies the connection, how a transaction runs and what else a committed
/// write does, and its own fast paths (bulk loading, the consistency check, vector readers).
public protocol SQLGalleryStore: GalleryStore {
    var dialect: SQLDialect { get }
    /// Runs one statement (`?` placeholders) and hands its rows to `body` one at a time;
    /// throws the backend's own errors (`read` and `write` map them).
    func forEachRow(_ sql: String, _ parameters: [SQLValue], _ body: (SQLRow) throws -> Void) throws
    /// Runs an INSERT and returns the new row's `id` (PostgreSQL's RETURNING, SQLite's last
    /// insert id); no id is an error.
    func insert(_ sql: String, _ parameters: [SQLValue]) throws -> Int64
    /// Runs reads, with the backend's failures as gallery errors.
    func read<T>(_ body: () throws -> T) throws(GalleryError) -> T
    /// Runs `body` as one transaction, committed before it returns; `change` says what it
    /// changed.
    func write<T>(change: ((T) -> StoreChange)?, _ body: () throws -> T) throws(GalleryError) -> T
    /// Whether `error` is the backend's unique-constraint violation.
    func isUniqueViolation(_ error: any Error) -> Bool
}

extension SQLGalleryStore {
    /// Every row of one statement.
    @discardableResult
    func rows(_ sql: String, _ parameters: [SQLValue] = []) throws -> [SQLRow] {
        var rows = [SQLRow]()
        try forEachRow(sql, parameters) { rows.append($0) }
        return rows
    }

    /// The single number a statement such as `SELECT count(*)` answers.
    func number(_ sql: String, _ parameters: [SQLValue] = []) throws -> Int64 {
        guard let row = try rows(sql, parameters).first else { throw GalleryError.unexpected("no row from `\(sql)`") }
        return try row.integer(0)
    }

    private static func floats(_ vector: [Float]) -> SQLValue { .bytes(vector.withUnsafeBytes { Array($0) }) }

    private static func sampleIDs(_ list: String?) -> [Int64] {
        (list ?? "").split(separator: ",").compactMap { Int64($0) }.sorted()
    }

    // MARK: writes

    private func galleryID(_ name: String, create: Bool) throws -> Int64 {
        if let row = try rows("SELECT id FROM galleries WHERE name = ?", [.text(name)]).first { return try row.integer(0) }
        guard create else { throw GalleryError.notFound("gallery '\(name)'") }
        return try insert("INSERT INTO galleries (name) VALUES (?)", [.text(name)])
    }

    private func identityID(gallery: String, externalID: String) throws -> Int64 {
        let found = try rows("""
            SELECT i.id FROM identities i JOIN galleries g ON g.id = i.gallery_id WHERE g.name = ? AND i.external_id = ?
            """, [.text(gallery), .text(externalID)])
        guard let row = found.first else { throw GalleryError.notFound("identity '\(externalID)' in gallery '\(gallery)'") }
        return try row.integer(0)
    }

    public func registerModel(id: String, architecture: String, dimension: Int, metric: String) throws(GalleryError) {
        // Looked up first, so that a read-only gallery that knows the model can still serve.
        let known = try read { try rows("SELECT 1 FROM models WHERE id = ?", [.text(id)]) }
        guard known.isEmpty else { return }
        _ = try write(change: nil) {
            try rows("INSERT INTO models (id, architecture, dimension, metric) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                     [.text(id), .text(architecture), .integer(Int64(dimension)), .text(metric)])
        }
    }

    @discardableResult
    public func createIdentity(gallery: String, externalID: String, displayName: String? = nil, metadata: String = "{}",
                               samples: [NewSample], model: String? = nil, actor: String) throws(GalleryError) -> IdentityRecord {
        try write(change: { record in (.add, gallery, record.sampleIDs) }) {
            let galleryRow = try galleryID(gallery, create: true)
            let identity: Int64
            do {
                identity = try insert("""
                    INSERT INTO identities (gallery_id, external_id, display_name, metadata) VALUES (?, ?, ?, \(dialect.jsonParameter))
                    """, [.integer(galleryRow), .text(externalID), displayName.map(SQLValue.text) ?? .null, .text(metadata)])
            } catch {
                if isUniqueViolation(error) { throw GalleryError.conflict("identity '\(externalID)' already exists in gallery '\(gallery)'") }
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
            try rows("UPDATE identities SET updated_at = \(dialect.now) WHERE id = ?", [.integer(identity)])
            try audit(actor: actor, action: "add_samples", gallery: gallery, subject: externalID, detail: "{\"samples\":\(ids.count)}")
            return ids
        }
    }

    private func insertSamples(_ samples: [NewSample], identity: Int64, model: String?) throws -> [Int64] {
        var ids = [Int64]()
        for sample in samples {
            let id: Int64
            do {
                id = try insert("INSERT INTO samples (id, identity_id, content_hash, image, width, height) VALUES (\(dialect.newSampleID), ?, ?, ?, ?, ?)",
                                [.integer(identity), .text(sample.contentHash), storeImages ? .bytes(sample.image) : .null,
                                 .integer(Int64(sample.width)), .integer(Int64(sample.height))])
            } catch {
                if isUniqueViolation(error) {
                    throw GalleryError.conflict("the same image (sha256 \(sample.contentHash.prefix(12))) is already enrolled for this identity")
                }
                throw error
            }
            ids.append(id)
            if let model, let vector = sample.embedding {
                try rows("INSERT INTO embeddings (sample_id, model_id, vector) VALUES (?, ?, ?)", [.integer(id), .text(model), Self.floats(vector)])
            }
        }
        return ids
    }

    /// Deletes an identity and, by cascade, its samples and embeddings. Returns the sample ids removed.
    @discardableResult
    public func deleteIdentity(gallery: String, externalID: String, actor: String) throws(GalleryError) -> [Int64] {
        try write(change: { samples in (.remove, gallery, samples) }) {
            let identity = try identityID(gallery: gallery, externalID: externalID)
            let samples = try rows("SELECT id FROM samples WHERE identity_id = ? ORDER BY id", [.integer(identity)]).map { try $0.integer(0) }
            try rows("DELETE FROM identities WHERE id = ?", [.integer(identity)])
            try audit(actor: actor, action: "delete_identity", gallery: gallery, subject: externalID, detail: "{\"samples\":\(samples.count)}")
            return samples
        }
    }

    /// Deletes one sample of an identity (and its embeddings, by cascade).
    public func deleteSample(gallery: String, externalID: String, sample: Int64, actor: String) throws(GalleryError) {
        try write(change: { (_: Void) in (.remove, gallery, [sample]) }) {
            let identity = try identityID(gallery: gallery, externalID: externalID)
            guard try !rows("SELECT 1 FROM samples WHERE id = ? AND identity_id = ?", [.integer(sample), .integer(identity)]).isEmpty else {
                throw GalleryError.notFound("sample \(sample) of identity '\(externalID)'")
            }
            try rows("DELETE FROM samples WHERE id = ?", [.integer(sample)])
            try rows("UPDATE identities SET updated_at = \(dialect.now) WHERE id = ?", [.integer(identity)])
            try audit(actor: actor, action: "delete_sample", gallery: gallery, subject: externalID, detail: "{\"sample\":\(sample)}")
        }
    }

    /// Stores (or replaces) embeddings under `model` in one transaction; announced like
    /// enrolments, so replicas serving this model add them.
    public func insertEmbeddings(_ rows: [(sample: Int64, vector: [Float])], model: String) throws(GalleryError) {
        guard let first = rows.first else { return }
        let gallery = try read { () throws -> String in
            try self.rows("""
                SELECT g.name FROM samples s JOIN identities i ON i.id = s.identity_id JOIN galleries g ON g.id = i.gallery_id WHERE s.id = ?
                """, [.integer(first.sample)]).first?.text(0) ?? "default"
        }
        try write(change: { (_: Void) in (.add, gallery, rows.map(\.sample)) }) {
            for row in rows {
                // An upsert, not SQLite's INSERT OR REPLACE: the replace's implicit delete would
                // skip the stamp's delete trigger (SQLite fires it only with recursive triggers on).
                try self.rows("""
                    INSERT INTO embeddings (sample_id, model_id, vector) VALUES (?, ?, ?)
                    ON CONFLICT (sample_id, model_id) DO UPDATE SET vector = excluded.vector
                    """, [.integer(row.sample), .text(model), Self.floats(row.vector)])
            }
        }
    }

    private func audit(actor: String, action: String, gallery: String, subject: String, detail: String) throws {
        try rows("INSERT INTO audit_log (actor, action, gallery, subject, detail) VALUES (?, ?, ?, ?, \(dialect.jsonParameter))",
                 [.text(actor), .text(action), .text(gallery), .text(subject), .text(detail)])
    }

    // MARK: reads

    public func identity(gallery: String, externalID: String) throws(GalleryError) -> IdentityRecord {
        try read {
            let found = try rows("""
                SELECT i.display_name, \(dialect.jsonText("i.metadata")),
                       (SELECT \(dialect.commaList("s.id")) FROM samples s WHERE s.identity_id = i.id),
                       \(dialect.timeText("i.created_at")), \(dialect.timeText("i.updated_at"))
                FROM identities i JOIN galleries g ON g.id = i.gallery_id WHERE g.name = ? AND i.external_id = ?
                """, [.text(gallery), .text(externalID)])
            guard let row = found.first else { throw GalleryError.notFound("identity '\(externalID)' in gallery '\(gallery)'") }
            return IdentityRecord(gallery: gallery, externalID: externalID, displayName: try row.optionalText(0), metadata: try row.text(1),
                                  sampleIDs: Self.sampleIDs(try row.optionalText(2)), createdAt: try row.text(3), updatedAt: try row.text(4))
        }
    }

    public func hasIdentity(gallery: String, externalID: String) throws(GalleryError) -> Bool {
        try read {
            try !rows("SELECT 1 FROM identities i JOIN galleries g ON g.id = i.gallery_id WHERE g.name = ? AND i.external_id = ?",
                      [.text(gallery), .text(externalID)]).isEmpty
        }
    }

    /// Identities of a gallery in byte order of their ids, `limit` after `after` (keyset
    /// pagination), only those whose id starts with `prefix` when one is given.
    public func identities(gallery: String, limit: Int, after: String?, prefix: String?) throws(GalleryError) -> [IdentityRecord] {
        try read {
            try rows("""
                SELECT i.external_id, i.display_name, \(dialect.jsonText("i.metadata")),
                       (SELECT \(dialect.commaList("s.id")) FROM samples s WHERE s.identity_id = i.id)
                FROM identities i JOIN galleries g ON g.id = i.gallery_id
                WHERE g.name = ? AND i.external_id > ?\(dialect.byteOrder) AND substr(i.external_id, 1, length(?)) = ?
                ORDER BY i.external_id\(dialect.byteOrder) LIMIT ?
                """, [.text(gallery), .text(after ?? ""), .text(prefix ?? ""), .text(prefix ?? ""), .integer(Int64(max(0, limit)))]).map { row in
                IdentityRecord(gallery: gallery, externalID: try row.text(0), displayName: try row.optionalText(1), metadata: try row.text(2),
                               sampleIDs: Self.sampleIDs(try row.optionalText(3)))
            }
        }
    }

    public func samples(gallery: String, externalID: String) throws(GalleryError) -> [(id: Int64, hash: String, width: Int, height: Int)] {
        try read {
            let identity = try identityID(gallery: gallery, externalID: externalID)
            return try rows("SELECT id, content_hash, width, height FROM samples WHERE identity_id = ? ORDER BY id", [.integer(identity)])
                .map { (try $0.integer(0), try $0.text(1), try $0.count(2), try $0.count(3)) }
        }
    }

    public func sampleImage(gallery: String, externalID: String, sample: Int64) throws(GalleryError) -> [UInt8]? {
        try read {
            let found = try rows("""
                SELECT s.image FROM samples s JOIN identities i ON i.id = s.identity_id JOIN galleries g ON g.id = i.gallery_id
                WHERE g.name = ? AND i.external_id = ? AND s.id = ?
                """, [.text(gallery), .text(externalID), .integer(sample)])
            guard let row = found.first else { throw GalleryError.notFound("sample \(sample) of identity '\(externalID)' in gallery '\(gallery)'") }
            return try row.optionalBytes(0)
        }
    }

    /// The embeddings under `model` of the given samples (those that have one).
    public func vectors(samples: [Int64], model: String) throws(GalleryError) -> [Int64: [Float]] {
        try read {
            var out = [Int64: [Float]]()
            // In slices, so that no statement carries more parameters than a backend takes.
            for start in stride(from: 0, to: samples.count, by: 500) {
                let slice = samples[start..<min(start + 500, samples.count)]
                try forEachRow("SELECT sample_id, vector FROM embeddings WHERE model_id = ? AND sample_id IN (\(SQLDialect.placeholders(slice.count)))",
                               [.text(model)] + slice.map(SQLValue.integer)) { row in
                    out[try row.integer(0)] = try row.vector(1)
                }
            }
            return out
        }
    }

    /// The gallery, identity and vector under `model` of each of these samples that still has one.
    public func embeddingRows(samples: [Int64], model: String) throws(GalleryError) -> [(sample: Int64, gallery: String, identity: String, vector: [Float])] {
        try read {
            var out = [(sample: Int64, gallery: String, identity: String, vector: [Float])]()
            for start in stride(from: 0, to: samples.count, by: 500) {
                let slice = samples[start..<min(start + 500, samples.count)]
                try forEachRow("""
                    SELECT e.sample_id, g.name, i.external_id, e.vector FROM embeddings e
                    JOIN samples s ON s.id = e.sample_id JOIN identities i ON i.id = s.identity_id JOIN galleries g ON g.id = i.gallery_id
                    WHERE e.model_id = ? AND e.sample_id IN (\(SQLDialect.placeholders(slice.count))) ORDER BY e.sample_id
                    """, [.text(model)] + slice.map(SQLValue.integer)) { row in
                    out.append((try row.integer(0), try row.text(1), try row.text(2), try row.vector(3)))
                }
            }
            return out
        }
    }

    /// Every identity's gallery, external id and sample count by row id, for loading the index
    /// (the counts let the loader size its arrays once).
    public func identityNames() throws(GalleryError) -> [Int64: StoredIdentity] {
        try read {
            var names = [Int64: StoredIdentity]()
            try forEachRow("""
                SELECT i.id, g.name, i.external_id, (SELECT count(*) FROM samples s WHERE s.identity_id = i.id)
                FROM identities i JOIN galleries g ON g.id = i.gallery_id
                """, []) { row in
                names[try row.integer(0)] = StoredIdentity(gallery: try row.text(1), id: try row.text(2), samples: try row.count(3))
            }
            return names
        }
    }

    /// The stamp of the embeddings under `model` (the migrations' triggers keep it), which an
    /// index snapshot must carry to be used. No stamp row yet: no embeddings.
    public func indexStamp(model: String) throws(GalleryError) -> IndexStamp {
        try read {
            guard let row = try rows("SELECT rows, sample_sum, changes FROM embedding_stamps WHERE model_id = ?", [.text(model)]).first else {
                return IndexStamp(rows: 0, sampleSum: 0, changes: 0)
            }
            return IndexStamp(rows: try row.integer(0), sampleSum: try row.integer(1), changes: try row.integer(2))
        }
    }

    public func sampleCount() throws(GalleryError) -> Int {
        try read { Int(try number("SELECT count(*) FROM samples")) }
    }

    /// Up to `limit` samples after sample id `after` with stored image bytes and no embedding
    /// under `model`, in id order.
    public func samplesMissingEmbedding(model: String, after: Int64 = 0, limit: Int) throws(GalleryError) -> [(sample: Int64, image: [UInt8])] {
        try read {
            try rows("""
                SELECT s.id, s.image FROM samples s WHERE s.image IS NOT NULL AND s.id > ?
                AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.sample_id = s.id AND e.model_id = ?) ORDER BY s.id LIMIT ?
                """, [.integer(after), .text(model), .integer(Int64(limit))]).map { (try $0.integer(0), try $0.bytes(1)) }
        }
    }

    public func samplesWithoutImages(missing model: String) throws(GalleryError) -> Int {
        try read {
            Int(try number("""
                SELECT count(*) FROM samples s WHERE s.image IS NULL
                AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.sample_id = s.id AND e.model_id = ?)
                """, [.text(model)]))
        }
    }

    public func stats() throws(GalleryError) -> (galleries: [(name: String, identities: Int, samples: Int)], embeddings: [(model: String, count: Int)]) {
        try read {
            let galleries = try rows("""
                SELECT g.name, (SELECT count(*) FROM identities i WHERE i.gallery_id = g.id),
                       (SELECT count(*) FROM samples s JOIN identities i ON i.id = s.identity_id WHERE i.gallery_id = g.id)
                FROM galleries g ORDER BY g.name
                """).map { (name: try $0.text(0), identities: try $0.count(1), samples: try $0.count(2)) }
            let embeddings = try rows("SELECT model_id, count(*) FROM embeddings GROUP BY model_id ORDER BY model_id")
                .map { (model: try $0.text(0), count: try $0.count(1)) }
            return (galleries, embeddings)
        }
    }
}

/// Stored vectors read through a store on a connection of its own, for a compact index's
/// re-ranking: a search holds its index's read lock while it asks, and the writer path takes
/// the store before the index's write lock, so sharing the writer's connection (and its lock)
/// could deadlock. (SQLite's WAL lets this reader run beside the writer.)
final class StoreVectorReader: ExactVectorSource, @unchecked Sendable {
    private let store: any SQLGalleryStore
    private let model: String
    private let lock = NSLock()

    init(store: any SQLGalleryStore, model: String) {
        self.store = store
        self.model = model
    }

    /// A sample without a row (deleted meanwhile) is left out; a failed read throws.
    func vectors(of samples: [Int64]) throws -> [Int64: [Float]] {
        try lock.withLock { try store.vectors(samples: samples, model: model) }
    }
}
