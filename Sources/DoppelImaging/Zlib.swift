// SPDX-License-Identifier: MIT
import CZlib

/// Why zlib could not inflate or deflate a buffer.
public enum ZlibError: Error, Equatable, Sendable, CustomStringConvertible {
    case failed(code: Int32, message: String)
    case truncated
    case outputTooLarge(limit: Int)

    public var description: String {
        switch self {
        case .failed(let code, let message): "zlib error \(code): \(message)"
        case .truncated: "compressed data ends before its end marker"
        case .outputTooLarge(let limit): "decompressed data exceeds the limit of \(limit) bytes"
        }
    }
}

/// zlib and gzip streams in memory (IDX.gz data sets, PNG IDAT chunks, CRC-32).
public enum Zlib {
    /// True when `bytes` start with the gzip signature (RFC 1952 §2.3.1).
    public static func isGzip<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Bool {
        bytes.starts(with: [0x1F, 0x8B])
    }

    /// Inflates a gzip or zlib stream (detected from its header).
    public static func inflate(_ input: [UInt8], maxOutputBytes: Int = 1 << 32) throws(ZlibError) -> [UInt8] {
        var stream = z_stream()
        // windowBits 15 + 32: accept both zlib and gzip headers (zlib.h, inflateInit2).
        var code = inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard code == Z_OK else { throw .failed(code: code, message: "inflateInit2 failed") }
        defer { inflateEnd(&stream) }

        var output = [UInt8]()
        output.reserveCapacity(min(max(input.count * 4, 1 << 16), maxOutputBytes))
        var chunk = [UInt8](repeating: 0, count: 1 << 18)
        code = input.withUnsafeBufferPointer { source -> Int32 in
            stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
            stream.avail_in = UInt32(source.count)
            var status: Int32 = Z_OK
            repeat {
                status = chunk.withUnsafeMutableBufferPointer { out -> Int32 in
                    stream.next_out = out.baseAddress
                    stream.avail_out = UInt32(out.count)
                    return CZlib.inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunk.count - Int(stream.avail_out)
                if output.count + produced > maxOutputBytes { return Z_MEM_ERROR - 100 }
                output.append(contentsOf: chunk[0..<produced])
                if status == Z_BUF_ERROR && stream.avail_in == 0 { return Z_BUF_ERROR }
            } while status == Z_OK
            return status
        }
        switch code {
        case Z_STREAM_END: return output
        case Z_BUF_ERROR: throw .truncated
        case Z_MEM_ERROR - 100: throw .outputTooLarge(limit: maxOutputBytes)
        default:
            let message = stream.msg.map { String(cString: $0) } ?? "inflate failed"
            throw .failed(code: code, message: message)
        }
    }

    /// The container around a deflate stream.
    public enum Container: Sendable {
        /// RFC 1950 (PNG IDAT).
        case zlib
        /// RFC 1952 (`.gz` files).
        case gzip
    }

    /// `input` compressed at `level` 0...9.
    public static func deflate(_ input: [UInt8], level: Int32 = 6, container: Container = .zlib) -> [UInt8] {
        var stream = z_stream()
        // windowBits 15, + 16 for a gzip header and trailer (zlib.h, deflateInit2).
        let windowBits: Int32 = container == .gzip ? 15 + 16 : 15
        let code = deflateInit2_(&stream, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
                                 Int32(MemoryLayout<z_stream>.size))
        // deflateInit2 fails only for lack of memory or bad parameters: programmer errors here.
        precondition(code == Z_OK, "deflateInit2 failed with \(code)")
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 32)
        var source = input
        let status = source.withUnsafeMutableBufferPointer { source in
            output.withUnsafeMutableBufferPointer { out in
                stream.next_in = source.baseAddress
                stream.avail_in = UInt32(source.count)
                stream.next_out = out.baseAddress
                stream.avail_out = UInt32(out.count)
                return CZlib.deflate(&stream, Z_FINISH)
            }
        }
        precondition(status == Z_STREAM_END, "deflate did not finish within deflateBound")
        output.removeSubrange(Int(stream.total_out)...)
        return output
    }

    /// CRC-32 (ISO 3309, as PNG chunks and gzip use it).
    public static func crc32<Bytes: Collection<UInt8>>(_ bytes: Bytes, continuing crc: UInt32 = 0) -> UInt32 {
        let contiguous = Array(bytes)
        return contiguous.withUnsafeBufferPointer { buffer in
            UInt32(CZlib.crc32(UInt(crc), buffer.baseAddress, UInt32(buffer.count)))
        }
    }
}
