// SPDX-License-Identifier: MIT
// libFuzzer target for the HTTP/1.1 request parser, built by scripts/fuzz with the parser's
// sources (no package build). The input is split at its first byte into two writes so partial
// arrivals are exercised too; every request that comes out must respect the limits.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var limits = HTTPLimits()
    limits.maxBodyBytes = 4096
    limits.maxHeaderBytes = 2048
    var parser = HTTPRequestParser(limits: limits)
    let split = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
    for piece in [bytes[..<split], bytes[split...]] {
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
    return 0
}
