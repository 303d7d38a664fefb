// SPDX-License-Identifier: MIT
import Foundation

extension GalleryIndex {
    /// Every gallery's index under `model`, read from the store at start-up. Two threads: one
    /// steps SQLite through the embeddings and hands over chunks of rows, the caller's thread
    /// builds the indexes from them, so reading and indexing overlap on two cores (1 M x 128:
    /// 2.1-2.6 s one after the other). The indexes are not shared until returned, so no lock
    /// is taken per row.
    public static func load(from store: GalleryStore, model: String, dimension: Int, metric: IndexMetric,
                            precision: IndexPrecision = .float32, tracksCentroids: Bool = true, rerank: Rerank? = nil,
                            chunkRows: Int = 8192) throws(GalleryError) -> [String: GalleryIndex] {
        let make = { GalleryIndex(dimension: dimension, metric: metric, precision: precision, rerank: rerank, tracksCentroids: tracksCentroids) }
        store.prefetch()
        let names = try store.identityNames()
        // Every gallery's index sized once from the sample counts.
        var indexes = [String: GalleryIndex]()
        var sizes = [String: (rows: Int, identities: Int)]()
        for identity in names.values {
            sizes[identity.gallery, default: (0, 0)].rows += identity.samples
            sizes[identity.gallery, default: (0, 0)].identities += 1
        }
        for (gallery, size) in sizes {
            let index = make()
            index.reserve(rows: size.rows, identities: size.identities)
            indexes[gallery] = index
        }
        let pipe = ChunkPipe(capacity: 4, dimension: dimension, rows: chunkRows)
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
        // Per identity row id: its index and its slot there, resolved once for all its samples.
        var resolved = [Int64: (index: GalleryIndex, slot: Int32)]()
        resolved.reserveCapacity(names.count)
        // An identity's samples are usually enrolled together and so read one after another.
        var last: (identity: Int64, index: GalleryIndex, slot: Int32)?
        while var chunk = pipe.take() {
            chunk.vectors.withUnsafeBufferPointer { vectors in
                for row in 0..<chunk.count {
                    let identity = chunk.identities[row]
                    let target: (index: GalleryIndex, slot: Int32)
                    if let last, last.identity == identity {
                        target = (last.index, last.slot)
                    } else if let known = resolved[identity] {
                        target = known
                    } else {
                        // A sample whose identity row is gone cannot be: the schema cascades deletes.
                        let stored = names[identity] ?? StoredIdentity(gallery: "", id: "", samples: 0)
                        let index = indexes[stored.gallery] ?? make()
                        indexes[stored.gallery] = index
                        target = (index, index.slot(for: stored.id))
                        resolved[identity] = target
                    }
                    last = (identity, target.index, target.slot)
                    target.index.append(sample: chunk.samples[row], slot: target.slot,
                                        vector: UnsafeBufferPointer(rebasing: vectors[(row * dimension)..<((row + 1) * dimension)]))
                }
            }
            chunk.clear()
            pipe.recycle(chunk)
        }
        if let error = pipe.failure { throw error }
        // An int8 index learns its ranges from the whole gallery now that it is in.
        for index in indexes.values { index.train() }
        // A gallery whose identities have no embedding under this model holds no index.
        return indexes.filter { $0.value.count > 0 }
    }
}

/// A bounded hand-over of chunks from the reading thread to the indexing one; `take` returns
/// nil once the reader has closed it and every chunk is taken. Emptied chunks go back to the
/// reader, so the whole load reuses a handful of buffers.
private final class ChunkPipe: @unchecked Sendable {
    private let condition = NSCondition()
    private var chunks: [EmbeddingChunk] = []
    private var spare: [EmbeddingChunk] = []
    private var closed = false
    private let capacity: Int
    private let dimension: Int
    private let rows: Int
    private(set) var failure: GalleryError?

    init(capacity: Int, dimension: Int, rows: Int) {
        self.capacity = capacity
        self.dimension = dimension
        self.rows = rows
    }

    /// Hands a full chunk over and returns an empty one to fill next.
    func put(_ chunk: EmbeddingChunk) -> EmbeddingChunk {
        condition.withLock {
            while chunks.count >= capacity { condition.wait() }
            chunks.append(chunk)
            condition.broadcast()
            return spare.popLast() ?? EmbeddingChunk(dimension: dimension, capacity: rows)
        }
    }

    func recycle(_ chunk: EmbeddingChunk) {
        condition.withLock { spare.append(chunk) }
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
