// SPDX-License-Identifier: MIT
import DoppelHTTP
import Foundation

/// An error a route answers with: the status, a stable machine-readable code and a message
/// for people. The body is always `{"error": {"code": ..., "message": ...}}` (DESIGN.md).
public struct ServiceError: Error, HTTPResponseError, Equatable, CustomStringConvertible {
    public let status: Int
    public let code: String
    public let message: String
    /// Extra fields beside code and message (e.g. the warnings of a refused enrollment).
    public var details: [String: JSONValue] = [:]

    public init(_ status: Int, _ code: String, _ message: String, details: [String: JSONValue] = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { "\(status) \(code): \(message)" }

    public var response: HTTPResponse {
        var error: [String: JSONValue] = ["code": .string(code), "message": .string(message)]
        error.merge(details) { a, _ in a }
        return .json(status, JSONValue.object(["error": .object(error)]).serialized())
    }

    static func badRequest(_ message: String, code: String = "bad_request") -> ServiceError { ServiceError(400, code, message) }
    static func notFound(_ message: String) -> ServiceError { ServiceError(404, "not_found", message) }
}

/// A JSON value built by hand, so responses keep their field order and floats print short.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
    /// An object whose keys print in the given order.
    case ordered([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.serialized() == b.serialized() }

    public static func float(_ value: Float) -> JSONValue { value.isFinite ? .number(Double(value)) : .null }
    public static func int<I: BinaryInteger>(_ value: I) -> JSONValue { .number(Double(value)) }

    public func serialized() -> String {
        var out = ""
        out.reserveCapacity(512)
        write(into: &out)
        return out
    }

    func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n):
            if !n.isFinite {
                out += "null"
            } else if n == n.rounded(), abs(n) < 1e15 {
                out += String(Int64(n))
            } else {
                // Float-sized precision: embeddings and distances are Float.
                out += "\(Float(n))"
            }
        case .string(let s): Self.writeString(s, into: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(into: &out)
            }
            out += "]"
        case .object(let fields):
            Self.writeObject(fields.sorted { $0.key < $1.key }, into: &out)
        case .ordered(let fields):
            Self.writeObject(fields, into: &out)
        }
    }

    private static func writeObject(_ fields: [(String, JSONValue)], into out: inout String) {
        out += "{"
        for (i, (key, value)) in fields.enumerated() {
            if i > 0 { out += "," }
            writeString(key, into: &out)
            out += ":"
            value.write(into: &out)
        }
        out += "}"
    }

    private static func writeString(_ s: String, into out: inout String) {
        out += "\""
        // Most strings (keys, identity names) need no escape: appended whole, not scalar by
        // scalar (which took 3% of a loaded search server).
        guard s.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || $0 == 0x7F }) else {
            out += s
            out += "\""
            return
        }
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

extension HTTPResponse {
    static func json(_ status: Int, _ value: JSONValue) -> HTTPResponse { .json(status, value.serialized()) }
}
