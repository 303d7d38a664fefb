// SPDX-License-Identifier: MIT
import DoppelGallery
import DoppelNN
import Foundation

/// The store and one in-memory index per named gallery, kept in step: every change is
/// committed to SQLite, then applied to the index, under one writer lock, before the caller
/// answers. Searches only take the index's read lock, so they never wait for SQLite.
final class Galleries: @unchecked Sendable {
    let store: GalleryStore
    let model: ServedModel
    /// How every gallery's index stores and re-ranks vectors (configuration `index`).
    struct IndexOptions {
        var precision: IndexPrecision = .float32
        var rerank: GalleryIndex.Rerank?
        var tracksCentroids = true
        /// Where the snapshot lives (nil: none kept), and how long changes must have been
        /// quiet before it is rewritten.
        var snapshotPath: String?
        var snapshotDelay: TimeInterval = 30
    }
    let options: IndexOptions
    /// Serialises every use of the SQLite connection and orders index updates like commits.
    let writer = NSLock()
    let indexLock = NSLock()
    var indexes: [String: GalleryIndex] = [:]
    /// When the indexes last changed without a snapshot since (nil: the snapshot is current).
    var dirtySince: Date?
    var snapshotThread: Thread?
    let snapshotCondition = NSCondition()
    var stopping = false

    // Replication (a store shared by replicas: PostgreSQL).
    /// The shared store's change log, when it has one.
    var feed: (any ChangeFeed)? { store as? any ChangeFeed }
    /// How often the follower looks for changes when no notification wakes it.
    var pollInterval: TimeInterval = 1
    /// Serialises applying changes (the follower's and a write's catch-up) and `applied`.
    let applyLock = NSLock()
    /// The last change applied to the indexes (changes are applied in sequence order).
    var applied: Int64 = 0
    /// Since when a change is known that is not applied yet (nil: caught up).
    var pendingSince: Date?
    /// Whether the follower lost its connection and has not caught up since.
    var feedFailing = false
    var followerThread: Thread?
    /// Where the follower reports (logs).
    var log: (@Sendable (String) -> Void)?

    init(store: GalleryStore, model: ServedModel, options: IndexOptions = IndexOptions()) {
        self.store = store
        self.model = model
        self.options = options
    }

    var indexMetric: GalleryIndex.IndexMetric { model.metric == .cosine ? .cosine : .euclidean }

    func makeIndex() -> GalleryIndex {
        GalleryIndex(dimension: model.dimension, metric: indexMetric, precision: options.precision, rerank: options.rerank,
                     tracksCentroids: options.tracksCentroids)
    }

    /// The gallery's index. Reads of a gallery with nothing enrolled get an empty index that is
    /// not kept (so asking for random names cannot grow memory); writers create the entry.
    func index(_ gallery: String, creating: Bool = false) -> GalleryIndex {
        indexLock.withLock {
            if let index = indexes[gallery] { return index }
            let index = makeIndex()
            if creating { indexes[gallery] = index }
            return index
        }
    }

    /// Bytes per vector and bytes of every index together (metrics and readiness).
    func indexFootprint() -> (bytesPerVector: Int, bytes: Int) {
        indexLock.withLock { (indexes.values.first?.bytesPerVector ?? options.precision.bytesPerValue * model.dimension, indexes.values.reduce(0) { $0 + $1.bytes }) }
    }

    var isReadOnly: Bool { writer.withLock { store.isReadOnly } }

    func storeCall<T>(_ body: (GalleryStore) throws(GalleryError) -> T) throws(ServiceError) -> T {
        writer.lock()
        defer { writer.unlock() }
        do { return try body(store) } catch {
            // The database's own words (host, address, user, file) go to the log, not to clients.
            if case .unavailable(let detail) = error { log?("gallery database unavailable: \(detail)") }
            throw Self.serviceError(error)
        }
    }

    static func serviceError(_ error: GalleryError) -> ServiceError {
        switch error {
        case .conflict(let message): return ServiceError(.conflict, message)
        case .notFound(let message): return ServiceError(.notFound, message)
        case .invalid(let message): return ServiceError(.badRequest, message)
        case .database(let sqlite):
            // Disk full, read-only file, I/O errors, a locked database: the gallery cannot take
            // writes now, but reads from memory go on.
            let primary = sqlite.code & 0xFF
            if [13, 8, 10, 5, 6, 14].contains(primary) {  // FULL, READONLY, IOERR, BUSY, LOCKED, CANTOPEN
                let reason = [13: "disk full", 8: "read-only", 10: "I/O error", 5: "busy", 6: "locked", 14: "cannot open"][primary] ?? "unavailable"
                return ServiceError(.storageUnavailable, "the gallery database cannot take writes now (\(reason)); retry later")
            }
            return ServiceError(.internalError, "database error")
        case .unavailable(let detail):
            _ = detail  // logged by storeCall
            return ServiceError(.storageUnavailable, "the gallery database cannot be reached now; retry later")
        case .postgres(let postgres):
            if postgres.sqlState == "53100" {  // disk_full
                return ServiceError(.storageUnavailable, "the gallery database cannot take writes now (disk full); retry later")
            }
            return ServiceError(.internalError, "database error")
        case .newerSchema, .badMigrations, .unexpected:
            return ServiceError(.internalError, "\(error)")
        }
    }

    // MARK: start-up

    /// Embeds stored images the model has not indexed (the model changed), then loads every
    /// gallery's index. Refuses (throws) when some samples have no embedding under this model
    /// and no stored image to make one from: serving them would mix models.
    func prepare(embedder: BatchingEmbedder, progress: (String) -> Void) throws {
        try writer.withLock {
            try store.registerModel(id: model.id, architecture: model.file.network.architecture.description,
                                    dimension: model.dimension, metric: model.metric.rawValue)
            // A sample has at most one embedding per model, so when the model's stamp counts
            // as many embeddings as there are samples none is missing, and the two scans below
            // (each reads every sample row: 8 s at 10M in SQLite) are skipped.
            if try store.indexStamp(model: model.id).rows != Int64(store.sampleCount()) {
                let missingImages = try store.samplesWithoutImages(missing: model.id)
                guard missingImages == 0 else {
                    throw ServedModel.LoadError(description: """
                        \(missingImages) samples have no embedding under model \(model.id) and no stored image to make one from; \
                        serve the model they were enrolled with, or re-enroll them (store_images was off)
                        """)
                }
                try exclusivelyAcrossReplicas(progress: progress) {
                    try reembed(embedder: embedder, progress: progress)
                }
            }
            let loaded = try loadConsistently(progress: progress)
            indexLock.withLock { indexes = loaded }
        }
        startSnapshotWriter()
        startFollower()
    }

    /// Runs `body` holding the shared store's lock for re-embedding under this model, so one
    /// replica embeds the stored images and the others, waiting here, then find it done.
    func exclusivelyAcrossReplicas(progress: (String) -> Void, _ body: () throws -> Void) throws {
        guard let shared = store as? any SharedGalleryStore else { return try body() }
        let key = Int64(bitPattern: model.id.utf8.reduce(UInt64(0x444F_5050_454C)) { ($0 &* 31) &+ UInt64($1) })
        try shared.exclusively(key: key) { try body() }
    }

    /// Embeds stored images that have no embedding under the model (the model changed).
    func reembed(embedder: BatchingEmbedder, progress: (String) -> Void) throws {
        _ = try Reembedding(store: store, modelID: model.id, input: model.input, dimension: model.dimension) { values, count in
            embedder.embed(values, count: count)
        }.run(progress: progress)
    }

    /// The indexes as of one moment of the database, and (for a shared store) the change they
    /// include, from which the follower goes on.
    func loadConsistently(progress: (String) -> Void) throws -> [String: GalleryIndex] {
        guard let shared = store as? any SharedGalleryStore else { return try loadIndexes(progress: progress) }
        return try shared.consistentRead { horizon in
            let loaded = try loadIndexes(progress: progress)
            applyLock.withLock { applied = horizon }
            progress("following the change log from change \(horizon)")
            return loaded
        }
    }

    /// The snapshot when it matches the database's stamp, else every embedding from the store
    /// (and then a fresh snapshot soon). Caller holds the writer lock.
    func loadIndexes(progress: (String) -> Void) throws -> [String: GalleryIndex] {
        let started = Date()
        if let path = options.snapshotPath {
            let stamp = try store.indexStamp(model: model.id)
            switch GalleryIndex.readSnapshot(path: path, model: model.id, stamp: stamp, dimension: model.dimension, metric: indexMetric,
                                             precision: options.precision, tracksCentroids: options.tracksCentroids, rerank: options.rerank) {
            case .success(let loaded):
                progress(String(format: "index snapshot %@ loaded in %.2f s (%@)", path, Date().timeIntervalSince(started), stamp.description))
                return loaded
            case .failure(let reason):
                if reason != .missing { progress("index snapshot \(path) not used: \(reason); loading from the database") }
            }
        }
        let loaded = try GalleryIndex.load(from: store, model: model.id, dimension: model.dimension, metric: indexMetric,
                                           precision: options.precision, tracksCentroids: options.tracksCentroids, rerank: options.rerank)
        progress(String(format: "index loaded from the database in %.2f s", Date().timeIntervalSince(started)))
        if options.snapshotPath != nil { markChanged(now: Date.distantPast) }
        return loaded
    }

    // MARK: changes (committed, then indexed, before returning)

    func create(gallery: String, id: String, name: String?, metadata: String, samples: [NewSample], actor: String) throws(ServiceError) -> IdentityRecord {
        try storeCall { store throws(GalleryError) in
            let record = try store.createIdentity(gallery: gallery, externalID: id, displayName: name, metadata: metadata,
                                                  samples: samples, model: model.id, actor: actor)
            if !catchUpAfterWrite() {
                let index = index(gallery, creating: true)
                for (sample, new) in zip(record.sampleIDs, samples) { index.add(sample: sample, identity: id, vector: new.embedding!) }
            }
            markChanged()
            return record
        }
    }

    func addSamples(gallery: String, id: String, samples: [NewSample], actor: String) throws(ServiceError) -> [Int64] {
        try storeCall { store throws(GalleryError) in
            let ids = try store.addSamples(gallery: gallery, externalID: id, samples: samples, model: model.id, actor: actor)
            if !catchUpAfterWrite() {
                let index = index(gallery, creating: true)
                for (sample, new) in zip(ids, samples) { index.add(sample: sample, identity: id, vector: new.embedding!) }
            }
            markChanged()
            return ids
        }
    }

    func delete(gallery: String, id: String, actor: String) throws(ServiceError) -> Int {
        try storeCall { store throws(GalleryError) in
            let removed = try store.deleteIdentity(gallery: gallery, externalID: id, actor: actor)
            if !catchUpAfterWrite() { index(gallery).remove(identity: id) }
            markChanged()
            return removed.count
        }
    }

    func deleteSample(gallery: String, id: String, sample: Int64, actor: String) throws(ServiceError) {
        try storeCall { store throws(GalleryError) in
            try store.deleteSample(gallery: gallery, externalID: id, sample: sample, actor: actor)
            if !catchUpAfterWrite() { _ = index(gallery).remove(sample: sample) }
            markChanged()
        }
    }

    /// What the in-memory indexes hold, as the number of samples and a SHA-256 over their
    /// sorted "gallery TAB identity TAB sample" lines: equal to the same digest of the store's
    /// embeddings under the model when the index is in step with it.
    func indexDigest() -> (samples: Int, digest: String) {
        let current = indexLock.withLock { indexes }
        var lines = [String]()
        for (gallery, index) in current {
            for entry in index.entries() { lines.append("\(gallery)\t\(entry.identity)\t\(entry.sample)\n") }
        }
        lines.sort()
        var hash = SHA256()
        for line in lines { hash.update(Array(line.utf8)) }
        return (lines.count, SHA256.hex(hash.finalize()))
    }

    /// Samples and identities per gallery in memory (for metrics and readiness).
    func sizes() -> [(gallery: String, samples: Int)] {
        indexLock.withLock { indexes.map { ($0.key, $0.value.count) } }.sorted { $0.gallery < $1.gallery }
    }
}
