// SPDX-License-Identifier: MIT
// DoppelImaging owns everything between image bytes and a model's Float input: format
// sniffing, decoding (PNG via libpng, JPEG via libjpeg-turbo, PGM/PPM and IDX in Swift),
// colour conversion, resizing, normalisation, and PNG encoding for reports. It knows nothing
// of networks, galleries or HTTP.

/// How the interleaved channels of an `Image` are laid out.
public enum PixelLayout: Int, Sendable, Codable, CaseIterable {
    case gray = 1
    case grayAlpha = 2
    case rgb = 3
    case rgba = 4

    /// Samples per pixel.
    public var channels: Int { rawValue }
    public var hasAlpha: Bool { self == .grayAlpha || self == .rgba }
    public var isColor: Bool { self == .rgb || self == .rgba }

    public var name: String {
        switch self {
        case .gray: "gray"
        case .grayAlpha: "gray+alpha"
        case .rgb: "rgb"
        case .rgba: "rgba"
        }
    }
}

/// A decoded raster: 8 bits per sample, rows top to bottom, channels interleaved.
///
/// Sources with 16-bit samples are scaled to 8 bits with rounding (`v * 255 / 65535`): the
/// networks here see 8 bits of precision at most, and one representation keeps every later
/// step (conversion, resize, contact sheets) single-pathed.
public struct Image: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let layout: PixelLayout
    /// `width * height * layout.channels` samples.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, layout: PixelLayout, pixels: [UInt8]) {
        precondition(width > 0 && height > 0, "an image has at least one pixel")
        precondition(pixels.count == width * height * layout.channels, "pixel buffer does not match the shape")
        self.width = width
        self.height = height
        self.layout = layout
        self.pixels = pixels
    }

    /// A blank image filled with `value` in every sample.
    public init(width: Int, height: Int, layout: PixelLayout, filledWith value: UInt8 = 0) {
        self.init(width: width, height: height, layout: layout,
                  pixels: [UInt8](repeating: value, count: width * height * layout.channels))
    }

    public var pixelCount: Int { width * height }

    /// The sample of channel `c` at column `x`, row `y`.
    @inlinable public subscript(x: Int, y: Int, c: Int) -> UInt8 {
        get { pixels[(y * width + x) * layout.channels + c] }
        set { pixels[(y * width + x) * layout.channels + c] = newValue }
    }

    /// "105x105 gray": the short description used in counts and messages.
    public var shapeDescription: String { "\(width)x\(height) \(layout.name)" }
}

extension Image {
    /// The image mirrored left to right.
    public func mirrored() -> Image {
        let channels = layout.channels
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels { out[(y * width + width - 1 - x) * channels + c] = pixels[(y * width + x) * channels + c] }
            }
        }
        return Image(width: width, height: height, layout: layout, pixels: out)
    }

    /// The image turned `quarterTurns` quarter turns clockwise (negative: anticlockwise).
    public func rotated(quarterTurns: Int) -> Image {
        let turns = ((quarterTurns % 4) + 4) % 4
        guard turns != 0 else { return self }
        let channels = layout.channels
        let (newWidth, newHeight) = turns == 2 ? (width, height) : (height, width)
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<height {
            for x in 0..<width {
                // Where source pixel (x, y) lands.
                let (nx, ny): (Int, Int)
                switch turns {
                case 1: (nx, ny) = (height - 1 - y, x)
                case 2: (nx, ny) = (width - 1 - x, height - 1 - y)
                default: (nx, ny) = (y, width - 1 - x)
                }
                for c in 0..<channels { out[(ny * newWidth + nx) * channels + c] = pixels[(y * width + x) * channels + c] }
            }
        }
        return Image(width: newWidth, height: newHeight, layout: layout, pixels: out)
    }
}
