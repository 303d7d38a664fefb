// SPDX-License-Identifier: MIT
import DoppelNN
import Foundation

/// A tensor of an ONNX file (an initializer, a Constant's value, an attribute), as floats or
/// as integers. Field numbers follow onnx.proto's `TensorProto`.
struct ONNXTensor: Equatable {
    enum DataType: Int32 {
        case float = 1, uint8 = 2, int8 = 3, int32 = 6, int64 = 7, bool = 9, float16 = 10, double = 11
    }

    var name = ""
    var dims: [Int] = []
    var dataType: Int32 = 0
    var floats: [Float] = []
    var ints: [Int64] = []
    var count: Int { dims.reduce(1, *) }
    var isInteger: Bool { dataType != DataType.float.rawValue && dataType != DataType.float16.rawValue && dataType != DataType.double.rawValue }

    /// Values as floats whatever the stored type.
    var floatValues: [Float] { isInteger ? ints.map { Float($0) } : floats }
    /// Values as integers whatever the stored type.
    var intValues: [Int64] { isInteger ? ints : floats.map { Int64($0) } }

    init(name: String = "", dims: [Int], floats: [Float]) {
        self.name = name
        self.dims = dims
        dataType = DataType.float.rawValue
        self.floats = floats
    }

    init(name: String = "", dims: [Int], ints: [Int64]) {
        self.name = name
        self.dims = dims
        dataType = DataType.int64.rawValue
        self.ints = ints
    }

    /// Reads a `TensorProto`; external data is read from `directory` (the model's folder).
    init(_ reader: inout ProtobufReader, directory: String?) throws(ONNXImportError) {
        var raw: Range<Int>? = nil, doubles = [Double](), int32s = [Int64]()
        var external = [String: String](), isExternal = false
        do {
            while let (field, type) = try reader.readTag() {
                switch field {
                case 1: var values = [Int64](); try reader.readInt64s(type, into: &values); dims += values.map { Int($0) }
                case 2: dataType = Int32(truncatingIfNeeded: try reader.readVarint())
                case 4: try reader.readFloats(type, into: &floats)
                case 5: try reader.readInt64s(type, into: &int32s)
                case 7: try reader.readInt64s(type, into: &ints)
                case 8: name = try reader.readString()
                case 9: raw = try reader.readLengthDelimited()
                case 10: try reader.readDoubles(type, into: &doubles)
                case 13:
                    var entry = try reader.readMessage(), key = "", value = ""
                    while let (entryField, entryType) = try entry.readTag() {
                        switch entryField {
                        case 1: key = try entry.readString()
                        case 2: value = try entry.readString()
                        default: try entry.skip(entryType)
                        }
                    }
                    external[key] = value
                case 14: isExternal = try reader.readVarint() == 1
                default: try reader.skip(type)
                }
            }
        }
        guard dims.allSatisfy({ $0 >= 0 }) else { throw .unsupportedTensor(name: name, detail: "negative dimension in \(dims)") }
        guard let elements = SafeTensors.elementCount(dims), elements <= Int(Int32.max) else {
            throw .unsupportedTensor(name: name, detail: "shape \(dims) has more elements than a tensor may hold")
        }
        _ = elements
        guard let type = DataType(rawValue: dataType) else {
            throw .unsupportedTensor(name: name, detail: "data type \(dataType) (doppel reads float, float16, double and integer tensors)")
        }
        if isExternal {
            guard let location = external["location"], let directory else {
                throw .unsupportedTensor(name: name, detail: "external data without a location")
            }
            // Only files beside the model: an absolute location or one that climbs out with ..
            // would let a model file read any file the importer can (ONNX external data spec).
            guard !location.hasPrefix("/"), !location.split(separator: "/").contains("..") else {
                throw .unsupportedTensor(name: name, detail: "external data location '\(location)' is not a path inside the model's folder")
            }
            let path = directory + "/" + location
            guard let handle = FileHandle(forReadingAtPath: path) else { throw .unreadable(path: path, detail: "external data of '\(name)' not found") }
            defer { try? handle.close() }
            let offset = UInt64(external["offset"] ?? "0") ?? 0
            let length = Int(external["length"] ?? "") ?? count * Self.elementSize(type)
            do {
                try handle.seek(toOffset: offset)
                let data = handle.readData(ofLength: length)
                guard data.count == length else { throw ONNXImportError.unreadable(path: path, detail: "external data of '\(name)' is truncated") }
                [UInt8](data).withUnsafeBytes { decodeRaw($0, type: type) }
            } catch let error as ONNXImportError { throw error } catch {
                throw .unreadable(path: path, detail: "\(error)")
            }
        } else if let raw {
            decodeRaw(UnsafeRawBufferPointer(rebasing: reader.bytes[raw]), type: type)
        } else {
            switch type {
            case .double: floats = doubles.map { Float($0) }
            case .float16: floats = int32s.map { Self.halfToFloat(UInt16(truncatingIfNeeded: $0)) }
            case .int32, .int8, .uint8, .bool: ints = int32s
            case .float, .int64: break
            }
        }
        let stored = isInteger ? ints.count : floats.count
        guard stored == count else {
            throw .unsupportedTensor(name: name, detail: "holds \(stored) values, its shape \(dims) needs \(count)")
        }
    }

    static func elementSize(_ type: DataType) -> Int {
        switch type {
        case .float, .int32: 4
        case .int64, .double: 8
        case .float16: 2
        case .uint8, .int8, .bool: 1
        }
    }

    /// raw_data is little-endian, row-major.
    private mutating func decodeRaw(_ bytes: UnsafeRawBufferPointer, type: DataType) {
        let n = bytes.count / Self.elementSize(type)
        switch type {
        case .float: floats = (0..<n).map { Float(bitPattern: bytes.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self).littleEndian) }
        case .double: floats = (0..<n).map { Float(Double(bitPattern: bytes.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self).littleEndian)) }
        case .float16: floats = (0..<n).map { Self.halfToFloat(bytes.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self).littleEndian) }
        case .int64: ints = (0..<n).map { Int64(bitPattern: bytes.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self).littleEndian) }
        case .int32: ints = (0..<n).map { Int64(Int32(bitPattern: bytes.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self).littleEndian)) }
        case .int8: ints = (0..<n).map { Int64(Int8(bitPattern: bytes[$0])) }
        case .uint8, .bool: ints = (0..<n).map { Int64(bytes[$0]) }
        }
    }

    /// IEEE 754 binary16 -> binary32.
    static func halfToFloat(_ bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = Int(bits >> 10) & 0x1F
        let mantissa = UInt32(bits & 0x3FF)
        if exponent == 0 {
            let value = Float(mantissa) * 0x1p-24  // subnormal
            return sign != 0 ? -value : value
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }
}

/// A node's attribute (`AttributeProto`): one of the scalar or list fields is set.
struct ONNXAttribute: Equatable {
    var name = ""
    var float: Float?
    var int: Int64?
    var string: String?
    var tensor: ONNXTensor?
    var floats: [Float] = []
    var ints: [Int64] = []
    var hasGraph = false

    init(_ reader: inout ProtobufReader, directory: String?) throws(ONNXImportError) {
        do {
            while let (field, type) = try reader.readTag() {
                switch field {
                case 1: name = try reader.readString()
                case 2: float = Float(bitPattern: try reader.readFixed32())
                case 3: int = Int64(bitPattern: try reader.readVarint())
                case 4: string = try reader.readString()
                case 5: var sub = try reader.readMessage(); tensor = try ONNXTensor(&sub, directory: directory)
                case 6, 11: hasGraph = true; try reader.skip(type)
                case 7: try reader.readFloats(type, into: &floats)
                case 8: try reader.readInt64s(type, into: &ints)
                default: try reader.skip(type)
                }
            }
        }
    }
}

struct ONNXNode: Equatable {
    var name = ""
    var opType = ""
    var domain = ""
    var inputs: [String] = []
    var outputs: [String] = []
    var attributes: [String: ONNXAttribute] = [:]

    init(_ reader: inout ProtobufReader, directory: String?) throws(ONNXImportError) {
        do {
            while let (field, type) = try reader.readTag() {
                switch field {
                case 1: inputs.append(try reader.readString())
                case 2: outputs.append(try reader.readString())
                case 3: name = try reader.readString()
                case 4: opType = try reader.readString()
                case 5:
                    var sub = try reader.readMessage()
                    let attribute = try ONNXAttribute(&sub, directory: directory)
                    attributes[attribute.name] = attribute
                case 7: domain = try reader.readString()
                default: try reader.skip(type)
                }
            }
        }
    }

    /// The node's name for messages (exporters sometimes leave it empty).
    var label: String { name.isEmpty ? "\(opType) -> \(outputs.first ?? "?")" : name }
}

/// A graph input or output: its name and shape (nil for a symbolic dimension, such as the batch).
struct ONNXValueInfo: Equatable {
    var name = ""
    var dims: [Int?] = []

    init(_ reader: inout ProtobufReader) throws(ONNXImportError) {
        while let (field, type) = try reader.readTag() {
            switch field {
            case 1: name = try reader.readString()
            case 2:
                // TypeProto.tensor_type (1) -> TensorShapeProto shape (2) -> Dimension dim (1)
                var typeProto = try reader.readMessage()
                while let (typeField, typeType) = try typeProto.readTag() {
                    guard typeField == 1 else { try typeProto.skip(typeType); continue }
                    var tensorType = try typeProto.readMessage()
                    while let (tensorField, tensorWire) = try tensorType.readTag() {
                        guard tensorField == 2 else { try tensorType.skip(tensorWire); continue }
                        var shape = try tensorType.readMessage()
                        while let (shapeField, shapeWire) = try shape.readTag() {
                            guard shapeField == 1 else { try shape.skip(shapeWire); continue }
                            var dimension = try shape.readMessage()
                            var value: Int? = nil
                            while let (dimField, dimWire) = try dimension.readTag() {
                                if dimField == 1 { value = Int(Int64(bitPattern: try dimension.readVarint())) } else { try dimension.skip(dimWire) }
                            }
                            dims.append(value)
                        }
                    }
                }
            default: try reader.skip(type)
            }
        }
    }
}

/// An ONNX model file: the graph with its initializers, the opset and the producer.
struct ONNXModel {
    var irVersion: Int64 = 0
    var producer = ""
    /// The default (ai.onnx) domain's opset.
    var opset = 0
    var nodes: [ONNXNode] = []
    var initializers: [String: ONNXTensor] = [:]
    var inputs: [ONNXValueInfo] = []
    var outputs: [ONNXValueInfo] = []

    init(contentsOf path: String) throws(ONNXImportError) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .unreadable(path: path, detail: (error as NSError).localizedDescription)
        }
        let directory = (path as NSString).deletingLastPathComponent
        try self.init(bytes: [UInt8](data), directory: directory.isEmpty ? "." : directory)
    }

    init(bytes: [UInt8], directory: String?) throws(ONNXImportError) {
        // Array.withUnsafeBytes rethrows untyped errors: carry ours out as a value.
        let failure: ONNXImportError? = bytes.withUnsafeBytes { buffer in
            var reader = ProtobufReader(buffer)
            do throws(ONNXImportError) { try parseModel(&reader, directory: directory) } catch { return error }
            return nil
        }
        if let failure { throw failure }
    }

    private mutating func parseModel(_ reader: inout ProtobufReader, directory: String?) throws(ONNXImportError) {
        var sawGraph = false
        do {
            while let (field, type) = try reader.readTag() {
                switch field {
                case 1: irVersion = Int64(bitPattern: try reader.readVarint())
                case 2: producer = try reader.readString()
                case 3: producer += " " + (try reader.readString())
                case 7:
                    var graph = try reader.readMessage()
                    try parseGraph(&graph, directory: directory)
                    sawGraph = true
                case 8:
                    var opsetID = try reader.readMessage(), domain = "", version = 0
                    while let (opsetField, opsetType) = try opsetID.readTag() {
                        switch opsetField {
                        case 1: domain = try opsetID.readString()
                        case 2: version = Int(try opsetID.readVarint())
                        default: try opsetID.skip(opsetType)
                        }
                    }
                    if domain.isEmpty || domain == "ai.onnx" { opset = version }
                default: try reader.skip(type)
                }
            }
        }
        guard sawGraph, !nodes.isEmpty else { throw .graph(detail: "the file has no graph (is it an ONNX model?)") }
    }

    private mutating func parseGraph(_ reader: inout ProtobufReader, directory: String?) throws(ONNXImportError) {
        do {
            while let (field, type) = try reader.readTag() {
                switch field {
                case 1: var sub = try reader.readMessage(); nodes.append(try ONNXNode(&sub, directory: directory))
                case 5:
                    var sub = try reader.readMessage()
                    let tensor = try ONNXTensor(&sub, directory: directory)
                    initializers[tensor.name] = tensor
                case 11: var sub = try reader.readMessage(); inputs.append(try ONNXValueInfo(&sub))
                case 12: var sub = try reader.readMessage(); outputs.append(try ONNXValueInfo(&sub))
                default: try reader.skip(type)
                }
            }
        }
        // IR versions before 4 list initializers among the inputs too.
        inputs.removeAll { initializers[$0.name] != nil }
    }
}
