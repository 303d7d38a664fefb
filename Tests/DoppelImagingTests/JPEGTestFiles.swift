// SPDX-License-Identifier: MIT
import CJPEG
@testable import DoppelImaging

/// JPEG kinds the product's encoder does not write, made with TurboJPEG directly.
enum JPEGTestFiles {
    static func cmyk(width: Int, height: Int) throws -> [UInt8] {
        guard let handle = tjInitCompress() else { throw JPEGEncodingError(message: "no compressor") }
        defer { tjDestroy(handle) }
        let pixels = (0..<(width * height * 4)).map { UInt8($0 % 256) }
        var output: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let status = pixels.withUnsafeBufferPointer { source in
            tjCompress2(handle, source.baseAddress, Int32(width), 0, Int32(height), Int32(TJPF_CMYK.rawValue),
                        &output, &size, Int32(TJSAMP_444.rawValue), 90, 0)
        }
        defer { if let output { tjFree(output) } }
        guard status == 0, let output else { throw JPEGEncodingError(message: "CMYK encode failed") }
        return Array(UnsafeBufferPointer(start: output, count: Int(size)))
    }
}
