// SPDX-License-Identifier: MIT
import CBLAS
import CKernelLevels
import CScanKernels
import DoppelKernels
import Foundation

/// One query against the index: the fused scan (a dot product per row as the rows stream by,
/// feeding a running top-k of identities), the products and distances it scores with, and
/// the per-sample search re-ranking uses.
extension GalleryIndex {
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

    /// The k best identities for one query in one fused pass over the matrix: each core scans
    /// half the rows, computing q.x with SIMD as it streams them, so the matrix is read once
    /// and no N-sized score array is written and re-read (100k x 128: 2.9 ms with sgemv and a
    /// second pass, 2.0-2.3 ms fused, against a 1.9-2.2 ms memory floor). A compact index
    /// reads its codes the same way (`EncodedVectors`). Caller holds the lock.
    func scan(_ query: [Float], k: Int) -> IdentitySelection {
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
    struct ScanVisitor: RowVisitor {
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
    func matches(_ selection: IdentitySelection, query: UnsafeBufferPointer<Float>, threshold: Float?) -> [Match] {
        var found = [Match]()
        for entry in selection.entries {
            let row = storage.decode(row: entry.row)
            let distance = metric.distance(query, row)
            if let threshold, distance > threshold { continue }
            found.append(Match(identity: identityNames[Int(entry.identity)], distance: distance, sample: sampleOfRow[entry.row]))
        }
        // Distinct scores can round to one distance: order as the distances read.
        return found.sorted { ($0.distance, $0.identity) < ($1.distance, $1.identity) }
    }

    static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// One result slot per worker, written by that worker alone: a buffer allocated up front,
    /// not an array, whose copy-on-write check every worker's write would race on.
    final class ScanSlots: @unchecked Sendable {
        let slots: UnsafeMutableBufferPointer<IdentitySelection?>
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

    /// q.x for every row: one sgemv (or, compact, one pass of the row kernel), one pass over
    /// the matrix. Caller holds the lock.
    func products(_ query: [Float]) -> [Float] {
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

    struct AllProducts: RowVisitor {
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
    func distances(dots: UnsafeBufferPointer<Float>, query: UnsafeBufferPointer<Float>) -> [Float] {
        let qn = query.reduce(0) { $0 + $1 * $1 }
        return (0..<dots.count).map { distance(score: score(dot: dots[$0], row: $0), queryNorm: qn) }
    }

    @inline(__always) func score(dot: Float, row: Int) -> Float { metric.score(dot: dot, norm: norms[row]) }

    /// The distance of a score, given the query's squared norm.
    @inline(__always) func distance(score: Float, queryNorm: Float) -> Float {
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
    func topK(_ d: [Float], k: Int, threshold: Float?) -> [Int] {
        var nearest = SmallestK<Int>(k: k) { (d[$0], $0) < (d[$1], $1) }
        for (j, value) in d.enumerated() where value <= threshold ?? .infinity { nearest.offer(j) }
        return nearest.elements
    }

    /// Per-identity ranking of one query from its dot products. Caller holds the lock.
    func rank(dots: UnsafeBufferPointer<Float>, query: UnsafeBufferPointer<Float>, k: Int, aggregation: Aggregation,
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
                distanceOf[id] = metric.distance(query, mean)
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

    func distancesOf(best: [Float], bestRow: [Int], queryNorm: Float) -> [Float] {
        (0..<best.count).map { bestRow[$0] >= 0 ? distance(score: best[$0], queryNorm: queryNorm) : .infinity }
    }

    /// The k nearest identities, ties by name.
    func top(k: Int, best: [Float], bestRow: [Int], distanceOf: [Float], threshold: Float?) -> [Match] {
        let names = identityNames
        var top = SmallestK<Int>(k: k) { (distanceOf[$0], names[$0]) < (distanceOf[$1], names[$1]) }
        for id in 0..<best.count where bestRow[id] >= 0 && distanceOf[id] <= threshold ?? .infinity { top.offer(id) }
        return top.elements.map { Match(identity: identityNames[$0], distance: distanceOf[$0], sample: sampleOfRow[bestRow[$0]]) }
    }
}
