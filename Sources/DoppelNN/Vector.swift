// SPDX-License-Identifier: MIT

/// Eight floats, the unit of the element-wise loops LLVM leaves scalar when they run over
/// unsafe pointers (it cannot prove that input and output do not overlap): activations,
/// Winograd transforms, depthwise convolution, pooling. Written with SIMD8, each is a
/// vector loop plus a scalar tail (measured per use at the call).
typealias Vector = SIMD8<Float>

extension UnsafePointer where Pointee == Float {
    @inline(__always) func vector(_ offset: Int) -> Vector { UnsafeRawPointer(self + offset).loadUnaligned(as: Vector.self) }
    /// 16 floats from `offset`, split into the even and odd positions (a stride-2 read of 8 each).
    @inline(__always) func evenOdd(_ offset: Int) -> (even: Vector, odd: Vector) {
        let pair = UnsafeRawPointer(self + offset).loadUnaligned(as: SIMD16<Float>.self)
        return (pair.evenHalf, pair.oddHalf)
    }
}

extension UnsafeMutablePointer where Pointee == Float {
    @inline(__always) func vector(_ offset: Int) -> Vector { UnsafeRawPointer(self + offset).loadUnaligned(as: Vector.self) }
    @inline(__always) func store(_ value: Vector, _ offset: Int) { UnsafeMutableRawPointer(self + offset).storeBytes(of: value, as: Vector.self) }
    /// Writes `even` and `odd` interleaved into 16 floats from `offset`.
    @inline(__always) func storeInterleaved(_ even: Vector, _ odd: Vector, _ offset: Int) {
        var pair = SIMD16<Float>()
        pair.evenHalf = even
        pair.oddHalf = odd
        UnsafeMutableRawPointer(self + offset).storeBytes(of: pair, as: SIMD16<Float>.self)
    }
}

/// Runs `vector` on each whole group of 8 indices from 0 and `scalar` on the rest.
@inline(__always)
func forEachVector(_ count: Int, _ vector: (Int) -> Void, _ scalar: (Int) -> Void) {
    var i = 0
    while i + 8 <= count {
        vector(i)
        i += 8
    }
    while i < count {
        scalar(i)
        i += 1
    }
}
