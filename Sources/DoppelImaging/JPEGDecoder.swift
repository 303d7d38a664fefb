// SPDX-License-Identifier: MIT
import CJPEG

/// JPEG through libjpeg-turbo's TurboJPEG API, which returns error codes instead of calling
/// libjpeg's longjmp-based `error_exit`. Baseline and progressive, grayscale and YCbCr;
/// CMYK and YCCK are refused rather than guessed at.
enum JPEGDecoder {
    static func decode(_ bytes: [UInt8], limits: DecodingLimits) throws(ImageDecodingError) -> Image {
        guard let handle = tjInitDecompress() else {
            throw .corrupt(format: .jpeg, detail: "could not create a TurboJPEG decompressor")
        }
        defer { tjDestroy(handle) }

        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let headerStatus = bytes.withUnsafeBufferPointer { buffer in
            tjDecompressHeader3(handle, buffer.baseAddress, UInt(buffer.count), &width, &height, &subsampling, &colorspace)
        }
        guard headerStatus == 0 else { throw failure(handle) }
        // TurboJPEG reports success with a 0x0 size when the data ends before the frame header.
        guard width > 0, height > 0 else {
            throw .truncated(format: .jpeg, detail: "data ends before the frame header (SOF)")
        }
        try limits.check(width: Int(width), height: Int(height))

        let layout: PixelLayout
        let pixelFormat: TJPF
        switch TJCS(rawValue: UInt32(colorspace)) {
        case TJCS_GRAY:
            layout = .gray
            pixelFormat = TJPF_GRAY
        case TJCS_CMYK, TJCS_YCCK:
            throw .unsupported(format: .jpeg, detail: "CMYK/YCCK JPEG; convert it to RGB (for example with `convert in.jpg -colorspace sRGB out.jpg`)")
        default:
            layout = .rgb
            pixelFormat = TJPF_RGB
        }

        var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * layout.channels)
        // STOPONWARNING: a truncated stream is an error, not a grey-filled image.
        // LIMITSCANS: refuse progressive files with hostile scan counts (CVE-2018-11813 class).
        let flags = Int32(TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS)
        let status = bytes.withUnsafeBufferPointer { source in
            pixels.withUnsafeMutableBufferPointer { out in
                tjDecompress2(handle, source.baseAddress, UInt(source.count), out.baseAddress,
                              width, 0, height, Int32(pixelFormat.rawValue), flags)
            }
        }
        guard status == 0 else { throw failure(handle) }
        return Image(width: Int(width), height: Int(height), layout: layout, pixels: pixels)
    }

    private static func failure(_ handle: tjhandle) -> ImageDecodingError {
        let message = tjGetErrorStr2(handle).map { String(cString: $0) } ?? "unknown TurboJPEG error"
        let lowered = message.lowercased()
        if lowered.contains("premature end") || lowered.contains("truncat") || lowered.contains("insufficient data") {
            return .truncated(format: .jpeg, detail: message)
        }
        return .corrupt(format: .jpeg, detail: message)
    }
}
