// SPDX-License-Identifier: MIT
import Foundation
import TestSupport
import Testing
@testable import DoppelHTTP

/// Requests that cost the sender little and could cost the server much: each is sent to a real
/// server (or fed to the parser as a socket would), and what it costs is asserted, not only the
/// status it gets.
@Suite struct HostileClientTests {
    /// A body in `chunkSize`-byte chunks: the framing of `payload`.
    static func chunked(_ payload: [UInt8], chunkSize: Int) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(payload.count * 2 + 16)
        var offset = 0
        while offset < payload.count {
            let end = min(offset + chunkSize, payload.count)
            out += Array(String(end - offset, radix: 16).utf8) + [13, 10] + payload[offset..<end] + [13, 10]
            offset = end
        }
        return out + Array("0\r\n\r\n".utf8)
    }

    /// The parser's work grows with the bytes fed, however they are framed and split: 1-byte
    /// chunks fed as 64 KiB reads (the server's read size) once re-parsed the whole body on
    /// every read, quadratic in the chunk count. Each byte is examined by at most the size-line
    /// search and the CRLF search after data and copied once, so the work is at most 2x the
    /// bytes fed; the bound 3x leaves room for the head and trailer searches, and a quadratic
    /// parser is hundreds of times over it at this size.
    @Test(arguments: [1, 4096])
    func chunkedBodyWorkIsLinearInItsBytes(chunkSize: Int) throws {
        let payload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let request = Array("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".utf8) + Self.chunked(payload, chunkSize: chunkSize)
        var parser = HTTPRequestParser(limits: HTTPLimits())
        var received: HTTPRequest?
        var offset = 0
        while offset < request.count {
            let end = min(offset + (64 << 10), request.count)
            parser.append(request[offset..<end])
            offset = end
            while let event = try parser.next() {
                if case .request(let complete) = event { received = complete }
            }
            // Between reads only an unfinished line stays buffered beside the body so far.
            #expect(parser.bufferedByteCount <= (received == nil ? payload.count + 1030 : 0))
        }
        #expect(received?.body == payload)
        #expect(parser.work <= 3 * request.count, "parser work \(parser.work) for \(request.count) bytes")
    }

    /// The same for a plain body and for a head written a byte at a time (slow loris): the end
    /// of the head is searched from where the last search stopped.
    @Test func headFedByteByByteIsScannedOnce() throws {
        let head = "GET /s HTTP/1.1\r\nHost: x\r\n" + (0..<90).map { "X-Field-\($0): \(String(repeating: "v", count: 100))\r\n" }.joined() + "\r\n"
        var parser = HTTPRequestParser(limits: HTTPLimits())
        var complete = false
        for byte in Array(head.utf8) {
            parser.append([byte])
            if case .request = try parser.next() { complete = true }
        }
        #expect(complete)
        // Each search resumes 3 bytes before where the last stopped: at most 4 looks a byte,
        // plus splitting the complete head into lines once.
        #expect(parser.work <= 5 * head.utf8.count, "parser work \(parser.work) for \(head.utf8.count) bytes")
    }

    @Test func framingThatOnlySmugglersSend() throws {
        for (text, status) in [
            // RFC 9112 §6.1: an HTTP/1.0 request with Transfer-Encoding has faulty framing.
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            // A bare CR or LF inside a chunk extension.
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\rb\r\nabc\r\n0\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;a\nb\r\nabc\r\n0\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\u{0}\r\nabc\r\n0\r\n\r\n", 400),
        ] {
            var parser = HTTPRequestParser(limits: HTTPLimits())
            parser.append(Array(text.utf8))
            #expect(throws: HTTPParseError.self) { _ = try parser.next() }
            do { _ = try parser.next() } catch { #expect(error.status == status, "\(text.debugDescription)") }
        }
    }

    /// How long a fresh client waits for `/hello`, the slowest of `probes`.
    static func slowestProbe(port: Int, probes: Int = 10) throws -> Double {
        var slowest = 0.0
        for _ in 0..<probes {
            let started = Date()
            let client = try RawClient(port: port, timeoutSeconds: 30)
            try client.write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            slowest = max(slowest, Date().timeIntervalSince(started))
            usleep(20_000)
        }
        return slowest
    }

    /// 64 connections each pipeline 50 requests for 256 KiB and never read. A worker used to
    /// write each response itself, waiting up to `writeTimeout` for a client that never reads:
    /// with 4 workers, the 5th client waited for the first timeout (here 4 s). Now the loop
    /// finishes writes as sockets drain, so workers are free: the bound of 1 s separates "a
    /// worker was free" from "every worker waited for a write timeout", with room for a
    /// loaded test machine. The stuck connections are closed by the write timeout.
    @Test func clientsThatNeverReadHoldNoWorker() throws {
        let test = try TestServer { $0.workers = 4; $0.writeTimeout = 4000 }
        defer { test.stop() }
        let pipeline = String(repeating: "GET /big/256 HTTP/1.1\r\nHost: x\r\n\r\n", count: 50)
        var stuck = [RawClient]()
        for _ in 0..<64 {
            let client = try RawClient(port: test.port)
            try client.write(pipeline)
            stuck.append(client)
        }
        usleep(300_000)  // the workers have answered what the sockets took
        let slowest = try Self.slowestProbe(port: test.port)
        #expect(slowest < 1, "a client waited \(slowest) s beside 64 that never read")
        usleep(5_000_000)
        #expect(test.server.openConnections.load(ordering: .relaxed) == 0, "connections that never read are closed after writeTimeout")
        _ = stuck
    }

    /// 64 uploads trickling a byte every 100 ms: the idle timeout between reads never fires, so
    /// only a total deadline with a minimum rate ends them (here 1 s plus 1 s per 1 KiB, at
    /// most 2 s). Each gets 408 in time, and others are served meanwhile.
    @Test func tricklingUploadsMeetTheirDeadline() throws {
        let test = try TestServer { $0.bodyTimeout = 1000; $0.bodyMinBytesPerSecond = 1024; $0.bodyMaxTime = 2000 }
        defer { test.stop() }
        var tricklers = [RawClient]()
        for _ in 0..<64 {
            let client = try RawClient(port: test.port)
            try client.write("POST /t HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
            tricklers.append(client)
        }
        let started = Date()
        var statuses = [Int?](repeating: nil, count: tricklers.count)
        let stop = Date().addingTimeInterval(8)
        while Date() < stop, statuses.contains(where: { $0 == nil }) {
            for (i, client) in tricklers.enumerated() where statuses[i] == nil {
                if (try? client.write("a")) == nil || client.isClosedByServer() {
                    statuses[i] = (try? client.readResponse())?.status ?? 0
                }
            }
            usleep(100_000)
        }
        let elapsed = Date().timeIntervalSince(started)
        #expect(statuses.allSatisfy { $0 != nil }, "every trickling upload was ended")
        #expect(elapsed < 5, "ended after \(elapsed) s; the body deadline is 2 s (+ the 100 ms sweep)")
        #expect(try Self.slowestProbe(port: test.port, probes: 3) < 1)
    }

    @Test func clientTextIsEscapedInLogLines() {
        #expect(LogText.escaped("/a\nGET /forged 200") == "/a\\u{a}GET /forged 200")
        #expect(LogText.escaped("/\u{1B}[31mred") == "/\\u{1b}[31mred")
        #expect(LogText.escaped("/back\\slash") == "/back\\\\slash")
        #expect(LogText.escaped(String(repeating: "x", count: 600)).count == 515)
    }
}
