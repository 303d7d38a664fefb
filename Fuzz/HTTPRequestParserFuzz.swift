// SPDX-License-Identifier: MIT
// libFuzzer target for the HTTP/1.1 request parser, built by scripts/fuzz with the parser's
// sources (no package build). The input's first byte chooses how it is cut into writes (one
// cut, or every n bytes down to one byte a write), so partial arrivals, chunk sizes split
// across reads and heads written a byte at a time are exercised; every request that comes out
// must respect the limits, and the parser's work must stay linear in the bytes fed.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var limits = HTTPLimits()
    limits.maxBodyBytes = 4096
    limits.maxHeaderBytes = 2048
    var parser = HTTPRequestParser(limits: limits)
    let control = bytes.first ?? 0
    var pieces = [ArraySlice<UInt8>]()
    if control < 128 {
        let split = bytes.isEmpty ? 0 : Int(control) % (bytes.count + 1)
        pieces = [bytes[..<split], bytes[split...]]
    } else {
        let step = Int(control) - 127  // 1...128 bytes a write
        var offset = 0
        while offset < bytes.count {
            pieces.append(bytes[offset..<min(offset + step, bytes.count)])
            offset += step
        }
    }
    for piece in pieces {
        parser.append(piece)
        do {
            while let event = try parser.next() {
                if case .request(let request) = event {
                    precondition(request.body.count <= limits.maxBodyBytes, "body over the limit")
                    _ = request.keepsAlive
                }
            }
        } catch {
            precondition([400, 413, 414, 431, 501, 505].contains(error.status), "unexpected status \(error.status)")
            return 0
        }
    }
    // Each byte is looked at by a bounded number of searches (a head's end search resumes 3
    // bytes back; a chunk line's search runs once) and copied once.
    precondition(parser.work <= 6 * bytes.count + 64, "parser work \(parser.work) for \(bytes.count) bytes")
    return 0
}
