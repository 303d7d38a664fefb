// SPDX-License-Identifier: MIT

/// The output of k x k windows at `stride` over the input padded by `padding` on every side,
/// partial windows at the edge dropped (PyTorch's default floor mode).
func pooledShape(_ input: TensorShape, size: Int, stride: Int, padding: Int = 0) -> TensorShape {
    TensorShape(channels: input.channels, height: (input.height + 2 * padding - size) / stride + 1,
                width: (input.width + 2 * padding - size) / stride + 1)
}

/// The input rows (or columns) a window starting at output position `o` covers, clipped to
/// the input: padding contributes nothing.
@inline(__always)
func windowRange(_ o: Int, size: Int, stride: Int, padding: Int, extent: Int) -> Range<Int> {
    let start = o * stride - padding
    return max(start, 0)..<min(start + size, extent)
}

/// Max pooling over k x k windows (stride defaults to k; padded positions never win; partial
/// windows at the edge are dropped, as in PyTorch's default floor mode).
/// x: [N, C, H, W] -> y: [N, C, (H + 2p - k) / s + 1, (W + 2p - k) / s + 1]
final class MaxPool: Layer {
    let inputShape: TensorShape
    let outputShape: TensorShape
    let size: Int, stride: Int, padding: Int
    /// Index into the input plane of each output's maximum, kept for backward.
    private var argmax: [Int32] = []
    var token: String { Architecture.describe(.maxPool(size: size, stride: stride, padding: padding)) }
    var parameterSpecs: [ParameterSpec] { [] }

    init(input: TensorShape, size: Int, stride: Int, padding: Int = 0) {
        inputShape = input
        self.size = size
        self.stride = stride
        self.padding = padding
        outputShape = pooledShape(input, size: size, stride: stride, padding: padding)
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        let planes = batch * inputShape.channels
        let (h, w, oh, ow) = (inputShape.height, inputShape.width, outputShape.height, outputShape.width)
        if mode == .inference {
            // No backward will follow: no argmax to record.
            if size == 2 && stride == 2 && padding == 0 { forward2x2Inference(x, y, planes: planes) } else { forwardSeparable(x, y, planes: planes) }
            return
        }
        if argmax.count < planes * oh * ow { argmax = Array(repeating: 0, count: planes * oh * ow) }
        argmax.withUnsafeMutableBufferPointer { arg in
            if size == 2 && stride == 2 && padding == 0 {
                forward2x2(x, y, planes: planes, argmax: arg.baseAddress!)
                return
            }
            for p in 0..<planes {
                let plane = x + p * h * w
                for oy in 0..<oh {
                    let rows = windowRange(oy, size: size, stride: stride, padding: padding, extent: h)
                    for ox in 0..<ow {
                        let columns = windowRange(ox, size: size, stride: stride, padding: padding, extent: w)
                        var best = -Float.infinity, bestIndex = rows.lowerBound * w + columns.lowerBound
                        for iy in rows {
                            for ix in columns where plane[iy * w + ix] > best {
                                best = plane[iy * w + ix]
                                bestIndex = iy * w + ix
                            }
                        }
                        let o = (p * oh + oy) * ow + ox
                        y[o] = best
                        arg[o] = Int32(bestIndex)
                    }
                }
            }
        }
    }

    /// The common 2x2, stride 2 case without the window loops (a third of a CNN's
    /// non-GEMM time when generic).
    private func forward2x2(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, planes: Int, argmax: UnsafeMutablePointer<Int32>) {
        let (w, oh, ow) = (inputShape.width, outputShape.height, outputShape.width)
        let inPlane = inputShape.spatial, outPlane = outputShape.spatial
        for p in 0..<planes {
            let plane = x + p * inPlane
            let out = y + p * outPlane, arg = argmax + p * outPlane
            for oy in 0..<oh {
                let top = 2 * oy * w, bottom = top + w
                for ox in 0..<ow {
                    var best = plane[top + 2 * ox], index = top + 2 * ox
                    if plane[top + 2 * ox + 1] > best { best = plane[top + 2 * ox + 1]; index = top + 2 * ox + 1 }
                    if plane[bottom + 2 * ox] > best { best = plane[bottom + 2 * ox]; index = bottom + 2 * ox }
                    if plane[bottom + 2 * ox + 1] > best { best = plane[bottom + 2 * ox + 1]; index = bottom + 2 * ox + 1 }
                    out[oy * ow + ox] = best
                    arg[oy * ow + ox] = Int32(index)
                }
            }
        }
    }

    /// Any window for inference, as the max over the window's rows (a contiguous pass per row)
    /// then over each output's columns: ResNet's 3x3 stride-2 pad-1 pooling without a range per
    /// window.
    private func forwardSeparable(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, planes: Int) {
        let (h, w, oh, ow) = (inputShape.height, inputShape.width, outputShape.height, outputShape.width)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: w) { rows in
            let row = rows.baseAddress!
            for p in 0..<planes {
                let plane = x + p * inputShape.spatial, out = y + p * outputShape.spatial
                for oy in 0..<oh {
                    let window = windowRange(oy, size: size, stride: stride, padding: padding, extent: h)
                    row.update(from: plane + window.lowerBound * w, count: w)
                    for iy in window.dropFirst() {
                        let source = plane + iy * w
                        forEachVector(w, { i in
                            let (a, b) = (row.vector(i), source.vector(i))
                            row.store(a.replacing(with: b, where: b .> a), i)
                        }, { row[$0] = max(row[$0], source[$0]) })
                    }
                    let o = out + oy * ow
                    for ox in 0..<ow {
                        let columns = windowRange(ox, size: size, stride: stride, padding: padding, extent: w)
                        var best = row[columns.lowerBound]
                        for ix in columns.dropFirst() { best = max(best, row[ix]) }
                        o[ox] = best
                    }
                }
            }
        }
    }

    /// 2x2 stride 2 for inference: the larger of the two rows first (a contiguous, vectorised
    /// pass), then the larger of each pair; no argmax.
    private func forward2x2Inference(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, planes: Int) {
        let (w, oh, ow) = (inputShape.width, outputShape.height, outputShape.width)
        let inPlane = inputShape.spatial, outPlane = outputShape.spatial
        withUnsafeTemporaryAllocation(of: Float.self, capacity: w) { rows in
            let row = rows.baseAddress!
            for p in 0..<planes {
                let plane = x + p * inPlane, out = y + p * outPlane
                for oy in 0..<oh {
                    let top = plane + 2 * oy * w, bottom = top + w
                    for i in 0..<(2 * ow) { row[i] = max(top[i], bottom[i]) }
                    let o = out + oy * ow
                    for ox in 0..<ow { o[ox] = max(row[2 * ox], row[2 * ox + 1]) }
                }
            }
        }
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        guard let dx else { return }
        let planes = batch * inputShape.channels
        let inPlane = inputShape.spatial, outPlane = outputShape.spatial
        dx.update(repeating: 0, count: planes * inPlane)
        argmax.withUnsafeBufferPointer { arg in
            for p in 0..<planes {
                for o in 0..<outPlane { dx[p * inPlane + Int(arg[p * outPlane + o])] += dy[p * outPlane + o] }
            }
        }
    }
}

/// Average pooling over k x k windows (stride defaults to k). With padding, the divisor is
/// the window's size when `countPadding` (PyTorch's default), else the inputs it covers
/// (ONNX's default).
/// x: [N, C, H, W] -> y: [N, C, (H + 2p - k) / s + 1, (W + 2p - k) / s + 1]
final class AvgPool: Layer {
    let inputShape: TensorShape
    let outputShape: TensorShape
    let size: Int, stride: Int, padding: Int, countPadding: Bool
    var token: String { Architecture.describe(.avgPool(size: size, stride: stride, padding: padding, countPadding: countPadding)) }
    var parameterSpecs: [ParameterSpec] { [] }

    init(input: TensorShape, size: Int, stride: Int, padding: Int = 0, countPadding: Bool = false) {
        inputShape = input
        self.size = size
        self.stride = stride
        self.padding = padding
        self.countPadding = countPadding
        outputShape = pooledShape(input, size: size, stride: stride, padding: padding)
    }

    /// 1 / the divisor of the window at (oy, ox).
    @inline(__always)
    private func scale(_ rows: Range<Int>, _ columns: Range<Int>) -> Float {
        countPadding ? 1 / Float(size * size) : 1 / Float(rows.count * columns.count)
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        let (h, w, oh, ow) = (inputShape.height, inputShape.width, outputShape.height, outputShape.width)
        for p in 0..<(batch * inputShape.channels) {
            let plane = x + p * inputShape.spatial
            for oy in 0..<oh {
                let rows = windowRange(oy, size: size, stride: stride, padding: padding, extent: h)
                for ox in 0..<ow {
                    let columns = windowRange(ox, size: size, stride: stride, padding: padding, extent: w)
                    var sum: Float = 0
                    for iy in rows {
                        for ix in columns { sum += plane[iy * w + ix] }
                    }
                    y[(p * oh + oy) * ow + ox] = sum * scale(rows, columns)
                }
            }
        }
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        guard let dx else { return }
        let (h, w, oh, ow) = (inputShape.height, inputShape.width, outputShape.height, outputShape.width)
        let planes = batch * inputShape.channels
        dx.update(repeating: 0, count: planes * inputShape.spatial)
        for p in 0..<planes {
            let plane = dx + p * inputShape.spatial
            for oy in 0..<oh {
                let rows = windowRange(oy, size: size, stride: stride, padding: padding, extent: h)
                for ox in 0..<ow {
                    let columns = windowRange(ox, size: size, stride: stride, padding: padding, extent: w)
                    let g = dy[(p * oh + oy) * ow + ox] * scale(rows, columns)
                    for iy in rows {
                        for ix in columns { plane[iy * w + ix] += g }
                    }
                }
            }
        }
    }
}

/// Global average pooling: the mean of each channel.
/// x: [N, C, H, W] -> y: [N, C]
final class GlobalAvgPool: Layer {
    let inputShape: TensorShape
    let outputShape: TensorShape
    var token: String { "gap" }
    var parameterSpecs: [ParameterSpec] { [] }

    init(input: TensorShape) {
        inputShape = input
        outputShape = TensorShape(channels: input.channels)
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        let spatial = inputShape.spatial
        for p in 0..<(batch * inputShape.channels) {
            var sum: Float = 0
            for i in 0..<spatial { sum += x[p * spatial + i] }
            y[p] = sum / Float(spatial)
        }
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        guard let dx else { return }
        let spatial = inputShape.spatial
        for p in 0..<(batch * inputShape.channels) {
            let g = dy[p] / Float(spatial)
            for i in 0..<spatial { dx[p * spatial + i] = g }
        }
    }
}

/// Global max pooling: the largest value of each channel.
/// x: [N, C, H, W] -> y: [N, C];  dx is dy at the first position of each maximum, 0 elsewhere
final class GlobalMaxPool: Layer {
    let inputShape: TensorShape
    let outputShape: TensorShape
    var token: String { "gmp" }
    var parameterSpecs: [ParameterSpec] { [] }
    private var argmax: [Int32] = []

    init(input: TensorShape) {
        inputShape = input
        outputShape = TensorShape(channels: input.channels)
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        let spatial = inputShape.spatial, planes = batch * inputShape.channels
        if argmax.count < planes { argmax = Array(repeating: 0, count: planes) }
        for p in 0..<planes {
            let plane = x + p * spatial
            var best = plane[0], index = 0
            for i in 1..<max(spatial, 1) where plane[i] > best {
                best = plane[i]
                index = i
            }
            y[p] = best
            argmax[p] = Int32(index)
        }
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        guard let dx else { return }
        let spatial = inputShape.spatial, planes = batch * inputShape.channels
        dx.update(repeating: 0, count: planes * spatial)
        for p in 0..<planes { dx[p * spatial + Int(argmax[p])] = dy[p] }
    }
}
