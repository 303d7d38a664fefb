// SPDX-License-Identifier: MIT
import CSHA256

/// SHA-256 (FIPS 180-4), for model ids and content hashes: small enough to carry here rather
/// than linking a crypto library. The compression function is C (CSHA256).
public struct SHA256 {
    private var state: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
    /// Fewer than 64 bytes not yet compressed.
    private var pending: [UInt8] = []
    private var length: UInt64 = 0

    public init() {}

    public mutating func update<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
        if bytes.withContiguousStorageIfAvailable({ update(UnsafeRawBufferPointer($0)) }) == nil {
            Array(bytes).withUnsafeBytes { update($0) }
        }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var next = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        var remaining = bytes.count
        length &+= UInt64(remaining) * 8
        if !pending.isEmpty {
            let taken = min(64 - pending.count, remaining)
            pending.append(contentsOf: UnsafeBufferPointer(start: next, count: taken))
            next += taken
            remaining -= taken
            guard pending.count == 64 else { return }
            pending.withUnsafeBufferPointer { compress($0.baseAddress!, blocks: 1) }
            pending.removeAll(keepingCapacity: true)
        }
        let whole = remaining / 64
        compress(next, blocks: whole)
        pending.append(contentsOf: UnsafeBufferPointer(start: next + whole * 64, count: remaining - whole * 64))
    }

    public mutating func finalize() -> [UInt8] {
        let totalBits = length
        var tail = pending + [0x80]
        while tail.count % 64 != 56 { tail.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: totalBits >> UInt64(shift))) }
        tail.withUnsafeBufferPointer { compress($0.baseAddress!, blocks: $0.count / 64) }
        pending = []
        return state.flatMap { word in [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: word >> UInt32($0)) } }
    }

    public static func hex<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        var hash = SHA256()
        hash.update(bytes)
        return hash.finalize().map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    private mutating func compress(_ bytes: UnsafePointer<UInt8>, blocks: Int) {
        guard blocks > 0 else { return }
        state.withUnsafeMutableBufferPointer { doppel_sha256_blocks($0.baseAddress!, bytes, blocks) }
    }
}
