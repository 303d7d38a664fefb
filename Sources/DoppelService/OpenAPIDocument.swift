// SPDX-License-Identifier: MIT
import Foundation

/// The OpenAPI 3.1 description of every route, served at `/openapi.json`: the file
/// `Resources/openapi.json`, kept beside the routes by hand (the end-to-end tests validate
/// every response against it), with this server's limits filled in. A bound that comes from
/// the configuration is marked `"x-limit": "limits.max_k"` (or another field) next to its
/// `maximum` or `maxItems`, which is set from that field.
enum OpenAPIDocument {
    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    /// The document with `limits` (config field -> value) in place of the file's defaults.
    static func json(limits: [String: Double]) throws -> [UInt8] {
        guard var document = try JSONSerialization.jsonObject(with: Data(PackageResources.openapi_json)) as? [String: Any] else {
            throw Malformed(description: "openapi.json is not a JSON object")
        }
        document = try fill(document, limits) as! [String: Any]
        return [UInt8](try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    private static func fill(_ node: Any, _ limits: [String: Double]) throws -> Any {
        switch node {
        case var object as [String: Any]:
            if let field = object["x-limit"] as? String {
                guard let value = limits[field] else { throw Malformed(description: "openapi.json names a limit the server does not set: \(field)") }
                let bound = value == value.rounded() ? NSNumber(value: Int(value)) : NSNumber(value: value)
                if object["maximum"] != nil { object["maximum"] = bound } else if object["maxItems"] != nil { object["maxItems"] = bound } else {
                    throw Malformed(description: "openapi.json: an x-limit (\(field)) beside neither maximum nor maxItems")
                }
            }
            for (key, value) in object { object[key] = try fill(value, limits) }
            return object
        case let array as [Any]:
            return try array.map { try fill($0, limits) }
        default:
            return node
        }
    }
}
