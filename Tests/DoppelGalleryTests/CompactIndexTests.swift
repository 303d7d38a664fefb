// SPDX-License-Identifier: MIT
import Foundation
import Synchronization
import Testing
import TestSupport
@testable import DoppelGallery
import CKernelLevels
import CScanKernels

/// float16 and int8 indexes against the float32 one: distances within the stated error,
/// re-ranking that restores the exact answer, learning int8 ranges, deletion.
@Suite struct CompactIndexTests {
    /// The exact vectors of the rows, for re-ranking (as the store's embeddings are).
    struct Vectors: ExactVectorSource {
        let bySample: [Int64: [Float]]
        init(_ rows: [GalleryIndexTests.Row]) { bySample = Dictionary(uniqueKeysWithValues: rows.map { ($0.sample, $0.vector) }) }
        func vectors(of samples: [Int64]) -> [Int64: [Float]] { bySample.filter { samples.contains($0.key) } }
    }

    static func index(_ rows: [GalleryIndexTests.Row], dimension: Int, metric: GalleryIndex.IndexMetric, precision: IndexPrecision,
                      rerank: Int? = nil) -> GalleryIndex {
        let index = GalleryIndex(dimension: dimension, metric: metric, precision: precision,
                                 rerank: rerank.map { GalleryIndex.Rerank(factor: $0, source: Vectors(rows)) { _ in } })
        for row in rows { index.add(sample: row.sample, identity: row.identity, vector: row.vector) }
        index.train()
        return index
    }

    /// How far two centroid distances may differ when one index carried its per-identity sums
    /// add by add (and remove by remove) and the other summed them afresh. For each identity
    /// of m samples: each component of either sum is within gamma(2m) x (sum of |x| over the
    /// samples) of exact (m adds and at most m removes), so the mean within that over m; a
    /// euclidean distance moves by at most the mean's shift, sqrt(d) x that, and a cosine
    /// one by at most twice the shift over the mean's length; the distance itself is then a
    /// Float sum of d products, within gamma(d + 2) x 4 d (values in [-1, 1]) on each side.
    static func centroidBound(_ rows: [GalleryIndexTests.Row], dimension d: Int, metric: GalleryIndex.IndexMetric) -> Float {
        var worst = 0.0
        for samples in Dictionary(grouping: rows, by: \.identity).values {
            let m = Double(samples.count)
            let absoluteSums = (0..<d).map { k in samples.reduce(0.0) { $0 + abs(Double($1.vector[k])) } }
            let shift = Double(d).squareRoot() * RoundingBound.gamma(2 * samples.count) * absoluteSums.max()! / m
            let mean = (0..<d).map { k in samples.reduce(0.0) { $0 + Double($1.vector[k]) } / m }
            let length = mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
            worst = max(worst, metric == .cosine ? 2 * shift / length : shift)
        }
        return Float(worst + 2 * RoundingBound.gamma(d + 2) * 4 * Double(d))
    }

    /// float16 keeps 11 significant bits: a distance moves by about |x| 2^-11. int8 moves a
    /// vector by at most half a step per dimension: the distance by at most sqrt(sum (step/2)^2).
    @Test(arguments: [GalleryIndex.IndexMetric.euclidean, .cosine])
    func compactDistancesStayWithinTheirError(metric: GalleryIndex.IndexMetric) {
        let d = 32
        let rows = GalleryIndexTests.randomRows(count: 2000, dimension: d, identities: 2000, seed: 3)
        let exact = Self.index(rows, dimension: d, metric: metric, precision: .float32)
        let half = Self.index(rows, dimension: d, metric: metric, precision: .float16)
        let codes = Self.index(rows, dimension: d, metric: metric, precision: .int8)
        #expect(half.bytesPerVector == 2 * d && codes.bytesPerVector == d && exact.bytesPerVector == 4 * d)
        // Values span [-1, 1]: 254 steps of 2/254, so |x - x^| <= sqrt(d) / 254 (euclidean);
        // for cosine, about that over |x| ~ sqrt(d / 3).
        let int8Bound: Float = metric == .euclidean ? Float(d).squareRoot() / 254 * 1.01 : 0.02
        let halfBound: Float = metric == .euclidean ? 4e-3 : 1e-3
        var worstHalf: Float = 0, worstCodes: Float = 0
        for (q, query) in GalleryIndexTests.randomRows(count: 20, dimension: d, identities: 20, seed: 9).enumerated() {
            let reference = Dictionary(uniqueKeysWithValues: exact.search(query.vector, k: 2000).map { ($0.identity, $0.distance) })
            for match in half.search(query.vector, k: 50) { worstHalf = max(worstHalf, abs(match.distance - reference[match.identity]!)) }
            for match in codes.search(query.vector, k: 50) { worstCodes = max(worstCodes, abs(match.distance - reference[match.identity]!)) }
            _ = q
        }
        print("\(metric): max |float16 - float32| \(worstHalf) (bound \(halfBound)), max |int8 - float32| \(worstCodes) (bound \(int8Bound))")
        #expect(worstHalf <= halfBound)
        #expect(worstCodes <= int8Bound)
        #expect(worstCodes > 0 && worstHalf > 0, "compact indexes that match exactly are not compact")
    }

    /// With one sample per identity and distinct distances, int8 re-ranked 4 x k returns the
    /// exact answer: the same identities, in order, with float32 distances.
    @Test(arguments: [IndexPrecision.int8, .float16])
    func rerankingGivesTheExactAnswer(precision: IndexPrecision) {
        let d = 24
        let rows = GalleryIndexTests.randomRows(count: 3000, dimension: d, identities: 3000, seed: 5)
        let exact = Self.index(rows, dimension: d, metric: .euclidean, precision: .float32)
        let reranked = Self.index(rows, dimension: d, metric: .euclidean, precision: precision, rerank: 4)
        let queries = GalleryIndexTests.randomRows(count: 30, dimension: d, identities: 30, seed: 11)
        for query in queries {
            let want = exact.search(query.vector, k: 10), got = reranked.search(query.vector, k: 10)
            #expect(got.map(\.identity) == want.map(\.identity))
            // Both computed by the index's one Double routine from the same float32 vectors.
            #expect(got.map(\.distance) == want.map(\.distance))
        }
        // The batched path re-ranks the same way.
        let batch = reranked.search(queries: queries.flatMap(\.vector), count: queries.count, k: 10)
        for (query, got) in zip(queries, batch) { #expect(got.map(\.identity) == exact.search(query.vector, k: 10).map(\.identity)) }
        // A threshold applies to the exact distances.
        let cut = exact.search(queries[0].vector, k: 10)[4].distance
        #expect(reranked.search(queries[0].vector, k: 10, threshold: cut).count == 5)
    }

    /// Re-ranking scores every sample of each shortlisted identity, not only the one the codes
    /// ranked best: here the stored vectors disagree with the codes about which of identity
    /// "a"'s two samples is nearer (as rounding on another processor can), and the answer is
    /// still "a" at its exact best distance, through that sample, on both search paths.
    @Test(arguments: [IndexPrecision.int8, .float16])
    func rerankingScoresEverySampleOfAShortlistedIdentity(precision: IndexPrecision) {
        let d = 4
        let indexed: [GalleryIndexTests.Row] = [
            .init(sample: 1, identity: "a", vector: [0.1, 0, 0, 0]),  // the codes' best for the query
            .init(sample: 2, identity: "a", vector: [0.5, 0, 0, 0]),
            .init(sample: 3, identity: "b", vector: [0, 0.9, 0, 0]),
            .init(sample: 4, identity: "c", vector: [0, 0, 1.5, 0]),
        ]
        // The stored float32 vectors: sample 2 is in fact the query itself.
        var stored = indexed
        stored[0] = .init(sample: 1, identity: "a", vector: [0, 0, 0, 0.6])
        stored[1] = .init(sample: 2, identity: "a", vector: [0, 0, 0, 0])
        stored.append(.init(sample: 5, identity: "b", vector: [0, 0.2, 0, 0]))  // enrolled later
        let index = GalleryIndex(dimension: d, metric: .euclidean, precision: precision,
                                 rerank: GalleryIndex.Rerank(factor: 1, source: Vectors(stored)) { _ in })
        for row in indexed { index.add(sample: row.sample, identity: row.identity, vector: row.vector) }
        index.train()
        let query: [Float] = [0, 0, 0, 0]
        for got in [index.search(query, k: 2), index.search(queries: query + query, count: 2, k: 2)[1]] {
            #expect(got.map(\.identity) == ["a", "b"])
            #expect(got.first?.sample == 2 && got.first?.distance == 0, "a's exact best is sample 2 at 0: \(got)")
            #expect(got.last.map { abs($0.distance - 0.9) <= 0.9 * 0x1p-20 } == true, "b, never re-scored differently: \(got)")
        }
        // A sample added and one removed after those searches: re-ranking sees both.
        index.add(sample: 5, identity: "b", vector: [0, 0.2, 0, 0])
        index.remove(sample: 2)
        for got in [index.search(query, k: 2), index.search(queries: query + query, count: 2, k: 2)[0]] {
            #expect(got.map(\.identity) == ["b", "a"] && got.map(\.sample) == [5, 1], "\(got)")
        }
    }

    struct Unreadable: ExactVectorSource {
        struct Down: Error {}
        func vectors(of samples: [Int64]) throws -> [Int64: [Float]] { throw Down() }
    }

    /// A store that cannot be read during re-ranking (the database down) is reported, and the
    /// search answers from the codes' distances: what the codes alone would answer.
    @Test func aSourceThatCannotBeReadIsReportedAndTheCodesAnswer() {
        let d = 8
        let rows = GalleryIndexTests.randomRows(count: 300, dimension: d, identities: 60, seed: 11)
        let failures = Mutex(0)
        let reranking = GalleryIndex(dimension: d, metric: .euclidean, precision: .int8,
                                     rerank: GalleryIndex.Rerank(factor: 4, source: Unreadable()) { _ in failures.withLock { $0 += 1 } })
        let plain = GalleryIndex(dimension: d, metric: .euclidean, precision: .int8)
        for index in [reranking, plain] {
            for row in rows { index.add(sample: row.sample, identity: row.identity, vector: row.vector) }
            index.train()
        }
        let query = rows[17].vector
        let answered = reranking.search(query, k: 5), batched = reranking.search(queries: query + query, count: 2, k: 5)
        #expect(answered.map(\.identity) == plain.search(query, k: 5).map(\.identity) && !answered.isEmpty)
        #expect(batched[0].map(\.identity) == answered.map(\.identity))
        #expect(failures.withLock { $0 } == 3, "one report per re-ranked query")
    }

    /// int8 keeps float32 rows until it has seen `trainingRows` or is told to learn, and its
    /// single and batched searches agree with each other after deletions.
    @Test func int8LearnsItsRangesAndSurvivesDeletion() {
        let d = 16
        let rows = GalleryIndexTests.randomRows(count: 600, dimension: d, identities: 150, seed: 7)
        let index = GalleryIndex(dimension: d, metric: .euclidean, precision: .int8)
        for row in rows { index.add(sample: row.sample, identity: row.identity, vector: row.vector) }
        let exact = Self.index(rows, dimension: d, metric: .euclidean, precision: .float32)
        let query = rows[17].vector
        #expect(index.search(query, k: 5) == exact.search(query, k: 5), "before training the rows are float32: exact")
        #expect(index.bytes >= 600 * d * 4)
        index.train()
        #expect(index.bytes < 600 * d * 2)
        #expect(index.search(query, k: 1).first?.identity == rows[17].identity)
        for row in rows.prefix(200) { index.remove(sample: row.sample) }
        #expect(index.count == 400)
        let queries = rows.suffix(10).flatMap(\.vector)
        let batched = index.search(queries: queries, count: 10, k: 5)
        for (i, row) in rows.suffix(10).enumerated() {
            #expect(batched[i].map(\.identity) == index.search(row.vector, k: 5).map(\.identity))
            #expect(batched[i].first?.identity == row.identity)
        }
    }

    @Test func halfPrecisionConversionRoundTrips() {
        for value: Float in [0, 1, -1, 0.5, 0.333333, -0.1234, 65504, 1e-3, 6.2e-5] {
            let back = EncodedVectors.float(EncodedVectors.half(value))
            #expect(abs(back - value) <= abs(value) * 0x1p-11 + 1e-7, "\(value) -> \(back)")
        }
        #expect(EncodedVectors.float(EncodedVectors.half(1e6)) == 65504, "saturates")
    }

    /// The kernel levels whose bodies this processor runs: portable everywhere; AVX2, and the
    /// AVX-512 bodies' code on AVX2 registers, where it has AVX2; AVX-512 where it has that.
    static let runnableLevels: [Int32] = [DOPPEL_KERNELS_PORTABLE, DOPPEL_KERNELS_AVX2, DOPPEL_KERNELS_AVX512, DOPPEL_KERNELS_AVX512_ON_AVX2]
        .map { Int32($0) }.filter { doppel_scan_self_check($0) >= 0 }

    /// A float sum of n terms lies within n 2^-24 sum |term| of the exact one, in any order.
    static func sumBound(terms: Int, magnitude: Double) -> Double { Double(terms) * 0x1p-24 * magnitude }

    /// The C row kernels, every body this processor runs, give the plain product for full
    /// blocks of 16 and the tail alike; the selected level passed its self-check.
    @Test func theRowKernelsGiveThePlainProduct() {
        #expect(doppel_scan_self_check(Int32(DOPPEL_KERNELS_PORTABLE)) == 1)
        #expect(doppel_scan_self_check_failures() == 0, "a body this processor runs failed its self-check")
        let dimension = 40, rows = 6  // two blocks of 16 and a tail of 8 per row; four rows at once, then two
        let query = (0..<dimension).map { Float($0 % 7) / 3 - 1 }
        let codes = (0..<(rows * dimension)).map { UInt8(($0 * 37) % 256) }
        let halves = (0..<(rows * dimension)).map { EncodedVectors.half(Float(($0 * 5) % 11) / 4 - 1.2 + ($0 == 3 ? 3e-6 : 0)) }
        for level in Self.runnableLevels {
            var fast = [Float](repeating: .nan, count: rows), fastHalves = fast
            #expect(doppel_scan_u8_at(level, query, codes, dimension, rows, 0.5, &fast) == 0)
            #expect(doppel_scan_f16_at(level, query, halves, dimension, rows, &fastHalves) == 0)
            for row in 0..<rows {
                let slice = (row * dimension)..<((row + 1) * dimension)
                let plainCodes = zip(query, codes[slice]).reduce(0.5) { $0 + Double($1.0) * Double($1.1) }
                let plainHalves = zip(query, halves[slice]).reduce(0.0) { $0 + Double($1.0) * Double(EncodedVectors.float($1.1)) }
                let codesMagnitude = zip(query, codes[slice]).reduce(0.5) { $0 + abs(Double($1.0) * Double($1.1)) }
                let halvesMagnitude = zip(query, halves[slice]).reduce(0.0) { $0 + abs(Double($1.0) * Double(EncodedVectors.float($1.1))) }
                // The vector bodies round the query to 16-bit integers (max |q| to 32767): each
                // product moves by at most code * max|q| / 65534 (the header's bound).
                let rounding = level == DOPPEL_KERNELS_PORTABLE ? 0
                    : codes[slice].reduce(0.0) { $0 + Double($1) } * Double(query.map(abs).max()!) / 65534
                let codesBound = rounding + Self.sumBound(terms: dimension + 1, magnitude: codesMagnitude)
                #expect(abs(Double(fast[row]) - plainCodes) <= codesBound, "level \(level) int8 row \(row): \(fast[row]) against \(plainCodes)")
                // Halves convert exactly: only the float sum's order differs.
                #expect(abs(Double(fastHalves[row]) - plainHalves) <= Self.sumBound(terms: dimension, magnitude: halvesMagnitude),
                        "level \(level) float16 row \(row): \(fastHalves[row]) against \(plainHalves)")
            }
        }
    }

    /// The batched search's float32 kernel, every body this processor runs: every query's
    /// products with every row, written to its own run of the output and nowhere else, for
    /// whole 6-row groups and short ones, 32- and 16-query blocks (the 16-lane body), 8-query
    /// blocks and partial ones, against the plain sum in double.
    @Test(arguments: [(1, 1, 1), (6, 16, 64), (7, 9, 3), (13, 24, 5), (100, 33, 64), (5, 8, 17), (8, 45, 19), (19, 64, 7)])
    func theBatchedProductKernelGivesThePlainProducts(shape: (rows: Int, count: Int, dimension: Int)) {
        let (rows, count, dimension) = shape
        let x = (0..<(rows * dimension)).map { Float(($0 * 29) % 23) / 7 - 1.5 }
        let queries = (0..<(count * dimension)).map { Float(($0 * 13) % 17) / 5 - 1.7 }
        let padded = (count + 7) / 8 * 8
        var transposed = [Float](repeating: 0, count: dimension * padded)
        for q in 0..<count { for d in 0..<dimension { transposed[d * padded + q] = queries[q * dimension + d] } }
        let ldo = rows + 3  // a gap after each query's run, which must stay untouched
        for level in Self.runnableLevels {
            var out = [Float](repeating: .nan, count: count * ldo)
            #expect(doppel_products_f32_at(level, x, rows, dimension, transposed, count, &out, ldo) == 0)
            for q in 0..<count {
                for r in 0..<rows {
                    let terms = (0..<dimension).map { Double(x[r * dimension + $0]) * Double(queries[q * dimension + $0]) }
                    let plain = terms.reduce(0, +), bound = Self.sumBound(terms: dimension, magnitude: terms.map(abs).reduce(0, +))
                    #expect(abs(Double(out[q * ldo + r]) - plain) <= bound, "level \(level) query \(q) row \(r): \(out[q * ldo + r]) against \(plain)")
                }
                for gap in rows..<ldo { #expect(out[q * ldo + gap].isNaN, "level \(level) query \(q) wrote past its run") }
            }
        }
    }
}

/// Index snapshots: read back equal, refused when stale, damaged, truncated or made for
/// another model or shape.
@Suite struct SnapshotTests {
    static func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("doppel-snapshot-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test(arguments: [IndexPrecision.float32, .float16, .int8])
    func snapshotsReadBackEqualAndStaleOrDamagedOnesAreRefused(precision: IndexPrecision) throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let d = 16
        let rows = GalleryIndexTests.randomRows(count: 900, dimension: d, identities: 120, seed: 2)
        let indexes = ["default": CompactIndexTests.index(Array(rows.prefix(600)), dimension: d, metric: .cosine, precision: precision),
                       "other": CompactIndexTests.index(Array(rows.suffix(300)), dimension: d, metric: .cosine, precision: precision)]
        indexes["default"]!.remove(sample: rows[3].sample)  // a freed row and the last one moved into it
        let stamp = IndexStamp(rows: 899, sampleSum: 12345, changes: 901)
        let path = folder.appendingPathComponent("g.index").path
        try GalleryIndex.writeSnapshot(indexes, model: "m1", stamp: stamp, to: path)
        let read = try GalleryIndex.readSnapshot(path: path, model: "m1", stamp: stamp, dimension: d, metric: .cosine, precision: precision).get()
        #expect(Set(read.keys) == ["default", "other"])
        for (name, index) in indexes {
            let copy = try #require(read[name])
            #expect(copy.count == index.count && copy.identityCount == index.identityCount && copy.bytes == index.bytes)
            for row in rows.prefix(20) {
                #expect(copy.search(row.vector, k: 7) == index.search(row.vector, k: 7))
                // Centroid sums are recomputed on load rather than carried add by add and
                // remove by remove: equal to rounding (`centroidBound`).
                let (a, b) = (copy.search(row.vector, k: 3, aggregation: .centroid), index.search(row.vector, k: 3, aggregation: .centroid))
                #expect(a.map(\.identity) == b.map(\.identity))
                #expect(zip(a, b).allSatisfy { abs($0.distance - $1.distance) <= CompactIndexTests.centroidBound(name == "default" ? Array(rows.prefix(600)) : Array(rows.suffix(300)), dimension: d, metric: .cosine) })
            }
        }
        // Refused, with the reason: stale, another model or precision, a changed byte, cut short, absent.
        func rejection(_ path: String, stamp: IndexStamp = stamp, model: String = "m1", precision: IndexPrecision = precision) -> SnapshotRejection? {
            if case .failure(let reason) = GalleryIndex.readSnapshot(path: path, model: model, stamp: stamp, dimension: d, metric: .cosine, precision: precision) { return reason }
            return nil
        }
        #expect(rejection(path, stamp: IndexStamp(rows: 900, sampleSum: 12345, changes: 902)) == .stale(found: stamp, expected: IndexStamp(rows: 900, sampleSum: 12345, changes: 902)))
        if case .mismatch = rejection(path, model: "m2") {} else { Issue.record("another model's snapshot was not refused") }
        let other: IndexPrecision = precision == .int8 ? .float32 : .int8
        if case .mismatch = rejection(path, precision: other) {} else { Issue.record("another precision's snapshot was not refused") }
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 40] ^= 0x10
        let flipped = folder.appendingPathComponent("flipped.index").path
        try Data(bytes).write(to: URL(fileURLWithPath: flipped))
        if case .damaged = rejection(flipped) {} else { Issue.record("a changed byte was not noticed") }
        let truncated = folder.appendingPathComponent("truncated.index").path
        try Data(bytes.prefix(bytes.count / 2)).write(to: URL(fileURLWithPath: truncated))
        if case .damaged = rejection(truncated) {} else { Issue.record("a truncated snapshot was not refused") }
        #expect(rejection(folder.appendingPathComponent("absent").path) == .missing)
    }

    @Test func centroidSearchWithoutTrackedSumsMatchesTracked() {
        let d = 8
        let rows = GalleryIndexTests.randomRows(count: 300, dimension: d, identities: 40, seed: 4)
        let tracked = GalleryIndex(dimension: d, metric: .euclidean), untracked = GalleryIndex(dimension: d, metric: .euclidean, tracksCentroids: false)
        for row in rows {
            tracked.add(sample: row.sample, identity: row.identity, vector: row.vector)
            untracked.add(sample: row.sample, identity: row.identity, vector: row.vector)
        }
        for row in rows.prefix(10) {
            let a = tracked.search(row.vector, k: 5, aggregation: .centroid), b = untracked.search(row.vector, k: 5, aggregation: .centroid)
            #expect(a.map(\.identity) == b.map(\.identity))
            #expect(zip(a, b).allSatisfy { abs($0.distance - $1.distance) <= CompactIndexTests.centroidBound(rows, dimension: d, metric: .euclidean) })
        }
    }
}
