// SPDX-License-Identifier: MIT

import Foundation
import Synchronization

/// The two counters of work split into numbered pieces that threads claim in order
/// (`InferencePlan`'s one-image region): how many have been claimed and how many finished.
/// Waiting threads spin rather than sleep, since pieces are a fraction of a millisecond apart,
/// and yield the core after a while in case the thread they wait for is not running.
final class PieceCounters: Sendable {
    private let claimed = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)

    /// The next unclaimed piece's number (0, 1, 2, ...).
    func claim() -> Int { claimed.wrappingAdd(1, ordering: .relaxed).oldValue }

    /// Counts a piece as finished; its writes are visible to whoever sees the count.
    func finish() { finished.wrappingAdd(1, ordering: .releasing) }

    /// Returns once at least `count` pieces have finished.
    func waitUntilFinished(_ count: Int) {
        var spins = 0
        while finished.load(ordering: .acquiring) < count {
            spins += 1
            if spins > 2_000 { sched_yield() }
        }
    }
}

/// Piece `piece` of `0..<count` cut into `parts` nearly equal consecutive ranges (the first
/// ones a little shorter when `parts` does not divide `count`); some may be empty.
func share(of count: Int, piece: Int, parts: Int) -> Range<Int> {
    (count * piece / parts)..<(count * (piece + 1) / parts)
}
