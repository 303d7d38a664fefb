// SPDX-License-Identifier: MIT

/// Separable resampling of planar Float images: area averaging when an axis shrinks (every
/// source pixel contributes in proportion to its overlap, so thin strokes survive a 4x
/// reduction instead of aliasing away), bilinear with pixel-centre alignment when it grows.
struct Resampler {
    /// For one axis: output index -> contributing (source index, weight), weights summing to 1.
    struct AxisWeights {
        typealias Tap = (index: Int, weight: Float)
        let taps: [[Tap]]

        init(from source: Int, to target: Int) {
            precondition(source > 0 && target > 0)
            if target == source {
                taps = (0..<target).map { [Tap(index: $0, weight: 1)] }
            } else if target < source {
                let scale = Double(source) / Double(target)
                taps = (0..<target).map { i -> [Tap] in
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
                let scale = Double(source) / Double(target)
                taps = (0..<target).map { i -> [Tap] in
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

    /// Resizes `channels` planes of `width x height` to `newWidth x newHeight`.
    static func resize(planes: [Float], channels: Int, width: Int, height: Int, newWidth: Int, newHeight: Int) -> [Float] {
        if width == newWidth && height == newHeight { return planes }
        let horizontal = AxisWeights(from: width, to: newWidth)
        let vertical = AxisWeights(from: height, to: newHeight)
        var rowsDone = [Float](repeating: 0, count: channels * height * newWidth)
        var out = [Float](repeating: 0, count: channels * newHeight * newWidth)
        planes.withUnsafeBufferPointer { src in
            rowsDone.withUnsafeMutableBufferPointer { mid in
                for c in 0..<channels {
                    for y in 0..<height {
                        let s = (c * height + y) * width, d = (c * height + y) * newWidth
                        for x in 0..<newWidth {
                            var sum: Float = 0
                            for tap in horizontal.taps[x] { sum += src[s + tap.index] * tap.weight }
                            mid[d + x] = sum
                        }
                    }
                }
            }
        }
        rowsDone.withUnsafeBufferPointer { mid in
            out.withUnsafeMutableBufferPointer { dst in
                for c in 0..<channels {
                    for y in 0..<newHeight {
                        let d = (c * newHeight + y) * newWidth
                        for tap in vertical.taps[y] {
                            let s = (c * height + tap.index) * newWidth
                            for x in 0..<newWidth { dst[d + x] += mid[s + x] * tap.weight }
                        }
                    }
                }
            }
        }
        return out
    }
}

extension Image {
    /// Planar Float copy (`[C, H, W]`, values 0...255).
    public func planes() -> [Float] {
        let channels = layout.channels
        var out = [Float](repeating: 0, count: pixelCount * channels)
        for i in 0..<pixelCount {
            for c in 0..<channels { out[c * pixelCount + i] = Float(pixels[i * channels + c]) }
        }
        return out
    }

    /// The image at a new size: area averaging when shrinking, bilinear when growing.
    public func resized(width newWidth: Int, height newHeight: Int) -> Image {
        precondition(newWidth > 0 && newHeight > 0, "resize target must have at least one pixel")
        if newWidth == width && newHeight == height { return self }
        let channels = layout.channels
        let resized = Resampler.resize(planes: planes(), channels: channels, width: width, height: height,
                                       newWidth: newWidth, newHeight: newHeight)
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
