// SPDX-License-Identifier: MIT
// DoppelGallery owns the gallery: enrolled identities and their embeddings, and exact
// k-nearest-neighbour search over them at memory speed. It knows nothing of networks,
// images or HTTP.
import CBLAS
import CKernelLevels
import CScanKernels
import DoppelKernels
import Foundation

/// How a search ranks identities from their samples' distances.
public enum Aggregation: Sendable, Equatable {
    /// An identity's distance is its nearest sample's (the default).
    case best
    /// The mean of its `m` nearest samples' distances (fewer if it has fewer).
    case meanOfBest(Int)
    /// The distance to the mean of its samples' vectors.
    case centroid
}

/// One search result: an identity with its distance and the sample that decided it.
public struct Match: Sendable, Equatable {
    public let identity: String
    public let distance: Float
    /// The nearest sample of that identity.
    public let sample: Int64

    public init(identity: String, distance: Float, sample: Int64) {
        self.identity = identity
        self.distance = distance
        self.sample = sample
    }
}

/// Where exact float32 vectors come from when a compact index re-ranks its candidates (the
/// store's embeddings, in the service). Called under the index's read lock.
public protocol ExactVectorSource: Sendable {
    /// The stored vectors of these samples (missing samples are skipped); throws when the
    /// store cannot be read.
    func vectors(of samples: [Int64]) throws -> [Int64: [Float]]
}

/// The in-memory index: one contiguous row-major `[count, dimension]` matrix (float32, or
/// float16 / int8 codes: `IndexPrecision`) with precomputed squared norms, and row -> sample
/// -> identity maps. Exact search: one query is
/// one fused pass over the matrix on all cores (memory-bound: N d 4 bytes read once), a batch
/// of queries is a matrix product in tiles of rows (an AVX2 kernel reading the rows in place,
/// sgemm elsewhere); both keep a running top-k of identities
/// (`IdentitySelection`) instead of per-identity arrays. Deletion moves the last row into the
/// hole, so nothing is rebuilt.
///
/// Thread safety: any number of concurrent searches, one writer at a time (a read-write lock).
public final class GalleryIndex: @unchecked Sendable {
    public let dimension: Int
    public let metric: IndexMetric
    public var precision: IndexPrecision { storage.precision }
    /// A compact index re-ranks its best `factor x k` identities by their exact vectors (none:
    /// the codes' distances are the answer).
    /// When the source cannot be read (the database is down), the search still answers, from
    /// the codes' distances, and `onFailure` hears why: searches go on from memory, as they do
    /// for a float32 index, and the failure is reported rather than lost.
    public struct Rerank: Sendable {
        public let factor: Int
        public let source: any ExactVectorSource
        public let onFailure: @Sendable (any Error) -> Void
        public init(factor: Int, source: any ExactVectorSource, onFailure: @escaping @Sendable (any Error) -> Void) {
            self.factor = max(1, factor)
            self.source = source
            self.onFailure = onFailure
        }
    }
    var rerank: Rerank?

    var storage: EncodedVectors
    /// |x|^2 per row (euclidean) or |x| per row (cosine), of the vector as stored (decoded).
    var norms: [Float] = []
    var sampleOfRow: [Int64] = []
    var identityOfRow: [Int32] = []
    /// Row of each sample (Int32: 10 M rows, 200 MB of dictionary rather than 270).
    var rowOfSample: [Int64: Int32] = [:]
    var identityNames: [String] = []
    /// Per identity: the sum of its vectors and their count, kept in step with every change
    /// so centroid search needs no pass over the samples.
    /// Empty unless `tracksCentroids`: identities x dimension floats, as much as the vectors
    /// themselves for a gallery of one sample per identity.
    var centroidSums: [Float] = []
    /// Whether the per-identity sums are kept (for centroid search); without them a centroid
    /// search sums each identity's rows as it goes.
    public let tracksCentroids: Bool
    var samplesPerIdentity: [Int32] = []
    var identityIndex: [String: Int32] = [:]
    /// Identity slots whose last sample was removed, for reuse: without them a gallery that
    /// enrolls and deletes all day would grow its per-identity arrays (and every search's
    /// scratch) without bound.
    var freeSlots: [Int32] = []
    var lock = pthread_rwlock_t()
    /// Row and identity changes so far (`RowsByIdentity` is rebuilt when it lags). Written
    /// under the write lock.
    var changes = 0
    let rowsByIdentity = RowsByIdentity()
    /// Searches share the read lock; the first after a change rebuilds the grouping under this.
    let rowsByIdentityLock = NSLock()

    public enum IndexMetric: String, Sendable {
        case euclidean, cosine

        /// A row's score for a query: it orders rows like their distance for a fixed query,
        /// without a square root or division by the query's norm. `norm` is the row's stored
        /// norm: |x|^2 - 2 q.x (euclidean, norm = |x|^2), -q.x / |x| (cosine, norm = |x|).
        @inline(__always) func score(dot: Float, norm: Float) -> Float {
            switch self {
            case .euclidean: norm - 2 * dot
            case .cosine: norm > 1e-12 ? -dot / norm : 0
            }
        }

        /// The distance between a query and a vector computed directly, in Double: sum (q - x)^2
        /// or 1 - q.x / |q||x| (1 where either is zero). What every match reports, whichever
        /// score ranked it.
        func distance(_ query: UnsafeBufferPointer<Float>, _ vector: [Float]) -> Float {
            switch self {
            case .euclidean:
                var sum = 0.0
                for i in 0..<vector.count { sum += Double(query[i] - vector[i]) * Double(query[i] - vector[i]) }
                return Float(sum.squareRoot())
            case .cosine:
                var dot = 0.0, a = 0.0, b = 0.0
                for i in 0..<vector.count {
                    dot += Double(query[i]) * Double(vector[i])
                    a += Double(query[i]) * Double(query[i])
                    b += Double(vector[i]) * Double(vector[i])
                }
                let lengths = (a * b).squareRoot()
                return lengths > 1e-24 ? Float(1 - dot / lengths) : 1
            }
        }

        /// `score` of sixteen rows at once, lane for lane the same floats.
        @inline(__always) func scores(dots: SIMD16<Float>, norms: SIMD16<Float>) -> SIMD16<Float> {
            switch self {
            case .euclidean: norms - 2 * dots
            case .cosine: (-dots / norms).replacing(with: 0, where: .!(norms .> 1e-12))
            }
        }
    }

    public init(dimension: Int, metric: IndexMetric, precision: IndexPrecision = .float32, rerank: Rerank? = nil,
                tracksCentroids: Bool = true) {
        precondition(dimension > 0)
        self.dimension = dimension
        self.metric = metric
        self.tracksCentroids = tracksCentroids
        storage = EncodedVectors(dimension: dimension, precision: precision)
        self.rerank = precision == .float32 ? nil : rerank
        pthread_rwlock_init(&lock, nil)
    }

    /// Bytes per vector as stored (once an int8 index has learned its ranges).
    public var bytesPerVector: Int { storage.bytesPerVector }

    /// Bytes of the rows and their norms now.
    public var bytes: Int { reading { storage.bytes + norms.count * 4 } }

    /// Learns an int8 index's ranges from every row it holds (the loader calls it once the
    /// gallery is in; until then the first rows stay float32).
    public func train() {
        writing {
            guard precision == .int8, storage.quantizer == nil, storage.count > 0 else { return }
            storage.train()
            recomputeNormsAndCentroids()
        }
    }

    /// Norms and centroid sums from the rows as stored, after the codes changed.
    func recomputeNormsAndCentroids() {
        sumRows(norms: true)
    }

    /// Centroid sums (when tracked) and, with `norms`, each row's norm, from the rows as
    /// stored: a block of rows decoded at a time, the sums added with pointer loops the
    /// compiler vectorises (a 10M-row snapshot's start spends most of its time here).
    func sumRows(norms: Bool) {
        if tracksCentroids { centroidSums = [Float](repeating: 0, count: identityNames.count * dimension) }
        guard norms || tracksCentroids else { return }
        let d = dimension, n = storage.count, blockRows = 256, euclidean = metric == .euclidean
        var block = [Float](repeating: 0, count: blockRows * d)
        block.withUnsafeMutableBufferPointer { block in
            let block = block.baseAddress!
            identityOfRow.withUnsafeBufferPointer { owners in
                centroidSums.withUnsafeMutableBufferPointer { sums in
                    self.norms.withUnsafeMutableBufferPointer { normOfRow in
                        var start = 0
                        while start < n {
                            let rows = min(blockRows, n - start)
                            storage.decode(rows: start..<(start + rows), into: block)
                            for r in 0..<rows {
                                let row = block + r * d
                                if norms {
                                    var squared: Float = 0
                                    for k in 0..<d { squared += row[k] * row[k] }
                                    normOfRow[start + r] = euclidean ? squared : squared.squareRoot()
                                }
                                if tracksCentroids {
                                    let sum = sums.baseAddress! + Int(owners[start + r]) * d
                                    for k in 0..<d { sum[k] += row[k] }
                                }
                            }
                            start += rows
                        }
                    }
                }
            }
        }
    }

    deinit { pthread_rwlock_destroy(&lock) }

    func reading<T>(_ body: () -> T) -> T {
        pthread_rwlock_rdlock(&lock)
        defer { pthread_rwlock_unlock(&lock) }
        return body()
    }

    func writing<T>(_ body: () -> T) -> T {
        pthread_rwlock_wrlock(&lock)
        defer { pthread_rwlock_unlock(&lock) }
        return body()
    }

    public var count: Int { reading { sampleOfRow.count } }

    /// Every indexed sample with its identity (for digests that compare an index with the store).
    public func entries() -> [(identity: String, sample: Int64)] {
        reading { zip(identityOfRow, sampleOfRow).map { (identityNames[Int($0.0)], $0.1) } }
    }

    /// Identities with at least one sample.
    public var identityCount: Int { reading { identityIndex.count } }

    /// Per-identity slots allocated (live identities plus free slots awaiting reuse).
    var identitySlots: Int { reading { identityNames.count } }

    /// Adds (or replaces) a sample's vector.
    public func add(sample: Int64, identity: String, vector: [Float]) {
        vector.withUnsafeBufferPointer { add(sample: sample, identity: identity, vector: $0) }
    }

    public func add(sample: Int64, identity: String, vector: UnsafeBufferPointer<Float>) {
        writing { insert(sample: sample, identity: identity, vector: vector, replacing: true) }
    }

    /// Caller holds the write lock (or owns the index alone, as the loader does). A bulk load
    /// of distinct samples skips the replace lookup.
    func insert(sample: Int64, identity: String, vector: UnsafeBufferPointer<Float>, replacing: Bool) {
        if replacing, let row = rowOfSample[sample] { removeRow(Int(row)) }
        append(sample: sample, slot: slot(for: identity), vector: vector)
    }

    /// The identity's slot, allocated (or a free one reused) when it has none. Caller holds
    /// the write lock or owns the index alone.
    func slot(for identity: String) -> Int32 {
        if let known = identityIndex[identity] { return known }
        let id: Int32
        if let free = freeSlots.popLast() {
            id = free
            identityNames[Int(id)] = identity
        } else {
            id = Int32(identityNames.count)
            identityNames.append(identity)
            if tracksCentroids { centroidSums.append(contentsOf: repeatElement(0, count: dimension)) }
            samplesPerIdentity.append(0)
        }
        identityIndex[identity] = id
        return id
    }

    /// Appends a row for a sample not in the index. Caller holds the write lock or owns the
    /// index alone; the loader resolves each identity's slot once and calls this per row.
    func append(sample: Int64, slot id: Int32, vector: UnsafeBufferPointer<Float>) {
        changes += 1
        precondition(vector.count == dimension, "vector has \(vector.count) values, the index \(dimension)")
        let base = Int(id) * dimension, n = Int32(dimension)
        let wasTrained = storage.quantizer != nil
        storage.append(vector)
        if precision == .int8 && !wasTrained && storage.quantizer != nil {
            // The int8 store just learned its ranges: this row and every earlier one are codes now.
            samplesPerIdentity[Int(id)] += 1
            rowOfSample[sample] = Int32(sampleOfRow.count)
            sampleOfRow.append(sample)
            identityOfRow.append(id)
            norms.append(0)
            recomputeNormsAndCentroids()
            return
        }
        // The row as stored: a compact index measures distances to its decoded vector.
        let stored = storage.readsFloats ? Array(vector) : storage.decode(row: storage.count - 1)
        // BLAS for the two per-row passes: a plain `reduce` is one serial chain of adds (Swift
        // keeps float order), a fifth of a 1 M-row load.
        stored.withUnsafeBufferPointer { v in
            if tracksCentroids { centroidSums.withUnsafeMutableBufferPointer { cblas_saxpy(n, 1, v.baseAddress, 1, $0.baseAddress! + base, 1) } }
            let squared = cblas_sdot(n, v.baseAddress, 1, v.baseAddress, 1)
            norms.append(metric == .euclidean ? squared : squared.squareRoot())
        }
        samplesPerIdentity[Int(id)] += 1
        rowOfSample[sample] = Int32(sampleOfRow.count)
        sampleOfRow.append(sample)
        identityOfRow.append(id)
    }

    /// Makes room before a bulk load (see `reserve(rows:identities:)`).
    public func reserveCapacity(rows: Int, identities: Int) { writing { reserve(rows: rows, identities: identities) } }

    /// Makes room for `rows` more rows and `identities` more identities, so a bulk load
    /// allocates (and the kernel zeroes) each array once instead of copying it at every
    /// doubling (1 M x 128: the growth copies and their page faults were a quarter of the load).
    func reserve(rows: Int, identities: Int) {
        storage.reserve(rows)
        norms.reserveCapacity(norms.count + rows)
        sampleOfRow.reserveCapacity(sampleOfRow.count + rows)
        identityOfRow.reserveCapacity(identityOfRow.count + rows)
        rowOfSample.reserveCapacity(rowOfSample.count + rows)
        identityNames.reserveCapacity(identityNames.count + identities)
        identityIndex.reserveCapacity(identityIndex.count + identities)
        if tracksCentroids { centroidSums.reserveCapacity(centroidSums.count + identities * dimension) }
        samplesPerIdentity.reserveCapacity(samplesPerIdentity.count + identities)
    }

    /// Removes a sample; returns false when it was not indexed.
    @discardableResult
    public func remove(sample: Int64) -> Bool {
        writing {
            guard let row = rowOfSample[sample] else { return false }
            removeRow(Int(row))
            return true
        }
    }

    /// Removes every sample of an identity.
    public func remove(identity: String) {
        writing {
            guard let id = identityIndex[identity] else { return }
            var row = 0
            while row < sampleOfRow.count {
                if identityOfRow[row] == id { removeRow(row) } else { row += 1 }
            }
        }
    }

    /// The last row moves into `row`; O(dimension).
    func removeRow(_ row: Int) {
        changes += 1
        let last = sampleOfRow.count - 1
        let id = Int(identityOfRow[row])
        if tracksCentroids {
            let removed = storage.decode(row: row)
            for k in 0..<dimension { centroidSums[id * dimension + k] -= removed[k] }
        }
        samplesPerIdentity[id] -= 1
        if samplesPerIdentity[id] == 0 {
            // The identity is gone: free its slot (sums to exact zero, not rounding residue).
            identityIndex[identityNames[id]] = nil
            identityNames[id] = ""
            if tracksCentroids { for k in 0..<dimension { centroidSums[id * dimension + k] = 0 } }
            freeSlots.append(Int32(id))
        }
        rowOfSample[sampleOfRow[row]] = nil
        storage.moveLast(to: row)
        if row != last {
            norms[row] = norms[last]
            sampleOfRow[row] = sampleOfRow[last]
            identityOfRow[row] = identityOfRow[last]
            rowOfSample[sampleOfRow[row]] = Int32(row)
        }
        norms.removeLast()
        sampleOfRow.removeLast()
        identityOfRow.removeLast()
    }

    /// Rows per tile of the batched search is the largest that keeps the tile's products
    /// within this many floats (256 KB: in a core's L2 while the product writes them and the
    /// selections read them; 4 MB tiles measured 0.27-0.30 ms per query in batches of 34,
    /// these 0.23).
    var tileFloats = 1 << 16
    /// Rows a core must have to take a share of a batched search (tests lower it).
    var minimumShareRows = 1024
}
