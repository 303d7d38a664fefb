// SPDX-License-Identifier: MIT
import Foundation

/// A value threads hand over to each other (a reader thread's result, a test's tally), read
/// and written under a lock.
public final class SendableBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T?
    public init() {}
    public var value: T? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
