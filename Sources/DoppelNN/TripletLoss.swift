// SPDX-License-Identifier: MIT

/// Triplet loss (Schroff et al. 2015, FaceNet) over a batch of labelled embeddings:
/// for a triplet (anchor, positive of the same identity, negative of another),
/// l = max(0, d(a, p) - d(a, n) + margin). Which triplets count is the mining strategy.
public struct TripletLoss: Sendable, Equatable {
    public enum Mining: String, Codable, Sendable, CaseIterable {
        /// Every valid triplet; the loss is the mean over those with l > 0 (Hermans et al. 2017).
        case batchAll = "batch-all"
        /// Per anchor, its farthest positive and nearest negative; mean over anchors.
        case batchHard = "batch-hard"
        /// Per (anchor, positive) pair, the nearest negative farther than the positive
        /// (FaceNet's semi-hard), else the farthest negative; mean over pairs.
        case semiHard = "semi-hard"
    }

    public var margin: Float
    public var metric: Metric
    public var mining: Mining

    public init(margin: Float = 0.2, metric: Metric = .euclidean, mining: Mining = .semiHard) {
        self.margin = margin
        self.metric = metric
        self.mining = mining
    }

    /// `embeddings`: `[N, D]`; `identities[i]`: the identity of row i. Writes dL/dembeddings
    /// into `gradient` and returns the loss and the number of triplets with l > 0.
    public func lossAndGradient(embeddings: UnsafePointer<Float>, count: Int, dimension: Int, identities: [Int],
                                gradient: UnsafeMutablePointer<Float>) -> (loss: Float, activeTriplets: Int) {
        precondition(identities.count == count)
        gradient.update(repeating: 0, count: count * dimension)
        let distances = metric.pairwiseDistances(embeddings, count: count, dimension: dimension)
        // dL/dd for each ordered pair, accumulated as triplets are chosen.
        var coefficient = [Float](repeating: 0, count: count * count)
        var total: Double = 0
        var active = 0
        var terms = 0

        func add(anchor a: Int, positive p: Int, negative n: Int) {
            let l = distances[a * count + p] - distances[a * count + n] + margin
            terms += 1
            guard l > 0 else { return }
            total += Double(l)
            active += 1
            coefficient[a * count + p] += 1
            coefficient[a * count + n] -= 1
        }

        switch mining {
        case .batchAll:
            for a in 0..<count {
                for p in 0..<count where p != a && identities[p] == identities[a] {
                    for n in 0..<count where identities[n] != identities[a] { add(anchor: a, positive: p, negative: n) }
                }
            }
            terms = active  // the mean is over the triplets that still violate the margin
        case .batchHard:
            for a in 0..<count {
                var hardestPositive = -1, hardestNegative = -1
                for j in 0..<count where j != a {
                    let d = distances[a * count + j]
                    if identities[j] == identities[a] {
                        if hardestPositive < 0 || d > distances[a * count + hardestPositive] { hardestPositive = j }
                    } else if hardestNegative < 0 || d < distances[a * count + hardestNegative] {
                        hardestNegative = j
                    }
                }
                if hardestPositive >= 0, hardestNegative >= 0 { add(anchor: a, positive: hardestPositive, negative: hardestNegative) }
            }
        case .semiHard:
            for a in 0..<count {
                for p in 0..<count where p != a && identities[p] == identities[a] {
                    let dap = distances[a * count + p]
                    var semiHard = -1, farthest = -1
                    for n in 0..<count where identities[n] != identities[a] {
                        let dan = distances[a * count + n]
                        if dan > dap, semiHard < 0 || dan < distances[a * count + semiHard] { semiHard = n }
                        if farthest < 0 || dan > distances[a * count + farthest] { farthest = n }
                    }
                    let negative = semiHard >= 0 ? semiHard : farthest
                    if negative >= 0 { add(anchor: a, positive: p, negative: negative) }
                }
            }
        }

        guard terms > 0, active > 0 else { return (0, 0) }
        let scale = 1 / Float(terms)
        for i in 0..<count {
            for j in 0..<count where coefficient[i * count + j] != 0 {
                metric.accumulateGradient(embeddings + i * dimension, embeddings + j * dimension, dimension: dimension,
                                          scale: coefficient[i * count + j] * scale,
                                          dA: gradient + i * dimension, dB: gradient + j * dimension)
            }
        }
        return (Float(total / Double(terms)), active)
    }
}
