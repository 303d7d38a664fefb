// SPDX-License-Identifier: MIT

/// Text from a client, made safe to put in a log line: control characters (a decoded `%0A`
/// would forge a line, `%1B` would write terminal escapes) and backslashes are written as
/// escapes, and anything beyond `limit` characters is cut.
public enum LogText {
    public static func escaped(_ text: String, limit: Int = 512) -> String {
        var out = ""
        for scalar in text.unicodeScalars.prefix(limit) {
            switch scalar.value {
            case 0x5C: out += "\\\\"
            case 0..<0x20, 0x7F, 0x80..<0xA0, 0x2028, 0x2029: out += "\\u{\(String(scalar.value, radix: 16))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        if text.unicodeScalars.count > limit { out += "..." }
        return out
    }
}
