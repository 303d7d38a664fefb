// SPDX-License-Identifier: MIT
import DoppelImaging
import Foundation

/// Where a face's chip is cut from an image and how it is resampled, as dlib does it
/// (dlib/image_transforms/interpolation.h: get_face_chip_details, extract_image_chips): the
/// five landmarks are matched to a template by a similarity transform, which gives the chip's
/// rectangle and angle; the chip is then read by bilinear interpolation from the image, or
/// from a level of a 2:1 Gaussian pyramid when it is much smaller than its rectangle, so that
/// shrinking does not alias.
public struct FaceChip: Sendable, Equatable {
    /// The chip's rectangle in the image (before rotation) and its rotation in radians.
    public var rect: FaceBox
    public var angle: Double
    public var size: Int

    /// dlib's 5-point template (right eye outer and inner corners, left eye outer and inner,
    /// nose), in [0, 1] chip coordinates before padding.
    static let template = [FacePoint(x: 0.8595674595992, y: 0.2134981538014), FacePoint(x: 0.6460604764104, y: 0.2289674387677),
                           FacePoint(x: 0.1205750620789, y: 0.2137274526848), FacePoint(x: 0.3340850613712, y: 0.2290642403242),
                           FacePoint(x: 0.4901123135679, y: 0.6277975316475)]

    /// The chip of `size` x `size` for five landmarks, `padding` of the face's size around it.
    public init(landmarks: [FacePoint], size: Int, padding: Double) {
        precondition(landmarks.count == 5, "the chip template is for 5 landmarks")
        let chipPoints = Self.template.map { p in FacePoint(x: (padding + p.x) / (2 * padding + 1), y: (padding + p.y) / (2 * padding + 1)) * Double(size) }
        let tform = AffineTransform.similarity(from: chipPoints, to: landmarks)
        let (a, c) = (tform.m.a, tform.m.c)
        angle = atan2(c, a)
        let scale = (a * a + c * c).squareRoot()
        rect = FaceBox.centered(at: tform(FacePoint(x: Double(size) / 2, y: Double(size) / 2)), width: Double(size) * scale, height: Double(size) * scale)
        self.size = size
    }

    /// dlib's pyramid_down<2> mapping of a rectangle one level down.
    private static func down(_ r: FaceBox) -> FaceBox {
        FaceBox(left: r.left / 2 - 1.25, top: r.top / 2 - 0.75, right: r.right / 2 - 1.25, bottom: r.bottom / 2 - 0.75)
    }

    /// The chip's pixels, RGB interleaved, `size` x `size`, from an RGB image.
    public func extract(from image: Image) -> Image {
        precondition(image.layout == .rgb)
        let area = Double(size * size)
        var depth = 0, grow = 2.0
        var shrunk = Self.down(rect)
        while shrunk.area > area {
            shrunk = Self.down(shrunk)
            depth += 1
            grow = grow * 2 + 2
        }
        // The rotated rectangle's bounding box, grown by the border the pyramid's filter
        // needs, inside the image: only this part is read (and filtered).
        let center = rect.center
        var rotated = FaceBox.empty
        for corner in [rect.topLeft, rect.topRight, rect.bottomLeft, rect.bottomRight] {
            let p = rotate(corner, about: center, by: angle)
            rotated = rotated.union(FaceBox(left: p.x, top: p.y, right: p.x, bottom: p.y))
        }
        let imageBox = FaceBox(left: 0, top: 0, right: Double(image.width - 1), bottom: Double(image.height - 1))
        let bounds = rotated.grown(by: grow).intersection(imageBox).rounded
        guard !bounds.isEmpty else { return Image(width: size, height: size, layout: .rgb) }
        var source = Self.crop(image, bounds)
        var levels = [Image?]()
        if depth > 0 {
            var level: Image? = source
            for _ in 0..<depth {
                level = level.flatMap(Self.pyramidDown)
                levels.append(level)
            }
        }
        var level = -1
        var inSource = rect.translated(by: FacePoint(x: -bounds.left, y: -bounds.top))
        while Self.down(inSource).area > area {
            level += 1
            inSource = Self.down(inSource)
        }
        if level >= 0 {
            guard level < levels.count, let chosen = levels[level] else { return Image(width: size, height: size, layout: .rgb) }
            source = chosen
        }
        let sourceCenter = inSource.center
        let last = Double(size - 1)
        let map = AffineTransform.affine(
            from: [FacePoint(x: 0, y: 0), FacePoint(x: last, y: 0), FacePoint(x: 0, y: last)],
            to: [rotate(inSource.topLeft, about: sourceCenter, by: angle), rotate(inSource.topRight, about: sourceCenter, by: angle),
                 rotate(inSource.bottomLeft, about: sourceCenter, by: angle)])
        return Self.bilinear(source, size: size, map: map)
    }

    /// The part of an image inside a box of whole pixels.
    static func crop(_ image: Image, _ box: FaceBox) -> Image {
        let (left, top) = (Int(box.left), Int(box.top))
        let (width, height) = (Int(box.width), Int(box.height))
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        image.pixels.withUnsafeBufferPointer { source in
            for row in 0..<height {
                let from = ((top + row) * image.width + left) * 3
                for i in 0..<(width * 3) { pixels[row * width * 3 + i] = source[from + i] }
            }
        }
        return Image(width: width, height: height, layout: .rgb, pixels: pixels)
    }

    /// Each output pixel read at `map(column, row)` by bilinear interpolation, each channel
    /// truncated to a byte as dlib assigns it; black where the four neighbours are not all
    /// inside the source.
    static func bilinear(_ source: Image, size: Int, map: AffineTransform) -> Image {
        var out = [UInt8](repeating: 0, count: size * size * 3)
        let (width, height) = (source.width, source.height)
        source.pixels.withUnsafeBufferPointer { s in
            for row in 0..<size {
                for column in 0..<size {
                    let p = map(FacePoint(x: Double(column), y: Double(row)))
                    let (fx, fy) = (p.x.rounded(.down), p.y.rounded(.down))
                    guard fx >= 0, fy >= 0, fx + 1 < Double(width), fy + 1 < Double(height) else { continue }
                    let (left, top) = (Int(fx), Int(fy))
                    let (lr, tb) = (p.x - fx, p.y - fy)
                    for c in 0..<3 {
                        let tl = Double(s[(top * width + left) * 3 + c]), tr = Double(s[(top * width + left + 1) * 3 + c])
                        let bl = Double(s[((top + 1) * width + left) * 3 + c]), br = Double(s[((top + 1) * width + left + 1) * 3 + c])
                        let value = (1 - tb) * ((1 - lr) * tl + lr * tr) + tb * ((1 - lr) * bl + lr * br)
                        out[(row * size + column) * 3 + c] = UInt8(max(0, min(255, value)).rounded(.towardZero))
                    }
                }
            }
        }
        return Image(width: size, height: size, layout: .rgb, pixels: out)
    }

    /// dlib's pyramid_down<2> for RGB: a separable [1 4 6 4 1] filter, every other row and
    /// column kept, (rows - 3) / 2 x (columns - 3) / 2; nil below 9 pixels a side.
    static func pyramidDown(_ image: Image) -> Image? {
        let (rows, columns) = (image.height, image.width)
        guard rows > 8, columns > 8 else { return nil }
        let (outRows, outColumns) = ((rows - 3) / 2, (columns - 3) / 2)
        // Row filter: rows x outColumns sums of five taps (at most 16 x 255, fits in 16 bits).
        var temp = [UInt32](repeating: 0, count: rows * outColumns * 3)
        image.pixels.withUnsafeBufferPointer { p in
            for r in 0..<rows {
                for c in 0..<outColumns {
                    let base = (r * columns + 2 * c) * 3
                    for ch in 0..<3 {
                        temp[(r * outColumns + c) * 3 + ch] = UInt32(p[base + ch]) + 4 * UInt32(p[base + 3 + ch]) + 6 * UInt32(p[base + 6 + ch])
                            + 4 * UInt32(p[base + 9 + ch]) + UInt32(p[base + 12 + ch])
                    }
                }
            }
        }
        var out = [UInt8](repeating: 0, count: outRows * outColumns * 3)
        var dr = 0
        var r = 2
        while r < rows - 2 && dr < outRows {
            for c in 0..<outColumns {
                for ch in 0..<3 {
                    let i = { (row: Int) in temp[(row * outColumns + c) * 3 + ch] }
                    let sum = i(r - 2) + 4 * i(r - 1) + 6 * i(r) + 4 * i(r + 1) + i(r + 2)
                    out[(dr * outColumns + c) * 3 + ch] = UInt8(sum / 256)
                }
            }
            dr += 1
            r += 2
        }
        return Image(width: outColumns, height: outRows, layout: .rgb, pixels: out)
    }
}
