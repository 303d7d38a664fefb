// SPDX-License-Identifier: MIT

/// Why bytes are not a protobuf message of the expected shape.
public struct ProtobufError: Error, Equatable, Sendable, CustomStringConvertible {
    public let offset: Int
    public let detail: String
    public var description: String { "malformed protobuf at byte \(offset): \(detail)" }
}

/// A reader of the protobuf wire format (protobuf.dev, "Encoding"): a message is a sequence
/// of (field number, wire type) tags, each followed by a varint, a fixed 32- or 64-bit
/// value, or a length-delimited run of bytes (strings, bytes, sub-messages, packed arrays).
/// ONNX files are one `ModelProto`; this reads only what the importer needs and skips the rest.
struct ProtobufReader {
    enum WireType: UInt64 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, startGroup = 3, endGroup = 4, fixed32 = 5
    }

    let bytes: UnsafeRawBufferPointer
    private(set) var position: Int
    let end: Int

    init(_ bytes: UnsafeRawBufferPointer, range: Range<Int>? = nil) {
        self.bytes = bytes
        position = range?.lowerBound ?? 0
        end = range?.upperBound ?? bytes.count
    }

    var isAtEnd: Bool { position >= end }

    func error(_ detail: String) -> ONNXImportError { .malformed(ProtobufError(offset: position, detail: detail)) }

    mutating func readVarint() throws(ONNXImportError) -> UInt64 {
        var result: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard position < end else { throw error("varint runs past the end") }
            let byte = bytes[position]
            position += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            guard shift < 64 else { throw error("varint longer than 10 bytes") }
        }
    }

    /// The next field's number and wire type, or nil at the end of the message.
    mutating func readTag() throws(ONNXImportError) -> (field: Int, type: WireType)? {
        guard !isAtEnd else { return nil }
        let key = try readVarint()
        guard let type = WireType(rawValue: key & 7) else { throw error("unknown wire type \(key & 7)") }
        guard key >> 3 > 0, key >> 3 < 1 << 29 else { throw error("field number \(key >> 3) out of range") }
        return (Int(key >> 3), type)
    }

    /// The byte range of a length-delimited field, consumed.
    mutating func readLengthDelimited() throws(ONNXImportError) -> Range<Int> {
        let length = try readVarint()
        guard length <= UInt64(end - position) else { throw error("length \(length) runs past the end") }
        let range = position..<(position + Int(length))
        position += Int(length)
        return range
    }

    mutating func readFixed32() throws(ONNXImportError) -> UInt32 {
        guard end - position >= 4 else { throw error("fixed32 runs past the end") }
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(bytes[position + i]) << (8 * UInt32(i)) }
        position += 4
        return value
    }

    mutating func readFixed64() throws(ONNXImportError) -> UInt64 {
        guard end - position >= 8 else { throw error("fixed64 runs past the end") }
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        position += 8
        return value
    }

    mutating func readString() throws(ONNXImportError) -> String {
        let range = try readLengthDelimited()
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// A sub-message's reader, consumed from this one.
    mutating func readMessage() throws(ONNXImportError) -> ProtobufReader {
        ProtobufReader(bytes, range: try readLengthDelimited())
    }

    mutating func skip(_ type: WireType) throws(ONNXImportError) {
        switch type {
        case .varint: _ = try readVarint()
        case .fixed64: _ = try readFixed64()
        case .fixed32: _ = try readFixed32()
        case .lengthDelimited: _ = try readLengthDelimited()
        case .startGroup, .endGroup: throw error("groups are not used by ONNX")
        }
    }

    /// A repeated int64 field: packed (one length-delimited run) or one varint per tag.
    mutating func readInt64s(_ type: WireType, into values: inout [Int64]) throws(ONNXImportError) {
        if type == .lengthDelimited {
            var packed = ProtobufReader(bytes, range: try readLengthDelimited())
            while !packed.isAtEnd { values.append(Int64(bitPattern: try packed.readVarint())) }
        } else {
            values.append(Int64(bitPattern: try readVarint()))
        }
    }

    /// A repeated float field: packed or one fixed32 per tag.
    mutating func readFloats(_ type: WireType, into values: inout [Float]) throws(ONNXImportError) {
        if type == .lengthDelimited {
            var packed = ProtobufReader(bytes, range: try readLengthDelimited())
            while !packed.isAtEnd { values.append(Float(bitPattern: try packed.readFixed32())) }
        } else {
            values.append(Float(bitPattern: try readFixed32()))
        }
    }

    /// A repeated double field: packed or one fixed64 per tag.
    mutating func readDoubles(_ type: WireType, into values: inout [Double]) throws(ONNXImportError) {
        if type == .lengthDelimited {
            var packed = ProtobufReader(bytes, range: try readLengthDelimited())
            while !packed.isAtEnd { values.append(Double(bitPattern: try packed.readFixed64())) }
        } else {
            values.append(Double(bitPattern: try readFixed64()))
        }
    }
}
