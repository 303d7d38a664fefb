// SPDX-License-Identifier: MIT

/// Separable resampling of 8-bit interleaved images into planar Float: area averaging when an
/// axis shrinks (every source pixel contributes in proportion to its overlap, so thin strokes
/// survive a 4x reduction instead of aliasing away), bilinear with pixel-centre alignment when
/// it grows.
///
/// Memory is bounded by the images, not by their shapes: of the two pass orders the one with
/// the smaller intermediate runs (source height x target width, or target height x source
/// width, in floats per channel). The product of those two is source size x target size, so
/// the smaller is at most the geometric mean of the two sizes, and never more than the larger
/// of them: a 1 x 999,999 strip resized to 112 x 112 holds 112 floats in between, not 112
/// million. Only a window of the scaled picture is computed (what `crop` keeps), so scaling a
/// tall strip up to cover the target costs the target, not the strip's scaled size.
struct Resampler {
    /// For one axis: output index -> contributing (source index, weight), weights summing to 1.
    struct AxisWeights {
        typealias Tap = (index: Int, weight: Float)
        let taps: [[Tap]]

        /// Taps of outputs `window` of an axis scaled from `source` to `target` samples.
        init(from source: Int, to target: Int, window: Range<Int>? = nil, filter: InputSpec.Resampling = .area) {
            precondition(source > 0 && target > 0)
            let outputs = window ?? 0..<target
            precondition(outputs.lowerBound >= 0 && outputs.upperBound <= target)
            let scale = Double(source) / Double(target)
            if filter == .bicubic {
                taps = outputs.map { Self.bicubicTaps(output: $0, source: source, scale: scale) }
            } else if target == source {
                taps = outputs.map { [Tap(index: $0, weight: 1)] }
            } else if target < source {
                taps = outputs.map { i -> [Tap] in
                    let start = Double(i) * scale, end = Double(i + 1) * scale
                    var row: [Tap] = []
                    var j = Int(start)
                    while Double(j) < end, j < source {
                        let overlap = min(end, Double(j + 1)) - max(start, Double(j))
                        if overlap > 1e-9 { row.append(Tap(index: j, weight: Float(overlap / scale))) }
                        j += 1
                    }
                    return row
                }
            } else {
                taps = outputs.map { i -> [Tap] in
                    let position = min(max((Double(i) + 0.5) * scale - 0.5, 0), Double(source - 1))
                    let left = Int(position)
                    let right = min(left + 1, source - 1)
                    let t = Float(position - Double(left))
                    if t == 0 || left == right { return [Tap(index: left, weight: 1)] }
                    return [Tap(index: left, weight: 1 - t), Tap(index: right, weight: t)]
                }
            }
        }

        /// Pillow's bicubic (Image.resize(..., BICUBIC), ImagingResample's precompute_coeffs):
        /// the cubic convolution kernel with a = -0.5 over the output pixel's centre, widened
        /// by the reduction factor when shrinking (so every source pixel contributes), weights
        /// normalised to sum 1. Pillow rounds to 8 bits between the passes; this keeps floats.
        static func bicubicTaps(output: Int, source: Int, scale: Double) -> [Tap] {
            func cubic(_ x: Double) -> Double {
                let a = -0.5, x = abs(x)
                if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
                if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
                return 0
            }
            let widen = max(scale, 1), support = 2 * widen
            let centre = (Double(output) + 0.5) * scale
            let first = max(Int(centre - support + 0.5), 0), last = min(Int(centre + support + 0.5), source)
            var weights = [(Int, Double)](), total = 0.0
            for j in first..<max(first, last) {
                let w = cubic((Double(j) - centre + 0.5) / widen)
                if w != 0 { weights.append((j, w)) }
                total += w
            }
            guard total != 0 else { return [Tap(index: min(max(Int(centre), 0), source - 1), weight: 1)] }
            return weights.map { Tap(index: $0.0, weight: Float($0.1 / total)) }
        }
    }

    /// Which pass runs first.
    enum PassOrder { case rowsFirst, columnsFirst }

    /// The order with the smaller intermediate for a `width x height` source and an output of
    /// `outWidth x outHeight`, and that intermediate's size in floats per channel.
    /// With `rowsWhenBounded`, rows first whenever that intermediate is within the larger of
    /// the two images (Pillow's order, which bicubic follows to give Pillow's pixels).
    static func passOrder(width: Int, height: Int, outWidth: Int, outHeight: Int, rowsWhenBounded: Bool = false) -> (order: PassOrder, floatsPerChannel: Int) {
        if rowsWhenBounded, height * outWidth <= max(width * height, outWidth * outHeight) { return (.rowsFirst, height * outWidth) }
        return height * outWidth <= outHeight * width ? (.rowsFirst, height * outWidth) : (.columnsFirst, outHeight * width)
    }

    /// `image` scaled to `newWidth x newHeight`, of which only `columns` x `rows` are computed:
    /// planar `[C, rows.count, columns.count]` floats, values 0...255. `order` is for tests.
    static func resize(_ image: Image, width newWidth: Int, height newHeight: Int,
                       columns: Range<Int>? = nil, rows: Range<Int>? = nil, order: PassOrder? = nil,
                       filter: InputSpec.Resampling = .area) -> [Float] {
        let columns = columns ?? 0..<newWidth, rows = rows ?? 0..<newHeight
        let channels = image.layout.channels
        let width = image.width, height = image.height
        let outWidth = columns.count, outHeight = rows.count
        let horizontal = AxisWeights(from: width, to: newWidth, window: columns, filter: filter)
        let vertical = AxisWeights(from: height, to: newHeight, window: rows, filter: filter)
        let order = order ?? passOrder(width: width, height: height, outWidth: outWidth, outHeight: outHeight, rowsWhenBounded: filter == .bicubic).order
        var out = [Float](repeating: 0, count: channels * outHeight * outWidth)
        // Pillow resamples 8-bit images in 8 bits: each pass's result rounded and clipped to
        // 0...255, which cuts the cubic's overshoot at hard edges. Bicubic does the same, so
        // its pixels are Pillow's.
        let eightBit = filter == .bicubic
        func quantise(_ values: UnsafeMutableBufferPointer<Float>) {
            for i in values.indices { values[i] = min(max((values[i] + 0.5).rounded(.down), 0), 255) }
        }
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                if order == .rowsFirst {
                    // Rows first: [C, height, outWidth] in between.
                    var middle = [Float](repeating: 0, count: channels * height * outWidth)
                    middle.withUnsafeMutableBufferPointer { mid in
                        for y in 0..<height {
                            let s = y * width * channels
                            for x in 0..<outWidth {
                                for c in 0..<channels {
                                    var sum: Float = 0
                                    for tap in horizontal.taps[x] { sum += Float(src[s + tap.index * channels + c]) * tap.weight }
                                    mid[(c * height + y) * outWidth + x] = sum
                                }
                            }
                        }
                        if eightBit { quantise(mid) }
                        for c in 0..<channels {
                            for y in 0..<outHeight {
                                let d = (c * outHeight + y) * outWidth
                                for tap in vertical.taps[y] {
                                    let s = (c * height + tap.index) * outWidth
                                    for x in 0..<outWidth { dst[d + x] += mid[s + x] * tap.weight }
                                }
                            }
                        }
                    }
                } else {
                    // Columns first: [C, outHeight, width] in between.
                    var middle = [Float](repeating: 0, count: channels * outHeight * width)
                    middle.withUnsafeMutableBufferPointer { mid in
                        for y in 0..<outHeight {
                            for tap in vertical.taps[y] {
                                let s = tap.index * width * channels
                                for x in 0..<width {
                                    for c in 0..<channels { mid[(c * outHeight + y) * width + x] += Float(src[s + x * channels + c]) * tap.weight }
                                }
                            }
                        }
                        if eightBit { quantise(mid) }
                        for c in 0..<channels {
                            for y in 0..<outHeight {
                                let s = (c * outHeight + y) * width, d = (c * outHeight + y) * outWidth
                                for x in 0..<outWidth {
                                    var sum: Float = 0
                                    for tap in horizontal.taps[x] { sum += mid[s + tap.index] * tap.weight }
                                    dst[d + x] = sum
                                }
                            }
                        }
                    }
                }
            }
        }
        if eightBit { out.withUnsafeMutableBufferPointer { quantise($0) } }
        return out
    }
}

extension Image {
    /// The image at a new size: area averaging when shrinking, bilinear when growing.
    public func resized(width newWidth: Int, height newHeight: Int) -> Image {
        precondition(newWidth > 0 && newHeight > 0, "resize target must have at least one pixel")
        if newWidth == width && newHeight == height { return self }
        let channels = layout.channels
        let resized = Resampler.resize(self, width: newWidth, height: newHeight)
        let count = newWidth * newHeight
        var out = [UInt8](repeating: 0, count: count * channels)
        for i in 0..<count {
            for c in 0..<channels {
                out[i * channels + c] = UInt8(min(max(resized[c * count + i].rounded(), 0), 255))
            }
        }
        return Image(width: newWidth, height: newHeight, layout: layout, pixels: out)
    }
}
