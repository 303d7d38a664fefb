// SPDX-License-Identifier: MIT
import Foundation

/// Scratch folders that outlive a single test (a suite's shared fixture, a contract test's
/// store, the shared PostgreSQL server's data) and are removed when the test process exits, so
/// a run leaves nothing behind in the temporary directory.
public enum ScratchFolder {
    nonisolated(unsafe) private static var pending: [String] = []
    private static let lock = NSLock()

    /// A new empty folder named `prefix-<uuid>` in the temporary directory, removed at exit.
    public static func make(_ prefix: String) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        removeAtExit(folder.path)
        return folder
    }

    /// Removes `path` (a file or a folder) when the process exits.
    public static func removeAtExit(_ path: String) {
        lock.withLock {
            if pending.isEmpty { atexit { ScratchFolder.removeAll() } }
            pending.append(path)
        }
    }

    private static func removeAll() {
        for path in lock.withLock({ pending }) { try? FileManager.default.removeItem(atPath: path) }
    }
}
