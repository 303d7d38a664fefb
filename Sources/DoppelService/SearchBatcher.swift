// SPDX-License-Identifier: MIT
import DoppelGallery
import DoppelHTTP
import Foundation

/// Answers concurrent searches of one gallery together: each request hands in its query and
/// waits; one thread takes whatever is queued for a gallery, up to `maxBatch`, and runs one
/// batched search (one tiled pass over the gallery for all of them) with the largest k
/// asked, then gives each request its own first k. A search's top k is the same in any batch
/// (identities are ordered by distance, then name), so each request gets exactly what it
/// would alone. With `maxBatch` 1 every search runs alone (batching off). Runs on its own
/// thread, beside the embedding batcher's, so embedding and search batches overlap.
final class SearchBatcher: @unchecked Sendable {
    private final class Job: MicroBatchJob {
        let gallery: String
        let query: [Float]
        let k: Int
        var result: [Match] = []
        let done = DispatchSemaphore(value: 0)
        let arrived = DispatchTime.now()

        init(gallery: String, query: [Float], k: Int) {
            self.gallery = gallery
            self.query = query
            self.k = k
        }
    }

    let maxBatch: Int
    private let index: (String) -> GalleryIndex
    private let aggregation: Aggregation
    private var queue: MicroBatchQueue<Job>!
    /// Called after each batched search with its size (metrics).
    var onBatch: (@Sendable (Int) -> Void)?

    /// `index` gives a gallery's index (called on the batcher's thread).
    init(maxBatch: Int, maxWaitMicroseconds: Int, aggregation: Aggregation, index: @escaping (String) -> GalleryIndex) {
        let maxBatch = max(1, maxBatch)
        self.maxBatch = maxBatch
        self.aggregation = aggregation
        self.index = index
        // A batch is the oldest job's gallery's searches, up to maxBatch of them.
        queue = MicroBatchQueue(
            name: "search-batcher", maxWaitMicroseconds: maxBatch > 1 ? maxWaitMicroseconds : 0,
            isFull: { queue in queue.count(where: { $0.gallery == queue[0].gallery }) >= maxBatch },
            take: { queue in
                let gallery = queue[0].gallery
                var jobs = [Job](), rest = [Job]()
                for job in queue {
                    if job.gallery == gallery && jobs.count < maxBatch { jobs.append(job) } else { rest.append(job) }
                }
                queue = rest
                return jobs
            },
            process: { [unowned self] jobs in answer(jobs) })
    }

    /// The `k` nearest identities to `query` in `gallery`.
    func search(_ query: [Float], gallery: String, k: Int) -> [Match] {
        let job = Job(gallery: gallery, query: query, k: k)
        queue.submit(job)
        return job.result
    }

    func stop() { queue.stop() }

    private func answer(_ jobs: [Job]) {
        let target = index(jobs[0].gallery)
        if jobs.count == 1 {
            jobs[0].result = target.search(jobs[0].query, k: jobs[0].k, aggregation: aggregation)
        } else {
            let k = jobs.map(\.k).max()!
            let results = target.search(queries: jobs.flatMap(\.query), count: jobs.count, k: k, aggregation: aggregation)
            for (job, matches) in zip(jobs, results) { job.result = Array(matches.prefix(job.k)) }
        }
        onBatch?(jobs.count)
        for job in jobs { job.done.signal() }
    }
}
