// SPDX-License-Identifier: MIT
import Foundation

/// Why a file is not a float array doppel reads.
public struct NumpyError: Error, Equatable, Sendable, CustomStringConvertible {
    public let detail: String
    public var description: String { "not a float32 .npy array: \(detail)" }
}

/// A NumPy `.npy` array of float32 (format versions 1-3: the magic `\x93NUMPY`, a version,
/// a header length, a Python-dict header with `descr`, `fortran_order` and `shape`, then the
/// values in C order). What `doppel embed --npy` reads and writes, so scripts can hand
/// tensors to doppel and compare them with another runtime's.
public struct NumpyArray: Equatable, Sendable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        self.shape = shape
        self.values = values
    }

    public init(bytes: [UInt8]) throws(NumpyError) {
        try self.init(bytes: bytes, expectingValues: true)
    }

    /// With `expectingValues` false, `bytes` is the header alone and the values stay empty.
    private init(bytes: [UInt8], expectingValues: Bool) throws(NumpyError) {
        let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw NumpyError(detail: "no \\x93NUMPY magic") }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1: (headerLength, headerStart) = (Int(bytes[8]) | Int(bytes[9]) << 8, 10)
        case 2, 3:
            guard bytes.count >= 12 else { throw NumpyError(detail: "truncated header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            headerStart = 12
        default: throw NumpyError(detail: "format version \(major)")
        }
        guard bytes.count >= headerStart + headerLength else { throw NumpyError(detail: "truncated header") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard header.contains("'descr': '<f4'") || header.contains("\"descr\": \"<f4\"") else {
            throw NumpyError(detail: "dtype is not little-endian float32 (header \(header.trimmingCharacters(in: .whitespacesAndNewlines))); convert with .astype(np.float32)")
        }
        guard !header.contains("'fortran_order': True") else { throw NumpyError(detail: "Fortran order; save a C-ordered array") }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw NumpyError(detail: "header has no shape")
        }
        let dims = header[open.upperBound..<close].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var shape = [Int]()
        for dim in dims {
            guard let value = Int(dim), value >= 0 else { throw NumpyError(detail: "shape entry '\(dim)'") }
            shape.append(value)
        }
        let count = shape.reduce(1, *)
        let start = headerStart + headerLength
        guard expectingValues else {
            self.shape = shape
            values = []
            return
        }
        guard bytes.count - start == 4 * count else { throw NumpyError(detail: "holds \((bytes.count - start) / 4) values; shape \(shape) needs \(count)") }
        values = bytes[start...].withUnsafeBytes { raw in
            (0..<count).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self).littleEndian) }
        }
        self.shape = shape
    }

    /// Reads the header, then the values straight into the array (a 10 M x 128 file is 5 GB:
    /// no second copy of it in memory).
    public init(contentsOf path: String) throws(NumpyError) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw NumpyError(detail: "cannot read \(path)") }
        defer { try? handle.close() }
        let head = [UInt8](handle.readData(ofLength: 12))
        guard head.count >= 10 else { throw NumpyError(detail: "truncated header") }
        let headerEnd = head[6] == 1 ? 10 + (Int(head[8]) | Int(head[9]) << 8) : 12 + (0..<4).reduce(0) { $0 | Int(head[8 + $1]) << (8 * $1) }
        guard headerEnd < 1 << 20 else { throw NumpyError(detail: "header of \(headerEnd) bytes") }
        let header = head + [UInt8](handle.readData(ofLength: headerEnd - head.count))
        // Parse the header alone (no values), then read exactly the values it announces.
        let empty = try NumpyArray(bytes: header, expectingValues: false)
        let count = empty.shape.reduce(1, *)
        var values = [Float](repeating: 0, count: count)
        // withUnsafeMutableBytes rethrows untyped errors: the short read comes out as a count.
        let read = values.withUnsafeMutableBytes { (raw: UnsafeMutableRawBufferPointer) -> Int in
            var offset = 0
            while offset < raw.count {
                let chunk = handle.readData(ofLength: min(raw.count - offset, 1 << 28))
                guard !chunk.isEmpty else { break }
                chunk.copyBytes(to: UnsafeMutableRawBufferPointer(rebasing: raw[offset..<(offset + chunk.count)]))
                offset += chunk.count
            }
            return offset
        }
        guard read == 4 * count else { throw NumpyError(detail: "holds \(read / 4) values; shape \(empty.shape) needs \(count)") }
        guard handle.readData(ofLength: 1).isEmpty else { throw NumpyError(detail: "more values than shape \(empty.shape) holds") }
        shape = empty.shape
        self.values = values
    }

    /// Version 1.0 bytes (the header padded so the data starts 64-byte aligned, as NumPy does).
    public func serialized() -> [UInt8] {
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        bytes += Array(header.utf8)
        for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
        return bytes
    }
}
