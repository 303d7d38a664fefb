// SPDX-License-Identifier: MIT
import Foundation
import Testing
@testable import DoppelImaging

@Suite struct JPEGDecoderTests {
    /// A smooth picture: JPEG keeps it within a few levels, so a round trip is checkable.
    static func smooth(width: Int, height: Int, layout: PixelLayout) -> Image {
        var image = Image(width: width, height: height, layout: layout)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<layout.channels {
                    image[x, y, c] = UInt8(128 + 80 * sin(Double(x + 2 * y + 20 * c) / 15))
                }
            }
        }
        return image
    }

    static func meanAbsoluteError(_ a: Image, _ b: Image) -> Double {
        Double(zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +)) / Double(a.pixels.count)
    }

    @Test(arguments: [PixelLayout.gray, .rgb], [false, true])
    func roundTrip(layout: PixelLayout, progressive: Bool) throws {
        let original = Self.smooth(width: 64, height: 48, layout: layout)
        let bytes = try JPEGEncoder.encode(original, quality: 95, progressive: progressive)
        let decoded = try ImageDecoder.decode(bytes)
        #expect(decoded.layout == layout && decoded.width == 64 && decoded.height == 48)
        let error = Self.meanAbsoluteError(original, decoded)
        #expect(error < 3, "mean absolute error \(error)")
    }

    @Test func progressiveIsReallyProgressive() throws {
        let bytes = try JPEGEncoder.encode(Self.smooth(width: 32, height: 32, layout: .rgb), progressive: true)
        // SOF2 (0xFFC2) marks a progressive frame (ITU T.81 Table B.1).
        let hasSOF2 = zip(bytes, bytes.dropFirst()).contains { $0 == 0xFF && $1 == 0xC2 }
        #expect(hasSOF2)
    }

    @Test func cmykIsRefusedWithAClearError() throws {
        // Make a CMYK JPEG with TurboJPEG: encode a 4-channel buffer as TJPF_CMYK.
        let bytes = try JPEGTestFiles.cmyk(width: 8, height: 8)
        #expect {
            try ImageDecoder.decode(bytes)
        } throws: { error in
            guard case ImageDecodingError.unsupported(.jpeg, let detail) = error else { return false }
            return detail.contains("CMYK")
        }
    }
}
