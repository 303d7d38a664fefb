// SPDX-License-Identifier: MIT
import DoppelGallery
import DoppelImaging
import DoppelModel
import Foundation

/// Embeds a gallery's stored images that have no embedding under a model: what a server does
/// when it starts on a model the gallery has not indexed, and what `doppel gallery reindex`
/// does offline. Batches of stored images, each batch one transaction, so an interrupted run
/// resumes where it stopped. A stored image that no longer decodes, or in which a face model
/// finds no face, is reported through `progress` and left without an embedding (the operator
/// can delete its sample).
public struct Reembedding {
    public let store: GalleryStore
    public let modelID: String
    public let input: ModelInput
    public let dimension: Int
    /// Embeddings of `count` prepared inputs laid out one after another, `[count, dimension]`.
    public let embed: ([Float], Int) -> [Float]
    public var batch = 256

    public init(store: GalleryStore, modelID: String, input: ModelInput, dimension: Int, embed: @escaping ([Float], Int) -> [Float]) {
        self.store = store
        self.modelID = modelID
        self.input = input
        self.dimension = dimension
        self.embed = embed
    }

    public struct Outcome: Sendable {
        /// Stored images embedded, and those reported and left without an embedding.
        public var embedded = 0, skipped = 0
    }

    public func run(progress: (String) -> Void) throws(GalleryError) -> Outcome {
        var outcome = Outcome()
        var cursor: Int64 = 0
        while true {
            let pending = try store.samplesMissingEmbedding(model: modelID, after: cursor, limit: max(1, batch))
            guard let last = pending.last else { break }
            cursor = last.sample
            var values = [Float](), prepared = [Int64]()
            for (sample, bytes) in pending {
                do {
                    // The largest face, as enrollment stored it (one face, or face=largest).
                    values += try input.prepare(try ImageDecoder.decode(bytes, limits: DecodingLimits(maxPixels: Int.max))).tensor
                    prepared.append(sample)
                } catch {
                    outcome.skipped += 1
                    progress("stored image of sample \(sample) not embedded with model \(modelID): \(error)")
                }
            }
            let vectors = embed(values, prepared.count)
            let rows = prepared.enumerated().map { i, sample in (sample: sample, vector: Array(vectors[(i * dimension)..<((i + 1) * dimension)])) }
            try store.insertEmbeddings(rows, model: modelID)
            outcome.embedded += rows.count
            progress("reindexed \(outcome.embedded) stored images with model \(modelID)")
        }
        return outcome
    }
}
