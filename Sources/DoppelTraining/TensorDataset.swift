// SPDX-License-Identifier: MIT
import Dispatch
import DoppelImaging
import DoppelModel

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

    /// Images of the dataset the model's face stage found no face in (their origins); they
    /// are left out of `values`. Empty without a face stage.
    public let withoutFace: [String]

    public init(_ dataset: Dataset, spec: InputSpec) {
        self.init(dataset, input: ModelInput(spec: spec, faceStage: nil))
    }

    /// The dataset through a model's input path (`ModelInput`): with a face stage, each image's
    /// largest face, and images without one left out.
    public init(_ dataset: Dataset, input: ModelInput) {
        let spec = input.spec
        self.spec = spec
        let n = dataset.samples.count, size = spec.elementCount
        var values = [Float](repeating: 0, count: n * size)
        var found = [Bool](repeating: true, count: n)
        values.withUnsafeMutableBufferPointer { buffer in
            found.withUnsafeMutableBufferPointer { found in
                nonisolated(unsafe) let (base, found) = (buffer.baseAddress!, found.baseAddress!)
                let samples = dataset.samples
                // Resizing thousands of images is the slow part of loading: spread it over the cores.
                DispatchQueue.concurrentPerform(iterations: n) { i in
                    let destination = UnsafeMutableBufferPointer(start: base + i * size, count: size)
                    if input.faceStage == nil {
                        spec.write(samples[i].image, into: destination)
                    } else if let prepared = try? input.prepare(samples[i].image) {
                        _ = destination.update(fromContentsOf: prepared.tensor)
                    } else {
                        found[i] = false
                    }
                }
            }
        }
        let kept = (0..<n).filter { found[$0] }
        if kept.count < n {
            values = kept.flatMap { values[($0 * size)..<(($0 + 1) * size)] }
        }
        self.values = values
        identities = kept.map { dataset.samples[$0].identity }
        identityNames = dataset.identities
        var byIdentity = [[Int]](repeating: [], count: dataset.identities.count)
        for (slot, index) in kept.enumerated() { byIdentity[dataset.samples[index].identity].append(slot) }
        samplesByIdentity = byIdentity
        origins = kept.map { dataset.samples[$0].origin }
        withoutFace = (0..<n).filter { !found[$0] }.map { dataset.samples[$0].origin }
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
