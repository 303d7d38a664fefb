// SPDX-License-Identifier: MIT
import Foundation

/// A fixed set of threads running submitted jobs in arrival order. Bounded in threads, not in
/// queue length: the event loops only submit one job per connection at a time, so the queue is
/// bounded by the connection limit.
final class WorkerPool: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var head = 0
    private var stopping = false
    private var running = 0
    private var threads: [Thread] = []

    init(threads count: Int, name: String) {
        for index in 0..<max(1, count) {
            let thread = Thread { [self] in work() }
            thread.name = "\(name)-\(index)"
            thread.stackSize = 1 << 20
            threads.append(thread)
        }
        running = threads.count
        threads.forEach { $0.start() }
    }

    func submit(_ job: @escaping () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Lets queued jobs finish, then waits for every thread to end (at most `deadline` ms).
    func stop(deadline: Int) {
        condition.lock()
        stopping = true
        condition.broadcast()
        let until = Date().addingTimeInterval(Double(deadline) / 1000)
        while running > 0 && condition.wait(until: until) {}
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while head == jobs.count && !stopping { condition.wait() }
            if head == jobs.count {
                running -= 1
                condition.broadcast()
                condition.unlock()
                return
            }
            let job = jobs[head]
            head += 1
            if head > 1024 && head * 2 > jobs.count {
                // Drop the consumed prefix now and then instead of shifting on every take.
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job()
        }
    }
}
