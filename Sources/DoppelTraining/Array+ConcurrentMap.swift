// SPDX-License-Identifier: MIT
import Dispatch

/// Slots that concurrent iterations write, each iteration its own index only.
private final class ResultSlots<T>: @unchecked Sendable {
    var values: [T?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
}

extension Array where Element: Sendable {
    /// `map` spread over the machine's cores; order is preserved. For work that is slow per
    /// element (decoding a file), not for arithmetic that BLAS should do.
    func concurrentMap<T: Sendable>(_ transform: @Sendable (Element) -> T) -> [T] {
        let slots = ResultSlots<T>(count: count)
        self.withUnsafeBufferPointer { elements in
            nonisolated(unsafe) let elements = elements
            slots.values.withUnsafeMutableBufferPointer { out in
                nonisolated(unsafe) let out = out
                DispatchQueue.concurrentPerform(iterations: elements.count) { i in
                    out[i] = transform(elements[i])
                }
            }
        }
        return slots.values.map { $0! }
    }
}
