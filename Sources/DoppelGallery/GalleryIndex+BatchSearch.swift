// SPDX-License-Identifier: MIT
import CBLAS
import CKernelLevels
import CScanKernels
import DoppelKernels
import Foundation

/// A batch of queries against the index: tiles of rows multiplied against every query at once
/// (the AVX2 products kernel, sgemm elsewhere), each tile taken by every query's running
/// top-k while it is in cache, the cores' shares merged at the end.
extension GalleryIndex {
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
    func searchBest(queries: [Float], count: Int, k requested: Int, threshold: Float?) -> [[Match]] {
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
    static func transposed(_ queries: [Float], count: Int, dimension: Int) -> [Float] {
        let padded = (count + 7) / 8 * 8
        var out = [Float](repeating: 0, count: dimension * padded)
        for query in 0..<count {
            for j in 0..<dimension { out[j * padded + query] = queries[query * dimension + j] }
        }
        return out
    }
}
