// SPDX-License-Identifier: MIT
import Foundation

extension GalleryIndex {
    /// Every gallery's index under `model`, read from the store at start-up. Two threads: one
    /// steps SQLite through the embeddings and hands over chunks of rows, the caller's thread
    /// builds the indexes from them, so reading and indexing overlap on two cores (1 M x 128:
    /// 2.1-2.6 s one after the other). The indexes are not shared until returned, so no lock
    /// is taken per row.
    public static func load(from store: GalleryStore, model: String, dimension: Int, metric: IndexMetric,
                            chunkRows: Int = 8192) throws(GalleryError) -> [String: GalleryIndex] {
        store.prefetch()
        let names = try store.identityNames()
        let pipe = ChunkPipe(capacity: 4)
        // The store is used by the reader alone until the pipe closes.
        nonisolated(unsafe) let store = store
        let reader = Thread {
            do throws(GalleryError) {
                try store.forEachEmbeddingChunk(model: model, dimension: dimension, rows: chunkRows) { pipe.put($0) }
            } catch {
                pipe.fail(error)
            }
            pipe.close()
        }
        reader.start()
        var indexes = [String: GalleryIndex]()
        // Per identity row id: its index and its name, one String instance for all its samples.
        var resolved = [Int64: (index: GalleryIndex, name: String)]()
        while let chunk = pipe.take() {
            chunk.vectors.withUnsafeBufferPointer { vectors in
                for row in 0..<chunk.count {
                    let identity = chunk.identities[row]
                    let target: (index: GalleryIndex, name: String)
                    if let known = resolved[identity] {
                        target = known
                    } else {
                        // A sample whose identity row is gone cannot be: the schema cascades deletes.
                        let (gallery, name) = names[identity] ?? ("", "")
                        let index = indexes[gallery] ?? GalleryIndex(dimension: dimension, metric: metric)
                        indexes[gallery] = index
                        target = (index, name)
                        resolved[identity] = target
                    }
                    target.index.insert(sample: chunk.samples[row], identity: target.name,
                                        vector: UnsafeBufferPointer(rebasing: vectors[(row * dimension)..<((row + 1) * dimension)]), replacing: false)
                }
            }
        }
        if let error = pipe.failure { throw error }
        return indexes
    }
}

/// A bounded hand-over of chunks from the reading thread to the indexing one; `take` returns
/// nil once the reader has closed it and every chunk is taken.
private final class ChunkPipe: @unchecked Sendable {
    private let condition = NSCondition()
    private var chunks: [EmbeddingChunk] = []
    private var closed = false
    private let capacity: Int
    private(set) var failure: GalleryError?

    init(capacity: Int) { self.capacity = capacity }

    func put(_ chunk: EmbeddingChunk) {
        condition.withLock {
            while chunks.count >= capacity { condition.wait() }
            chunks.append(chunk)
            condition.broadcast()
        }
    }

    func take() -> EmbeddingChunk? {
        condition.withLock {
            while chunks.isEmpty && !closed { condition.wait() }
            guard !chunks.isEmpty else { return nil }
            condition.broadcast()
            return chunks.removeFirst()
        }
    }

    func fail(_ error: GalleryError) { condition.withLock { failure = error } }

    func close() {
        condition.withLock {
            closed = true
            condition.broadcast()
        }
    }
}
