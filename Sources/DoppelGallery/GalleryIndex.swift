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
    private var rerank: Rerank?

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
    private func recomputeNormsAndCentroids() {
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

    private func reading<T>(_ body: () -> T) -> T {
        pthread_rwlock_rdlock(&lock)
        defer { pthread_rwlock_unlock(&lock) }
        return body()
    }

    private func writing<T>(_ body: () -> T) -> T {
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
    private func removeRow(_ row: Int) {
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

    /// The `k` nearest identities to `query` (each once), nearest first; with `threshold`,
    /// only those at most that far.
    public func search(_ query: [Float], k: Int, aggregation: Aggregation = .best, threshold: Float? = nil) -> [Match] {
        guard aggregation == .best else { return search(queries: query, count: 1, k: k, aggregation: aggregation, threshold: threshold)[0] }
        precondition(query.count == dimension, "query has \(query.count) values, the index \(dimension)")
        return reading {
            guard !sampleOfRow.isEmpty, k > 0 else { return [] }
            if let rerank {
                let shortlist = scan(query, k: k * rerank.factor)
                return reranked(shortlist, rows: rows(of: [shortlist]), query: query, k: k, threshold: threshold, rerank: rerank)
            }
            return query.withUnsafeBufferPointer { matches(scan(query, k: k), query: $0, threshold: threshold) }
        }
    }

    /// The shortlisted identities ranked by their exact distances: every sample of each
    /// identity the codes' selection named is scored on its stored float32 vector (not only
    /// the sample the codes ranked best, which rounding on another processor may not pick),
    /// so each identity returned carries its exact best distance and that sample. The `k`
    /// nearest within `threshold`. A sample whose vector the source lacks, or every sample when
    /// the source cannot be read (reported to `onFailure`), keeps its code distance. Caller
    /// holds the lock.
    private func reranked(_ selection: IdentitySelection, rows: [Int32: [Int]], query: [Float], k: Int, threshold: Float?,
                          rerank: Rerank) -> [Match] {
        let candidates = selection.entries.flatMap { rows[$0.identity] ?? [$0.row] }
        let exact: [Int64: [Float]]
        do { exact = try rerank.source.vectors(of: candidates.map { sampleOfRow[$0] }) } catch {
            rerank.onFailure(error)
            exact = [:]
        }
        var best = [Int32: (distance: Float, row: Int)]()
        query.withUnsafeBufferPointer { q in
            for row in candidates {
                let vector = exact[sampleOfRow[row]].flatMap { $0.count == dimension ? $0 : nil } ?? storage.decode(row: row)
                let distance = Self.distance(q, vector, metric: metric), identity = identityOfRow[row]
                // Rows come in increasing order per identity, so equal distances keep the earlier row.
                if distance < best[identity]?.distance ?? .infinity { best[identity] = (distance, row) }
            }
        }
        let ranked = best.map { Match(identity: identityNames[Int($0.key)], distance: $0.value.distance, sample: sampleOfRow[$0.value.row]) }
            .filter { threshold == nil || $0.distance <= threshold! }
            .sorted { ($0.distance, $0.identity) < ($1.distance, $1.identity) }
        return Array(ranked.prefix(k))
    }

    /// Every row of each identity the selections name, in one pass over the rows (a bitmap of
    /// identity slots, so the pass costs one byte read per row beside the 4-byte owner).
    /// Caller holds the lock.
    private func rows(of selections: [IdentitySelection]) -> [Int32: [Int]] {
        rowsByIdentityLock.withLock {
            if rowsByIdentity.version != changes { rowsByIdentity.rebuild(owners: identityOfRow, identities: identityNames.count, version: changes) }
            var rows = [Int32: [Int]]()
            for selection in selections {
                for entry in selection.entries where rows[entry.identity] == nil { rows[entry.identity] = rowsByIdentity.rows(of: entry.identity) }
            }
            return rows
        }
    }

    /// Every row grouped by identity (counting sort: an offset per identity slot into one
    /// array of rows), made when re-ranking first needs it after a change and reused until the
    /// next: a pass over all rows per search would cost a tenth of an int8 scan at 1 M rows.
    final class RowsByIdentity: @unchecked Sendable {
        private(set) var version = -1
        private var start: [Int32] = []
        private var sorted: [Int32] = []

        func rebuild(owners: [Int32], identities: Int, version: Int) {
            start = [Int32](repeating: 0, count: identities + 1)
            for owner in owners { start[Int(owner) + 1] += 1 }
            for id in 0..<identities { start[id + 1] += start[id] }
            var next = start
            sorted = [Int32](repeating: 0, count: owners.count)
            for (row, owner) in owners.enumerated() {
                sorted[Int(next[Int(owner)])] = Int32(row)
                next[Int(owner)] += 1
            }
            self.version = version
        }

        /// The rows of one identity slot, in increasing order.
        func rows(of identity: Int32) -> [Int] {
            sorted[Int(start[Int(identity)])..<Int(start[Int(identity) + 1])].map(Int.init)
        }
    }

    /// The k best identities for one query in one fused pass over the matrix: each core scans
    /// half the rows, computing q.x with SIMD as it streams them, so the matrix is read once
    /// and no N-sized score array is written and re-read (100k x 128: 2.9 ms with sgemv and a
    /// second pass, 2.0-2.3 ms fused, against a 1.9-2.2 ms memory floor). A compact index
    /// reads its codes the same way (`EncodedVectors`). Caller holds the lock.
    private func scan(_ query: [Float], k: Int) -> IdentitySelection {
        let n = sampleOfRow.count
        let workers = n >= 4096 ? Self.cores : 1
        let prepared = query.withUnsafeBufferPointer { storage.prepare($0) }
        let partials = norms.withUnsafeBufferPointer { norms in
            identityOfRow.withUnsafeBufferPointer { owner in
                storage.visit(prepared, ScanVisitor(rows: n, workers: workers, k: k, norms: norms, owners: owner, metric: metric, names: identityNames))
            }
        }
        // Workers scanned rows in order, so merging later workers into the first keeps the
        // lower row of equal scores.
        var selection = partials[0]
        for worker in 1..<workers { selection.merge(partials[worker], names: identityNames) }
        return selection
    }

    /// One query's pass over every row, split across `workers` cores.
    private struct ScanVisitor: RowVisitor {
        static let blockRows = 1024
        let rows: Int, workers: Int, k: Int
        let norms: UnsafeBufferPointer<Float>, owners: UnsafeBufferPointer<Int32>
        let metric: IndexMetric, names: [String]

        func visit<Reader: RowReader>(_ reader: Reader) -> [IdentitySelection] {
            let partials = ScanSlots(workers: workers)
            nonisolated(unsafe) let (norms, owners) = (self.norms, self.owners)
            let (n, workers, k, metric, names) = (rows, self.workers, self.k, self.metric, self.names)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                var selection = IdentitySelection(k: k)
                // Products a block of rows at a time (in L1 while they are ranked), so a
                // kernel call is paid per block.
                withUnsafeTemporaryAllocation(of: Float.self, capacity: Self.blockRows) { block in
                    var start = worker * n / workers
                    let end = (worker + 1) * n / workers
                    while start < end {
                        let rows = start..<min(start + Self.blockRows, end)
                        reader.products(rows, into: block.baseAddress!)
                        for row in rows {
                            let value = metric.score(dot: block[row - start], norm: norms[row])
                            if value <= selection.bound { selection.offer(value, identity: owners[row], row: row, names: names) }
                        }
                        start = rows.upperBound
                    }
                }
                partials[worker] = selection
            }
            return partials.selections
        }
    }

    /// Matches from a selection's scores, nearest first, ties by name, within `threshold`.
    /// Caller holds the lock.
    ///
    /// The scores ranked the rows; each kept match's distance is then computed directly from
    /// its row, sum (q - x)^2 or 1 - q.x / |q||x| (k x d work), not from the score's
    /// |q|^2 + |x|^2 - 2 q.x, whose rounding near zero reaches 1e-3 and differs between the
    /// single scan and the batched product. So every path reports the same distance for a match.
    private func matches(_ selection: IdentitySelection, query: UnsafeBufferPointer<Float>, threshold: Float?) -> [Match] {
        var found = [Match]()
        for entry in selection.entries {
            let row = storage.decode(row: entry.row)
            let distance = Self.distance(query, row, metric: metric)
            if let threshold, distance > threshold { continue }
            found.append(Match(identity: identityNames[Int(entry.identity)], distance: distance, sample: sampleOfRow[entry.row]))
        }
        // Distinct scores can round to one distance: order as the distances read.
        return found.sorted { ($0.distance, $0.identity) < ($1.distance, $1.identity) }
    }

    /// The metric's distance between a query and a vector, computed directly (in Double).
    static func distance(_ query: UnsafeBufferPointer<Float>, _ vector: [Float], metric: IndexMetric) -> Float {
        switch metric {
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

    private static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// One result slot per worker, written by that worker alone: a buffer allocated up front,
    /// not an array, whose copy-on-write check every worker's write would race on.
    private final class ScanSlots: @unchecked Sendable {
        private let slots: UnsafeMutableBufferPointer<IdentitySelection?>
        init(workers: Int) { slots = .allocate(capacity: workers); slots.initialize(repeating: nil) }
        deinit { slots.deinitialize(); slots.deallocate() }
        subscript(worker: Int) -> IdentitySelection? {
            get { slots[worker] }
            set { slots[worker] = newValue }
        }
        var selections: [IdentitySelection] { slots.map { $0! } }
    }

    /// The `k` nearest samples (an identity may appear several times).
    public func searchSamples(_ query: [Float], k: Int, threshold: Float? = nil) -> [Match] {
        precondition(query.count == dimension)
        return reading {
            let dots = products(query)
            let d = dots.withUnsafeBufferPointer { dp in query.withUnsafeBufferPointer { distances(dots: dp, query: $0) } }
            let order = topK(d, k: k, threshold: threshold)
            return order.map { Match(identity: identityNames[Int(identityOfRow[$0])], distance: d[$0], sample: sampleOfRow[$0]) }
        }
    }

    /// Rows per tile of the batched search is the largest that keeps the tile's products
    /// within this many floats (256 KB: in a core's L2 while the product writes them and the
    /// selections read them; 4 MB tiles measured 0.27-0.30 ms per query in batches of 34,
    /// these 0.23).
    var tileFloats = 1 << 16
    /// Rows a core must have to take a share of a batched search (tests lower it).
    var minimumShareRows = 1024

    /// Searches `count` queries laid out back to back. The default aggregation goes through
    /// the gallery in tiles of rows: one matrix product gives every query's products with the
    /// tile, and each query's running selection takes them while they are in cache, so no
    /// `[count, N]` block is written and read back and no per-identity arrays are made
    /// (100 x 100k x 128: 0.75 ms a query before, with both). The other aggregations rank
    /// each query's full row of products.
    public func search(queries: [Float], count: Int, k: Int, aggregation: Aggregation = .best, threshold: Float? = nil) -> [[Match]] {
        precondition(queries.count == count * dimension, "queries must hold count x dimension values")
        return reading {
            let n = sampleOfRow.count
            guard n > 0, k > 0 else { return Array(repeating: [], count: count) }
            if aggregation == .best { return searchBest(queries: queries, count: count, k: k, threshold: threshold) }
            return (0..<count).map { start in
                let query = Array(queries[(start * dimension)..<((start + 1) * dimension)])
                let dots = products(query)
                return dots.withUnsafeBufferPointer { d in
                    query.withUnsafeBufferPointer { rank(dots: d, query: $0, k: k, aggregation: aggregation, threshold: threshold) }
                }
            }
        }
    }

    /// The tiled batched search for the default aggregation. Caller holds the lock.
    ///
    /// Each core takes a contiguous share of the rows and walks it in tiles: one product gives
    /// every query's products with the tile, and each query's selection takes them while they
    /// are in cache. The cores never wait on each other until the end, where each query's
    /// selections are merged in row order (so ties resolve as in one pass). An identity in the
    /// overall top k is in the top k of the share holding its best row, so the merge is exact.
    private func searchBest(queries: [Float], count: Int, k requested: Int, threshold: Float?) -> [[Match]] {
        let n = sampleOfRow.count, d = dimension
        let k = requested * (rerank?.factor ?? 1)
        let workers = count >= 8 ? min(Self.cores, max(1, n / minimumShareRows)) : 1
        let tileRows = max(16, min((n + workers - 1) / workers, tileFloats / count))
        var shares = Array(repeating: [IdentitySelection](), count: workers)
        let names = identityNames, metric = self.metric
        let storage = self.storage
        // With vector bodies the row kernel takes the products, wanting the queries transposed
        // (d x count padded to 8); at the portable level the sgemm takes the queries as they are.
        let rowKernel = doppel_scan_level() > DOPPEL_KERNELS_PORTABLE
        let transposed = rowKernel ? Self.transposed(queries, count: count, dimension: d) : []
        // Each core runs its own sgemm, so OpenBLAS must not split them again: its threads
        // would spin on the cores the selections need (measured: 0.30-0.34 ms per query with
        // two BLAS threads, 0.25-0.27 with one). The row kernel leaves OpenBLAS alone.
        let splitsBLAS = !rowKernel && workers > 1
        func run(_ body: () -> Void) { if splitsBLAS { BLASThreads.splitting(body) } else { body() } }
        run {
            queries.withUnsafeBufferPointer { q in
                norms.withUnsafeBufferPointer { norms in
                    identityOfRow.withUnsafeBufferPointer { owner in
                        shares.withUnsafeMutableBufferPointer { shares in
                            nonisolated(unsafe) let (q, norms, owner, shares) = (q, norms, owner, shares)
                            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                                var selections = Array(repeating: IdentitySelection(k: k), count: count)
                                // Not zeroed: the product and the decoder write every float
                                // before it is read (zeroing the tiles took 3% of a loaded server).
                                var block = [Float](unsafeUninitializedCapacity: count * tileRows) { $1 = count * tileRows }
                                // A compact index decodes each tile of rows to float32 for the product.
                                let decodedCount = storage.readsFloats ? 0 : tileRows * d
                                // (Not made for 0: the standard library then writes the count into its
                                // one shared empty array, a race between workers.)
                                var decoded = decodedCount == 0 ? [] : [Float](unsafeUninitializedCapacity: decodedCount) { $1 = decodedCount }
                                var start = worker * n / workers
                                let end = (worker + 1) * n / workers
                                block.withUnsafeMutableBufferPointer { block in
                                    decoded.withUnsafeMutableBufferPointer { decoded in
                                        storage.floats.withUnsafeBufferPointer { floats in
                                            while start < end {
                                                let rows = min(tileRows, end - start)
                                                let tile: UnsafePointer<Float>
                                                if storage.readsFloats {
                                                    tile = floats.baseAddress! + start * d
                                                } else {
                                                    storage.decode(rows: start..<(start + rows), into: decoded.baseAddress!)
                                                    tile = UnsafePointer(decoded.baseAddress!)
                                                }
                                                // products[count, rows] = queries[count, d] X[start..<start+rows, d]^T
                                                if rowKernel {
                                                    // Reads the rows in place: no packed copy of the tile and no
                                                    // zeroing pass, which took a fifth of a loaded server's time
                                                    // in batches of 32.
                                                    doppel_products_f32(tile, rows, d, transposed, count, block.baseAddress, rows)
                                                } else {
                                                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(count), Int32(rows), Int32(d), 1,
                                                                q.baseAddress, Int32(d), tile, Int32(d), 0, block.baseAddress, Int32(rows))
                                                }
                                                for query in 0..<count {
                                                    selections[query].take(products: UnsafeBufferPointer(rebasing: block[(query * rows)..<((query + 1) * rows)]),
                                                                           firstRow: start, norms: norms, owners: owner, metric: metric, names: names)
                                                }
                                                start += rows
                                            }
                                        }
                                    }
                                }
                                shares[worker] = selections
                            }
                        }
                    }
                }
            }
        }
        let selections = (0..<count).map { query in
            var selection = shares[0][query]
            for worker in 1..<workers { selection.merge(shares[worker][query], names: names) }
            return selection
        }
        if let rerank {
            let rows = rows(of: selections)
            return selections.indices.map { query in
                reranked(selections[query], rows: rows, query: Array(queries[(query * d)..<((query + 1) * d)]), k: requested,
                         threshold: threshold, rerank: rerank)
            }
        }
        return selections.indices.map { query in
            queries.withUnsafeBufferPointer { matches(selections[query], query: UnsafeBufferPointer(rebasing: $0[(query * d)..<((query + 1) * d)]), threshold: threshold) }
        }
    }

    /// `count` queries of `dimension` values laid out back to back -> `[dimension, padded]`,
    /// padded = count rounded up to 8 (zeros), as `doppel_products_f32` reads them.
    private static func transposed(_ queries: [Float], count: Int, dimension: Int) -> [Float] {
        let padded = (count + 7) / 8 * 8
        var out = [Float](repeating: 0, count: dimension * padded)
        for query in 0..<count {
            for j in 0..<dimension { out[j * padded + query] = queries[query * dimension + j] }
        }
        return out
    }

    /// q.x for every row: one sgemv (or, compact, one pass of the row kernel), one pass over
    /// the matrix. Caller holds the lock.
    private func products(_ query: [Float]) -> [Float] {
        let n = sampleOfRow.count
        guard storage.readsFloats else {
            let prepared = query.withUnsafeBufferPointer { storage.prepare($0) }
            return storage.visit(prepared, AllProducts(rows: n))
        }
        var out = [Float](repeating: 0, count: n)
        storage.floats.withUnsafeBufferPointer { x in
            query.withUnsafeBufferPointer { q in
                out.withUnsafeMutableBufferPointer { d in
                    cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(dimension), 1,
                                x.baseAddress, Int32(dimension), q.baseAddress, 1, 0, d.baseAddress, 1)
                }
            }
        }
        return out
    }

    private struct AllProducts: RowVisitor {
        let rows: Int
        func visit<Reader: RowReader>(_ reader: Reader) -> [Float] {
            [Float](unsafeUninitializedCapacity: rows) { out, initialized in
                if rows > 0 { reader.products(0..<rows, into: out.baseAddress!) }
                initialized = rows
            }
        }
    }

    /// Distances from one query to every row. Caller holds the lock. (The sample search and
    /// mean-of-best use it; the default search ranks on cheaper monotonic scores.)
    private func distances(dots: UnsafeBufferPointer<Float>, query: UnsafeBufferPointer<Float>) -> [Float] {
        let qn = query.reduce(0) { $0 + $1 * $1 }
        return (0..<dots.count).map { distance(score: score(dot: dots[$0], row: $0), queryNorm: qn) }
    }

    @inline(__always) private func score(dot: Float, row: Int) -> Float { metric.score(dot: dot, norm: norms[row]) }

    /// The distance of a score, given the query's squared norm.
    @inline(__always) private func distance(score: Float, queryNorm: Float) -> Float {
        switch metric {
        case .euclidean:
            // Rounding can make |q|^2 + |x|^2 - 2 q.x slightly negative: clamp (FAISS does too).
            return max(queryNorm + score, 0).squareRoot()
        case .cosine:
            let length = queryNorm.squareRoot()
            return length > 1e-12 ? 1 + score / length : 1
        }
    }

    /// Row indices of the `k` smallest distances, nearest first (ties by row), within threshold.
    private func topK(_ d: [Float], k: Int, threshold: Float?) -> [Int] {
        var heap = [(Float, Int)]()  // the k best so far, kept sorted; k is small
        heap.reserveCapacity(k + 1)
        for (j, value) in d.enumerated() {
            if let threshold, value > threshold { continue }
            if heap.count == k, let worst = heap.last, (value, j) >= worst { continue }
            let position = heap.firstIndex { (value, j) < $0 } ?? heap.count
            heap.insert((value, j), at: position)
            if heap.count > k { heap.removeLast() }
        }
        return heap.map(\.1)
    }

    /// Per-identity ranking of one query from its dot products. Caller holds the lock.
    private func rank(dots: UnsafeBufferPointer<Float>, query: UnsafeBufferPointer<Float>, k: Int, aggregation: Aggregation,
                      threshold: Float?) -> [Match] {
        let identities = identityNames.count
        let qn = query.reduce(0) { $0 + $1 * $1 }
        var best = [Float](repeating: .infinity, count: identities)
        var bestRow = [Int](repeating: -1, count: identities)
        identityOfRow.withUnsafeBufferPointer { owner in
            norms.withUnsafeBufferPointer { norms in
                best.withUnsafeMutableBufferPointer { best in
                    bestRow.withUnsafeMutableBufferPointer { bestRow in
                        // One pass: each row's score against its identity's best so far, with
                        // the metric's branch outside the loop.
                        func pass(_ metric: IndexMetric) {
                            for row in 0..<dots.count {
                                let id = Int(owner[row]), value = metric.score(dot: dots[row], norm: norms[row])
                                if value < best[id] { best[id] = value; bestRow[id] = row }
                            }
                        }
                        if metric == .euclidean { pass(.euclidean) } else { pass(.cosine) }
                    }
                }
            }
        }
        var distanceOf = distancesOf(best: best, bestRow: bestRow, queryNorm: qn)
        if aggregation == .centroid {
            // Distance to each identity's mean vector; the nearest sample is still reported.
            let q = Array(query)
            var sums = centroidSums
            if !tracksCentroids {
                // Summed now, one pass over the rows (a server aggregating by centroid keeps them).
                sums = [Float](repeating: 0, count: identities * dimension)
                for r in 0..<storage.count {
                    let row = storage.decode(row: r), base = Int(identityOfRow[r]) * dimension
                    for k in 0..<dimension { sums[base + k] += row[k] }
                }
            }
            for id in 0..<identities where samplesPerIdentity[id] > 0 {
                let scale = 1 / Float(samplesPerIdentity[id])
                let mean = (0..<dimension).map { sums[id * dimension + $0] * scale }
                switch metric {
                case .euclidean: distanceOf[id] = zip(mean, q).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
                case .cosine:
                    let dot = zip(mean, q).reduce(0) { $0 + $1.0 * $1.1 }
                    let norms = (mean.reduce(0) { $0 + $1 * $1 } * q.reduce(0) { $0 + $1 * $1 }).squareRoot()
                    distanceOf[id] = norms > 1e-12 ? 1 - dot / norms : 1
                }
            }
        }
        if case .meanOfBest(let m) = aggregation, m > 1 {
            let all = distances(dots: dots, query: query)
            var perIdentity = [[Float]](repeating: [], count: identities)
            for (row, value) in all.enumerated() { perIdentity[Int(identityOfRow[row])].append(value) }
            for id in 0..<identities where !perIdentity[id].isEmpty {
                let nearest = perIdentity[id].sorted().prefix(m)
                distanceOf[id] = nearest.reduce(0, +) / Float(nearest.count)
            }
        }
        return top(k: k, best: best, bestRow: bestRow, distanceOf: distanceOf, threshold: threshold)
    }

    private func distancesOf(best: [Float], bestRow: [Int], queryNorm: Float) -> [Float] {
        (0..<best.count).map { bestRow[$0] >= 0 ? distance(score: best[$0], queryNorm: queryNorm) : .infinity }
    }

    /// The k nearest identities, ties by name, kept in a small sorted list.
    private func top(k: Int, best: [Float], bestRow: [Int], distanceOf: [Float], threshold: Float?) -> [Match] {
        var top = [Int]()
        top.reserveCapacity(k + 1)
        func before(_ a: Int, _ b: Int) -> Bool { (distanceOf[a], identityNames[a]) < (distanceOf[b], identityNames[b]) }
        for id in 0..<best.count where bestRow[id] >= 0 {
            if let threshold, distanceOf[id] > threshold { continue }
            if top.count == k, !before(id, top[k - 1]) { continue }
            let position = top.firstIndex { before(id, $0) } ?? top.count
            top.insert(id, at: position)
            if top.count > k { top.removeLast() }
        }
        return top.map { Match(identity: identityNames[$0], distance: distanceOf[$0], sample: sampleOfRow[bestRow[$0]]) }
    }
}

/// The `k` best identities of a stream of rows: each identity once with its best score,
/// ordered by (score, name). A row whose score is above `bound` cannot enter, so after the
/// first few rows nearly every row costs one comparison. Exact: at any time the worst kept
/// score is at least the final k-th best identity's, so an identity's best row always enters.
struct IdentitySelection {
    struct Entry {
        var score: Float
        var identity: Int32
        var row: Int
    }

    let k: Int
    private(set) var entries: [Entry] = []
    /// Rows scoring above this are not among the k best; infinity until k identities are kept.
    private(set) var bound = Float.infinity

    init(k: Int) {
        self.k = k
        entries.reserveCapacity(k + 1)
    }

    /// Takes a row whose score is at most `bound`. Rows of one stream come in increasing row
    /// order, so on an equal score an identity keeps its earlier row.
    mutating func offer(_ score: Float, identity: Int32, row: Int, names: [String]) {
        func before(_ a: Entry, _ b: Entry) -> Bool {
            a.score != b.score ? a.score < b.score : names[Int(a.identity)] < names[Int(b.identity)]
        }
        let entry = Entry(score: score, identity: identity, row: row)
        if let kept = entries.firstIndex(where: { $0.identity == identity }) {
            guard score < entries[kept].score else { return }
            entries.remove(at: kept)
        } else if entries.count == k {
            guard before(entry, entries[k - 1]) else { return }
            entries.removeLast()
        }
        let position = entries.firstIndex { before(entry, $0) } ?? entries.count
        entries.insert(entry, at: position)
        if entries.count == k { bound = entries[k - 1].score }
    }

    /// Takes another selection over later rows.
    mutating func merge(_ other: IdentitySelection, names: [String]) {
        for entry in other.entries where entry.score <= bound {
            offer(entry.score, identity: entry.identity, row: entry.row, names: names)
        }
    }

    /// Takes one query's products with the rows `firstRow...`, sixteen at a time: the lanes
    /// are compared with `bound` together and only a lane at or under it is looked at.
    mutating func take(products: UnsafeBufferPointer<Float>, firstRow: Int, norms: UnsafeBufferPointer<Float>,
                       owners: UnsafeBufferPointer<Int32>, metric: GalleryIndex.IndexMetric, names: [String]) {
        let dots = products.baseAddress!, rowNorms = norms.baseAddress! + firstRow
        let count = products.count
        // Sixteen scores at a time in SIMD registers (the metric a constant in each call): a
        // block costs a few vector instructions unless some row in it is at or under the bound.
        // The same score as the exact pass, so no row at the bound is missed. (A plain loop over
        // the 16 lanes compiled to scalar code with a branch per row: perf put 15% of a loaded
        // server's time there.)
        @inline(__always) func blockHasCandidate(_ j: Int, _ metric: GalleryIndex.IndexMetric) -> Bool {
            let scores = metric.scores(dots: UnsafeRawPointer(dots + j).loadUnaligned(as: SIMD16<Float>.self),
                                       norms: UnsafeRawPointer(rowNorms + j).loadUnaligned(as: SIMD16<Float>.self))
            return any(scores .<= bound)
        }
        func exact(_ j: Int) {
            let value = metric.score(dot: dots[j], norm: rowNorms[j])
            if value <= bound { offer(value, identity: owners[firstRow + j], row: firstRow + j, names: names) }
        }
        var j = 0
        while j + 16 <= count {
            if metric == .euclidean ? blockHasCandidate(j, .euclidean) : blockHasCandidate(j, .cosine) {
                for lane in j..<(j + 16) { exact(lane) }
            }
            j += 16
        }
        while j < count {
            exact(j)
            j += 1
        }
    }
}
