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
public struct HTTPRequestParser: Sendable {
    public enum Event: Sendable, Equatable {
        case request(HTTPRequest)
        /// The head of a request with `Expect: 100-continue` is complete and its body is not:
        /// answer `100 Continue` (RFC 9110 §10.1.1), then keep feeding.
        case continueExpected
    }

    public let limits: HTTPLimits
    private var buffer: [UInt8] = []
    private var pendingHead: (request: HTTPRequest, headLength: Int, body: BodyFraming)?
    private var continueSent = false

    enum BodyFraming: Sendable { case none, length(Int), chunked }

    public init(limits: HTTPLimits = HTTPLimits()) { self.limits = limits }

    public mutating func append<Bytes: Sequence<UInt8>>(_ bytes: Bytes) { buffer.append(contentsOf: bytes) }

    /// Bytes received but not yet consumed by a request.
    public var bufferedByteCount: Int { buffer.count }

    /// Whether a request's head is complete and its body is still arriving.
    public var isAwaitingBody: Bool { pendingHead != nil }

    /// The next complete request or event, nil when more bytes are needed.
    public mutating func next() throws(HTTPParseError) -> Event? {
        if pendingHead == nil {
            guard let head = try readHead() else { return nil }
            pendingHead = head
            continueSent = false
        }
        let (request, headLength, framing) = pendingHead!
        let body: (bytes: [UInt8], consumed: Int)?
        switch framing {
        case .none: body = ([], 0)
        case .length(let n): body = buffer.count - headLength >= n ? (Array(buffer[headLength..<(headLength + n)]), n) : nil
        case .chunked: body = try readChunkedBody(from: headLength)
        }
        guard let body else {
            if !continueSent, request.headers["expect"]?.lowercased() == "100-continue" {
                continueSent = true
                return .continueExpected
            }
            return nil
        }
        buffer.removeFirst(headLength + body.consumed)
        pendingHead = nil
        var complete = request
        complete.body = body.bytes
        return .request(complete)
    }

    /// The request line and header section, once the blank line that ends them has arrived.
    private func readHead() throws(HTTPParseError) -> (HTTPRequest, Int, BodyFraming)? {
        // Lines end in CRLF only; a bare CR or LF inside a line is rejected with the line, so
        // two parsers can never disagree on where a request ends (RFC 9112 §2.2, smuggling).
        guard let end = find([13, 10, 13, 10], in: buffer, limit: limits.maxHeaderBytes + 4) else {
            let requestLineEnded = find([13, 10], in: buffer, limit: limits.maxRequestLineBytes + 2) != nil
            if !requestLineEnded && buffer.count > limits.maxRequestLineBytes {
                throw HTTPParseError(status: 414, message: "request line exceeds \(limits.maxRequestLineBytes) bytes")
            }
            if buffer.count > limits.maxHeaderBytes + 4 {
                throw HTTPParseError(status: 431, message: "header section exceeds \(limits.maxHeaderBytes) bytes")
            }
            return nil
        }
        let lines = split(Array(buffer[0..<end]))
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
        return (request, end + 4, try readFraming(request.headers))
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

    private func readFraming(_ headers: HTTPHeaders) throws(HTTPParseError) -> BodyFraming {
        let encodings = headers.values("transfer-encoding")
        let lengths = headers.values("content-length")
        if !encodings.isEmpty {
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

    /// chunked-body = *chunk last-chunk trailer-section CRLF (RFC 9112 §7.1); nil until complete.
    private func readChunkedBody(from start: Int) throws(HTTPParseError) -> (bytes: [UInt8], consumed: Int)? {
        var position = start
        var body = [UInt8]()
        while true {
            guard let lineEnd = find([13, 10], in: buffer, from: position, limit: 1024) else {
                if buffer.count - position > 1024 { throw .bad("chunk size line too long (RFC 9112 §7.1)") }
                return nil
            }
            let line = buffer[position..<lineEnd]
            // chunk-size [ chunk-ext ]: extensions are ignored (RFC 9112 §7.1.1).
            let sizeText = line.prefix { $0 != UInt8(ascii: ";") }
            guard !sizeText.isEmpty, sizeText.count <= 8, let size = Int(String(decoding: sizeText, as: UTF8.self), radix: 16),
                  sizeText.allSatisfy({ (48...57).contains($0) || (65...70).contains($0) || (97...102).contains($0) })
            else { throw .bad("invalid chunk size (RFC 9112 §7.1)") }
            position = lineEnd + 2
            if size == 0 {
                // trailer-section: fields until an empty line; parsed for validity, then dropped.
                while true {
                    guard let trailerEnd = find([13, 10], in: buffer, from: position, limit: limits.maxHeaderBytes) else {
                        if buffer.count - position > limits.maxHeaderBytes { throw HTTPParseError(status: 431, message: "trailer section too large") }
                        return nil
                    }
                    if trailerEnd == position { return (body, trailerEnd + 2 - start) }
                    _ = try readField(Array(buffer[position..<trailerEnd]))
                    position = trailerEnd + 2
                }
            }
            guard body.count + size <= limits.maxBodyBytes else { throw HTTPParseError(status: 413, message: "chunked body exceeds \(limits.maxBodyBytes) bytes") }
            guard buffer.count >= position + size + 2 else { return nil }
            guard buffer[position + size] == 13, buffer[position + size + 1] == 10 else { throw .bad("chunk data not followed by CRLF (RFC 9112 §7.1)") }
            body.append(contentsOf: buffer[position..<(position + size)])
            position += size + 2
        }
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

    private func split(_ head: [UInt8]) -> [[UInt8]] {
        var lines = [[UInt8]](), start = 0
        while let end = find([13, 10], in: head, from: start, limit: head.count) {
            lines.append(Array(head[start..<end]))
            start = end + 2
        }
        lines.append(Array(head[start...]))
        return lines
    }

    /// Index of `pattern` in `bytes` at or after `from`, looking no further than `limit` bytes.
    private func find(_ pattern: [UInt8], in bytes: [UInt8], from: Int = 0, limit: Int) -> Int? {
        let last = min(bytes.count - pattern.count, from + limit)
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
