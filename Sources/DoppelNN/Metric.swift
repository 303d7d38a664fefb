// SPDX-License-Identifier: MIT

/// Distance between two embeddings. Smaller is more alike for both.
public enum Metric: String, Codable, Sendable, CaseIterable {
    /// |a - b|
    case euclidean
    /// 1 - a.b / (|a| |b|), in [0, 2]
    case cosine

    /// Below this norm a vector has no direction; gradients through it are taken as zero.
    static let tiny: Float = 1e-12

    public func distance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, dimension: Int) -> Float {
        switch self {
        case .euclidean:
            var sum: Float = 0
            for i in 0..<dimension {
                let d = a[i] - b[i]
                sum += d * d
            }
            return sum.squareRoot()
        case .cosine:
            let (dot, aa, bb) = Self.products(a, b, dimension: dimension)
            let norms = (aa * bb).squareRoot()
            return norms > Self.tiny ? 1 - dot / norms : 1
        }
    }

    public func distance(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { distance(pa.baseAddress!, $0.baseAddress!, dimension: a.count) } }
    }

    /// Every distance between the `count` rows of `embeddings`, `[count, count]` symmetric,
    /// pair by pair (exact, unlike the GEMM expansion of `PairwiseDistances`: a loss's
    /// gradient goes through these values). A training batch is hundreds of rows, small next
    /// to the network's forward and backward.
    func pairwiseDistances(_ embeddings: UnsafePointer<Float>, count: Int, dimension: Int) -> [Float] {
        var distances = [Float](repeating: 0, count: count * count)
        for i in 0..<count {
            for j in (i + 1)..<max(count, i + 1) {
                let d = distance(embeddings + i * dimension, embeddings + j * dimension, dimension: dimension)
                distances[i * count + j] = d
                distances[j * count + i] = d
            }
        }
        return distances
    }

    /// a.b, a.a and b.b in one pass.
    private static func products(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, dimension: Int) -> (Float, Float, Float) {
        var dot: Float = 0, aa: Float = 0, bb: Float = 0
        for i in 0..<dimension {
            dot += a[i] * b[i]
            aa += a[i] * a[i]
            bb += b[i] * b[i]
        }
        return (dot, aa, bb)
    }

    /// Adds `scale * d(distance)/da` to `dA` and `scale * d(distance)/db` to `dB`.
    /// Euclidean: dd/da = (a - b) / d.  Cosine: dd/da = -(b / (|a||b|) - (a.b) a / (|a|^3 |b|)).
    func accumulateGradient(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, dimension: Int, scale: Float,
                            dA: UnsafeMutablePointer<Float>, dB: UnsafeMutablePointer<Float>) {
        switch self {
        case .euclidean:
            let d = distance(a, b, dimension: dimension)
            guard d > Self.tiny else { return }
            let s = scale / d
            for i in 0..<dimension {
                let g = s * (a[i] - b[i])
                dA[i] += g
                dB[i] -= g
            }
        case .cosine:
            let (dot, aa, bb) = Self.products(a, b, dimension: dimension)
            let na = aa.squareRoot(), nb = bb.squareRoot()
            guard na > Self.tiny, nb > Self.tiny else { return }
            let inv = 1 / (na * nb)
            for i in 0..<dimension {
                dA[i] -= scale * (b[i] * inv - dot * a[i] * inv / aa)
                dB[i] -= scale * (a[i] * inv - dot * b[i] * inv / bb)
            }
        }
    }
}
