// SPDX-License-Identifier: MIT
import CBLAS
import CKernelLevels
import CScanKernels
import DoppelKernels
import Foundation

/// A compact index's second look: the shortlisted identities scored on their stored float32
/// vectors, every sample of each.
extension GalleryIndex {
    /// The shortlisted identities ranked by their exact distances: every sample of each
    /// identity the codes' selection named is scored on its stored float32 vector (not only
    /// the sample the codes ranked best, which rounding on another processor may not pick),
    /// so each identity returned carries its exact best distance and that sample. The `k`
    /// nearest within `threshold`. A sample whose vector the source lacks, or every sample when
    /// the source cannot be read (reported to `onFailure`), keeps its code distance. Caller
    /// holds the lock.
    func reranked(_ selection: IdentitySelection, rows: [Int32: [Int]], query: [Float], k: Int, threshold: Float?,
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
                let distance = metric.distance(q, vector), identity = identityOfRow[row]
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
    func rows(of selections: [IdentitySelection]) -> [Int32: [Int]] {
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
        var start: [Int32] = []
        var sorted: [Int32] = []

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
}
