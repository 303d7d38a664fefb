// SPDX-License-Identifier: MIT

/// Limits on what one request may make the server hold.
public struct HTTPLimits: Sendable, Equatable {
    public var maxRequestLineBytes = 8192
    public var maxHeaderBytes = 16384
    public var maxHeaderCount = 100
    public var maxBodyBytes = 16 << 20

    public init() {}
}

/// A request the parser refuses, with the status to answer and why.
public struct HTTPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    public let status: Int
    public let message: String
    public var description: String { "\(status): \(message)" }

    static func bad(_ message: String) -> HTTPParseError { HTTPParseError(status: 400, message: message) }
}

/// An incremental HTTP/1.1 request parser (RFC 9112): feed it bytes as they arrive and take
/// requests out in order, so partial writes and pipelines are the same code path. A value
/// type of small `read...` steps; every rejection names the rule it enforces.
///
/// Work is linear in the bytes received, whatever their split: the head's terminator is
/// searched from where the last search stopped, and body bytes (plain or chunked) move into
/// the request's body as they arrive, so what stays buffered between reads is at most one
/// unfinished line or head, never a body to copy or re-parse again.
public struct HTTPRequestParser: Sendable {
    public enum Event: Sendable, Equatable {
        case request(HTTPRequest)
        /// The head of a request with `Expect: 100-continue` is complete and its body is not:
        /// answer `100 Continue` (RFC 9110 §10.1.1), then keep feeding.
        case continueExpected
    }

    public let limits: HTTPLimits
    /// Received bytes; those before `start` are consumed.
    private var buffer: [UInt8] = []
    private var start = 0
    /// How far the search for the end of the current head has looked (from `start`).
    private var headScanned = 0
    /// Whether the current head's request line is known to have ended (checked once).
    private var requestLineEnded = false
    private var pending: PendingRequest?
    /// Bytes examined or copied so far: what the tests hold to a multiple of the bytes fed.
    private(set) var work = 0

    /// A request whose head is parsed and whose body is arriving.
    struct PendingRequest: Sendable {
        var request: HTTPRequest
        var framing: BodyFraming
        var body: [UInt8] = []
        var chunk = ChunkStep.sizeLine
        var trailerBytes = 0
        var continueSent = false
    }

    enum BodyFraming: Sendable { case none, length(Int), chunked }

    /// Where a chunked body's reading stands (RFC 9112 §7.1).
    enum ChunkStep: Sendable { case sizeLine, data(remaining: Int), dataEnd, trailers }

    public init(limits: HTTPLimits = HTTPLimits()) { self.limits = limits }

    public mutating func append<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
        if start > 0 {
            // What is left before new bytes arrive is at most an unfinished line or head.
            buffer.removeSubrange(0..<start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Request bytes held: received and not yet consumed, plus the body being assembled.
    public var bufferedByteCount: Int { buffer.count - start + (pending?.body.count ?? 0) }

    /// Whether a request's head is complete and its body is still arriving.
    public var isAwaitingBody: Bool { pending != nil }

    /// The next complete request or event, nil when more bytes are needed.
    public mutating func next() throws(HTTPParseError) -> Event? {
        if pending == nil {
            guard let head = try readHead() else { return nil }
            pending = PendingRequest(request: head.request, framing: head.framing)
        }
        let complete = switch pending!.framing {
        case .none: true
        case .length(let length): readBody(length: length)
        case .chunked: try readChunks()
        }
        guard complete else {
            if !pending!.continueSent, pending!.request.headers["expect"]?.lowercased() == "100-continue" {
                pending!.continueSent = true
                return .continueExpected
            }
            return nil
        }
        var request = pending!.request
        request.body = pending!.body
        pending = nil
        return .request(request)
    }

    /// The request line and header section, once the blank line that ends them has arrived;
    /// consumes them.
    private mutating func readHead() throws(HTTPParseError) -> (request: HTTPRequest, framing: BodyFraming)? {
        // Lines end in CRLF only; a bare CR or LF inside a line is rejected with the line, so
        // two parsers can never disagree on where a request ends (RFC 9112 §2.2, smuggling).
        let searchFrom = start + max(0, headScanned - 3)
        guard let end = find([13, 10, 13, 10], from: searchFrom, limit: start + limits.maxHeaderBytes + 4 - searchFrom) else {
            headScanned = buffer.count - start
            if !requestLineEnded, buffer.count - start > limits.maxRequestLineBytes {
                requestLineEnded = find([13, 10], from: start, limit: limits.maxRequestLineBytes + 2) != nil
                guard requestLineEnded else {
                    throw HTTPParseError(status: 414, message: "request line exceeds \(limits.maxRequestLineBytes) bytes")
                }
            }
            if buffer.count - start > limits.maxHeaderBytes + 4 {
                throw HTTPParseError(status: 431, message: "header section exceeds \(limits.maxHeaderBytes) bytes")
            }
            return nil
        }
        let lines = split(buffer[start..<end])
        guard let requestLine = lines.first, requestLine.count <= limits.maxRequestLineBytes else {
            throw HTTPParseError(status: 414, message: "request line exceeds \(limits.maxRequestLineBytes) bytes")
        }
        var request = try readRequestLine(requestLine)
        let fields = lines.dropFirst()
        guard fields.count <= limits.maxHeaderCount else { throw HTTPParseError(status: 431, message: "more than \(limits.maxHeaderCount) header fields") }
        for line in fields {
            let (name, value) = try readField(line)
            request.headers.add(name, value)
        }
        // RFC 9112 §3.2: an HTTP/1.1 request without exactly one Host is a 400.
        if request.version == .http11, request.headers.values("host").count != 1 {
            throw .bad("HTTP/1.1 requires exactly one Host header (RFC 9112 §3.2)")
        }
        let framing = try readFraming(request)
        start = end + 4
        headScanned = 0
        requestLineEnded = false
        return (request, framing)
    }

    /// Moves what has arrived of a `Content-Length` body into the pending request; true when
    /// all of it is there.
    private mutating func readBody(length: Int) -> Bool {
        let take = min(length - pending!.body.count, buffer.count - start)
        if take > 0 {
            pending!.body.append(contentsOf: buffer[start..<(start + take)])
            start += take
            work += take
        }
        return pending!.body.count == length
    }

    /// chunked-body = *chunk last-chunk trailer-section CRLF (RFC 9112 §7.1), read as far as
    /// the bytes go; true when the body is complete.
    private mutating func readChunks() throws(HTTPParseError) -> Bool {
        // The body and the step are held locally while the bytes last (a body of 1-byte chunks
        // takes millions of steps), and put back however this returns.
        var body = [UInt8]()
        swap(&body, &pending!.body)
        var step = pending!.chunk
        defer {
            swap(&body, &pending!.body)
            pending!.chunk = step
        }
        while true {
            switch step {
            case .sizeLine:
                guard let (size, lineEnd) = try readChunkSizeLine() else { return false }
                start = lineEnd + 2
                if size == 0 {
                    step = .trailers
                } else {
                    guard body.count + size <= limits.maxBodyBytes else {
                        throw HTTPParseError(status: 413, message: "chunked body exceeds \(limits.maxBodyBytes) bytes")
                    }
                    step = .data(remaining: size)
                }
            case .data(let remaining):
                let take = min(remaining, buffer.count - start)
                guard take > 0 else { return false }
                if take == 1 { body.append(buffer[start]) } else { body.append(contentsOf: buffer[start..<(start + take)]) }
                start += take
                work += take
                step = take == remaining ? .dataEnd : .data(remaining: remaining - take)
            case .dataEnd:
                guard buffer.count - start >= 2 else { return false }
                guard buffer[start] == 13, buffer[start + 1] == 10 else { throw .bad("chunk data not followed by CRLF (RFC 9112 §7.1)") }
                start += 2
                step = .sizeLine
            case .trailers:
                // trailer-section: fields until an empty line; parsed for validity, then dropped.
                let room = limits.maxHeaderBytes - pending!.trailerBytes
                guard let lineEnd = find([13, 10], from: start, limit: room) else {
                    if buffer.count - start > room { throw HTTPParseError(status: 431, message: "trailer section too large") }
                    return false
                }
                defer { start = lineEnd + 2 }
                if lineEnd == start { return true }
                _ = try readField(Array(buffer[start..<lineEnd]))
                pending!.trailerBytes += lineEnd + 2 - start
            }
        }
    }

    /// chunk-size [ chunk-ext ] CRLF (RFC 9112 §7.1, §7.1.1) at `start`: the size and where the
    /// line's CR is, nil until the line is complete. Extensions are ignored once they are known
    /// to hold no control characters (a bare CR or LF there is how smuggling starts). One pass
    /// over the line's bytes, no allocation: a body of 1-byte chunks is mostly these lines.
    private mutating func readChunkSizeLine() throws(HTTPParseError) -> (size: Int, lineEnd: Int)? {
        let begin = start, available = buffer.count
        let scan: Result<(size: Int, lineEnd: Int)?, HTTPParseError> = buffer.withUnsafeBufferPointer { bytes in
            var i = begin, size = 0
            while i < available, i - begin < 8 {
                let byte = bytes[i]
                let digit: Int
                switch byte {
                case 48...57: digit = Int(byte) - 48
                case 65...70: digit = Int(byte) - 55
                case 97...102: digit = Int(byte) - 87
                default: digit = -1
                }
                guard digit >= 0 else { break }
                size = size << 4 | digit
                i += 1
            }
            guard i < available else { return .success(nil) }
            guard i > begin, bytes[i] == 13 || bytes[i] == 59 else { return .failure(.bad("invalid chunk size (RFC 9112 §7.1)")) }
            while i < available, bytes[i] != 13 {
                let byte = bytes[i]
                guard byte == 9 || (byte >= 32 && byte != 127) else { return .failure(.bad("control character in a chunk extension (RFC 9112 §7.1.1)")) }
                guard i - begin < 1024 else { return .failure(.bad("chunk size line too long (RFC 9112 §7.1)")) }
                i += 1
            }
            guard i + 1 < available else { return .success(nil) }
            guard bytes[i + 1] == 10 else { return .failure(.bad("chunk size line not ended by CRLF (RFC 9112 §7.1)")) }
            return .success((size, i))
        }
        let result = try scan.get()
        work += (result?.lineEnd ?? available) - begin
        return result
    }

    private func readRequestLine(_ line: [UInt8]) throws(HTTPParseError) -> HTTPRequest {
        // request-line = method SP request-target SP HTTP-version (RFC 9112 §3)
        let parts = line.split(separator: 32, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else { throw .bad("malformed request line (RFC 9112 §3)") }
        guard parts[0].allSatisfy(Self.isTokenCharacter) else { throw .bad("method is not a token (RFC 9110 §9.1)") }
        guard let version = HTTPVersion(rawValue: String(decoding: parts[2], as: UTF8.self)) else {
            if parts[2].starts(with: Array("HTTP/".utf8)) { throw HTTPParseError(status: 505, message: "only HTTP/1.0 and HTTP/1.1 are supported") }
            throw .bad("malformed HTTP version (RFC 9112 §2.3)")
        }
        let target = Array(parts[1])
        guard target.first == UInt8(ascii: "/"), target.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            throw .bad("request target must be an origin-form path (RFC 9112 §3.2.1)")
        }
        let queryStart = target.firstIndex(of: UInt8(ascii: "?"))
        guard let path = Self.percentDecode(target[..<(queryStart ?? target.endIndex)], plusIsSpace: false) else {
            throw .bad("bad percent-encoding in the path")
        }
        var query = [(name: String, value: String)]()
        if let queryStart {
            for pair in target[(queryStart + 1)...].split(separator: UInt8(ascii: "&")) {
                let equals = pair.firstIndex(of: UInt8(ascii: "="))
                guard let name = Self.percentDecode(pair[..<(equals ?? pair.endIndex)], plusIsSpace: true),
                      let value = Self.percentDecode(equals.map { pair[($0 + 1)...] } ?? [], plusIsSpace: true)
                else { throw .bad("bad percent-encoding in the query") }
                query.append((name, value))
            }
        }
        return HTTPRequest(method: String(decoding: parts[0], as: UTF8.self), path: path, query: query, version: version,
                           headers: HTTPHeaders(), body: [])
    }

    private func readField(_ line: [UInt8]) throws(HTTPParseError) -> (String, String) {
        // RFC 9112 §5.2: obs-fold (a line starting with whitespace) is rejected.
        if let first = line.first, first == 32 || first == 9 { throw .bad("obsolete line folding is not accepted (RFC 9112 §5.2)") }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { throw .bad("header field without a name (RFC 9112 §5)") }
        let name = line[..<colon]
        // RFC 9112 §5.1: no whitespace between the field name and the colon.
        guard name.allSatisfy(Self.isTokenCharacter) else { throw .bad("invalid header field name (RFC 9112 §5.1)") }
        var value = line[(colon + 1)...]
        while let f = value.first, f == 32 || f == 9 { value.removeFirst() }
        while let l = value.last, l == 32 || l == 9 { value.removeLast() }
        // Field values are visible ASCII, obs-text, space and tab; CR, LF and NUL are rejected (RFC 9110 §5.5).
        guard value.allSatisfy({ $0 == 9 || ($0 >= 32 && $0 != 127) }) else { throw .bad("invalid character in a header value (RFC 9110 §5.5)") }
        return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    private func readFraming(_ request: HTTPRequest) throws(HTTPParseError) -> BodyFraming {
        let encodings = request.headers.values("transfer-encoding")
        let lengths = request.headers.values("content-length")
        if !encodings.isEmpty {
            // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing (an
            // HTTP/1.0 intermediary would not have understood it).
            guard request.version == .http11 else { throw .bad("Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)") }
            // RFC 9112 §6.1: both is a smuggling vector; refuse instead of picking one.
            guard lengths.isEmpty else { throw .bad("both Transfer-Encoding and Content-Length (RFC 9112 §6.1)") }
            let codings = encodings.flatMap { $0.split(separator: ",") }.map { String($0).trimmingCharacters(in: .whitespaces).lowercased() }
            guard codings == ["chunked"] else { throw HTTPParseError(status: 501, message: "only the chunked transfer coding is supported") }
            return .chunked
        }
        guard !lengths.isEmpty else { return .none }
        // RFC 9112 §6.3: repeated or list values must all be the same decimal.
        let values = Set(lengths.flatMap { $0.split(separator: ",") }.map { String($0).trimmingCharacters(in: .whitespaces) })
        guard values.count == 1, let text = values.first, !text.isEmpty, text.count <= 12, text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber),
              let length = Int(text)
        else { throw .bad("invalid or conflicting Content-Length (RFC 9112 §6.3)") }
        guard length <= limits.maxBodyBytes else { throw HTTPParseError(status: 413, message: "body of \(length) bytes exceeds \(limits.maxBodyBytes)") }
        return length == 0 ? .none : .length(length)
    }

    /// tchar (RFC 9110 §5.6.2).
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }

    static func percentDecode<Bytes: Collection<UInt8>>(_ bytes: Bytes, plusIsSpace: Bool) -> String? {
        var out = [UInt8]()
        var iterator = Array(bytes).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                      let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else { return nil }
                out.append(value)
            } else if plusIsSpace && byte == UInt8(ascii: "+") {
                out.append(32)
            } else {
                out.append(byte)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private func split(_ head: ArraySlice<UInt8>) -> [[UInt8]] {
        var lines = [[UInt8]](), lineStart = head.startIndex
        while let end = find([13, 10], in: head, from: lineStart, limit: head.endIndex - lineStart) {
            lines.append(Array(head[lineStart..<end]))
            lineStart = end + 2
        }
        lines.append(Array(head[lineStart...]))
        return lines
    }

    private mutating func find(_ pattern: [UInt8], from: Int, limit: Int) -> Int? {
        let found = find(pattern, in: buffer[...], from: from, limit: limit)
        work += (found ?? min(buffer.count, from + limit)) - from
        return found
    }

    /// Index of `pattern` in `bytes` at or after `from`, starting no further than `limit` bytes on.
    private func find(_ pattern: [UInt8], in bytes: ArraySlice<UInt8>, from: Int, limit: Int) -> Int? {
        let last = min(bytes.endIndex - pattern.count, from + limit)
        guard last >= from else { return nil }
        var i = from
        while i <= last {
            if bytes[i] == pattern[0] && bytes[i + 1] == pattern[1] && (pattern.count == 2 || (bytes[i + 2] == pattern[2] && bytes[i + 3] == pattern[3])) {
                return i
            }
            i += 1
        }
        return nil
    }
}
