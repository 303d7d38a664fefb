// SPDX-License-Identifier: MIT
import Testing
@testable import DoppelImaging

/// Every PNG kind written by `PNGEncoder`, decoded by libpng, compared sample by sample.
@Suite struct PNGDecoderTests {
    /// Deterministic samples below `2^bitDepth` for an image of the given shape.
    static func pattern(width: Int, height: Int, channels: Int, bitDepth: Int) -> [UInt16] {
        let maximum = (1 << bitDepth) - 1
        return (0..<(width * height * channels)).map { UInt16(($0 * 7919 + $0 / 3) % (maximum + 1)) }
    }

    /// What an n-bit sample becomes at 8 bits: libpng replicates low depths (1 -> 255,
    /// 4-bit 0xA -> 0xAA); 16 bits round.
    static func to8Bit(_ value: UInt16, bitDepth: Int) -> UInt8 {
        switch bitDepth {
        case 16: UInt8((UInt32(value) * 255 + 32767) / 65535)
        default: UInt8(Int(value) * 255 / ((1 << bitDepth) - 1))
        }
    }

    @Test(arguments: [1, 2, 4, 8, 16], [false, true])
    func grayAtEveryDepth(bitDepth: Int, interlaced: Bool) throws {
        let (w, h) = (13, 7)  // odd sizes exercise partial bytes and empty Adam7 passes
        let samples = Self.pattern(width: w, height: h, channels: 1, bitDepth: bitDepth)
        let file = PNGEncoder(colorType: .gray, bitDepth: bitDepth, interlaced: interlaced).encode(width: w, height: h, samples: samples)
        let image = try ImageDecoder.decode(file)
        #expect(image.layout == .gray && image.width == w && image.height == h)
        #expect(image.pixels == samples.map { Self.to8Bit($0, bitDepth: bitDepth) })
    }

    @Test(arguments: [PNGEncoder.ColorType.rgb, .rgba, .grayAlpha], [8, 16])
    func colorAndAlpha(colorType: PNGEncoder.ColorType, bitDepth: Int) throws {
        let (w, h) = (9, 5)
        var samples = Self.pattern(width: w, height: h, channels: colorType.channels, bitDepth: bitDepth)
        if colorType.channels % 2 == 0 {
            // Opaque alpha: libpng's 16-bit path premultiplies and we undo it, which is exact
            // only where alpha is full; partial alpha is checked separately below.
            for i in stride(from: colorType.channels - 1, to: samples.count, by: colorType.channels) {
                samples[i] = UInt16((1 << bitDepth) - 1)
            }
        }
        let file = PNGEncoder(colorType: colorType, bitDepth: bitDepth).encode(width: w, height: h, samples: samples)
        let image = try ImageDecoder.decode(file)
        #expect(image.layout.channels == colorType.channels)
        #expect(image.pixels == samples.map { Self.to8Bit($0, bitDepth: bitDepth) })
    }

    @Test func sixteenBitPartialAlphaRoundTripsWithinOneLevel() throws {
        let samples: [UInt16] = [65535, 0, 30000, 40000, 1000, 2000, 3000, 65535]  // two RGBA pixels
        let file = PNGEncoder(colorType: .rgba, bitDepth: 16).encode(width: 2, height: 1, samples: samples)
        let image = try ImageDecoder.decode(file)
        let expected = samples.map { Self.to8Bit($0, bitDepth: 16) }
        let worst = zip(image.pixels, expected).map { abs(Int($0) - Int($1)) }.max()!
        #expect(worst <= 1, "max difference \(worst)")
    }

    @Test(arguments: [1, 2, 4, 8], [false, true])
    func paletteWithTransparency(bitDepth: Int, interlaced: Bool) throws {
        let entries = 1 << bitDepth
        let palette: [[UInt8]] = (0..<entries).map { (i: Int) -> [UInt8] in
            [UInt8(i * 37 % 256), UInt8(i * 91 % 256), UInt8(i * 13 % 256)]
        }
        let alpha: [UInt8] = [0, 128]
        let (w, h) = (11, 6)
        let indices = (0..<(w * h)).map { UInt16($0 % entries) }
        let encoder = PNGEncoder(colorType: .palette, bitDepth: bitDepth, interlaced: interlaced, palette: palette, paletteAlpha: alpha)
        let image = try ImageDecoder.decode(encoder.encode(width: w, height: h, samples: indices))
        #expect(image.layout == .rgba)
        for (i, index) in indices.enumerated() {
            let entry = palette[Int(index)]
            let a = Int(index) < alpha.count ? alpha[Int(index)] : 255
            #expect(Array(image.pixels[(i * 4)..<(i * 4 + 4)]) == entry + [a])
        }
    }

    @Test func paletteWithoutTransparencyIsRGB() throws {
        let palette: [[UInt8]] = [[255, 0, 0], [0, 255, 0]]
        let encoder = PNGEncoder(colorType: .palette, bitDepth: 1, palette: palette)
        let image = try ImageDecoder.decode(encoder.encode(width: 2, height: 1, samples: [0, 1]))
        #expect(image.layout == .rgb)
        #expect(image.pixels == [255, 0, 0, 0, 255, 0])
    }

    @Test func encodeImageRoundTrips() throws {
        for layout in PixelLayout.allCases {
            let pixels = (0..<(17 * 3 * layout.channels)).map { UInt8($0 * 31 % 256) }
            let image = Image(width: 17, height: 3, layout: layout, pixels: pixels)
            #expect(try ImageDecoder.decode(PNGEncoder.encode(image)) == image)
        }
    }
}
