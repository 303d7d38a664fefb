// SPDX-License-Identifier: MIT
// libFuzzer target for the multipart/form-data parser, built by scripts/fuzz. The first byte
// picks the boundary's length so boundaries of every size meet arbitrary bodies.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMultipart(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let first = bytes.first else { return 0 }
    let boundaryLength = 1 + Int(first) % 8
    guard bytes.count > boundaryLength else { return 0 }
    let boundary = String(decoding: bytes[1...boundaryLength], as: UTF8.self)
    var limits = MultipartLimits()
    limits.maxParts = 8
    limits.maxPartBytes = 1024
    guard let parser = try? MultipartParser(boundary: boundary, limits: limits) else { return 0 }
    if let parts = try? parser.parse(Array(bytes[(boundaryLength + 1)...])) {
        precondition(!parts.isEmpty && parts.count <= limits.maxParts, "part count outside the limits")
        precondition(parts.allSatisfy { $0.body.count <= limits.maxPartBytes }, "part over the limit")
    }
    return 0
}
