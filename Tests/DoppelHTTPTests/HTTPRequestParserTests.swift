// SPDX-License-Identifier: MIT
import Testing
@testable import DoppelHTTP

@Suite struct HTTPRequestParserTests {
    /// Parses `text` fed in one piece and, separately, one byte at a time; both must agree.
    static func parse(_ text: String, limits: HTTPLimits = HTTPLimits()) throws(HTTPParseError) -> [HTTPRequestParser.Event] {
        var whole = HTTPRequestParser(limits: limits)
        whole.append(Array(text.utf8))
        var events = [HTTPRequestParser.Event]()
        while let event = try whole.next() { events.append(event) }
        var trickle = HTTPRequestParser(limits: limits)
        var trickled = [HTTPRequestParser.Event]()
        for byte in text.utf8 {
            trickle.append([byte])
            while let event = try trickle.next() { trickled.append(event) }
        }
        #expect(trickled.filter { if case .request = $0 { true } else { false } } == events.filter { if case .request = $0 { true } else { false } })
        return events
    }

    static func requests(_ events: [HTTPRequestParser.Event]) -> [HTTPRequest] {
        events.compactMap { if case .request(let r) = $0 { r } else { nil } }
    }

    @Test func simpleGetWithQuery() throws {
        let request = try #require(Self.requests(try Self.parse("GET /v1/search?k=5&name=a%20b+c HTTP/1.1\r\nHost: x\r\nX-Two: 1\r\nx-two: 2\r\n\r\n")).first)
        #expect(request.method == "GET" && request.path == "/v1/search" && request.version == .http11)
        #expect(request.queryValue("k") == "5" && request.queryValue("name") == "a b c")
        #expect(request.headers.values("X-TWO") == ["1", "2"])
        #expect(request.keepsAlive)
    }

    @Test func contentLengthBodyAndPipeline() throws {
        let one = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        let two = "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        let parsed = Self.requests(try Self.parse(String(repeating: one, count: 50) + two))
        #expect(parsed.count == 51)
        #expect(parsed[0].body == Array("hello".utf8) && parsed[50].path == "/b" && !parsed[50].keepsAlive)
    }

    @Test func chunkedWithExtensionsAndTrailers() throws {
        let text = "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
        let request = try #require(Self.requests(try Self.parse(text)).first)
        #expect(request.body == Array("hello world".utf8))
    }

    @Test func http10KeepAliveRules() throws {
        #expect(try Self.requests(Self.parse("GET / HTTP/1.0\r\n\r\n")).first?.keepsAlive == false)
        #expect(try Self.requests(Self.parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")).first?.keepsAlive == true)
    }

    @Test func expectContinueIsAnnouncedOnce() throws {
        var parser = HTTPRequestParser()
        parser.append(Array("POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n".utf8))
        #expect(try parser.next() == .continueExpected)
        #expect(try parser.next() == nil)
        parser.append(Array("abc".utf8))
        guard case .request(let request) = try parser.next() else { Issue.record("no request"); return }
        #expect(request.body == Array("abc".utf8))
    }

    @Test func bodyLimitExactlyAndOneOver() throws {
        var limits = HTTPLimits()
        limits.maxBodyBytes = 10
        #expect(Self.requests(try Self.parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789", limits: limits)).count == 1)
        #expect(throws: HTTPParseError(status: 413, message: "body of 11 bytes exceeds 10")) {
            try Self.parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n01234567890", limits: limits)
        }
    }

    /// Each malformed request gets its status.
    @Test(arguments: [
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),  // CL + TE
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),  // conflicting CL
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),  // bad chunk size
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 400),  // no CRLF after data
        ("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),  // obs-fold
        ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),  // space before colon
        ("GET / HTTP/1.1\r\n\r\n", 400),  // no Host
        ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        ("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nX: a\u{0}b\r\n\r\n", 400),
    ])
    func rejects(request: String, status: Int) {
        do {
            _ = try Self.parse(request)
            Issue.record("accepted: \(request.debugDescription)")
        } catch {
            #expect(error.status == status, "\(request.debugDescription): \(error)")
        }
    }

    @Test func oversizedRequestLineAndHeaders() {
        #expect(throws: HTTPParseError.self) { try Self.parse("GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\n") }
        do {
            _ = try Self.parse("GET /" + String(repeating: "a", count: 9000))
        } catch { #expect(error.status == 414) }
        do {
            _ = try Self.parse("GET / HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", count: 500))
            Issue.record("accepted")
        } catch { #expect(error.status == 431) }
    }
}
