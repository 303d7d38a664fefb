// SPDX-License-Identifier: MIT
import Foundation

/// Why a safetensors file could not be read.
public enum SafeTensorsError: Error, Equatable, Sendable, CustomStringConvertible {
    case tooShort(bytes: Int)
    case badHeaderLength(declared: UInt64, fileSize: Int)
    case badHeader(String)
    case unsupportedDType(tensor: String, dtype: String)
    case badOffsets(tensor: String, detail: String)

    public var description: String {
        switch self {
        case .tooShort(let bytes): "safetensors file is \(bytes) bytes; it needs at least the 8-byte header length"
        case .badHeaderLength(let declared, let size): "safetensors header length \(declared) does not fit a \(size)-byte file"
        case .badHeader(let detail): "safetensors header is not valid: \(detail)"
        case .unsupportedDType(let tensor, let dtype): "tensor '\(tensor)' has dtype \(dtype); Doppel reads F32 only"
        case .badOffsets(let tensor, let detail): "tensor '\(tensor)': \(detail)"
        }
    }
}

/// The safetensors container (Hugging Face): an 8-byte little-endian header length, a JSON
/// header `{"__metadata__": {string: string}, name: {"dtype", "shape", "data_offsets"}}`,
/// then the raw little-endian tensors back to back. Doppel writes F32 only.
public struct SafeTensors: Sendable {
    /// The number of elements of `shape`, or nil when a dimension is negative or the product
    /// overflows (shapes come from files).
    public static func elementCount(_ shape: [Int]) -> Int? {
        var product = 1
        for dimension in shape {
            guard dimension >= 0 else { return nil }
            let (next, overflow) = product.multipliedReportingOverflow(by: dimension)
            guard !overflow else { return nil }
            product = next
        }
        return product
    }

    public struct Tensor: Sendable, Equatable {
        public let shape: [Int]
        public let values: [Float]
        public init(shape: [Int], values: [Float]) {
            precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not match \(values.count) values")
            self.shape = shape
            self.values = values
        }
    }

    public var metadata: [String: String]
    /// In file order.
    public var names: [String]
    public var tensors: [String: Tensor]

    public init(metadata: [String: String], tensors: [(String, Tensor)]) {
        self.metadata = metadata
        names = tensors.map(\.0)
        self.tensors = Dictionary(uniqueKeysWithValues: tensors)
    }

    public func serialized() -> [UInt8] {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        for name in names {
            let tensor = tensors[name]!
            let size = tensor.values.count * 4
            header[name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + size]] as [String: Any]
            offset += size
        }
        var json = [UInt8]((try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) ?? Data())
        // Pad with spaces so the data starts 8-byte aligned (the format's recommendation).
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out += json
        for name in names {
            tensors[name]!.values.withUnsafeBufferPointer { values in
                for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
            }
        }
        return out
    }

    public init(bytes: [UInt8]) throws(SafeTensorsError) {
        guard bytes.count >= 8 else { throw .tooShort(bytes: bytes.count) }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(bytes.count - 8), headerLength <= 100_000_000 else {
            throw .badHeaderLength(declared: headerLength, fileSize: bytes.count)
        }
        let dataStart = 8 + Int(headerLength)
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart]))
        } catch {
            throw .badHeader("not JSON (\(error.localizedDescription))")
        }
        guard let header = object as? [String: Any] else { throw .badHeader("not a JSON object") }
        var metadata = [String: String]()
        if let raw = header["__metadata__"] {
            guard let strings = raw as? [String: String] else { throw .badHeader("__metadata__ must map strings to strings") }
            metadata = strings
        }
        let dataSize = bytes.count - dataStart
        var entries = [(name: String, begin: Int, end: Int, shape: [Int])]()
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2
            else { throw .badHeader("entry '\(name)' needs dtype, shape and two data_offsets") }
            guard dtype == "F32" else { throw .unsupportedDType(tensor: name, dtype: dtype) }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw .badOffsets(tensor: name, detail: "negative dimension in \(shape)") }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataSize else {
                throw .badOffsets(tensor: name, detail: "offsets \(begin)..<\(end) are outside the \(dataSize) data bytes")
            }
            // The product is checked: a header's shape may be made to overflow, which must be
            // a refusal, not a trap.
            guard let elements = SafeTensors.elementCount(shape), elements.multipliedReportingOverflow(by: 4) == (end - begin, false) else {
                throw .badOffsets(tensor: name, detail: "\(end - begin) bytes for shape \(shape) of F32")
            }
            entries.append((name, begin, end, shape))
        }
        entries.sort { $0.begin < $1.begin }
        var tensors = [(String, Tensor)]()
        var previousEnd = 0
        for entry in entries {
            guard entry.begin >= previousEnd else {
                throw .badOffsets(tensor: entry.name, detail: "overlaps the tensor before it")
            }
            previousEnd = entry.end
            var values = [Float](repeating: 0, count: (entry.end - entry.begin) / 4)
            bytes.withUnsafeBytes { source in
                values.withUnsafeMutableBytes { out in
                    out.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[(dataStart + entry.begin)..<(dataStart + entry.end)]))
                }
            }
            // The file is little-endian; so is every platform Doppel runs on, but say so.
            if UInt32(1).littleEndian != 1 { values = values.map { Float(bitPattern: $0.bitPattern.byteSwapped) } }
            tensors.append((entry.name, Tensor(shape: entry.shape, values: values)))
        }
        self.init(metadata: metadata, tensors: tensors)
    }
}
