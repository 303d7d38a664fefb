// SPDX-License-Identifier: MIT
import DoppelNN
import Foundation

/// Whitening of embeddings (ZCA), fitted on the training identities once training is done: a
/// network trained on a few dozen identities spends most of its embedding's spread on a few
/// directions (the ones that told those identities apart), so distances between people it
/// never saw are dominated by them. Dividing each principal direction by its spread, with a
/// floor of `strength` x the largest variance so directions holding only noise are not blown
/// up, lets every direction count. Applied as a layer appended to the network (dense then
/// l2norm), so every path that embeds gets it without knowing.
public enum Whitening {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The mean and the symmetric whitening matrix `V (L + strength * max(L))^(-1/2) V^T` of
    /// `count` embeddings of `dimension` values laid out one after another.
    public static func fit(_ embeddings: [Float], count: Int, dimension d: Int, strength: Float) -> (mean: [Float], matrix: [Float]) {
        precondition(count >= 2 && embeddings.count == count * d && strength > 0)
        var mean = [Double](repeating: 0, count: d)
        for n in 0..<count { for i in 0..<d { mean[i] += Double(embeddings[n * d + i]) } }
        for i in 0..<d { mean[i] /= Double(count) }
        var covariance = [Double](repeating: 0, count: d * d)
        for n in 0..<count {
            for i in 0..<d {
                let a = Double(embeddings[n * d + i]) - mean[i]
                for j in i..<d { covariance[i * d + j] += a * (Double(embeddings[n * d + j]) - mean[j]) }
            }
        }
        for i in 0..<d {
            for j in i..<d {
                covariance[i * d + j] /= Double(count - 1)
                covariance[j * d + i] = covariance[i * d + j]
            }
        }
        let (values, vectors) = symmetricEigen(covariance, dimension: d)
        let floor = Double(strength) * max(values.max() ?? 0, 1e-12)
        let scales = values.map { 1 / (max($0, 0) + floor).squareRoot() }
        var matrix = [Float](repeating: 0, count: d * d)
        for i in 0..<d {
            for j in 0..<d {
                var sum = 0.0
                for k in 0..<d { sum += vectors[i * d + k] * scales[k] * vectors[j * d + k] }
                matrix[i * d + j] = Float(sum)
            }
        }
        return (mean.map(Float.init), matrix)
    }

    /// Eigenvalues and eigenvectors (column k of the row-major result is the k-th) of the
    /// symmetric `d x d` matrix `a`, by cyclic Jacobi rotations: exact to double precision
    /// for the sizes of embeddings (128: 65 ms), and no LAPACK needed.
    static func symmetricEigen(_ a: [Double], dimension d: Int) -> (values: [Double], vectors: [Double]) {
        var a = a
        var v = [Double](repeating: 0, count: d * d)
        for i in 0..<d { v[i * d + i] = 1 }
        for _ in 0..<100 {
            var off = 0.0, total = 0.0
            for i in 0..<d {
                for j in 0..<d { total += a[i * d + j] * a[i * d + j]; if i != j { off += a[i * d + j] * a[i * d + j] } }
            }
            if off <= 1e-24 * max(total, 1e-300) { break }
            for p in 0..<(d - 1) {
                for q in (p + 1)..<d where a[p * d + q] != 0 {
                    // The rotation in the (p, q) plane that zeroes a[p][q].
                    let theta = (a[q * d + q] - a[p * d + p]) / (2 * a[p * d + q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<d {
                        let akp = a[k * d + p], akq = a[k * d + q]
                        a[k * d + p] = c * akp - s * akq
                        a[k * d + q] = s * akp + c * akq
                    }
                    for k in 0..<d {
                        let apk = a[p * d + k], aqk = a[q * d + k]
                        a[p * d + k] = c * apk - s * aqk
                        a[q * d + k] = s * apk + c * aqk
                    }
                    for k in 0..<d {
                        let vkp = v[k * d + p], vkq = v[k * d + q]
                        v[k * d + p] = c * vkp - s * vkq
                        v[k * d + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        return ((0..<d).map { a[$0 * d + $0] }, v)
    }

    /// `network` followed by the whitening of its embeddings (`mean`, `matrix` from `fit`):
    /// dense(d) with weights `matrix` and bias `-matrix * mean`, then l2norm. Needs a network
    /// ending in l2norm (its distances are between unit vectors, and stay so).
    public static func appended(to network: Network, mean: [Float], matrix: [Float], seed: UInt64) throws -> Network {
        let d = network.outputShape.count
        guard network.architecture.endsInL2Normalize else {
            throw Failure(description: "whitening needs a network ending in l2norm; \(network.architecture) does not")
        }
        let architecture = try Architecture(parsing: network.architecture.description + " dense(\(d)) l2norm")
        let whitened = try Network(architecture: architecture, input: network.inputShape, seed: seed)
        var tensors = Dictionary(uniqueKeysWithValues: network.namedTensors().map { ($0.name, $0.values) })
        let added = whitened.tensorSpecs.filter { tensors[$0.name] == nil }
        guard added.count == 2, let weight = added.first(where: { $0.shape == [d, d] }), let bias = added.first(where: { $0.shape == [d] }) else {
            throw Failure(description: "whitening: unexpected tensors in the appended layer: \(added.map(\.name))")
        }
        tensors[weight.name] = matrix
        tensors[bias.name] = (0..<d).map { i in -(0..<d).reduce(Float(0)) { $0 + matrix[i * d + $1] * mean[$1] } }
        try whitened.load(tensors: tensors)
        return whitened
    }
}
