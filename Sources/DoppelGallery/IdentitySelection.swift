// SPDX-License-Identifier: MIT
import CBLAS
import CKernelLevels
import CScanKernels
import DoppelKernels
import Foundation

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

/// The `k` first of a stream in the order `before`, kept sorted (k is small: once k are kept,
/// most elements are turned away by one comparison with the last).
struct SmallestK<Element> {
    let k: Int
    let before: (Element, Element) -> Bool
    private(set) var elements: [Element] = []

    init(k: Int, before: @escaping (Element, Element) -> Bool) {
        self.k = k
        self.before = before
        elements.reserveCapacity(k + 1)
    }

    mutating func offer(_ element: Element) {
        guard k > 0, elements.count < k || before(element, elements[k - 1]) else { return }
        let position = elements.firstIndex { before(element, $0) } ?? elements.count
        elements.insert(element, at: position)
        if elements.count > k { elements.removeLast() }
    }
}
