// SPDX-License-Identifier: MIT
import Testing
@testable import DoppelImaging

@Suite struct NetpbmDecoderTests {
    static let kinds: [(color: Bool, ascii: Bool)] = [(false, false), (false, true), (true, false), (true, true)]

    @Test(arguments: kinds, [255, 65535, 1000])
    func roundTrip(kind: (color: Bool, ascii: Bool), maxval: Int) throws {
        let (color, ascii) = kind
        let (w, h) = (7, 5)
        let samples = (0..<(w * h * (color ? 3 : 1))).map { UInt16($0 * 4099 % (maxval + 1)) }
        let bytes = NetpbmEncoder.encode(width: w, height: h, color: color, samples: samples, maxval: maxval, ascii: ascii,
                                         comment: "made by a test")
        #expect(ImageFormat.sniff(bytes) == (color ? .ppm : .pgm))
        let image = try ImageDecoder.decode(bytes)
        #expect(image.layout == (color ? .rgb : .gray))
        #expect(image.pixels == samples.map { UInt8((Int($0) * 255 + maxval / 2) / maxval) })
    }

    @Test func commentsAnywhereInTheHeader() throws {
        let text = "P2\n# a comment\n3 # width\n# between\n1\n255\n0 128\n255\n"
        let image = try ImageDecoder.decode(Array(text.utf8))
        #expect(image.width == 3 && image.height == 1 && image.pixels == [0, 128, 255])
    }

    @Test func sampleAboveMaxvalIsCorrupt() {
        let bytes = Array("P2 2 1 10 5 11".utf8)
        #expect(throws: ImageDecodingError.corrupt(format: .pgm, detail: "sample 11 exceeds maxval 10")) {
            try ImageDecoder.decode(bytes)
        }
    }
}
