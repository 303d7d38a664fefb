// SPDX-License-Identifier: MIT

/// Writes PNG files in Swift (chunks, CRCs, filters, Adam7) with zlib for IDAT.
///
/// `encode(_:)` writes an `Image` as 8-bit gray, gray+alpha, RGB or RGBA: what reports and
/// contact sheets need. The configurable encoder writes every colour type and bit depth of
/// the PNG specification (ISO/IEC 15948 §6, §11.2.2), interlaced or not, so the tests can
/// produce each kind libpng must decode.
public struct PNGEncoder: Sendable {
    /// PNG colour types (§11.2.2 Table 11.1).
    public enum ColorType: UInt8, Sendable, CaseIterable {
        case gray = 0, rgb = 2, palette = 3, grayAlpha = 4, rgba = 6

        public var channels: Int {
            switch self {
            case .gray, .palette: 1
            case .grayAlpha: 2
            case .rgb: 3
            case .rgba: 4
            }
        }

        public var allowedBitDepths: [Int] {
            switch self {
            case .gray: [1, 2, 4, 8, 16]
            case .palette: [1, 2, 4, 8]
            case .rgb, .grayAlpha, .rgba: [8, 16]
            }
        }
    }

    public var colorType: ColorType
    public var bitDepth: Int
    public var interlaced: Bool
    /// PLTE entries, for `.palette`.
    public var palette: [[UInt8]]
    /// tRNS alpha per palette entry, for `.palette` (may be shorter than the palette).
    public var paletteAlpha: [UInt8]
    public var compressionLevel: Int32

    public init(colorType: ColorType = .gray, bitDepth: Int = 8, interlaced: Bool = false,
                palette: [[UInt8]] = [], paletteAlpha: [UInt8] = [], compressionLevel: Int32 = 6) {
        precondition(colorType.allowedBitDepths.contains(bitDepth), "bit depth \(bitDepth) is not allowed for \(colorType)")
        self.colorType = colorType
        self.bitDepth = bitDepth
        self.interlaced = interlaced
        self.palette = palette
        self.paletteAlpha = paletteAlpha
        self.compressionLevel = compressionLevel
    }

    /// An 8-bit PNG of `image` in its own layout.
    public static func encode(_ image: Image, compressionLevel: Int32 = 6) -> [UInt8] {
        let colorType: ColorType = switch image.layout {
        case .gray: .gray
        case .grayAlpha: .grayAlpha
        case .rgb: .rgb
        case .rgba: .rgba
        }
        let encoder = PNGEncoder(colorType: colorType, bitDepth: 8, compressionLevel: compressionLevel)
        return encoder.encode(width: image.width, height: image.height, samples: image.pixels.map(UInt16.init))
    }

    /// A PNG of `samples`: `width * height * colorType.channels` values, each below
    /// `2^bitDepth` (palette indices for `.palette`), rows top to bottom.
    public func encode(width: Int, height: Int, samples: [UInt16]) -> [UInt8] {
        precondition(samples.count == width * height * colorType.channels, "sample count does not match the shape")
        var file: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

        var header = [UInt8]()
        header.appendBigEndian(UInt32(width))
        header.appendBigEndian(UInt32(height))
        header += [UInt8(bitDepth), colorType.rawValue, 0, 0, interlaced ? 1 : 0]
        Self.appendChunk("IHDR", header, to: &file)
        if colorType == .palette {
            Self.appendChunk("PLTE", palette.flatMap { $0 }, to: &file)
            if !paletteAlpha.isEmpty { Self.appendChunk("tRNS", paletteAlpha, to: &file) }
        }

        var raw = [UInt8]()
        if interlaced {
            // Adam7 passes (§8.2): start column, start row, column step, row step.
            let passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
            for (x0, y0, dx, dy) in passes {
                let columns = Array(stride(from: x0, to: width, by: dx))
                guard !columns.isEmpty else { continue }
                for y in stride(from: y0, to: height, by: dy) {
                    appendRow(y: y, columns: columns, width: width, samples: samples, to: &raw)
                }
            }
        } else {
            let columns = Array(0..<width)
            for y in 0..<height { appendRow(y: y, columns: columns, width: width, samples: samples, to: &raw) }
        }
        Self.appendChunk("IDAT", Zlib.deflate(raw, level: compressionLevel), to: &file)
        Self.appendChunk("IEND", [], to: &file)
        return file
    }

    /// One scanline with filter type 0 (None), samples packed most significant bit first.
    private func appendRow(y: Int, columns: [Int], width: Int, samples: [UInt16], to raw: inout [UInt8]) {
        raw.append(0)
        let channels = colorType.channels
        if bitDepth >= 8 {
            for x in columns {
                for c in 0..<channels {
                    let value = samples[(y * width + x) * channels + c]
                    if bitDepth == 16 { raw.append(UInt8(value >> 8)) }
                    raw.append(UInt8(truncatingIfNeeded: value))
                }
            }
        } else {
            var accumulator: UInt8 = 0
            var bitsUsed = 0
            for x in columns {
                let value = UInt8(samples[y * width + x]) & UInt8((1 << bitDepth) - 1)
                accumulator |= value << (8 - bitDepth - bitsUsed)
                bitsUsed += bitDepth
                if bitsUsed == 8 {
                    raw.append(accumulator)
                    accumulator = 0
                    bitsUsed = 0
                }
            }
            if bitsUsed > 0 { raw.append(accumulator) }
        }
    }

    private static func appendChunk(_ type: String, _ data: [UInt8], to file: inout [UInt8]) {
        file.appendBigEndian(UInt32(data.count))
        let typeAndData = Array(type.utf8) + data
        file += typeAndData
        file.appendBigEndian(Zlib.crc32(typeAndData))
    }
}

extension [UInt8] {
    mutating func appendBigEndian(_ value: UInt32) {
        append(contentsOf: [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16),
                            UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)])
    }
}
