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
        init(from source: Int, to target: Int, window: Range<Int>? = nil) {
            precondition(source > 0 && target > 0)
            let outputs = window ?? 0..<target
            precondition(outputs.lowerBound >= 0 && outputs.upperBound <= target)
            let scale = Double(source) / Double(target)
            if target == source {
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
    }

    /// Which pass runs first.
    enum PassOrder { case rowsFirst, columnsFirst }

    /// The order with the smaller intermediate for a `width x height` source and an output of
    /// `outWidth x outHeight`, and that intermediate's size in floats per channel.
    static func passOrder(width: Int, height: Int, outWidth: Int, outHeight: Int) -> (order: PassOrder, floatsPerChannel: Int) {
        height * outWidth <= outHeight * width ? (.rowsFirst, height * outWidth) : (.columnsFirst, outHeight * width)
    }

    /// `image` scaled to `newWidth x newHeight`, of which only `columns` x `rows` are computed:
    /// planar `[C, rows.count, columns.count]` floats, values 0...255. `order` is for tests.
    static func resize(_ image: Image, width newWidth: Int, height newHeight: Int,
                       columns: Range<Int>? = nil, rows: Range<Int>? = nil, order: PassOrder? = nil) -> [Float] {
        let columns = columns ?? 0..<newWidth, rows = rows ?? 0..<newHeight
        let channels = image.layout.channels
        let width = image.width, height = image.height
        let outWidth = columns.count, outHeight = rows.count
        let horizontal = AxisWeights(from: width, to: newWidth, window: columns)
        let vertical = AxisWeights(from: height, to: newHeight, window: rows)
        let order = order ?? passOrder(width: width, height: height, outWidth: outWidth, outHeight: outHeight).order
        var out = [Float](repeating: 0, count: channels * outHeight * outWidth)
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
