// SPDX-License-Identifier: MIT
import DoppelGallery
import DoppelNN
import Foundation

/// Following a shared gallery's change log (PostgreSQL): the changes other replicas wrote,
/// applied to the indexes in order, woken by notifications or a poll.
extension Galleries {
    /// With a change log: applies every change through this store's last write, in order,
    /// before the write is acknowledged (the writer sees its write at once, and never ahead of
    /// a change committed before it). Returns false without a change log (the caller updates
    /// the index itself). The write is committed either way: if the catch-up fails, the
    /// follower completes it. Caller holds the writer lock.
    func catchUpAfterWrite() -> Bool {
        guard let feed else { return false }
        do { try applyChanges(from: feed, through: store.lastChange) } catch { log?("catching up after a write: \(error)") }
        return true
    }

    /// Applies the changes after `applied` (through `limit` when given) from `source`, oldest
    /// first, in batches.
    func applyChanges(from source: any ChangeFeed, through limit: Int64? = nil) throws {
        try applyLock.withLock { () throws in
            while true {
                if let limit, applied >= limit { break }
                let batch = try source.changes(after: applied, limit: 500)
                if !batch.isEmpty && pendingSince == nil { pendingSince = Date() }
                for change in batch {
                    if let limit, change.sequence > limit { break }
                    try apply(change, from: source)
                    applied = change.sequence
                }
                if batch.count < 500 || (limit.map { applied >= $0 } ?? false) { break }
            }
            if limit == nil || applied >= (limit ?? 0) { pendingSince = nil }
        }
    }

    /// One change to the in-memory indexes. Idempotent: an add of samples already indexed
    /// replaces them; a remove of samples not indexed does nothing; an add of samples deleted
    /// since finds no embedding and adds nothing (their removal comes later in the log).
    func apply(_ change: GalleryChange, from source: any ChangeFeed) throws {
        switch change.kind {
        case .add:
            for row in try source.embeddingRows(samples: change.samples, model: model.id) {
                index(row.gallery, creating: true).add(sample: row.sample, identity: row.identity, vector: row.vector)
            }
        case .remove:
            let index = index(change.gallery)
            for sample in change.samples { index.remove(sample: sample) }
        }
        markChanged()
    }

    /// The follower: its own connection LISTENs for change announcements, wakes at least every
    /// `pollInterval` (a missed notification costs one interval, not a change), applies what
    /// is new, and after a lost connection reconnects with backoff and catches up from the
    /// last change it applied.
    func startFollower() {
        guard let shared = store as? any SharedGalleryStore, followerThread == nil else { return }
        let makeFollower = shared.makeFollower()
        let thread = Thread { [weak self] in
            var follower: (any ChangeFollower)?
            var backoff = 0.1
            while let self, !self.snapshotCondition.withLock({ self.stopping }) {
                do {
                    if follower == nil { follower = try makeFollower() }
                    _ = try follower!.waitForChanges(timeout: self.pollInterval)
                    try self.applyChanges(from: follower!)
                    if self.feedFailing {
                        self.feedFailing = false
                        self.log?("change log reachable again; caught up to change \(self.appliedChange)")
                    }
                    backoff = 0.1
                } catch {
                    if !self.feedFailing {
                        self.feedFailing = true
                        self.log?("change log unavailable (\(error)); serving from memory, retrying")
                    }
                    follower = nil
                    Thread.sleep(forTimeInterval: backoff)
                    backoff = min(backoff * 2, 2)
                }
            }
        }
        thread.name = "change-follower"
        followerThread = thread
        thread.start()
    }

    /// The last change applied, and how long a known change has waited to be applied (nil when
    /// caught up or without a change log), for readiness and metrics.
    var appliedChange: Int64 { applyLock.withLock { applied } }
    var replication: (applied: Int64, pendingFor: TimeInterval?, feedReachable: Bool)? {
        guard feed != nil else { return nil }
        return applyLock.withLock { (applied, pendingSince.map { Date().timeIntervalSince($0) }, !feedFailing) }
    }
}
