// SPDX-License-Identifier: MIT
import CJPEG

/// Why an image could not be written as JPEG.
public struct JPEGEncodingError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { "JPEG encoding failed: \(message)" }
}

/// Writes gray or RGB images as JPEG through TurboJPEG: baseline or progressive, for the
/// tests' round trips and the decode benchmark's inputs.
public enum JPEGEncoder {
    public static func encode(_ image: Image, quality: Int = 90, progressive: Bool = false) throws(JPEGEncodingError) -> [UInt8] {
        guard image.layout == .gray || image.layout == .rgb else {
            throw JPEGEncodingError(message: "JPEG holds gray or RGB, not \(image.layout.name)")
        }
        guard let handle = tjInitCompress() else { throw JPEGEncodingError(message: "could not create a TurboJPEG compressor") }
        defer { tjDestroy(handle) }
        let pixelFormat = image.layout == .gray ? TJPF_GRAY : TJPF_RGB
        let subsampling = image.layout == .gray ? TJSAMP_GRAY : TJSAMP_420
        var output: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let flags = Int32(progressive ? TJFLAG_PROGRESSIVE : 0)
        let status = image.pixels.withUnsafeBufferPointer { source in
            tjCompress2(handle, source.baseAddress, Int32(image.width), 0, Int32(image.height),
                        Int32(pixelFormat.rawValue), &output, &size, Int32(subsampling.rawValue), Int32(quality), flags)
        }
        defer { if let output { tjFree(output) } }
        guard status == 0, let output else {
            throw JPEGEncodingError(message: tjGetErrorStr2(handle).map { String(cString: $0) } ?? "unknown error")
        }
        return Array(UnsafeBufferPointer(start: output, count: Int(size)))
    }
}
