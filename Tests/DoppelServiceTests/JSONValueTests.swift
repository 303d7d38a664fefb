// SPDX-License-Identifier: MIT
import Foundation
import Testing
@testable import DoppelService

@Suite struct JSONValueTests {
    @Test func serialisesInOrderWithEscapes() throws {
        let value = JSONValue.ordered([
            ("b", .string("quote \" backslash \\ newline \n tab \t control \u{01} é")), ("a", .int(42)), ("f", .float(0.25)),
            ("nan", .float(.nan)), ("list", .array([.bool(true), .null])), ("o", .object(["z": .int(1), "y": .int(2)])),
            ("plain", .string("no escapes: é 日本")), ("del", .string("\u{7F}")),
        ])
        let text = value.serialized()
        #expect(text == #"{"b":"quote \" backslash \\ newline \n tab \t control \u0001 é","a":42,"f":0.25,"nan":null,"list":[true,null],"o":{"y":2,"z":1},"plain":"no escapes: é 日本","del":"\u007f"}"#)
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        #expect(parsed?["b"] as? String == "quote \" backslash \\ newline \n tab \t control \u{01} é")
    }

    @Test func errorsCarryCodeMessageAndDetails() throws {
        let error = ServiceError(.enrollmentQuality, "refused", details: ["warnings": .array([.string("w")])])
        let body = try JSONSerialization.jsonObject(with: Data(error.response.body)) as? [String: [String: Any]]
        #expect(error.response.status == 422)
        #expect(body?["error"]?["code"] as? String == "enrollment_quality" && body?["error"]?["message"] as? String == "refused")
        #expect((body?["error"]?["warnings"] as? [String]) == ["w"])
    }
}
