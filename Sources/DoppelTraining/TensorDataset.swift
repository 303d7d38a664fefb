// SPDX-License-Identifier: MIT
import Dispatch
import DoppelImaging

/// A dataset preprocessed once into one contiguous `[count, C, H, W]` Float buffer by a
/// model's `InputSpec`, with identities and per-identity sample lists: what training and
/// evaluation read, so no image is decoded or resized twice.
public struct TensorDataset: Sendable {
    public let spec: InputSpec
    public let values: [Float]
    public let identities: [Int]
    public let identityNames: [String]
    /// Sample indices of each identity.
    public let samplesByIdentity: [[Int]]
    public let origins: [String]

    public var count: Int { identities.count }
    public var elementCount: Int { spec.elementCount }

    public init(_ dataset: Dataset, spec: InputSpec) {
        self.spec = spec
        let n = dataset.samples.count, size = spec.elementCount
        var values = [Float](repeating: 0, count: n * size)
        values.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let base = buffer.baseAddress!
            let samples = dataset.samples
            // Resizing thousands of images is the slow part of loading: spread it over the cores.
            DispatchQueue.concurrentPerform(iterations: n) { i in
                spec.write(samples[i].image, into: UnsafeMutableBufferPointer(start: base + i * size, count: size))
            }
        }
        self.values = values
        identities = dataset.samples.map(\.identity)
        identityNames = dataset.identities
        samplesByIdentity = dataset.samplesByIdentity()
        origins = dataset.samples.map(\.origin)
    }

    /// Copies samples `indices` into `destination` back to back.
    public func gather(_ indices: [Int], into destination: UnsafeMutablePointer<Float>) {
        values.withUnsafeBufferPointer { source in
            for (slot, index) in indices.enumerated() {
                (destination + slot * elementCount).update(from: source.baseAddress! + index * elementCount, count: elementCount)
            }
        }
    }
}
