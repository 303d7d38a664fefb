// SPDX-License-Identifier: MIT
import DoppelHTTP
import Foundation

/// An error a route answers with: the status, a stable machine-readable code and a message
/// for people. The body is always `{"error": {"code": ..., "message": ...}}` (DESIGN.md).
public struct ServiceError: Error, HTTPResponseError, Equatable, CustomStringConvertible {
    public let kind: ErrorCode
    public let message: String
    /// Extra fields beside code and message (e.g. the warnings of a refused enrollment).
    public var details: [String: JSONValue] = [:]

    public init(_ kind: ErrorCode, _ message: String, details: [String: JSONValue] = [:]) {
        self.kind = kind
        self.message = message
        self.details = details
    }

    public var status: Int { kind.status }
    public var code: String { kind.code }

    public var description: String { "\(status) \(code): \(message)" }

    public var response: HTTPResponse {
        var error: [String: JSONValue] = ["code": .string(code), "message": .string(message)]
        error.merge(details) { a, _ in a }
        return .json(status, JSONValue.object(["error": .object(error)]).serialized())
    }
}

/// Every error the service answers with: a stable machine-readable code and the status it
/// goes with. docs/api.md's error table lists exactly these, with the HTTP layer's own (a
/// request its parser or router refuses); `ServiceErrorTests` checks the two agree.
public enum ErrorCode: CaseIterable, Sendable {
    /// Malformed input (400).
    case badRequest, invalidJSON, invalidMultipart, invalidBase64, invalidImage, missingImage, missingField, invalidField
    case unknownField, tooManyImages, invalidFace, invalidK, invalidThreshold, invalidLimit, invalidPrefix, invalidSample
    case invalidMaxSide, invalidFormat, invalidID, invalidGallery
    /// Keys (401, 403).
    case unauthorized, forbidden
    /// What is not there or not allowed (404, 409, 411, 413, 415, 421).
    case notFound, imageNotStored, conflict, noSamples, lengthRequired, imageTooLarge, fieldTooLarge, unsupportedMediaType
    case misdirectedRequest
    /// Well-formed but unusable (422).
    case unusableImage, noFace, multipleFaces, noSuchFace, boxOutsideImage, enrollmentQuality
    /// The server (500, 503).
    case internalError, notReady, overloaded, storageUnavailable, behind

    /// The code clients see. An image that does not decode (400) and one that decodes but
    /// cannot be used (422) share `invalid_image`.
    public var code: String {
        switch self {
        case .badRequest: "bad_request"
        case .invalidJSON: "invalid_json"
        case .invalidMultipart: "invalid_multipart"
        case .invalidBase64: "invalid_base64"
        case .invalidImage, .unusableImage: "invalid_image"
        case .missingImage: "missing_image"
        case .missingField: "missing_field"
        case .invalidField: "invalid_field"
        case .unknownField: "unknown_field"
        case .tooManyImages: "too_many_images"
        case .invalidFace: "invalid_face"
        case .invalidK: "invalid_k"
        case .invalidThreshold: "invalid_threshold"
        case .invalidLimit: "invalid_limit"
        case .invalidPrefix: "invalid_prefix"
        case .invalidSample: "invalid_sample"
        case .invalidMaxSide: "invalid_max_side"
        case .invalidFormat: "invalid_format"
        case .invalidID: "invalid_id"
        case .invalidGallery: "invalid_gallery"
        case .unauthorized: "unauthorized"
        case .forbidden: "forbidden"
        case .notFound: "not_found"
        case .imageNotStored: "image_not_stored"
        case .conflict: "conflict"
        case .noSamples: "no_samples"
        case .lengthRequired: "length_required"
        case .imageTooLarge: "image_too_large"
        case .fieldTooLarge: "field_too_large"
        case .unsupportedMediaType: "unsupported_media_type"
        case .misdirectedRequest: "misdirected_request"
        case .noFace: "no_face"
        case .multipleFaces: "multiple_faces"
        case .noSuchFace: "no_such_face"
        case .boxOutsideImage: "box_outside_image"
        case .enrollmentQuality: "enrollment_quality"
        case .internalError: "internal"
        case .notReady: "not_ready"
        case .overloaded: "overloaded"
        case .storageUnavailable: "storage_unavailable"
        case .behind: "behind"
        }
    }

    public var status: Int {
        switch self {
        case .badRequest, .invalidJSON, .invalidMultipart, .invalidBase64, .invalidImage, .missingImage, .missingField, .invalidField, .unknownField, .tooManyImages, .invalidFace, .invalidK, .invalidThreshold, .invalidLimit, .invalidPrefix, .invalidSample, .invalidMaxSide, .invalidFormat, .invalidID, .invalidGallery: 400
        case .unauthorized: 401
        case .forbidden: 403
        case .notFound, .imageNotStored: 404
        case .conflict, .noSamples: 409
        case .lengthRequired: 411
        case .imageTooLarge, .fieldTooLarge: 413
        case .unsupportedMediaType: 415
        case .misdirectedRequest: 421
        case .unusableImage, .noFace, .multipleFaces, .noSuchFace, .boxOutsideImage, .enrollmentQuality: 422
        case .internalError: 500
        case .notReady, .overloaded, .storageUnavailable, .behind: 503
        }
    }
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
