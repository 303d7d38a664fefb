// SPDX-License-Identifier: MIT

/// One part of a `multipart/form-data` body (RFC 7578).
public struct MultipartPart: Sendable, Equatable {
    /// The form field name from `Content-Disposition: form-data; name="..."`.
    public var name: String
    public var filename: String?
    public var contentType: String?
    public var headers: HTTPHeaders
    public var body: [UInt8]
}

public struct MultipartLimits: Sendable, Equatable {
    public var maxParts = 64
    public var maxPartBytes = 16 << 20
    public var maxPartHeaderBytes = 8192

    public init() {}
}

/// A body that is not well-formed multipart, with the rule it breaks.
public struct MultipartError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// A `multipart/form-data` parser: a value type of small `read...` steps over the whole body
/// (bodies are already bounded by the server's body limit).
public struct MultipartParser: Sendable {
    public let boundary: [UInt8]
    public let limits: MultipartLimits

    /// The boundary from a `Content-Type: multipart/form-data; boundary=...` value.
    public init(contentType: String, limits: MultipartLimits = MultipartLimits()) throws(MultipartError) {
        let parameters = contentType.split(separator: ";").map { String($0).trimmingCharacters(in: .whitespaces) }
        guard parameters.first?.lowercased() == "multipart/form-data" else {
            throw MultipartError(message: "Content-Type is not multipart/form-data")
        }
        var boundary: String?
        for parameter in parameters.dropFirst() {
            guard let equals = parameter.firstIndex(of: "="), parameter[..<equals].lowercased() == "boundary" else { continue }
            guard boundary == nil else { throw MultipartError(message: "more than one boundary parameter") }
            var value = Substring(parameter[parameter.index(after: equals)...])
            if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 { value = value.dropFirst().dropLast() }
            boundary = String(value)
        }
        guard let boundary else { throw MultipartError(message: "multipart/form-data without a boundary parameter (RFC 7578 §4.1)") }
        try self.init(boundary: boundary, limits: limits)
    }

    public init(boundary: String, limits: MultipartLimits = MultipartLimits()) throws(MultipartError) {
        // RFC 2046 §5.1.1: 1-70 characters from bcharsnospace and space, not ending in space.
        // (This also keeps CR and LF out of the delimiter, which makes the scan linear.)
        let allowed = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ".utf8)
        let bytes = Array(boundary.utf8)
        guard (1...70).contains(bytes.count), bytes.allSatisfy(allowed.contains), bytes.last != 32 else {
            throw MultipartError(message: "invalid multipart boundary (RFC 2046 §5.1.1)")
        }
        self.boundary = bytes
        self.limits = limits
    }

    /// Every part in order.
    public func parse(_ body: [UInt8]) throws(MultipartError) -> [MultipartPart] {
        let delimiter = [13, 10, 45, 45] + boundary  // CRLF "--" boundary
        // The first delimiter may open the body without the CRLF (RFC 2046 §5.1.1: preamble).
        var position: Int
        if body.starts(with: delimiter.dropFirst(2)) {
            position = delimiter.count - 2
        } else if let first = find(delimiter, in: body, from: 0) {
            position = first + delimiter.count
        } else {
            throw MultipartError(message: "no boundary delimiter in the body (RFC 2046 §5.1.1)")
        }
        var parts = [MultipartPart]()
        while true {
            // After a delimiter: "--" closes the body, else optional padding then CRLF.
            if body.count >= position + 2 && body[position] == 45 && body[position + 1] == 45 { return try complete(parts) }
            while position < body.count && (body[position] == 32 || body[position] == 9) { position += 1 }
            guard body.count >= position + 2, body[position] == 13, body[position + 1] == 10 else {
                throw MultipartError(message: "boundary delimiter not followed by CRLF (RFC 2046 §5.1.1)")
            }
            position += 2
            guard parts.count < limits.maxParts else { throw MultipartError(message: "more than \(limits.maxParts) parts") }
            guard let next = find(delimiter, in: body, from: position) else {
                throw MultipartError(message: "part \(parts.count + 1) has no closing boundary delimiter (RFC 2046 §5.1.1)")
            }
            parts.append(try readPart(body[position..<next], index: parts.count + 1))
            position = next + delimiter.count
        }
    }

    private func complete(_ parts: [MultipartPart]) throws(MultipartError) -> [MultipartPart] {
        guard !parts.isEmpty else { throw MultipartError(message: "multipart body without parts") }
        return parts
    }

    private func readPart(_ bytes: ArraySlice<UInt8>, index: Int) throws(MultipartError) -> MultipartPart {
        guard let headEnd = find([13, 10, 13, 10], in: Array(bytes.prefix(limits.maxPartHeaderBytes + 4)), from: 0)
                ?? (bytes.starts(with: [13, 10]) ? -2 : nil) else {
            throw MultipartError(message: "part \(index): header section missing or over \(limits.maxPartHeaderBytes) bytes")
        }
        var headers = HTTPHeaders()
        if headEnd >= 0 {
            for line in lines(Array(bytes.prefix(headEnd))) {
                guard let colon = line.firstIndex(of: 58), colon > line.startIndex else { throw MultipartError(message: "part \(index): malformed header line") }
                let name = String(decoding: line[..<colon], as: UTF8.self)
                guard name.utf8.allSatisfy(HTTPRequestParser.isTokenCharacter) else { throw MultipartError(message: "part \(index): invalid header name") }
                headers.add(name, String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingCharacters(in: .whitespaces))
            }
        }
        let content = Array(bytes.dropFirst(headEnd + 4))
        guard content.count <= limits.maxPartBytes else { throw MultipartError(message: "part \(index) exceeds \(limits.maxPartBytes) bytes") }
        guard headers.values("content-disposition").count == 1, let disposition = headers["content-disposition"] else {
            throw MultipartError(message: "part \(index): needs exactly one Content-Disposition (RFC 7578 §4.2)")
        }
        let (kind, parameters) = try readDisposition(disposition, index: index)
        guard kind == "form-data", let name = parameters["name"] else {
            throw MultipartError(message: "part \(index): Content-Disposition must be form-data with a name (RFC 7578 §4.2)")
        }
        return MultipartPart(name: name, filename: parameters["filename"], contentType: headers["content-type"], headers: headers, body: content)
    }

    /// `form-data; name="field"; filename="a \"b\".png"`: the type and its parameters, quoted
    /// strings unescaped (RFC 9110 §5.6.4).
    private func readDisposition(_ value: String, index: Int) throws(MultipartError) -> (String, [String: String]) {
        var characters = Substring(value)
        func skipSpaces() { while characters.first == " " || characters.first == "\t" { characters.removeFirst() } }
        func token() -> String {
            let t = characters.prefix { $0.isASCII && HTTPRequestParser.isTokenCharacter($0.asciiValue!) }
            characters.removeFirst(t.count)
            return String(t)
        }
        let kind = token().lowercased()
        var parameters = [String: String]()
        while true {
            skipSpaces()
            guard !characters.isEmpty else { break }
            guard characters.removeFirst() == ";" else { throw MultipartError(message: "part \(index): malformed Content-Disposition") }
            skipSpaces()
            let name = token().lowercased()
            guard !name.isEmpty, characters.first == "=" else { throw MultipartError(message: "part \(index): malformed Content-Disposition parameter") }
            characters.removeFirst()
            var parameterValue = ""
            if characters.first == "\"" {
                characters.removeFirst()
                var closed = false
                while let c = characters.first {
                    characters.removeFirst()
                    if c == "\"" {
                        closed = true
                        break
                    }
                    if c == "\\", let escaped = characters.first {
                        characters.removeFirst()
                        parameterValue.append(escaped)
                    } else {
                        parameterValue.append(c)
                    }
                }
                guard closed else { throw MultipartError(message: "part \(index): unterminated quoted string in Content-Disposition") }
            } else {
                parameterValue = token()
            }
            guard parameters[name] == nil else { throw MultipartError(message: "part \(index): repeated Content-Disposition parameter \(name)") }
            parameters[name] = parameterValue
        }
        return (kind, parameters)
    }

    /// The CRLF-separated lines of a header section.
    private func lines(_ head: [UInt8]) -> [ArraySlice<UInt8>] {
        var out = [ArraySlice<UInt8>](), start = 0, i = 0
        while i + 1 < head.count {
            if head[i] == 13 && head[i + 1] == 10 {
                out.append(head[start..<i])
                start = i + 2
                i += 2
            } else {
                i += 1
            }
        }
        out.append(head[start...])
        return out
    }

    /// Index of `pattern` in `bytes` at or after `from`. Linear: the pattern's only CR is its
    /// first byte, so candidate matches cannot overlap.
    private func find(_ pattern: [UInt8], in bytes: [UInt8], from: Int) -> Int? {
        guard bytes.count >= pattern.count else { return nil }
        let first = pattern[0]
        var i = from
        let last = bytes.count - pattern.count
        while i <= last {
            if bytes[i] == first {
                var j = 1
                while j < pattern.count && bytes[i + j] == pattern[j] { j += 1 }
                if j == pattern.count { return i }
            }
            i += 1
        }
        return nil
    }
}
