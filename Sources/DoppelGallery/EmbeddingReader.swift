// SPDX-License-Identifier: MIT
import Foundation

/// Stored embeddings read on a connection of their own, for a compact index's re-ranking:
/// a search holds its index's read lock while it asks, and the writer path takes the store
/// before the index's write lock, so sharing the writer's connection (and its lock) could
/// deadlock. SQLite's WAL lets this reader run beside the writer.
public final class EmbeddingReader: ExactVectorSource, @unchecked Sendable {
    private let database: SQLiteDatabase
    private let model: String
    private let lock = NSLock()

    public init(path: String, model: String) throws(GalleryError) {
        do { database = try SQLiteDatabase(path: path) } catch { throw .database(error) }
        self.model = model
    }

    public func vectors(of samples: [Int64]) throws -> [Int64: [Float]] {
        try lock.withLock {
            var out = [Int64: [Float]]()
            for sample in samples {
                // A sample without a row (deleted meanwhile) is skipped; a failed read throws.
                guard let blob = try database.query("SELECT vector FROM embeddings WHERE sample_id = ? AND model_id = ?",
                                                    [.integer(sample), .text(model)]).first?.first?.blob else { continue }
                out[sample] = blob.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            }
            return out
        }
    }
}
