// SPDX-License-Identifier: MIT
import Foundation

/// Checks responses against the server's own `/openapi.json`: the operation for the route
/// pattern and method must document the status, and a JSON body must fit its schema (the
/// subset the document uses: $ref, allOf, type, const, enum, required, properties, items,
/// maxItems).
struct OpenAPIConformance {
    let document: [String: Any]

    init(json: [UInt8]) throws {
        document = try JSONSerialization.jsonObject(with: Data(json)) as! [String: Any]
    }

    /// Violations of the documented contract (empty when it conforms).
    func check(pattern: String, method: String, status: Int, body: [UInt8]) -> [String] {
        guard let operation = ((document["paths"] as? [String: Any])?[pattern] as? [String: Any])?[method.lowercased()] as? [String: Any] else {
            return ["\(method) \(pattern) is not in the document"]
        }
        guard var response = (operation["responses"] as? [String: Any])?[String(status)] as? [String: Any] else {
            return ["\(method) \(pattern) does not document status \(status)"]
        }
        if let ref = response["$ref"] as? String { response = resolve(ref) }
        guard let content = response["content"] as? [String: Any] else { return body.isEmpty ? [] : ["undocumented body"] }
        guard let json = content["application/json"] as? [String: Any], let schema = json["schema"] as? [String: Any] else { return [] }
        guard let value = try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) else { return ["body is not JSON"] }
        var violations = [String]()
        validate(value, schema, at: "$", into: &violations)
        return violations
    }

    private func resolve(_ ref: String) -> [String: Any] {
        var node: Any = document
        for key in ref.dropFirst(2).split(separator: "/") { node = (node as? [String: Any])?[String(key)] ?? [:] }
        return node as? [String: Any] ?? [:]
    }

    private static func typeName(_ value: Any) -> String {
        switch value {
        case is NSNull: "null"
        case let n as NSNumber where String(cString: n.objCType) == "c": "boolean"
        case let n as NSNumber: n.doubleValue == n.doubleValue.rounded() ? "integer" : "number"
        case is String: "string"
        case is [Any]: "array"
        case is [String: Any]: "object"
        default: "unknown"
        }
    }

    private func validate(_ value: Any, _ schema: [String: Any], at path: String, into violations: inout [String]) {
        if let ref = schema["$ref"] as? String { return validate(value, resolve(ref), at: path, into: &violations) }
        for part in (schema["allOf"] as? [[String: Any]]) ?? [] { validate(value, part, at: path, into: &violations) }
        let actual = Self.typeName(value)
        if let type = schema["type"] {
            let allowed = (type as? [String]) ?? [type as? String ?? ""]
            let ok = allowed.contains(actual) || (actual == "integer" && allowed.contains("number"))
            if !ok { violations.append("\(path): \(actual), expected \(allowed.joined(separator: "|"))") }
        }
        if let constant = schema["const"] as? String, (value as? String) != constant { violations.append("\(path): expected \(constant)") }
        if let options = schema["enum"] as? [String], let s = value as? String, !options.contains(s) { violations.append("\(path): \(s) not in \(options)") }
        if let object = value as? [String: Any] {
            for key in (schema["required"] as? [String]) ?? [] where object[key] == nil { violations.append("\(path).\(key): required, missing") }
            for (key, sub) in (schema["properties"] as? [String: Any]) ?? [:] {
                if let field = object[key], let subSchema = sub as? [String: Any] { validate(field, subSchema, at: "\(path).\(key)", into: &violations) }
            }
        }
        if let array = value as? [Any] {
            if let most = schema["maxItems"] as? Int, array.count > most { violations.append("\(path): \(array.count) items > \(most)") }
            if let items = schema["items"] as? [String: Any] {
                for (i, item) in array.enumerated() { validate(item, items, at: "\(path)[\(i)]", into: &violations) }
            }
        }
    }
}
