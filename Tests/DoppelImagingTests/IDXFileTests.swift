// SPDX-License-Identifier: MIT
import Testing
@testable import DoppelImaging

@Suite struct IDXFileTests {
    static func idx(dimensions: [Int], data: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, 0x08, UInt8(dimensions.count)]
        for d in dimensions { bytes.appendBigEndian(UInt32(d)) }
        return bytes + data
    }

    @Test func plainAndGzipped() throws {
        let plain = Self.idx(dimensions: [2, 2, 3], data: Array(0..<12))
        let file = try IDXFile(bytes: plain)
        #expect(file.dimensions == [2, 2, 3] && file.data == Array(0..<12))
        let gzipped = Zlib.deflate(plain, container: .gzip)
        #expect(Zlib.isGzip(gzipped))
        #expect(try IDXFile(bytes: gzipped).data == Array(0..<12))
    }

    @Test func errors() {
        #expect(throws: IDXError.badMagic(path: "<memory>")) { try IDXFile(bytes: [1, 2, 3, 4]) }
        #expect(throws: IDXError.unsupportedType(path: "<memory>", code: 0x0D)) { try IDXFile(bytes: [0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]) }
        #expect(throws: IDXError.truncated(path: "<memory>", expected: 12, got: 5)) {
            try IDXFile(bytes: Self.idx(dimensions: [3, 4], data: [1, 2, 3, 4, 5]))
        }
    }

    @Test func truncatedGzipIsAnError() throws {
        let gzipped = Zlib.deflate(Array(repeating: 7, count: 5000), container: .gzip)
        #expect(throws: ZlibError.truncated) { try Zlib.inflate(Array(gzipped.prefix(gzipped.count / 2))) }
        #expect(throws: ZlibError.outputTooLarge(limit: 100)) { try Zlib.inflate(gzipped, maxOutputBytes: 100) }
    }
}
