// SPDX-License-Identifier: MIT
import Foundation

/// Threads running submitted jobs in arrival order, at most `maxThreads` of them, sized like a
/// fork-join pool with managed blockers: it keeps `runnableTarget` threads able to run (a few
/// hot threads that rarely sleep serve fast handlers best; measured with wrk on a small route,
/// 64 threads woken in turn gave 31k requests/s, 4 gave 58k), and a handler that is about to
/// wait (a micro-batch waiting for company) says so with `HTTPServer.blocking { }`, which
/// starts another thread when needed so waiting never starves the queue. Threads idle for a
/// second beyond the target retire. Bounded in threads, not in queue length: the event loops
/// submit one job per connection at a time, so the queue is bounded by the connection limit.
final class WorkerPool: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var head = 0
    private var stopping = false
    private var threads = 0
    private var idle = 0
    private var blocked = 0
    private let maxThreads: Int
    private let runnableTarget: Int
    private let name: String

    /// The pool the current thread works for (nil off the pool).
    private static let key = "doppel.http.worker-pool"
    static var current: WorkerPool? { Thread.current.threadDictionary[key] as? WorkerPool }

    init(maxThreads: Int, name: String) {
        self.maxThreads = max(1, maxThreads)
        runnableTarget = min(self.maxThreads, max(2, 2 * ProcessInfo.processInfo.activeProcessorCount))
        self.name = name
    }

    /// What a consumed slot of `jobs` holds until the prefix is dropped.
    private static let taken: @Sendable () -> Void = {}

    func submit(_ job: @escaping () -> Void) {
        condition.lock()
        jobs.append(job)
        if idle > 0 {
            condition.signal()
        } else {
            startThreadIfNeeded()
        }
        condition.unlock()
    }

    /// With the lock held: one more thread when fewer than the target can run.
    private func startThreadIfNeeded() {
        guard threads < maxThreads, threads - blocked < runnableTarget else { return }
        threads += 1
        let thread = Thread { [self] in work() }
        thread.name = "\(name)-\(threads)"
        thread.stackSize = 1 << 20
        thread.threadDictionary[Self.key] = self
        thread.start()
    }

    /// Runs `body`, which waits for something other than CPU, counting this thread as blocked
    /// meanwhile so queued jobs get a thread.
    func blocking<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        blocked += 1
        if head < jobs.count && idle == 0 { startThreadIfNeeded() }
        condition.unlock()
        defer {
            condition.lock()
            blocked -= 1
            condition.unlock()
        }
        return try body()
    }

    /// Lets queued jobs finish, then waits for every thread to end (at most `deadline` ms).
    func stop(deadline: Int) {
        condition.lock()
        stopping = true
        condition.broadcast()
        let until = Date().addingTimeInterval(Double(deadline) / 1000)
        while threads > 0 && condition.wait(until: until) {}
        condition.unlock()
    }

    private func work() {
        condition.lock()
        while true {
            if head == jobs.count {
                if stopping {
                    threads -= 1
                    condition.broadcast()
                    condition.unlock()
                    return
                }
                idle += 1
                let woken = condition.wait(until: Date().addingTimeInterval(1))
                idle -= 1
                if !woken && head == jobs.count && threads - blocked > runnableTarget {
                    threads -= 1  // retire: more threads than the target, and nothing to do
                    condition.unlock()
                    return
                }
                continue
            }
            let job = jobs[head]
            // Release the taken job now: a consumed slot kept its closure (and the request it
            // captured, body and all) until the next compaction, up to 1,024 requests later.
            jobs[head] = Self.taken
            head += 1
            if head > 1024 && head * 2 > jobs.count {
                // Drop the consumed prefix now and then instead of shifting on every take.
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job()
            condition.lock()
        }
    }
}
