// SPDX-License-Identifier: MIT
import Foundation
import Synchronization

/// A response: status, headers, and a body sent with Content-Length (no streaming).
public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func json(_ status: Int, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: HTTPHeaders([("Content-Type", "application/json")]), body: Array(text.utf8))
    }

    /// The bytes on the wire: status line, the given headers, then Date, Content-Length and
    /// (when the body is not empty and none was given) Content-Type, and `Connection: close`
    /// when the connection ends after this response.
    public func serialized(date: Date = Date(), closing: Bool = false) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(Self.reason(status))\r\n"
        for (name, value) in headers.fields { head += "\(name): \(value)\r\n" }
        head += "Date: \(Self.httpDate(date))\r\n"
        head += "Content-Length: \(body.count)\r\n"
        if !body.isEmpty && headers["content-type"] == nil { head += "Content-Type: application/octet-stream\r\n" }
        if closing { head += "Connection: close\r\n" }
        head += "\r\n"
        return Array(head.utf8) + body
    }

    /// The last formatted second: formatting is the costliest part of a small response's
    /// head, and at thousands of responses a second nearly all share the second.
    /// Behind an NSLock (pthread), which ThreadSanitizer sees, where Synchronization's futex
    /// Mutex on Linux is invisible to it.
    nonisolated(unsafe) private static var dateCache = (second: -1, text: "")
    private static let dateCacheLock = NSLock()

    /// IMF-fixdate (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func httpDate(_ date: Date) -> String {
        let second = Int(date.timeIntervalSince1970)
        if let cached = dateCacheLock.withLock({ dateCache.second == second ? dateCache.text : nil }) { return cached }
        let text = formatHTTPDate(second)
        dateCacheLock.withLock { dateCache = (second, text) }
        return text
    }

    private static func formatHTTPDate(_ second: Int) -> String {
        var time = time_t(second)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return String(format: "%@, %02d %@ %04d %02d:%02d:%02d GMT", days[Int(parts.tm_wday)], parts.tm_mday, months[Int(parts.tm_mon)],
                      Int(parts.tm_year) + 1900, parts.tm_hour, parts.tm_min, parts.tm_sec)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 204: "No Content"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 422: "Unprocessable Content"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Status \(status)"
        }
    }
}
