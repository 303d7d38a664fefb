// SPDX-License-Identifier: MIT
import Foundation
import Testing
@testable import DoppelImaging

/// What a header promises before decoding, and the budget reserved from it.
@Suite struct ImageBudgetTests {
    /// The header's size and channels are the decoder's, and `decodingBytes` covers the
    /// decoded image, for every format and sample width.
    @Test func headersSayWhatDecodingMakes() throws {
        let noise = ImageProcessingTests.noise(width: 37, height: 23, layout: .rgb, seed: 5)
        let files: [(String, [UInt8])] = [
            ("png rgb", PNGEncoder.encode(noise)),
            ("png gray 16", PNGEncoder(colorType: .gray, bitDepth: 16).encode(width: 37, height: 23, samples: (0..<(37 * 23)).map { UInt16($0 * 60) })),
            ("png rgba 16", PNGEncoder(colorType: .rgba, bitDepth: 16).encode(width: 5, height: 3, samples: (0..<60).map { UInt16($0 * 999) })),
            ("jpeg", try JPEGEncoder.encode(noise)),
            ("jpeg progressive", try JPEGEncoder.encode(noise.converted(to: .gray), progressive: true)),
            ("ppm", NetpbmEncoder.encode(noise)),
            ("pgm plain 16", NetpbmEncoder.encode(width: 4, height: 3, color: false, samples: (0..<12).map { UInt16($0 * 3000) }, maxval: 65535, ascii: true)),
        ]
        for (name, bytes) in files {
            let header = try ImageHeader.read(bytes)
            let image = try ImageDecoder.decode(bytes)
            #expect(header.width == image.width && header.height == image.height, "\(name)")
            #expect(header.channels >= image.layout.channels, "\(name)")
            #expect(header.decodingBytes >= image.pixels.count, "\(name)")
        }
    }

    @Test func headersAreCheckedAgainstTheLimitsAndForDamage() {
        let big = PNGEncoder.encode(Image(width: 300, height: 200, layout: .gray))
        #expect(throws: ImageDecodingError.tooManyPixels(width: 300, height: 200, limit: 50_000)) { try ImageHeader.read(big, limits: DecodingLimits(maxPixels: 50_000)) }
        #expect(throws: ImageDecodingError.self) { try ImageHeader.read(Array(big.prefix(20))) }
        #expect(throws: ImageDecodingError.self) { try ImageHeader.read([0xFF, 0xD8, 0xFF, 0xDA, 0, 2]) }
        #expect(throws: ImageDecodingError.empty) { try ImageHeader.read([]) }
    }

    /// An 18-byte PPM header declaring 5000 x 5000 is refused as truncated before its 75 MB
    /// raster is set aside, binary or plain.
    @Test func aNetpbmHeaderCannotReserveWhatItsDataCannotFill() {
        for magic in ["P6", "P3"] {
            let file = Array("\(magic)\n5000 5000\n255\n".utf8) + [1, 2, 3]
            #expect(throws: ImageDecodingError.self) { try ImageDecoder.decode(file) }
            do { _ = try ImageDecoder.decode(file) } catch {
                guard case .truncated = error else { Issue.record("\(magic): \(error)"); continue }
            }
        }
    }

    @Test func theBudgetReservesWaitsAndRefuses() throws {
        let budget = ImageMemoryBudget(bytes: 100)
        #expect(throws: ImageMemoryBudget.Refusal.tooLarge(needed: 101, capacity: 100)) { try budget.tryReserve(101) }
        let first = try #require(try budget.tryReserve(60))
        #expect(try budget.tryReserve(50) == nil && budget.inUse == 60)
        #expect(throws: ImageMemoryBudget.Refusal.busy(needed: 50, capacity: 100)) { try budget.reserve(50, waitingAtMost: 50) }
        // A waiter gets the room as soon as it is given back.
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.1) { first.release() }
        let second = try budget.reserve(50, waitingAtMost: 5000)
        #expect(budget.inUse == 50)
        second.release()
        second.release()  // once only
        #expect(budget.inUse == 0)
    }
}
