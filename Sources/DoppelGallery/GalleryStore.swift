// SPDX-License-Identifier: MIT
import Foundation

/// What the gallery keeps durably: named galleries, identities (external id unique per
/// gallery, display name, JSON metadata), samples with their original bytes and a content
/// hash, embeddings per (sample, model), models, and an append-only audit log. Two backends:
/// `SQLiteStore` (one file, one server: the default) and `PostgresStore` (one database shared
/// by several replicas). Every change is all or nothing and committed before the call returns.
///
/// Thread safety: one caller at a time (the service serialises them); a backend may keep one
/// connection.
public protocol GalleryStore: AnyObject {
    /// "sqlite" or "postgresql", for logs and metrics.
    var backend: String { get }
    /// Whether enrolled images' bytes are kept (re-embedding needs them).
    var storeImages: Bool { get }
    /// The store can serve reads but not take writes now (a read-only file).
    var isReadOnly: Bool { get }
    /// The change-log sequence number of the last write this store committed (0 where the
    /// backend keeps no change log).
    var lastChange: Int64 { get }

    /// Records a model so embeddings can refer to it (idempotent).
    func registerModel(id: String, architecture: String, dimension: Int, metric: String) throws(GalleryError)
    /// Creates an identity with its samples, all or nothing. A taken id or an image given twice
    /// is a conflict and leaves the gallery unchanged.
    @discardableResult
    func createIdentity(gallery: String, externalID: String, displayName: String?, metadata: String,
                        samples: [NewSample], model: String?, actor: String) throws(GalleryError) -> IdentityRecord
    /// Adds samples to an existing identity, all or nothing. Returns their ids.
    @discardableResult
    func addSamples(gallery: String, externalID: String, samples: [NewSample], model: String?, actor: String) throws(GalleryError) -> [Int64]
    /// Deletes an identity with its samples and embeddings. Returns the sample ids removed.
    @discardableResult
    func deleteIdentity(gallery: String, externalID: String, actor: String) throws(GalleryError) -> [Int64]
    /// Deletes one sample of an identity (and its embeddings).
    func deleteSample(gallery: String, externalID: String, sample: Int64, actor: String) throws(GalleryError)

    /// One identity with its sample ids.
    func identity(gallery: String, externalID: String) throws(GalleryError) -> IdentityRecord
    func hasIdentity(gallery: String, externalID: String) throws(GalleryError) -> Bool
    /// Identities of a gallery ordered by external id, `limit` after `after` (keyset pagination),
    /// only those whose id starts with `prefix` when one is given.
    func identities(gallery: String, limit: Int, after: String?, prefix: String?) throws(GalleryError) -> [IdentityRecord]
    /// One identity's samples: id, content hash, size.
    func samples(gallery: String, externalID: String) throws(GalleryError) -> [(id: Int64, hash: String, width: Int, height: Int)]
    /// A sample's stored image bytes (nil when images are not stored), if it belongs to the identity.
    func sampleImage(gallery: String, externalID: String, sample: Int64) throws(GalleryError) -> [UInt8]?
    /// The embeddings under `model` of the given samples.
    func vectors(samples: [Int64], model: String) throws(GalleryError) -> [Int64: [Float]]

    /// Every identity's gallery, external id and sample count by row id (for loading the index).
    func identityNames() throws(GalleryError) -> [Int64: StoredIdentity]
    /// Streams every embedding under `model` in chunks of up to `rows` rows (see `SQLiteStore`).
    func forEachEmbeddingChunk(model: String, dimension: Int, rows: Int, _ body: (consuming EmbeddingChunk) -> EmbeddingChunk) throws(GalleryError)
    /// Warms the backend for a full scan (the SQLite file into the page cache); may do nothing.
    func prefetch()
    /// The stamp of the embeddings under `model`, which an index snapshot must carry to be used.
    func indexStamp(model: String) throws(GalleryError) -> IndexStamp

    /// Samples in every gallery (read from the table's b-tree: 0.07 s at 10M in SQLite).
    func sampleCount() throws(GalleryError) -> Int
    /// Up to `limit` samples after `after` with stored image bytes and no embedding under `model`.
    func samplesMissingEmbedding(model: String, after: Int64, limit: Int) throws(GalleryError) -> [(sample: Int64, image: [UInt8])]
    /// Samples that cannot be re-embedded because their images were not stored.
    func samplesWithoutImages(missing model: String) throws(GalleryError) -> Int
    /// Stores (or replaces) embeddings under `model` in one transaction.
    func insertEmbeddings(_ rows: [(sample: Int64, vector: [Float])], model: String) throws(GalleryError)

    /// Identities and samples per gallery, embeddings per model.
    func stats() throws(GalleryError) -> (galleries: [(name: String, identities: Int, samples: Int)], embeddings: [(model: String, count: Int)])
    /// The backend's own consistency check ("ok" when sound).
    func integrityCheck() throws(GalleryError) -> String
    /// A source of stored vectors on a connection of its own, for re-ranking while the store's
    /// connection is busy with writes.
    func makeVectorReader(model: String) throws(GalleryError) -> any ExactVectorSource
}

extension GalleryStore {
    @discardableResult
    public func createIdentity(gallery: String, externalID: String, displayName: String? = nil, metadata: String = "{}",
                               samples: [NewSample], model: String? = nil, actor: String) throws(GalleryError) -> IdentityRecord {
        try createIdentity(gallery: gallery, externalID: externalID, displayName: displayName, metadata: metadata, samples: samples, model: model, actor: actor)
    }

    @discardableResult
    public func addSamples(gallery: String, externalID: String, samples: [NewSample], actor: String) throws(GalleryError) -> [Int64] {
        try addSamples(gallery: gallery, externalID: externalID, samples: samples, model: nil, actor: actor)
    }

    public func identities(gallery: String, limit: Int, after: String?) throws(GalleryError) -> [IdentityRecord] {
        try identities(gallery: gallery, limit: limit, after: after, prefix: nil)
    }

    public func identities(gallery: String, limit: Int = 100) throws(GalleryError) -> [IdentityRecord] {
        try identities(gallery: gallery, limit: limit, after: nil, prefix: nil)
    }

    public func samplesMissingEmbedding(model: String, limit: Int) throws(GalleryError) -> [(sample: Int64, image: [UInt8])] {
        try samplesMissingEmbedding(model: model, after: 0, limit: limit)
    }
}

/// Opens the store a `database` setting names: a `postgres://` or `postgresql://` URL is
/// PostgreSQL (migrations from `migrationsFolder/postgres`), anything else a SQLite file,
/// whose folder is created.
public func openGalleryStore(database: String, password: String? = nil, migrationsFolder: String,
                             storeImages: Bool = true) throws(GalleryError) -> any GalleryStore {
    if isPostgresURL(database) {
        return try PostgresStore(url: database, password: password,
                                 migrations: try Migrator.load(directory: (migrationsFolder as NSString).appendingPathComponent("postgres")),
                                 storeImages: storeImages)
    }
    let folder = (database as NSString).deletingLastPathComponent
    if !folder.isEmpty {
        do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw .invalid("cannot create \(folder): \(error.localizedDescription)")
        }
    }
    return try SQLiteStore(path: database, migrations: try Migrator.load(directory: migrationsFolder), storeImages: storeImages)
}

/// Whether a `database` setting names a PostgreSQL server rather than a SQLite file.
public func isPostgresURL(_ database: String) -> Bool {
    database.hasPrefix("postgres://") || database.hasPrefix("postgresql://")
}

/// A store whose changes other processes make too (PostgreSQL shared by replicas): a log of
/// every change, numbered in commit order, that a replica follows to keep its index in step.
public protocol ChangeFeed: AnyObject {
    /// The newest change number now.
    func latestChange() throws(GalleryError) -> Int64
    /// Changes after `sequence`, oldest first, at most `limit`.
    func changes(after sequence: Int64, limit: Int) throws(GalleryError) -> [GalleryChange]
    /// The gallery, identity and vector under `model` of each of these samples that still has one.
    func embeddingRows(samples: [Int64], model: String) throws(GalleryError) -> [(sample: Int64, gallery: String, identity: String, vector: [Float])]
}

/// A store several replicas share (PostgreSQL): besides its change log, reads as of one
/// moment, a lock all replicas take turns on, and followers that wait for announcements.
public protocol SharedGalleryStore: GalleryStore, ChangeFeed {
    /// Runs `body` in one read-only snapshot of the database; its argument is the newest
    /// change the snapshot includes, from which a follower goes on.
    func consistentRead<T>(_ body: (Int64) throws -> T) throws -> T
    /// Runs `body` holding the lock `key` across every replica.
    func exclusively<T>(key: Int64, _ body: () throws -> T) throws -> T
    /// Makes, on whatever thread calls it, a connection of its own that waits for change
    /// announcements.
    func makeFollower() -> @Sendable () throws(GalleryError) -> any ChangeFollower
}

/// A change log reader that can wait for the next change to be announced.
public protocol ChangeFollower: ChangeFeed {
    /// Waits at most `timeout` seconds for an announcement; whether one came.
    func waitForChanges(timeout: Double) throws(GalleryError) -> Bool
}

/// A store whose size can be capped: past the cap, writes fail as on a full disk.
public protocol SizeCappedStore: GalleryStore {
    func capSize(megabytes: Int) throws(GalleryError)
}

/// One entry of the change log.
public struct GalleryChange: Sendable, Equatable {
    public enum Kind: String, Sendable { case add, remove }
    public let sequence: Int64
    public let kind: Kind
    public let gallery: String
    public let samples: [Int64]
    /// When the change was committed, in seconds since 1970 (the database's clock).
    public let committedAt: Double

    public init(sequence: Int64, kind: Kind, gallery: String, samples: [Int64], committedAt: Double) {
        self.sequence = sequence
        self.kind = kind
        self.gallery = gallery
        self.samples = samples
        self.committedAt = committedAt
    }
}


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

/// An identity as the index loader needs it: its gallery, external id and sample count.
public struct StoredIdentity: Sendable, Equatable {
    public let gallery: String
    public let id: String
    public let samples: Int
}

/// Consecutive embeddings read from the store: sample ids, identity row ids, and the vectors
/// back to back.
public struct EmbeddingChunk: Sendable {
    public var samples: [Int64] = []
    public var identities: [Int64] = []
    public var vectors: [Float] = []
    public var count: Int { samples.count }

    init(dimension: Int, capacity: Int) {
        samples.reserveCapacity(capacity)
        identities.reserveCapacity(capacity)
        vectors.reserveCapacity(capacity * dimension)
    }

    /// Empties the chunk, keeping its buffers for the next fill.
    public mutating func clear() {
        samples.removeAll(keepingCapacity: true)
        identities.removeAll(keepingCapacity: true)
        vectors.removeAll(keepingCapacity: true)
    }
}
