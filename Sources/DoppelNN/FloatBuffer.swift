// SPDX-License-Identifier: MIT

/// A manually managed Float buffer that grows on demand and is reused between calls, so a
/// warm forward pass allocates nothing. Owned by one layer or network; not thread-safe.
final class FloatBuffer {
    private(set) var pointer: UnsafeMutablePointer<Float>
    private(set) var capacity: Int

    init(capacity: Int = 0) {
        self.capacity = max(capacity, 1)
        pointer = .allocate(capacity: self.capacity)
        pointer.initialize(repeating: 0, count: self.capacity)
    }

    deinit { pointer.deallocate() }

    /// A pointer to at least `count` floats; contents are unspecified after growth.
    @discardableResult
    func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            pointer.deallocate()
            capacity = count
            pointer = .allocate(capacity: count)
            pointer.initialize(repeating: 0, count: count)
        }
        return pointer
    }

    func zero(_ count: Int) { reserve(count).update(repeating: 0, count: count) }
}
