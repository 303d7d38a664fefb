// SPDX-License-Identifier: MIT

extension Image {
    /// The same picture in another layout. Colour to gray uses ITU-R BT.601 luma
    /// (0.299 R + 0.587 G + 0.114 B), as Pillow's `convert("L")` does; dropping alpha discards
    /// it without compositing (also Pillow's behaviour), and adding alpha makes it opaque.
    public func converted(to target: PixelLayout) -> Image {
        if target == layout { return self }
        let source = layout.channels
        var out = [UInt8](repeating: 0, count: pixelCount * target.channels)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<pixelCount {
                    let s = i * source
                    let gray: UInt8
                    let (r, g, b): (UInt8, UInt8, UInt8)
                    if layout.isColor {
                        (r, g, b) = (src[s], src[s + 1], src[s + 2])
                        let luma: Int = 299 * Int(r) + 587 * Int(g) + 114 * Int(b)
                        gray = UInt8((luma + 500) / 1000)
                    } else {
                        gray = src[s]
                        (r, g, b) = (gray, gray, gray)
                    }
                    let alpha = layout.hasAlpha ? src[s + source - 1] : 255
                    let d = i * target.channels
                    switch target {
                    case .gray: dst[d] = gray
                    case .grayAlpha: dst[d] = gray; dst[d + 1] = alpha
                    case .rgb: dst[d] = r; dst[d + 1] = g; dst[d + 2] = b
                    case .rgba: dst[d] = r; dst[d + 1] = g; dst[d + 2] = b; dst[d + 3] = alpha
                    }
                }
            }
        }
        return Image(width: width, height: height, layout: target, pixels: out)
    }
}
