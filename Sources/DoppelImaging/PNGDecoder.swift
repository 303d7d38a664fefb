// SPDX-License-Identifier: MIT
import CPNG

/// PNG through libpng's simplified API (`png_image_*`). It reports failure through a return
/// code and a message instead of longjmp, which Swift cannot survive, and it expands every
/// colour type, bit depth and interlace method to interleaved 8- or 16-bit samples.
enum PNGDecoder {
    /// The IEND chunk as it always is: zero length, type, CRC (ISO/IEC 15948 §11.2.5).
    private static let endChunk: [UInt8] = [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]

    static func decode(_ bytes: [UInt8], limits: DecodingLimits) throws(ImageDecodingError) -> Image {
        // libpng stops reading after the last IDAT, so a file cut after its pixels would pass;
        // a PNG ends with IEND (§5.6), and one without it is truncated.
        guard containsEndChunk(bytes) else { throw .truncated(format: .png, detail: "no IEND chunk at the end") }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        let began = bytes.withUnsafeBytes { raw in
            png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count)
        }
        guard began != 0 else { throw failure(of: &image) }
        // From here on libpng holds memory until finish_read or png_image_free.
        let width = Int(image.width), height = Int(image.height)
        do {
            try limits.check(width: width, height: height)
        } catch {
            png_image_free(&image)
            throw error
        }

        // Keep the file's own channels (gray, gray+alpha, rgb, rgba); palettes are expanded.
        let nativeFormat = image.format & ~UInt32(PNG_FORMAT_FLAG_COLORMAP)
        let isSixteenBit = nativeFormat & UInt32(PNG_FORMAT_FLAG_LINEAR) != 0
        let layout = pixelLayout(of: nativeFormat)
        image.format = nativeFormat
        let samples = width * height * layout.channels

        if isSixteenBit {
            // Asking libpng for 8-bit output from a 16-bit file would apply the sRGB curve
            // (the simplified API assumes 16-bit data is linear); asking for 16-bit keeps the
            // values, and the scaling to 8 bits below is exact rounding.
            var wide = [UInt16](repeating: 0, count: samples)
            let ok = wide.withUnsafeMutableBytes { out in
                png_image_finish_read(&image, nil, out.baseAddress, 0, nil)
            }
            guard ok != 0 else { throw failure(of: &image) }
            if layout.hasAlpha { unpremultiply(&wide, channels: layout.channels) }
            let pixels = wide.map { UInt8((UInt32($0) * 255 + 32767) / 65535) }
            return Image(width: width, height: height, layout: layout, pixels: pixels)
        } else {
            var pixels = [UInt8](repeating: 0, count: samples)
            let ok = pixels.withUnsafeMutableBytes { out in
                png_image_finish_read(&image, nil, out.baseAddress, 0, nil)
            }
            guard ok != 0 else { throw failure(of: &image) }
            return Image(width: width, height: height, layout: layout, pixels: pixels)
        }
    }

    /// IEND usually ends the file; tolerate trailing bytes after it, as libpng does.
    private static func containsEndChunk(_ bytes: [UInt8]) -> Bool {
        let tail = bytes.suffix(4096)
        guard tail.count >= endChunk.count else { return false }
        var start = tail.endIndex - endChunk.count
        while start >= tail.startIndex {
            if tail[start..<(start + endChunk.count)].elementsEqual(endChunk) { return true }
            start -= 1
        }
        return false
    }

    private static func pixelLayout(of format: UInt32) -> PixelLayout {
        let color = format & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
        let alpha = format & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0
        switch (color, alpha) {
        case (false, false): return .gray
        case (false, true): return .grayAlpha
        case (true, false): return .rgb
        case (true, true): return .rgba
        }
    }

    /// libpng's linear formats carry colour premultiplied by alpha; undo it so 16-bit files
    /// decode to the same straight-alpha values as 8-bit ones.
    private static func unpremultiply(_ samples: inout [UInt16], channels: Int) {
        for base in stride(from: 0, to: samples.count, by: channels) {
            let alpha = UInt32(samples[base + channels - 1])
            guard alpha > 0, alpha < 65535 else { continue }
            for c in 0..<(channels - 1) {
                let straight = (UInt32(samples[base + c]) * 65535 + alpha / 2) / alpha
                samples[base + c] = UInt16(min(straight, 65535))
            }
        }
    }

    /// libpng has already released the image's memory when it reports an error.
    private static func failure(of image: inout png_image) -> ImageDecodingError {
        let message = withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        let lowered = message.lowercased()
        if lowered.contains("beyond end") || lowered.contains("not enough") || lowered.contains("truncat")
            || lowered.contains("unexpected end") || lowered.contains("eof")
        {
            return .truncated(format: .png, detail: message)
        }
        return .corrupt(format: .png, detail: message.isEmpty ? "libpng rejected the data" : message)
    }
}
