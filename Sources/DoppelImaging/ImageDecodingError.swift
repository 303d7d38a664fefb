// SPDX-License-Identifier: MIT

/// Why bytes could not become an `Image`. Every decoder failure is one of these: a decoder
/// never traps or exits on input, whatever the bytes are.
public enum ImageDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Zero bytes.
    case empty
    /// The first bytes match no supported format.
    case unknownFormat(magic: [UInt8])
    /// The header declares more pixels than the limit; nothing was allocated for them.
    case tooManyPixels(width: Int, height: Int, limit: Int)
    /// The header declares a zero or otherwise impossible size.
    case invalidDimensions(width: Int, height: Int)
    /// The data ends before the image does.
    case truncated(format: ImageFormat, detail: String)
    /// The format is recognised but the content is damaged (bad CRC, bad Huffman table, ...).
    case corrupt(format: ImageFormat, detail: String)
    /// A valid file of a kind Doppel does not accept (CMYK JPEG, PAM, ...).
    case unsupported(format: ImageFormat, detail: String)

    public var description: String {
        switch self {
        case .empty:
            return "image is empty (0 bytes)"
        case .unknownFormat(let magic):
            let hex = magic.prefix(8).map { String($0, radix: 16).leftPadded(to: 2) }.joined(separator: " ")
            return "unrecognised image format (first bytes: \(hex)); expected PNG, JPEG, PGM or PPM"
        case .tooManyPixels(let w, let h, let limit):
            return "image declares \(w)x\(h) = \(w * h) pixels, over the limit of \(limit); nothing was decoded"
        case .invalidDimensions(let w, let h):
            return "image declares an invalid size \(w)x\(h)"
        case .truncated(let format, let detail):
            return "\(format.name) data is truncated: \(detail)"
        case .corrupt(let format, let detail):
            return "\(format.name) data is corrupt: \(detail)"
        case .unsupported(let format, let detail):
            return "unsupported \(format.name): \(detail)"
        }
    }
}

extension String {
    func leftPadded(to length: Int, with pad: Character = "0") -> String {
        count >= length ? self : String(repeating: pad, count: length - count) + self
    }
}
