// SPDX-License-Identifier: MIT
import Testing
@testable import DoppelImaging

/// A corpus of damaged files: each must give its typed error, never a crash or an exit.
@Suite struct MalformedImageTests {
    static let png = PNGEncoder.encode(Image(width: 40, height: 30, layout: .rgb, pixels: (0..<3600).map { UInt8($0 * 13 % 256) }))
    static let jpeg = try! JPEGEncoder.encode(JPEGDecoderTests.smooth(width: 40, height: 30, layout: .rgb))
    static let pgm = NetpbmEncoder.encode(width: 40, height: 30, color: false, samples: (0..<1200).map { UInt16($0 % 256) })
    static let ppmASCII = NetpbmEncoder.encode(width: 4, height: 3, color: true, samples: (0..<36).map { UInt16($0 * 7) }, ascii: true)

    static var files: [(ImageFormat, [UInt8])] { [(.png, png), (.jpeg, jpeg), (.pgm, pgm), (.ppm, ppmASCII)] }

    @Test func empty() {
        #expect(throws: ImageDecodingError.empty) { try ImageDecoder.decode([UInt8]()) }
    }

    @Test func wrongMagic() {
        #expect(throws: ImageDecodingError.unknownFormat(magic: Array("GIF89a".utf8))) {
            try ImageDecoder.decode(Array("GIF89a".utf8))
        }
        #expect(throws: ImageDecodingError.self) { try ImageDecoder.decode([0x89, 0x50, 0x4E, 0x47]) }
    }

    /// Truncated at every offset past the magic bytes (stepping through the file): the error
    /// is `.truncated` or `.corrupt` of the right format, never a crash or a silent image.
    @Test(arguments: [ImageFormat.png, .jpeg, .pgm, .ppm])
    func truncatedEverywhere(format: ImageFormat) throws {
        let bytes = Self.files.first { $0.0 == format }!.1
        var truncatedCount = 0
        let step = max(1, bytes.count / 60)
        // An ASCII Netpbm file cut inside its last number is indistinguishable from a shorter
        // sample ("245" cut to "24"), so its last few bytes are not cut.
        let lastCut = format == .ppm ? bytes.count - 4 : bytes.count - 1
        for end in Array(stride(from: 3, to: lastCut, by: step)) + [lastCut] {
            do {
                _ = try ImageDecoder.decode(Array(bytes[0..<end]))
                Issue.record("\(format) truncated to \(end) of \(bytes.count) bytes decoded without error")
            } catch .truncated(let f, _) {
                #expect(f == format)
                truncatedCount += 1
            } catch .corrupt(let f, _) {
                #expect(f == format)
            } catch .unknownFormat {
                #expect(end < 8, "only a cut inside the signature loses the format")
            } catch {
                Issue.record("\(format) truncated to \(end): unexpected \(error)")
            }
        }
        // Most cuts are in the pixel data, where the decoder must say "truncated".
        #expect(truncatedCount > 0)
    }

    @Test func pngWithBadCRC() {
        var bytes = Self.png
        bytes[29] ^= 0xFF  // last byte of IHDR's CRC (8 signature + 4 length + 4 type + 13 data)
        #expect {
            try ImageDecoder.decode(bytes)
        } throws: { error in
            guard case ImageDecodingError.corrupt(.png, let detail) = error else { return false }
            return detail.lowercased().contains("crc")
        }
        var idat = Self.png
        idat[idat.count - 13] ^= 0x55  // inside IDAT's CRC, just before the IEND chunk
        #expect(throws: ImageDecodingError.self) { try ImageDecoder.decode(idat) }
    }

    @Test func hugeDeclaredSizesAreRefusedBeforeAllocating() throws {
        // PNG: a valid 100000x100000 header, no pixel data behind it.
        var header = [UInt8]()
        header.appendBigEndian(100_000)
        header.appendBigEndian(100_000)
        header += [8, 0, 0, 0, 0]
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        png.appendBigEndian(13)
        let typed = Array("IHDR".utf8) + header
        png += typed
        png.appendBigEndian(Zlib.crc32(typed))
        png += Self.png[33...]  // the small image's IDAT and IEND
        #expect(throws: ImageDecodingError.tooManyPixels(width: 100_000, height: 100_000, limit: 40_000_000)) {
            try ImageDecoder.decode(png)
        }

        // JPEG: patch the SOF0 frame's height and width to 60000 x 60000.
        var jpeg = Self.jpeg
        let sof = zip(jpeg.indices, jpeg.dropFirst()).first { jpeg[$0.0] == 0xFF && $0.1 == 0xC0 }!.0
        jpeg[sof + 5] = 0xEA; jpeg[sof + 6] = 0x60; jpeg[sof + 7] = 0xEA; jpeg[sof + 8] = 0x60
        #expect(throws: ImageDecodingError.tooManyPixels(width: 60_000, height: 60_000, limit: 40_000_000)) {
            try ImageDecoder.decode(jpeg)
        }

        // PGM: 1e9 x 1e9 declared in a 30-byte file.
        #expect(throws: ImageDecodingError.self) { try ImageDecoder.decode(Array("P5 999999999 999999999 255\n".utf8)) }
        #expect(throws: ImageDecodingError.tooManyPixels(width: 50_000, height: 50_000, limit: 40_000_000)) {
            try ImageDecoder.decode(Array("P5 50000 50000 255\n".utf8))
        }
        // A smaller limit applies too.
        #expect(throws: ImageDecodingError.tooManyPixels(width: 40, height: 30, limit: 1000)) {
            try ImageDecoder.decode(Self.png, limits: DecodingLimits(maxPixels: 1000))
        }
    }

    @Test func zeroDimensions() {
        #expect(throws: ImageDecodingError.invalidDimensions(width: 0, height: 5)) {
            try ImageDecoder.decode(Array("P5 0 5 255\n".utf8))
        }
    }

    /// Random bytes behind each signature and on their own: any typed error, no crash.
    @Test func randomBytes() {
        var state: UInt64 = 0x1234_5678
        func random() -> UInt8 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        let prefixes: [[UInt8]] = [[], [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], [0xFF, 0xD8, 0xFF], Array("P5\n".utf8), Array("P3 ".utf8)]
        for prefix in prefixes {
            for length in [1, 7, 64, 1000] {
                let bytes = prefix + (0..<length).map { _ in random() }
                #expect(throws: ImageDecodingError.self) { try ImageDecoder.decode(bytes) }
            }
        }
        // Damage inside valid files: flip bytes in the middle of the PNG and JPEG.
        for (_, file) in [(ImageFormat.png, Self.png), (.jpeg, Self.jpeg)] {
            for position in stride(from: 20, to: file.count - 4, by: max(1, file.count / 25)) {
                var damaged = file
                damaged[position] ^= 0xA5
                damaged[position + 1] ^= 0x5A
                _ = try? ImageDecoder.decode(damaged)  // any outcome but a crash is acceptable
            }
        }
    }
}
