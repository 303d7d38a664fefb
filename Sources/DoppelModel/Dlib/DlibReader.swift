// SPDX-License-Identifier: MIT
import Foundation

/// Why a dlib file cannot be read: where in the file, and what was expected there.
public enum DlibFormatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file ended inside a value.
    case truncated(offset: Int, expected: String)
    /// A value that breaks dlib's format at `offset`.
    case malformed(offset: Int, expected: String, found: String)
    /// A network layer whose serialized name Doppel does not read.
    case unsupportedLayer(name: String, offset: Int, supported: [String])
    /// Layers Doppel reads, in an arrangement it cannot turn into a network.
    case unsupportedStructure(String)
    /// None of the dlib models Doppel imports (a network, a shape predictor).
    case unrecognized(String)

    public var description: String {
        switch self {
        case .truncated(let offset, let expected): "the file ends at byte \(offset), inside \(expected)"
        case .malformed(let offset, let expected, let found): "at byte \(offset): expected \(expected), found \(found)"
        case .unsupportedLayer(let name, let offset, let supported):
            "layer '\(name)' at byte \(offset) is not one doppel imports; supported: \(supported.joined(separator: ", "))"
        case .unsupportedStructure(let detail): "the network's structure is not one doppel imports: \(detail)"
        case .unrecognized(let detail): "not a dlib model doppel imports: \(detail)"
        }
    }
}

/// dlib's portable serialization (dlib/serialize.h), one reader per wire type, each checking
/// what is left and refusing with the offset and what was expected:
/// - integers: a control byte (bit 7 the sign for signed types, the low 4 bits the length,
///   1 to 8) and that many little-endian bytes of the magnitude;
/// - floating point: `float_details`, a signed 64-bit mantissa and a signed 16-bit exponent
///   (value = mantissa x 2^exponent; exponents 32000, 32001, 32002 are inf, -inf and NaN);
/// - strings and vectors: an unsigned length, then the bytes or the elements;
/// - bool: the character '0' or '1';
/// - tensors (dlib/cuda/tensor.h): version 2, four signed dimensions, then the values as
///   little-endian IEEE floats; an alias tensor is version 1 and the dimensions alone;
/// - matrices: minus the rows, minus the columns, then the elements row by row.
struct DlibReader {
    let bytes: [UInt8]
    private(set) var offset = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset >= bytes.count }

    /// The next byte without taking it.
    var peek: UInt8? { isAtEnd ? nil : bytes[offset] }

    private mutating func take(_ count: Int, _ what: String) throws(DlibFormatError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.count - offset else { throw .truncated(offset: offset, expected: what) }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    /// A signed integer.
    mutating func integer(_ what: String) throws(DlibFormatError) -> Int {
        let start = offset
        let control = try take(1, what).first!
        let length = Int(control & 0x0F)
        guard length >= 1, length <= 8, control & 0x70 == 0 else {
            throw .malformed(offset: start, expected: "\(what) (an integer's control byte)", found: String(format: "0x%02x", control))
        }
        var magnitude: UInt64 = 0
        for (shift, byte) in try take(length, what).enumerated() { magnitude |= UInt64(byte) << (8 * UInt64(shift)) }
        guard magnitude <= UInt64(Int.max) else { throw .malformed(offset: start, expected: what, found: "a value past Int's range") }
        return control & 0x80 != 0 ? -Int(magnitude) : Int(magnitude)
    }

    /// An unsigned integer.
    mutating func unsigned(_ what: String) throws(DlibFormatError) -> Int {
        let start = offset
        let value = try integer(what)
        guard value >= 0 else { throw .malformed(offset: start, expected: "\(what) (unsigned)", found: "\(value)") }
        return value
    }

    /// A float or double, through float_details.
    mutating func float(_ what: String) throws(DlibFormatError) -> Double {
        let start = offset
        guard let first = peek else { throw .truncated(offset: offset, expected: what) }
        // dlib's older text format for floats starts with an ASCII character (0x70 bits set).
        guard first & 0x70 == 0 else { throw .malformed(offset: start, expected: "\(what) (a binary float)", found: "text") }
        let mantissa = try integer(what), exponent = try integer(what)
        switch exponent {
        case 32000: return .infinity
        case 32001: return -.infinity
        case 32002: return .nan
        case -32768...32767: return Double(sign: mantissa < 0 ? .minus : .plus, exponent: exponent, significand: Double(mantissa.magnitude))
        default: throw .malformed(offset: start, expected: "\(what) (a 16-bit exponent)", found: "\(exponent)")
        }
    }

    mutating func string(_ what: String) throws(DlibFormatError) -> String {
        let length = try unsigned("the length of \(what)")
        guard length <= 4096 else { throw .malformed(offset: offset, expected: "\(what) (a short name)", found: "\(length) bytes") }
        return String(decoding: try take(length, what), as: UTF8.self)
    }

    mutating func bool(_ what: String) throws(DlibFormatError) -> Bool {
        let start = offset
        switch try take(1, what).first! {
        case UInt8(ascii: "1"): return true
        case UInt8(ascii: "0"): return false
        case let other: throw .malformed(offset: start, expected: "\(what) ('0' or '1')", found: String(format: "0x%02x", other))
        }
    }

    /// A version number and that it is one of `accepted`.
    mutating func version(_ what: String, _ accepted: ClosedRange<Int>) throws(DlibFormatError) -> Int {
        let start = offset
        let version = try integer("the version of \(what)")
        guard accepted.contains(version) else {
            throw .malformed(offset: start, expected: "\(what) version \(accepted.lowerBound)...\(accepted.upperBound)", found: "\(version)")
        }
        return version
    }

    /// A tensor's shape [N, K, rows, columns] and its values.
    mutating func tensor(_ what: String) throws(DlibFormatError) -> (shape: [Int], values: [Float]) {
        _ = try version("the tensor \(what)", 2...2)
        let shape = try (0..<4).map { _ throws(DlibFormatError) in try integer("a dimension of \(what)") }
        guard shape.allSatisfy({ $0 >= 0 && $0 <= 1 << 28 }), shape.reduce(1, { $0 * $1 }) <= 1 << 28 else {
            throw .malformed(offset: offset, expected: "the dimensions of \(what)", found: "\(shape)")
        }
        let count = shape.reduce(1, *)
        let raw = try take(4 * count, "the \(count) values of \(what)")
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            raw.withUnsafeBytes { source in
                for i in 0..<count { buffer[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            }
            initialized = count
        }
        return (shape, values)
    }

    /// An alias tensor: a shape only (a view into a layer's parameters).
    mutating func aliasShape(_ what: String) throws(DlibFormatError) -> [Int] {
        _ = try version("the alias tensor \(what)", 1...1)
        return try (0..<4).map { _ throws(DlibFormatError) in try integer("a dimension of \(what)") }
    }

    /// A matrix of floats: its rows, columns and values row by row.
    mutating func matrix(_ what: String) throws(DlibFormatError) -> (rows: Int, columns: Int, values: [Float]) {
        let rows = abs(try integer("the rows of \(what)")), columns = abs(try integer("the columns of \(what)"))
        guard rows * columns <= 1 << 24 else { throw .malformed(offset: offset, expected: "the size of \(what)", found: "\(rows)x\(columns)") }
        let values = try (0..<(rows * columns)).map { _ throws(DlibFormatError) in Float(try float("an element of \(what)")) }
        return (rows, columns, values)
    }

    /// A vector's length.
    mutating func count(_ what: String, atMost limit: Int = 1 << 24) throws(DlibFormatError) -> Int {
        let start = offset
        let count = try unsigned("the length of \(what)")
        guard count <= limit else { throw .malformed(offset: start, expected: "\(what) of at most \(limit)", found: "\(count)") }
        return count
    }
}
