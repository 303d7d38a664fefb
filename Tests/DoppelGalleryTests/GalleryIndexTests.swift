// SPDX-License-Identifier: MIT
import Foundation
import Testing
import TestSupport
@testable import DoppelGallery

/// Exact search against a brute-force reference in Double, including ties, k > N,
/// deletions and concurrent readers.
@Suite struct GalleryIndexTests {
    struct Row {
        let sample: Int64
        let identity: String
        let vector: [Float]
    }

    static func randomRows(count: Int, dimension: Int, identities: Int, seed: UInt64, grid: Bool = false) -> [Row] {
        var state = seed
        func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let unit = Float(state >> 40) / Float(1 << 24)
            // On a coarse grid many distances tie exactly.
            return grid ? (unit * 4).rounded(.down) : unit * 2 - 1
        }
        return (0..<count).map { i in Row(sample: Int64(100 + i), identity: "id\(i % identities)", vector: (0..<dimension).map { _ in next() }) }
    }

    /// Per-identity nearest sample, nearest first, ties by identity name, computed in Double.
    static func reference(_ rows: [Row], query: [Float], k: Int, metric: GalleryIndex.IndexMetric) -> [(String, Double)] {
        var best = [String: Double]()
        for row in rows {
            let d: Double
            switch metric {
            case .euclidean: d = zip(row.vector, query).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
            case .cosine:
                let dot = zip(row.vector, query).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                let a = row.vector.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot(), b = query.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                d = a * b > 1e-12 ? 1 - dot / (a * b) : 1
            }
            best[row.identity] = min(best[row.identity] ?? .infinity, d)
        }
        return best.sorted { ($0.value, $0.key) < ($1.value, $1.key) }.prefix(k).map { ($0.key, $0.value) }
    }

    /// The index computes a match's distance in Double from the stored floats, as the
    /// reference does, and rounds it to Float once: within u of the distance (and the Double
    /// sums' own error, under 1e-12 here).
    static func distanceBound(_ exact: Double) -> Double { RoundingBound.unit * abs(exact) + 1e-12 }

    static func build(_ rows: [Row], dimension: Int, metric: GalleryIndex.IndexMetric) -> GalleryIndex {
        let index = GalleryIndex(dimension: dimension, metric: metric)
        for row in rows { index.add(sample: row.sample, identity: row.identity, vector: row.vector) }
        return index
    }

    @Test(arguments: [GalleryIndex.IndexMetric.euclidean, .cosine], [1, 5, 40])
    func matchesBruteForce(metric: GalleryIndex.IndexMetric, k: Int) {
        let rows = Self.randomRows(count: 300, dimension: 17, identities: 23, seed: 4)
        let index = Self.build(rows, dimension: 17, metric: metric)
        let queries = Self.randomRows(count: 12, dimension: 17, identities: 1, seed: 99)
        let batched = index.search(queries: queries.flatMap(\.vector), count: 12, k: k)
        for (q, query) in queries.enumerated() {
            let expected = Self.reference(rows, query: query.vector, k: k, metric: metric)
            for result in [index.search(query.vector, k: k), batched[q]] {
                #expect(result.map(\.identity) == expected.map(\.0))  // k > 23 identities gives all 23
                #expect(zip(result.map(\.distance), expected.map(\.1)).allSatisfy { abs(Double($0) - $1) <= Self.distanceBound($1) })
                #expect(Set(result.map(\.identity)).count == result.count, "never the same identity twice")
            }
        }
    }

    /// Large enough for the single-query scan to split the rows over the cores.
    @Test(arguments: [GalleryIndex.IndexMetric.euclidean, .cosine])
    func parallelScanMatchesBruteForce(metric: GalleryIndex.IndexMetric) {
        let rows = Self.randomRows(count: 6000, dimension: 20, identities: 700, seed: 31)
        let index = Self.build(rows, dimension: 20, metric: metric)
        for query in Self.randomRows(count: 4, dimension: 20, identities: 1, seed: 32) {
            let expected = Self.reference(rows, query: query.vector, k: 8, metric: metric)
            let result = index.search(query.vector, k: 8)
            #expect(result.map(\.identity) == expected.map(\.0))
            #expect(zip(result.map(\.distance), expected.map(\.1)).allSatisfy { abs(Double($0) - $1) <= Self.distanceBound($1) })
        }
        let grid = Self.randomRows(count: 6000, dimension: 3, identities: 900, seed: 33, grid: true)
        let gridIndex = Self.build(grid, dimension: 3, metric: .euclidean)
        for query in Self.randomRows(count: 4, dimension: 3, identities: 1, seed: 34, grid: true) {
            #expect(gridIndex.search(query.vector, k: 12).map(\.identity) == Self.reference(grid, query: query.vector, k: 12, metric: .euclidean).map(\.0))
        }
    }

    /// The batched search goes through the rows in tiles with a running selection per query:
    /// tiles of 16 rows (many of them, a partial last one) must give the brute-force answer,
    /// ties by name included (euclidean on a grid ties exactly; cosine ties on a grid are exact
    /// only in real numbers, so it gets random data), for any k.
    @Test(arguments: [GalleryIndex.IndexMetric.euclidean, .cosine], [1, 7, 300])
    func tiledBatchMatchesBruteForce(metric: GalleryIndex.IndexMetric, k: Int) {
        let grid = metric == .euclidean
        let rows = Self.randomRows(count: 1000, dimension: 3, identities: 230, seed: 41, grid: grid)
        let index = Self.build(rows, dimension: 3, metric: metric)
        index.tileFloats = 16 * 9
        index.minimumShareRows = 100  // every core takes a share (and merges across shares are checked)
        let queries = Self.randomRows(count: 9, dimension: 3, identities: 1, seed: 42, grid: grid)
        let batched = index.search(queries: queries.flatMap(\.vector), count: 9, k: k)
        for (q, query) in queries.enumerated() {
            let expected = Self.reference(rows, query: query.vector, k: k, metric: metric)
            #expect(batched[q].map(\.identity) == expected.map(\.0))
            #expect(zip(batched[q].map(\.distance), expected.map(\.1)).allSatisfy { abs(Double($0) - $1) <= Self.distanceBound($1) })
            // The single search ranks on products summed in another order, but both compute a
            // match's distance by the same Double routine from the same row: the same bits.
            let single = index.search(query.vector, k: k)
            #expect(batched[q].map(\.identity) == single.map(\.identity) && batched[q].map(\.sample) == single.map(\.sample))
            #expect(batched[q].map(\.distance) == single.map(\.distance))
        }
    }

    @Test func tiesAreBrokenByIdentityName() {
        let rows = Self.randomRows(count: 200, dimension: 3, identities: 50, seed: 7, grid: true)
        let index = Self.build(rows, dimension: 3, metric: .euclidean)
        for query in Self.randomRows(count: 5, dimension: 3, identities: 1, seed: 8, grid: true) {
            let expected = Self.reference(rows, query: query.vector, k: 10, metric: .euclidean)
            #expect(index.search(query.vector, k: 10).map(\.identity) == expected.map(\.0))
        }
    }

    @Test func deletionThresholdAndSamples() {
        let rows = Self.randomRows(count: 120, dimension: 8, identities: 10, seed: 11)
        let index = Self.build(rows, dimension: 8, metric: .euclidean)
        let query = rows[5].vector
        #expect(index.search(query, k: 1).first?.sample == rows[5].sample)
        #expect(index.remove(sample: rows[5].sample))
        #expect(!index.remove(sample: rows[5].sample))
        let remaining = rows.filter { $0.sample != rows[5].sample }
        #expect(index.search(query, k: 10).map(\.identity) == Self.reference(remaining, query: query, k: 10, metric: .euclidean).map(\.0))
        index.remove(identity: "id3")
        #expect(!index.search(query, k: 10).contains { $0.identity == "id3" })
        #expect(index.count == 120 - 1 - 12)
        let near = index.search(query, k: 10, threshold: 1.0)
        #expect(near.allSatisfy { $0.distance <= 1.0 })
        let samples = index.searchSamples(query, k: 7)
        #expect(samples.count == 7 && zip(samples, samples.dropFirst()).allSatisfy { $0.distance <= $1.distance })
        #expect(GalleryIndex(dimension: 8, metric: .cosine).search(query, k: 3).isEmpty)
    }

    @Test func meanOfBestAggregation() {
        let index = GalleryIndex(dimension: 1, metric: .euclidean)
        index.add(sample: 1, identity: "a", vector: [0.1])
        index.add(sample: 2, identity: "a", vector: [5])
        index.add(sample: 3, identity: "b", vector: [0.3])
        index.add(sample: 4, identity: "b", vector: [0.4])
        #expect(index.search([0], k: 2).map(\.identity) == ["a", "b"])
        let mean = index.search([0], k: 2, aggregation: .meanOfBest(2))
        #expect(mean.map(\.identity) == ["b", "a"])
        // A few Float roundings (of 0.1, a sum, a halving) of values up to 5: within 4 u x 5 = 1.2e-6.
        let few = 4 * Float(RoundingBound.unit) * 5
        #expect(abs(mean[0].distance - 0.35) <= few && abs(mean[1].distance - 2.55) <= few)
        // Centroids: a at 2.55, b at 0.35; kept in step with a removal.
        let centroid = index.search([0], k: 2, aggregation: .centroid)
        #expect(centroid.map(\.identity) == ["b", "a"] && abs(centroid[1].distance - 2.55) <= few)
        #expect(centroid[1].sample == 1, "the nearest sample of the identity is still reported")
        index.remove(sample: 2)
        #expect(abs(index.search([0], k: 2, aggregation: .centroid)[0].distance - 0.1) <= few)
    }

    @Test func concurrentSearchDuringEnrollment() async {
        let rows = Self.randomRows(count: 400, dimension: 16, identities: 40, seed: 21)
        let index = Self.build(Array(rows.prefix(200)), dimension: 16, metric: .euclidean)
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for row in rows.dropFirst(200) { index.add(sample: row.sample, identity: row.identity, vector: row.vector) }
                return true
            }
            for reader in 0..<4 {
                group.addTask {
                    var consistent = true
                    for i in 0..<200 {
                        let result = index.search(rows[(reader * 50 + i) % 400].vector, k: 5)
                        consistent = consistent && !result.isEmpty && Set(result.map(\.identity)).count == result.count
                            && zip(result, result.dropFirst()).allSatisfy { $0.distance <= $1.distance }
                    }
                    return consistent
                }
            }
            for await ok in group { #expect(ok) }
        }
        #expect(index.count == 400)
    }

    /// Enrolling and deleting all day reuses identity slots: the per-identity state stays the
    /// size of the peak gallery, and search and centroids stay exact after slots are reused.
    @Test func identitySlotsAreReusedAfterDeletion() {
        let index = GalleryIndex(dimension: 4, metric: .euclidean)
        let base = Self.randomRows(count: 40, dimension: 4, identities: 10, seed: 3)
        for row in base { index.add(sample: row.sample, identity: row.identity, vector: row.vector) }
        var sample: Int64 = 10_000
        for cycle in 0..<2000 {
            let id = "churn\(cycle)"
            let rows = Self.randomRows(count: 2, dimension: 4, identities: 1, seed: UInt64(cycle) + 7)
            for row in rows {
                sample += 1
                index.add(sample: sample, identity: id, vector: row.vector)
            }
            if cycle % 3 == 0 { _ = index.remove(sample: sample); _ = index.remove(sample: sample - 1) } else { index.remove(identity: id) }
        }
        #expect(index.identityCount == 10 && index.count == 40)
        #expect(index.identitySlots <= 11, "slots: \(index.identitySlots)")
        let query = Self.randomRows(count: 1, dimension: 4, identities: 1, seed: 77)[0].vector
        let expected = Self.reference(base, query: query, k: 10, metric: .euclidean)
        let found = index.search(query, k: 10)
        #expect(found.map(\.identity) == expected.map(\.0))
        let centroids = index.search(query, k: 10, aggregation: .centroid)
        #expect(Set(centroids.map(\.identity)) == Set(expected.map(\.0)))
    }
}
