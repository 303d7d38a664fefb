// SPDX-License-Identifier: MIT
import Foundation

/// One budget for the memory that image work (decoding, conversion, resampling, a face stage)
/// may hold at once, across every request: each image reserves what its header says it will
/// cost before anything is allocated, and gives it back when its tensor is made. An image that
/// could never fit is refused; one that does not fit now waits a little for others to finish,
/// then is refused too. Thread-safe.
public final class ImageMemoryBudget: @unchecked Sendable {
    public let capacity: Int
    private let condition = NSCondition()
    private var used = 0

    public init(bytes: Int) { capacity = bytes }

    /// Bytes reserved right now.
    public var inUse: Int { condition.withLock { used } }

    public enum Refusal: Error, Equatable, Sendable {
        /// More than the whole budget: it will never fit.
        case tooLarge(needed: Int, capacity: Int)
        /// Other images hold the budget and did not finish within the wait.
        case busy(needed: Int, capacity: Int)
    }

    /// A reservation; `release()` it (once) when the memory is freed.
    public final class Reservation: @unchecked Sendable {
        public let bytes: Int
        private let budget: ImageMemoryBudget
        private var released = false

        init(bytes: Int, budget: ImageMemoryBudget) {
            self.bytes = bytes
            self.budget = budget
        }

        public func release() {
            guard !released else { return }
            released = true
            budget.give(bytes)
        }

        deinit { release() }
    }

    /// Reserves `bytes` without waiting; nil when they do not fit now.
    public func tryReserve(_ bytes: Int) throws(Refusal) -> Reservation? {
        guard bytes <= capacity else { throw .tooLarge(needed: bytes, capacity: capacity) }
        let fits = condition.withLock {
            guard used + bytes <= capacity else { return false }
            used += bytes
            return true
        }
        return fits ? Reservation(bytes: bytes, budget: self) : nil
    }

    /// Reserves `bytes`, waiting up to `milliseconds` for room.
    public func reserve(_ bytes: Int, waitingAtMost milliseconds: Int) throws(Refusal) -> Reservation {
        if let reservation = try tryReserve(bytes) { return reservation }
        let deadline = Date().addingTimeInterval(Double(milliseconds) / 1000)
        condition.lock()
        while used + bytes > capacity {
            guard condition.wait(until: deadline) else {
                condition.unlock()
                throw .busy(needed: bytes, capacity: capacity)
            }
        }
        used += bytes
        condition.unlock()
        return Reservation(bytes: bytes, budget: self)
    }

    fileprivate func give(_ bytes: Int) {
        condition.withLock {
            used -= bytes
            condition.broadcast()
        }
    }
}
