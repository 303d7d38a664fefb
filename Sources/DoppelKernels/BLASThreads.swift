// SPDX-License-Identifier: MIT
// DoppelKernels owns what the network engine and the gallery share below them: the one
// setting of OpenBLAS's thread count, which OpenBLAS keeps per process, and which bodies
// Doppel's own C kernels run. It knows nothing of networks, galleries or HTTP.
import CBLAS
import Foundation

/// The one owner of OpenBLAS's thread count. OpenBLAS keeps one count for the whole process
/// and reads it when a call starts, so callers never set it themselves: a caller that splits
/// its own work over the cores runs inside `splitting` (OpenBLAS single-threaded meanwhile,
/// its threads would only spin against the caller's), a caller that does not asks for
/// `usingAllCores`, which gives OpenBLAS every core only while nobody is splitting. The count
/// changes only when it must (a switch back to several threads wakes OpenBLAS's workers,
/// which then spin for a while). Thread-safe.
public enum BLASThreads {
    private struct State {
        /// The count last given to OpenBLAS (0: never set; it starts with one per core).
        var count = 0
        /// Set by `pin`: the count no longer changes.
        var pinned = false
        /// Callers inside `splitting` now.
        var splitters = 0
    }
    nonisolated(unsafe) private static var state = State()
    private static let lock = NSLock()
    private static let cores = ProcessInfo.processInfo.activeProcessorCount

    /// Under the lock: gives OpenBLAS `count` threads unless pinned or already so.
    private static func apply(_ count: Int) {
        guard !state.pinned, state.count != count else { return }
        state.count = count
        openblas_set_num_threads(Int32(count))
    }

    /// Sets the count (benchmarks measuring one thread against several).
    public static func set(_ count: Int) { lock.withLock { apply(max(1, count)) } }

    /// Sets the count once for the rest of the process: later requests change nothing. For a
    /// server, where concurrent requests and Doppel's own per-core splits already keep every
    /// core busy: OpenBLAS's extra threads only spin against them.
    public static func pin(_ count: Int) {
        lock.withLock {
            apply(max(1, count))
            state.pinned = true
        }
    }

    /// Runs `body`, which splits its work over the cores itself, with OpenBLAS single-threaded.
    public static func splitting<T>(_ body: () throws -> T) rethrows -> T {
        lock.withLock {
            state.splitters += 1
            apply(1)
        }
        defer { lock.withLock { state.splitters -= 1 } }
        return try body()
    }

    /// Runs `body`, whose BLAS calls are the only work in flight for it, with OpenBLAS on every
    /// core, or single-threaded while another caller is splitting its work.
    public static func usingAllCores<T>(_ body: () throws -> T) rethrows -> T {
        lock.withLock { if state.splitters == 0 { apply(cores) } }
        return try body()
    }

    /// The count OpenBLAS runs with now.
    public static var current: Int { Int(openblas_get_num_threads()) }
}
