// SPDX-License-Identifier: MIT

/// PGM (P2, P5) and PPM (P3, P6) in Swift, following the Netpbm format pages: a magic number,
/// width, height and maxval separated by whitespace with `#` comments to end of line, one
/// whitespace byte, then the raster (binary: 1 byte per sample below maxval 256, else 2
/// bytes big-endian; ASCII: decimal samples).
enum NetpbmDecoder {
    /// The header alone: size, channels and sample width.
    static func header(_ bytes: [UInt8]) throws(ImageDecodingError) -> ImageHeader {
        var reader = Reader(bytes: bytes)
        let kind = bytes[1]
        let format: ImageFormat = (kind == UInt8(ascii: "2") || kind == UInt8(ascii: "5")) ? .pgm : .ppm
        reader.offset = 2
        let width = try reader.readHeaderInteger(format: format, field: "width")
        let height = try reader.readHeaderInteger(format: format, field: "height")
        let maxval = try reader.readHeaderInteger(format: format, field: "maxval")
        return ImageHeader(format: format, width: width, height: height, channels: format == .pgm ? 1 : 3, bytesPerSample: maxval < 256 ? 1 : 2)
    }

    static func decode(_ bytes: [UInt8], limits: DecodingLimits) throws(ImageDecodingError) -> Image {
        var reader = Reader(bytes: bytes)
        let kind = bytes[1]
        let format: ImageFormat = (kind == UInt8(ascii: "2") || kind == UInt8(ascii: "5")) ? .pgm : .ppm
        let isBinary = kind == UInt8(ascii: "5") || kind == UInt8(ascii: "6")
        let layout: PixelLayout = format == .pgm ? .gray : .rgb
        reader.offset = 2

        let width = try reader.readHeaderInteger(format: format, field: "width")
        let height = try reader.readHeaderInteger(format: format, field: "height")
        let maxval = try reader.readHeaderInteger(format: format, field: "maxval")
        guard (1...65535).contains(maxval) else {
            throw .corrupt(format: format, detail: "maxval \(maxval) is outside 1...65535")
        }
        try limits.check(width: width, height: height)
        let samples = width * height * layout.channels
        // The raster must be able to hold the samples before memory is set aside for them: an
        // 18-byte header cannot make the decoder allocate what its data could never fill.
        let rasterBytes = bytes.count - reader.offset
        let bytesPerSample = maxval < 256 ? 1 : 2
        if isBinary, rasterBytes - 1 < samples * bytesPerSample {
            throw .truncated(format: format, detail: "raster has \(max(0, rasterBytes - 1)) of \(samples * bytesPerSample) bytes")
        }
        // A plain (ASCII) sample takes a digit and a separator, the last one perhaps only a digit.
        if !isBinary, rasterBytes < 2 * samples - 1 {
            throw .truncated(format: format, detail: "raster of \(rasterBytes) bytes cannot hold \(samples) plain samples")
        }

        var pixels = [UInt8](repeating: 0, count: samples)
        let scale = { (value: Int) -> UInt8 in UInt8((value * 255 + maxval / 2) / maxval) }
        if isBinary {
            // Exactly one whitespace byte separates maxval from the raster.
            guard reader.offset < bytes.count, ImageFormat.isNetpbmSeparator(bytes[reader.offset]), bytes[reader.offset] != UInt8(ascii: "#") else {
                throw .truncated(format: format, detail: "no raster after the header")
            }
            reader.offset += 1
            let needed = samples * bytesPerSample
            guard bytes.count - reader.offset >= needed else {
                throw .truncated(format: format, detail: "raster has \(bytes.count - reader.offset) of \(needed) bytes")
            }
            var at = reader.offset
            for i in 0..<samples {
                let value = bytesPerSample == 1 ? Int(bytes[at]) : Int(bytes[at]) << 8 | Int(bytes[at + 1])
                guard value <= maxval else { throw .corrupt(format: format, detail: "sample \(value) exceeds maxval \(maxval)") }
                pixels[i] = bytesPerSample == 1 && maxval == 255 ? bytes[at] : scale(value)
                at += bytesPerSample
            }
        } else {
            for i in 0..<samples {
                guard let value = try reader.readRasterInteger(format: format) else {
                    throw .truncated(format: format, detail: "raster has \(i) of \(samples) samples")
                }
                guard value <= maxval else { throw .corrupt(format: format, detail: "sample \(value) exceeds maxval \(maxval)") }
                pixels[i] = scale(value)
            }
        }
        return Image(width: width, height: height, layout: layout, pixels: pixels)
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func skipWhitespaceAndComments() {
            while offset < bytes.count {
                let byte = bytes[offset]
                if byte == UInt8(ascii: "#") {
                    while offset < bytes.count, bytes[offset] != 0x0A, bytes[offset] != 0x0D { offset += 1 }
                } else if ImageFormat.isNetpbmSeparator(byte) {
                    offset += 1
                } else {
                    return
                }
            }
        }

        /// A decimal integer, or nil at the end of data.
        mutating func readDecimal(format: ImageFormat, field: String) throws(ImageDecodingError) -> Int? {
            skipWhitespaceAndComments()
            guard offset < bytes.count else { return nil }
            var value = 0
            var digits = 0
            while offset < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset]) {
                value = value * 10 + Int(bytes[offset] - UInt8(ascii: "0"))
                digits += 1
                offset += 1
                // Anything with more digits than this is over every limit we have anyway.
                guard digits <= 9 else { throw .corrupt(format: format, detail: "\(field) has too many digits") }
            }
            guard digits > 0 else {
                throw .corrupt(format: format, detail: "expected a decimal \(field) at byte \(offset)")
            }
            return value
        }

        mutating func readHeaderInteger(format: ImageFormat, field: String) throws(ImageDecodingError) -> Int {
            guard let value = try readDecimal(format: format, field: field) else {
                throw .truncated(format: format, detail: "header ends before the \(field)")
            }
            return value
        }

        mutating func readRasterInteger(format: ImageFormat) throws(ImageDecodingError) -> Int? {
            try readDecimal(format: format, field: "sample")
        }
    }
}
