// SPDX-License-Identifier: MIT
import Foundation

/// Why an IDX file (the MNIST / Fashion-MNIST container) could not be read.
public enum IDXError: Error, Equatable, Sendable, CustomStringConvertible {
    case badMagic(path: String)
    case unsupportedType(path: String, code: UInt8)
    case truncated(path: String, expected: Int, got: Int)

    public var description: String {
        switch self {
        case .badMagic(let path): "\(path): not an IDX file (magic must start with two zero bytes)"
        case .unsupportedType(let path, let code):
            "\(path): IDX element type 0x\(String(code, radix: 16)) is not supported (only unsigned bytes, 0x08)"
        case .truncated(let path, let expected, let got): "\(path): IDX data has \(got) of \(expected) bytes"
        }
    }
}

/// An IDX array of unsigned bytes (LeCun's format: 2 zero bytes, type 0x08, rank, then
/// big-endian UInt32 dimensions and the data), read from a plain or gzipped file.
public struct IDXFile: Sendable {
    public let dimensions: [Int]
    public let data: [UInt8]

    public init(bytes input: [UInt8], path: String = "<memory>") throws {
        let bytes = Zlib.isGzip(input) ? try Zlib.inflate(input) : input
        guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0 else { throw IDXError.badMagic(path: path) }
        guard bytes[2] == 0x08 else { throw IDXError.unsupportedType(path: path, code: bytes[2]) }
        let rank = Int(bytes[3])
        let headerSize = 4 + 4 * rank
        guard bytes.count >= headerSize else { throw IDXError.truncated(path: path, expected: headerSize, got: bytes.count) }
        var dimensions = [Int]()
        for d in 0..<rank {
            let o = 4 + 4 * d
            dimensions.append(Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3]))
        }
        let expected = dimensions.reduce(1, *)
        guard bytes.count - headerSize >= expected else {
            throw IDXError.truncated(path: path, expected: expected, got: bytes.count - headerSize)
        }
        self.dimensions = dimensions
        self.data = Array(bytes[headerSize..<(headerSize + expected)])
    }

    public init(contentsOf url: URL) throws {
        try self.init(bytes: [UInt8](try Data(contentsOf: url)), path: url.path)
    }
}
