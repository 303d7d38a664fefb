// SPDX-License-Identifier: MIT

/// Counts that tell a user what a dataset holds: identities, images per identity and image
/// shapes. What `doppel dataset inspect` prints.
public struct DatasetSummary: Codable, Sendable, Equatable {
    public struct Shape: Codable, Sendable, Equatable {
        public let shape: String
        public let count: Int
    }

    public let source: String
    public let identities: Int
    public let images: Int
    public let minPerIdentity: Int
    public let medianPerIdentity: Double
    public let maxPerIdentity: Int
    /// Distinct `WxH layout` shapes, most common first.
    public let shapes: [Shape]
    public let skippedHidden: Int
    public let skippedNotImages: Int
    public let skippedUndecodable: Int

    public init(_ dataset: Dataset) {
        let perIdentity = dataset.samplesByIdentity().map(\.count).sorted()
        source = dataset.source
        identities = dataset.identities.count
        images = dataset.samples.count
        minPerIdentity = perIdentity.first ?? 0
        maxPerIdentity = perIdentity.last ?? 0
        if perIdentity.isEmpty {
            medianPerIdentity = 0
        } else if perIdentity.count % 2 == 1 {
            medianPerIdentity = Double(perIdentity[perIdentity.count / 2])
        } else {
            medianPerIdentity = Double(perIdentity[perIdentity.count / 2 - 1] + perIdentity[perIdentity.count / 2]) / 2
        }
        var counts = [String: Int]()
        for sample in dataset.samples { counts[sample.image.shapeDescription, default: 0] += 1 }
        shapes = counts.map { Shape(shape: $0.key, count: $0.value) }.sorted { ($0.count, $1.shape) > ($1.count, $0.shape) }
        skippedHidden = dataset.skipped.hidden
        skippedNotImages = dataset.skipped.notImages
        skippedUndecodable = dataset.skipped.undecodable
    }
}
