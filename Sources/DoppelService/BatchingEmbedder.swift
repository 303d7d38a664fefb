// SPDX-License-Identifier: MIT
import DoppelHTTP
import DoppelNN
import DoppelModel
import Foundation

/// Embeds images for concurrent requests together (micro-batching): each request hands in
/// its preprocessed tensors and waits; one thread packs whatever is queued, up to `maxBatch`
/// images, into one forward pass, so load becomes bigger GEMMs instead of more small ones.
/// With `maxBatch` 1 every image is its own forward pass (batching off). The network is only
/// ever touched by that one thread, so its buffers need no locking.
final class BatchingEmbedder: @unchecked Sendable {
    private final class Job: MicroBatchJob {
        let values: [Float]
        let count: Int
        var result: [Float] = []
        let done = DispatchSemaphore(value: 0)
        let arrived = DispatchTime.now()

        init(values: [Float], count: Int) {
            self.values = values
            self.count = count
        }
    }

    let model: ServedModel
    let maxBatch: Int
    private var queue: MicroBatchQueue<Job>!
    /// Called after each forward pass with its batch size (metrics).
    var onBatch: (@Sendable (Int) -> Void)?

    init(model: ServedModel, maxBatch: Int, maxWaitMicroseconds: Int) {
        self.model = model
        let maxBatch = max(1, maxBatch)
        self.maxBatch = maxBatch
        // A batch is whole jobs in arrival order up to maxBatch images (at least one job).
        queue = MicroBatchQueue(
            name: "embedder", maxWaitMicroseconds: maxBatch > 1 ? maxWaitMicroseconds : 0,
            isFull: { queue in queue.reduce(0) { $0 + $1.count } >= maxBatch },
            take: { queue in
                var jobs = [Job](), images = 0
                while let next = queue.first, jobs.isEmpty || images + next.count <= maxBatch {
                    jobs.append(queue.removeFirst())
                    images += next.count
                }
                return jobs
            },
            process: { [unowned self] jobs in forward(jobs, images: jobs.reduce(0) { $0 + $1.count }) })
    }

    /// Embeddings of `count` preprocessed images laid out one after another, `[count, dimension]`.
    func embed(_ values: [Float], count: Int) -> [Float] {
        precondition(values.count == count * model.spec.elementCount)
        guard count > 0 else { return [] }
        let job = Job(values: values, count: count)
        queue.submit(job)
        return job.result
    }

    func stop() { queue.stop() }

    /// One forward pass per `maxBatch` images of the packed jobs (a job larger than the batch
    /// is split), results handed back per job.
    private func forward(_ jobs: [Job], images: Int) {
        let elements = model.spec.elementCount, dimension = model.dimension
        var packed = [Float]()
        if jobs.count == 1 {
            packed = jobs[0].values
        } else {
            packed.reserveCapacity(images * elements)
            for job in jobs { packed.append(contentsOf: job.values) }
        }
        var output = [Float](repeating: 0, count: images * dimension)
        packed.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                var start = 0
                while start < images {
                    let n = min(maxBatch, images - start)
                    model.embedder.embed(x.baseAddress! + start * elements, count: n, into: y.baseAddress! + start * dimension)
                    onBatch?(n)
                    start += n
                }
            }
        }
        var offset = 0
        for job in jobs {
            job.result = Array(output[(offset * dimension)..<((offset + job.count) * dimension)])
            offset += job.count
            job.done.signal()
        }
    }
}
