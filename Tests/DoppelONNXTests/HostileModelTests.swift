// SPDX-License-Identifier: MIT
@testable import DoppelNN
import Foundation
import Testing
@testable import DoppelONNX

/// Model files are input too: a file may not make the importer read outside its folder or
/// trap on a shape whose product overflows.
@Suite struct HostileModelTests {
    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value, out = [UInt8]()
        repeat {
            out.append(UInt8(value & 0x7F) | (value >= 0x80 ? 0x80 : 0))
            value >>= 7
        } while value > 0
        return out
    }

    static func field(_ number: Int, _ bytes: [UInt8]) -> [UInt8] { varint(UInt64(number << 3 | 2)) + varint(UInt64(bytes.count)) + bytes }

    /// A float TensorProto with `dims`, stored externally at `location`.
    static func externalTensor(dims: [Int], location: String) -> [UInt8] {
        var out = [UInt8]()
        for d in dims { out += varint(UInt64(1 << 3)) + varint(UInt64(d)) }
        out += varint(UInt64(2 << 3)) + varint(1)  // FLOAT
        out += field(8, Array("w".utf8))
        out += field(13, field(1, Array("location".utf8)) + field(2, Array(location.utf8)))
        out += varint(UInt64(14 << 3)) + varint(1)  // EXTERNAL
        return out
    }

    static func read(_ bytes: [UInt8], directory: String) throws -> ONNXTensor {
        try bytes.withUnsafeBytes { raw in
            var reader = ProtobufReader(raw)
            return try ONNXTensor(&reader, directory: directory)
        }
    }

    @Test(arguments: ["/etc/passwd", "../secret.bin", "weights/../../secret.bin"])
    func externalDataStaysInTheModelsFolder(location: String) {
        let tensor = Self.externalTensor(dims: [2], location: location)
        #expect {
            _ = try Self.read(tensor, directory: FileManager.default.temporaryDirectory.path)
        } throws: { "\($0)".contains("not a path inside the model's folder") }
    }

    @Test func shapesThatOverflowAreRefusedNotTrapped() throws {
        let tensor = Self.externalTensor(dims: [1 << 40, 1 << 40], location: "w.bin")
        #expect {
            _ = try Self.read(tensor, directory: FileManager.default.temporaryDirectory.path)
        } throws: { "\($0)".contains("more elements") }
        #expect(SafeTensors.elementCount([1 << 40, 1 << 40]) == nil && SafeTensors.elementCount([3, -1]) == nil && SafeTensors.elementCount([2, 3, 4]) == 24)
        // A safetensors header whose shape overflows: refused with the tensor's name.
        let header = Array(#"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}"#.utf8)
        let file = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header + [UInt8](repeating: 0, count: 16)
        #expect(throws: SafeTensorsError.self) { _ = try SafeTensors(bytes: file) }
    }
}
