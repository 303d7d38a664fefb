// SPDX-License-Identifier: MIT
import DoppelHTTP
import Foundation

/// A job a `MicroBatchQueue` carries: when it arrived, and a semaphore its submitter waits on.
protocol MicroBatchJob: AnyObject, SendableMetatype {
    var arrived: DispatchTime { get }
    var done: DispatchSemaphore { get }
}

/// The waiting room both batchers share: requests submit a job and block (as a managed
/// blocker of the HTTP worker pool) until it is done; one thread of the queue's own waits for
/// the first job, then for company while the batch is not full and the oldest job is younger
/// than the wait bound, takes a batch and processes it, which signals each job's `done`.
final class MicroBatchQueue<Job: MicroBatchJob>: @unchecked Sendable {
    private let maxWaitNanoseconds: UInt64
    private let isFull: ([Job]) -> Bool
    private let take: (inout [Job]) -> [Job]
    private let process: ([Job]) -> Void
    private let condition = NSCondition()
    private var queue: [Job] = []
    private var stopping = false

    /// `isFull(queue)`: whether the queue holds a whole batch (stop waiting for company);
    /// `take(&queue)`: removes and returns the next batch; `process(batch)` runs on the
    /// queue's thread and must signal every job's `done`.
    init(name: String, maxWaitMicroseconds: Int, isFull: @escaping ([Job]) -> Bool, take: @escaping (inout [Job]) -> [Job],
         process: @escaping ([Job]) -> Void) {
        maxWaitNanoseconds = UInt64(max(0, maxWaitMicroseconds)) * 1000
        self.isFull = isFull
        self.take = take
        self.process = process
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    /// Queues `job` and returns once it is done.
    func submit(_ job: Job) {
        condition.lock()
        queue.append(job)
        condition.signal()
        condition.unlock()
        HTTPServer.blocking { job.done.wait() }
    }

    /// Lets the thread finish what is queued and end.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty {
                condition.unlock()
                return
            }
            // Wait for company only while the batch is not full and the oldest job is young.
            if maxWaitNanoseconds > 0 {
                let deadline = queue[0].arrived.uptimeNanoseconds + maxWaitNanoseconds
                while !isFull(queue) && !stopping {
                    let now = DispatchTime.now().uptimeNanoseconds
                    guard now < deadline else { break }
                    _ = condition.wait(until: Date().addingTimeInterval(Double(deadline - now) / 1e9))
                }
            }
            let batch = take(&queue)
            condition.unlock()
            process(batch)
        }
    }
}
