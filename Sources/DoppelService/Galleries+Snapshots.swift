// SPDX-License-Identifier: MIT
import DoppelGallery
import DoppelNN
import Foundation

/// The index snapshot beside the database: rewritten a while after the last change (and at
/// shutdown) on a thread of its own, read at start when the database's stamp agrees.
extension Galleries {
    /// Records a change to the indexes (the snapshot is rewritten once changes have been quiet
    /// for `snapshotDelay`).
    func markChanged(now: Date = Date()) {
        guard options.snapshotPath != nil else { return }
        snapshotCondition.withLock {
            dirtySince = now
            snapshotCondition.signal()
        }
    }

    /// A thread that rewrites the snapshot once changes have been quiet for `snapshotDelay`.
    func startSnapshotWriter() {
        guard options.snapshotPath != nil, snapshotThread == nil else { return }
        let thread = Thread { [weak self] in
            while let self {
                var due = false
                self.snapshotCondition.withLock {
                    if !self.stopping { _ = self.snapshotCondition.wait(until: Date().addingTimeInterval(1)) }
                    if let since = self.dirtySince, Date().timeIntervalSince(since) >= self.options.snapshotDelay { due = true }
                }
                if self.stopping { return }
                if due { self.writeSnapshot() }
            }
        }
        thread.name = "index-snapshot"
        snapshotThread = thread
        thread.start()
    }

    /// Writes the snapshot now if the indexes changed since the last one. The writer lock is
    /// held throughout, so the stamp and the indexes are one committed state.
    @discardableResult
    func writeSnapshot() -> String? {
        guard let path = options.snapshotPath else { return nil }
        return writer.withLock { () -> String? in
            let wasDirty = snapshotCondition.withLock { () -> Bool in
                defer { dirtySince = nil }
                return dirtySince != nil
            }
            guard wasDirty else { return nil }
            let current = indexLock.withLock { indexes.filter { $0.value.count > 0 } }
            do {
                let stamp = try store.indexStamp(model: model.id)
                if current.isEmpty {
                    try? FileManager.default.removeItem(atPath: path)
                    return "no index to snapshot"
                }
                let started = Date()
                try GalleryIndex.writeSnapshot(current, model: model.id, stamp: stamp, to: path)
                return String(format: "index snapshot written in %.2f s (%@)", Date().timeIntervalSince(started), stamp.description)
            } catch {
                snapshotCondition.withLock { dirtySince = dirtySince ?? Date() }
                return "index snapshot not written: \(error)"
            }
        }
    }

    /// Stops the snapshot thread and writes a last snapshot if anything changed.
    func close() -> String? {
        snapshotCondition.withLock {
            stopping = true
            snapshotCondition.signal()
        }
        return writeSnapshot()
    }
}
