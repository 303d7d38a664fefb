// SPDX-License-Identifier: MIT
import DoppelModel
import DoppelNN

/// How an identity enrolled with several images is scored against a query, as the server's
/// `threshold.aggregation` does: its nearest image, the mean of its m nearest, or the
/// distance to the mean of its embeddings.
public enum EnrollmentAggregation: Codable, Sendable, Equatable, CustomStringConvertible {
    case best
    case meanOfBest(Int)
    case centroid

    /// `best`, `mean-of-best:M` or `centroid` (the configuration's spelling).
    public init?(_ text: String) {
        switch text {
        case "best": self = .best
        case "centroid": self = .centroid
        default:
            guard text.hasPrefix("mean-of-best:"), let m = Int(text.dropFirst("mean-of-best:".count)), m >= 1 else { return nil }
            self = .meanOfBest(m)
        }
    }

    public var description: String {
        switch self {
        case .best: "best"
        case .meanOfBest(let m): "mean-of-best:\(m)"
        case .centroid: "centroid"
        }
    }
}

/// Closed-set identification: queries ranked against enrolled identities, and N-way K-shot
/// episodes.
public struct IdentificationMetrics: Codable, Sendable, Equatable {
    public let enrolledPerIdentity: Int
    public let queries: Int
    public let rank1: Double
    public let rank5: Double
    /// How several enrolled images were scored (absent: best, in reports from before it).
    public var aggregation: String?
    /// Random choices of the enrolled images the figures are the mean of (`queries` is per
    /// choice), and the standard error of that mean (absent: one choice, in reports from
    /// before it).
    public var draws: Int?
    public var rank1StandardError: Double?
}

public struct OneShotMetrics: Codable, Sendable, Equatable {
    public let ways: Int
    public let shots: Int
    public let episodes: Int
    /// True when all candidates of an episode came from one group (Omniglot's alphabet).
    public let withinGroup: Bool
    public let accuracy: Double
}

extension EmbeddingModel {
    /// Distances from each query row to each gallery row.
    func distanceMatrix(_ embeddings: [Float], queries: [Int], gallery: [Int]) -> [Float] {
        if head != nil { return distances(embeddings, pairs: queries.flatMap { q in gallery.map { (q, $0) } }) }
        let pick = { (rows: [Int]) -> [Float] in rows.flatMap { Array(embeddings[($0 * self.dimension)..<(($0 + 1) * self.dimension)]) } }
        let q = pick(queries), g = pick(gallery)
        return PairwiseDistances.compute(queries: q, queryCount: queries.count, gallery: g, galleryCount: gallery.count,
                                         dimension: dimension, metric: metric)
    }

    /// Rank-1 and rank-5: each query's identities ordered by their enrolled samples' distances,
    /// folded by `aggregation`. `queryIdentity` is indexed by sample (as `queries` holds sample
    /// indices); `galleryIdentity[j]` names the identity of `gallery[j]`.
    public func identification(_ embeddings: [Float], queries: [Int], queryIdentity: [Int], gallery: [Int], galleryIdentity: [Int],
                               enrolledPerIdentity: Int, aggregation: EnrollmentAggregation = .best) -> IdentificationMetrics {
        let identityCount = (galleryIdentity.max() ?? -1) + 1
        if aggregation == .centroid {
            // One row per identity: the mean of its enrolled embeddings.
            var centroids = [Float](repeating: 0, count: identityCount * dimension), counts = [Int](repeating: 0, count: identityCount)
            for (j, row) in gallery.enumerated() {
                counts[galleryIdentity[j]] += 1
                for k in 0..<dimension { centroids[galleryIdentity[j] * dimension + k] += embeddings[row * dimension + k] }
            }
            for id in 0..<identityCount where counts[id] > 0 { for k in 0..<dimension { centroids[id * dimension + k] /= Float(counts[id]) } }
            let base = embeddings.count / dimension
            var result = identification(embeddings + centroids, queries: queries, queryIdentity: queryIdentity,
                                        gallery: Array(base..<(base + identityCount)), galleryIdentity: Array(0..<identityCount),
                                        enrolledPerIdentity: enrolledPerIdentity)
            result.aggregation = aggregation.description
            return result
        }
        var hits1 = 0, hits5 = 0
        // Tiles of queries keep the distance matrix small for large galleries.
        let tile = max(1, 4_000_000 / max(1, gallery.count))
        var start = 0
        var perIdentity = [[Float]](repeating: [], count: identityCount)
        while start < queries.count {
            let end = min(queries.count, start + tile)
            let d = distanceMatrix(embeddings, queries: Array(queries[start..<end]), gallery: gallery)
            for (row, position) in (start..<end).enumerated() {
                let identity = queryIdentity[queries[position]]
                var best = [Float](repeating: .infinity, count: identityCount)
                switch aggregation {
                case .best, .centroid:  // centroid: one row per identity (above)
                    for j in gallery.indices { best[galleryIdentity[j]] = min(best[galleryIdentity[j]], d[row * gallery.count + j]) }
                case .meanOfBest(let m):
                    for id in perIdentity.indices { perIdentity[id].removeAll(keepingCapacity: true) }
                    for j in gallery.indices { perIdentity[galleryIdentity[j]].append(d[row * gallery.count + j]) }
                    for (id, distances) in perIdentity.enumerated() where !distances.isEmpty {
                        let nearest = distances.sorted().prefix(m)
                        best[id] = nearest.reduce(0, +) / Float(nearest.count)
                    }
                }
                let truth = best[identity]
                let closer = best.enumerated().filter { $0.offset != identity && $0.element < truth }.count
                if closer == 0 { hits1 += 1 }
                if closer < 5 { hits5 += 1 }
            }
            start = end
        }
        let n = Double(max(1, queries.count))
        return IdentificationMetrics(enrolledPerIdentity: enrolledPerIdentity, queries: queries.count,
                                     rank1: Double(hits1) / n, rank5: Double(hits5) / n, aggregation: aggregation.description)
    }

    /// Enrolls the first `perIdentity` samples of each identity (after a seeded shuffle) and
    /// queries with the rest; with `draws` above 1, again for that many shuffles, giving the
    /// mean and its standard error. Which photo is enrolled moves rank-1 a lot on a small set
    /// (ORL's 10 held-out people, 90 queries: one choice is worth +-3 points), so the mean over
    /// many choices is the figure to compare recipes by.
    public func identification(_ data: TensorDataset, embeddings: [Float], perIdentity: Int, seed: UInt64,
                               aggregation: EnrollmentAggregation = .best, draws: Int = 1) -> IdentificationMetrics {
        var generator = SeededGenerator(seed: seed)
        var results = [IdentificationMetrics]()
        for _ in 0..<max(1, draws) {
            var gallery = [Int](), galleryIdentity = [Int](), queries = [Int]()
            for (identity, members) in data.samplesByIdentity.enumerated() where members.count > perIdentity {
                var shuffled = members
                shuffled.shuffle(using: &generator)
                gallery += shuffled.prefix(perIdentity)
                galleryIdentity += Array(repeating: identity, count: perIdentity)
                queries += shuffled.dropFirst(perIdentity)
            }
            results.append(identification(embeddings, queries: queries, queryIdentity: data.identities, gallery: gallery,
                                          galleryIdentity: galleryIdentity, enrolledPerIdentity: perIdentity, aggregation: aggregation))
        }
        guard results.count > 1 else { return results[0] }
        let n = Double(results.count)
        let rank1 = results.reduce(0) { $0 + $1.rank1 } / n, rank5 = results.reduce(0) { $0 + $1.rank5 } / n
        let variance = results.reduce(0) { $0 + ($1.rank1 - rank1) * ($1.rank1 - rank1) } / (n - 1)
        return IdentificationMetrics(enrolledPerIdentity: perIdentity, queries: results[0].queries, rank1: rank1, rank5: rank5,
                                     aggregation: aggregation.description, draws: results.count, rank1StandardError: (variance / n).squareRoot())
    }

    /// N-way K-shot accuracy over `episodes` seeded episodes. With `group`, all candidates of an
    /// episode share a group (identity name -> group, e.g. the alphabet of `Greek/character01`).
    public func oneShot(_ data: TensorDataset, embeddings: [Float], ways: Int, shots: Int, episodes: Int, seed: UInt64,
                        group: ((String) -> String)? = nil) -> OneShotMetrics? {
        var generator = SeededGenerator(seed: seed)
        var pools: [[Int]] = [Array(data.identityNames.indices)]
        if let group {
            var byGroup = [String: [Int]]()
            for (index, name) in data.identityNames.enumerated() { byGroup[group(name), default: []].append(index) }
            pools = byGroup.keys.sorted().map { byGroup[$0]! }.filter { $0.count >= ways }
        }
        guard !pools.isEmpty else { return nil }
        var correct = 0, run = 0
        embeddings.withUnsafeBufferPointer { e in
            for _ in 0..<episodes {
                let pool = pools[Int(generator.next() % UInt64(pools.count))]
                guard let episode = Samplers.episode(data.samplesByIdentity, ways: ways, shots: shots, candidates: pool, using: &generator) else { continue }
                run += 1
                // The identity with the nearest support wins.
                var bestSlot = -1, bestDistance = Float.infinity
                for (slot, supports) in episode.supports.enumerated() {
                    for s in supports {
                        let d = distance(e.baseAddress!, episode.query, s)
                        if d < bestDistance { (bestDistance, bestSlot) = (d, slot) }
                    }
                }
                if bestSlot == episode.answer { correct += 1 }
            }
        }
        guard run > 0 else { return nil }
        return OneShotMetrics(ways: ways, shots: shots, episodes: run, withinGroup: group != nil, accuracy: Double(correct) / Double(run))
    }

    /// Distances of seeded balanced pairs (`count / 2` of each kind) among `data`'s samples.
    public func pairDistances(_ data: TensorDataset, embeddings: [Float], count: Int, seed: UInt64) -> (same: [Float], different: [Float]) {
        var generator = SeededGenerator(seed: seed)
        let pairs = Samplers.balancedPairs(data.samplesByIdentity, count: count, using: &generator)
        let d = distances(embeddings, pairs: Array(zip(pairs.left, pairs.right)))
        var same = [Float](), different = [Float]()
        for (i, label) in pairs.labels.enumerated() {
            if label == PairLabel.same { same.append(d[i]) } else { different.append(d[i]) }
        }
        return (same, different)
    }
}
