// SPDX-License-Identifier: MIT
import Testing
@testable import DoppelHTTP

@Suite struct MultipartTests {
    static func body(_ text: String) -> [UInt8] { Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8) }

    @Test func readsFieldsFilesAndPartHeaders() throws {
        let parser = try MultipartParser(contentType: #"multipart/form-data; boundary="XyZ 12'()+_,-./:=?""#)
        let body = Self.body("""
            preamble is ignored
            --XyZ 12'()+_,-./:=?
            Content-Disposition: form-data; name="id"

            alice
            --XyZ 12'()+_,-./:=?\t
            Content-Disposition: form-data; name="image"; filename="a \\"quoted\\" name.png"
            Content-Type: image/png

            \u{1}\u{2}
            with a line
            --XyZ 12'()+_,-./:=?--
            epilogue
            """)
        let parts = try parser.parse(body)
        #expect(parts.count == 2)
        #expect(parts[0].name == "id" && parts[0].filename == nil && parts[0].body == Array("alice".utf8))
        #expect(parts[1].name == "image" && parts[1].filename == #"a "quoted" name.png"# && parts[1].contentType == "image/png")
        #expect(parts[1].body == [1, 2, 13, 10] + Array("with a line".utf8))
    }

    @Test func boundaryWithoutQuotesAndBinaryContent() throws {
        let parser = try MultipartParser(contentType: "multipart/form-data;boundary=b")
        let binary: [UInt8] = [0, 13, 10, 45, 45, 97, 255, 13]  // CRLF "--a" inside: not the delimiter
        let body = Array("--b\r\nContent-Disposition: form-data; name=f\r\n\r\n".utf8) + binary + Array("\r\n--b--".utf8)
        let parts = try parser.parse(body)
        #expect(parts.count == 1 && parts[0].body == binary && parts[0].name == "f")
    }

    @Test(arguments: [
        ("text/plain; boundary=b", "not multipart/form-data"),
        ("multipart/form-data", "without a boundary"),
        ("multipart/form-data; boundary=", "invalid multipart boundary"),
        ("multipart/form-data; boundary=\(String(repeating: "x", count: 71))", "invalid multipart boundary"),
        ("multipart/form-data; boundary=a; boundary=b", "more than one boundary"),
    ])
    func refusesBadContentTypes(contentType: String, message: String) {
        #expect { try MultipartParser(contentType: contentType) } throws: { ($0 as? MultipartError)?.message.contains(message) == true }
    }

    @Test(arguments: [
        ("no delimiter at all", "no boundary delimiter"),
        ("--b\nContent-Disposition: form-data; name=\"a\"\n\nunterminated", "no closing boundary"),
        ("--b\nContent-Disposition: form-data; name=\"a\"\n\nx\n--b", "not followed by CRLF"),
        ("--b--", "without parts"),
        ("--b\nContent-Type: text/plain\n\nx\n--b--", "exactly one Content-Disposition"),
        ("--b\nContent-Disposition: form-data; name=a\nContent-Disposition: form-data; name=b\n\nx\n--b--", "exactly one Content-Disposition"),
        ("--b\nContent-Disposition: attachment; name=\"a\"\n\nx\n--b--", "form-data with a name"),
        ("--b\nContent-Disposition: form-data; filename=\"a\"\n\nx\n--b--", "form-data with a name"),
        ("--b\nContent-Disposition: form-data; name=\"a\n\nx\n--b--", "unterminated quoted string"),
        ("--b\nContent-Disposition: form-data; name=a; name=b\n\nx\n--b--", "repeated Content-Disposition parameter"),
        ("--b\nno colon here\n\nx\n--b--", "malformed header line"),
        ("--b\nContent-Disposition: form-data; name=a\n: no name\n\nx\n--b--", "malformed header line"),
    ])
    func refusesMalformedBodies(body: String, message: String) throws {
        let parser = try MultipartParser(boundary: "b")
        #expect { try parser.parse(Self.body(body)) } throws: { ($0 as? MultipartError)?.message.contains(message) == true }
    }

    @Test func enforcesPartCountAndSizeLimits() throws {
        var limits = MultipartLimits()
        limits.maxParts = 2
        limits.maxPartBytes = 4
        let parser = try MultipartParser(boundary: "b", limits: limits)
        let part = "--b\nContent-Disposition: form-data; name=\"a\"\n\nabcd\n"
        #expect(try parser.parse(Self.body(part + part + "--b--")).count == 2)
        #expect { try parser.parse(Self.body(part + part + part + "--b--")) } throws: { ($0 as? MultipartError)?.message.contains("more than 2 parts") == true }
        let big = "--b\nContent-Disposition: form-data; name=\"a\"\n\nabcde\n--b--"
        #expect { try parser.parse(Self.body(big)) } throws: { ($0 as? MultipartError)?.message.contains("exceeds 4 bytes") == true }
    }
}
