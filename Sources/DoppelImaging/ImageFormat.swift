// SPDX-License-Identifier: MIT

/// An image file format, always identified from the leading bytes, never from a file name.
public enum ImageFormat: String, Sendable, Codable, CaseIterable {
    case png
    case jpeg
    /// Netpbm grayscale (P2 ASCII, P5 binary).
    case pgm
    /// Netpbm colour (P3 ASCII, P6 binary).
    case ppm

    public var name: String {
        switch self {
        case .png: "PNG"
        case .jpeg: "JPEG"
        case .pgm: "PGM"
        case .ppm: "PPM"
        }
    }

    /// The media type a browser or client expects for it.
    public var mimeType: String {
        switch self {
        case .png: "image/png"
        case .jpeg: "image/jpeg"
        case .pgm: "image/x-portable-graymap"
        case .ppm: "image/x-portable-pixmap"
        }
    }

    /// The format whose signature starts `bytes`, or nil.
    public static func sniff<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> ImageFormat? {
        let head = Array(bytes.prefix(8))
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        // JPEG: SOI marker followed by the first marker's 0xFF (JFIF, Exif and raw streams alike).
        if head.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        // Netpbm: 'P', the kind digit, then whitespace or a comment (Netpbm spec, "magic number").
        if head.count >= 3, head[0] == UInt8(ascii: "P"), isNetpbmSeparator(head[2]) {
            switch head[1] {
            case UInt8(ascii: "2"), UInt8(ascii: "5"): return .pgm
            case UInt8(ascii: "3"), UInt8(ascii: "6"): return .ppm
            default: return nil
            }
        }
        return nil
    }

    static func isNetpbmSeparator(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0B || byte == 0x0C
            || byte == UInt8(ascii: "#")
    }
}
