// SPDX-License-Identifier: MIT
import Foundation
import Testing
@testable import DoppelService

@Suite struct OpenAPIDocumentTests {
    static let limits: [String: Double] = ["limits.max_k": 7, "limits.max_images_per_request": 3, "limits.max_faces": 2, "threshold.max_threshold": 1.5]

    static func schema(_ document: [String: Any], _ path: String...) -> Any? {
        var node: Any? = document
        for key in path { node = (node as? [String: Any])?[key] }
        return node
    }

    /// The served document states this server's limits where the file marks them (x-limit).
    @Test func theConfiguredLimitsReplaceTheFilesDefaults() throws {
        let document = try JSONSerialization.jsonObject(with: Data(try OpenAPIDocument.json(limits: Self.limits))) as! [String: Any]
        #expect(Self.schema(document, "components", "schemas", "OneImage", "properties", "k", "maximum") as? Int == 7)
        #expect(Self.schema(document, "components", "schemas", "SearchResult", "properties", "matches", "maxItems") as? Int == 7)
        #expect(Self.schema(document, "components", "schemas", "NewIdentity", "properties", "images", "maxItems") as? Int == 3)
        #expect(Self.schema(document, "components", "schemas", "ImageOnly", "properties", "max_faces", "maximum") as? Int == 2)
        #expect(Self.schema(document, "components", "parameters", "threshold", "schema", "maximum") as? Double == 1.5)
        // Every marked bound took its configured value.
        var marked = 0
        func walk(_ node: Any) {
            if let object = node as? [String: Any] {
                if let field = object["x-limit"] as? String {
                    marked += 1
                    #expect((object["maximum"] ?? object["maxItems"]) as? Double == Self.limits[field], "\(field): \(object)")
                }
                object.values.forEach(walk)
            } else if let array = node as? [Any] {
                array.forEach(walk)
            }
        }
        walk(document)
        #expect(marked >= 15)
    }

    @Test func aLimitTheServerDoesNotSetIsAnError() {
        #expect(throws: OpenAPIDocument.Malformed.self) { try OpenAPIDocument.json(limits: ["limits.max_k": 7]) }
    }
}
