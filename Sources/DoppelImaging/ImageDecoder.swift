// SPDX-License-Identifier: MIT
import Foundation

/// Limits checked before any pixel memory is allocated.
public struct DecodingLimits: Sendable, Equatable {
    /// Largest accepted `width * height`. Default 40 megapixels: a 40 MP RGBA image is 160 MB,
    /// the most one request may make the server allocate.
    public var maxPixels: Int
    public init(maxPixels: Int = 40_000_000) {
        self.maxPixels = maxPixels
    }

    public static let `default` = DecodingLimits()

    func check(width: Int, height: Int) throws(ImageDecodingError) {
        guard width > 0, height > 0 else { throw .invalidDimensions(width: width, height: height) }
        // Compare without multiplying first: width * height can overflow for hostile headers.
        guard width <= maxPixels, height <= maxPixels / width else {
            throw .tooManyPixels(width: width, height: height, limit: maxPixels)
        }
    }
}

/// Decodes any supported image format, chosen by the leading bytes.
///
/// Thread safety: stateless; call from any thread.
public enum ImageDecoder {
    public static func decode(_ bytes: [UInt8], limits: DecodingLimits = .default) throws(ImageDecodingError) -> Image {
        guard !bytes.isEmpty else { throw .empty }
        guard let format = ImageFormat.sniff(bytes) else {
            throw .unknownFormat(magic: Array(bytes.prefix(8)))
        }
        switch format {
        case .png: return try PNGDecoder.decode(bytes, limits: limits)
        case .jpeg: return try JPEGDecoder.decode(bytes, limits: limits)
        case .pgm, .ppm: return try NetpbmDecoder.decode(bytes, limits: limits)
        }
    }

    public static func decode(_ data: Data, limits: DecodingLimits = .default) throws(ImageDecodingError) -> Image {
        try decode([UInt8](data), limits: limits)
    }
}
