// SPDX-License-Identifier: MIT

/// What an image file says about itself before any pixel is decoded: enough to know what
/// decoding it will cost, so a server can reserve that memory (or refuse) first.
public struct ImageHeader: Sendable, Equatable {
    public var format: ImageFormat
    public var width: Int
    public var height: Int
    /// Samples per pixel as decoded (a PNG palette counts as RGBA, the most it can expand to).
    public var channels: Int
    /// Bytes per sample while decoding (2 for 16-bit PNG and PGM/PPM above maxval 255).
    public var bytesPerSample: Int

    /// Bytes decoding holds at its peak: the decoder's raster at its own depth, the 8-bit
    /// image, and for JPEG the coefficient buffer libjpeg keeps for progressive and
    /// multi-scan files (2 bytes a sample).
    public var decodingBytes: Int {
        let samples = width * height * channels
        return samples * (bytesPerSample == 1 ? 1 : bytesPerSample + 1) + (format == .jpeg ? 2 * samples : 0)
    }

    /// Reads the header of the format `bytes` start with, checking the size against `limits`.
    public static func read(_ bytes: [UInt8], limits: DecodingLimits = .default) throws(ImageDecodingError) -> ImageHeader {
        guard !bytes.isEmpty else { throw .empty }
        guard let format = ImageFormat.sniff(bytes) else { throw .unknownFormat(magic: Array(bytes.prefix(8))) }
        let header: ImageHeader
        switch format {
        case .png: header = try png(bytes)
        case .jpeg: header = try jpeg(bytes)
        case .pgm, .ppm: header = try NetpbmDecoder.header(bytes)
        }
        try limits.check(width: header.width, height: header.height)
        return header
    }

    /// IHDR, which PNG requires first (ISO/IEC 15948 §11.2.2).
    private static func png(_ bytes: [UInt8]) throws(ImageDecodingError) -> ImageHeader {
        guard bytes.count >= 29 else { throw .truncated(format: .png, detail: "no complete IHDR chunk") }
        guard Array(bytes[12..<16]) == Array("IHDR".utf8) else { throw .corrupt(format: .png, detail: "the first chunk is not IHDR") }
        func u32(_ at: Int) -> Int { bytes[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        let channels = switch bytes[25] {
        case 0: 1
        case 2: 3
        case 4: 2
        case 3, 6: 4
        default: 4
        }
        return ImageHeader(format: .png, width: u32(16), height: u32(20), channels: channels, bytesPerSample: bytes[24] == 16 ? 2 : 1)
    }

    /// The first start-of-frame marker's size and components (ITU T.81 §B.2.2), found by
    /// walking the marker segments from the start of the file.
    private static func jpeg(_ bytes: [UInt8]) throws(ImageDecodingError) -> ImageHeader {
        var at = 2
        while at + 4 <= bytes.count {
            guard bytes[at] == 0xFF else { throw .corrupt(format: .jpeg, detail: "no marker at byte \(at)") }
            let marker = bytes[at + 1]
            if marker == 0xFF { at += 1; continue }  // fill bytes
            if marker == 0x01 || (0xD0...0xD7).contains(marker) { at += 2; continue }  // no length
            let length = Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
            guard length >= 2 else { throw .corrupt(format: .jpeg, detail: "segment length \(length) at byte \(at)") }
            let isFrame = (0xC0...0xCF).contains(marker) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC
            if isFrame {
                guard at + 10 <= bytes.count else { break }
                let height = Int(bytes[at + 5]) << 8 | Int(bytes[at + 6])
                let width = Int(bytes[at + 7]) << 8 | Int(bytes[at + 8])
                return ImageHeader(format: .jpeg, width: width, height: height, channels: max(1, Int(bytes[at + 9])), bytesPerSample: 1)
            }
            if marker == 0xDA || marker == 0xD9 { throw .corrupt(format: .jpeg, detail: "image data before any frame header") }
            at += 2 + length
        }
        throw .truncated(format: .jpeg, detail: "no frame header")
    }
}
