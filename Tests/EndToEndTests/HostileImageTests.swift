// SPDX-License-Identifier: MIT
import DoppelImaging
import Foundation
import Testing
import TestSupport

/// Small images that once cost the server far more than they cost the sender, sent to a real
/// `doppel serve`, with what they cost measured from the outside (the process's peak RSS).
@Suite(.serialized, .slow) struct HostileImageTests {
    /// The server's peak resident memory so far (VmHWM), in bytes.
    static func peakMemory(_ server: ServerProcess) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(server.process.processIdentifier)/status", encoding: .utf8)
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }!
        return Int(line.split(separator: " ").dropFirst().first!)! * 1024
    }

    /// A 1 x 999,999 strip (a few KB as PNG). Resizing it to the fixture's 16 x 16 once held a
    /// [1, 999,999, 16] float intermediate (64 MB, and 1.1 GB for a 112 x 112 RGB model); now
    /// the smaller pass order holds 16 floats, and the work is the decoded strip (1 MB) and its
    /// copies. The bound, 24 MB of growth in peak memory over three requests, is several
    /// times that work and well under the old intermediate alone.
    @Test func aTallStripCostsItsPixelsNotItsShape() throws {
        let f = ServeTests.fixture
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try ServerProcess(model: f.model, folder: folder)
        let api = try ServeTests.Checked(server)
        let strip = PNGEncoder.encode(Image(width: 1, height: 999_999, layout: .gray, filledWith: 128))
        #expect(strip.count < 64 << 10)
        let before = try Self.peakMemory(server)
        for _ in 0..<3 {
            let response = try api.call("POST", "/v1/search?k=1", key: nil, contentType: "image/png", body: strip)
            #expect(response.status == 200, "\(response.status) \(response.text)")
        }
        let growth = try Self.peakMemory(server) - before
        #expect(growth < 24 << 20, "peak memory grew by \(growth >> 20) MiB")
        _ = server.stop()
    }

    /// Image work reserves its cost from `limits.max_decode_mb` by the header before decoding:
    /// a 2000 x 2000 RGB PNG (a few KB, 12 MB decoded, about 24 MB with its copies) cannot fit
    /// a 4 MiB budget and is refused by name with 413, while a small image still answers, and
    /// the refusal leaves the budget as it was (the next small one is answered too).
    @Test func imageMemoryHasOneBudgetReservedFromTheHeader() throws {
        let f = ServeTests.fixture
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try ServerProcess.configured(#"{"limits": {"max_decode_mb": 4}}"#, model: f.model, folder: folder)
        let api = try ServeTests.Checked(server)
        let large = PNGEncoder.encode(Image(width: 2000, height: 2000, layout: .rgb, filledWith: 90))
        let small = f.image(0, 0)
        let refused = try api.json("POST", "/v1/verify", key: nil, ["image1": Body.base64(small), "image2": Body.base64(large)])
        #expect(refused.status == 413 && refused.errorCode == "image_too_large", "\(refused.status) \(refused.text)")
        #expect(refused.text.contains("image2") && refused.text.contains("max_decode_mb"))
        for _ in 0..<2 {
            let answered = try api.json("POST", "/v1/verify", key: nil, ["image1": Body.base64(small), "image2": Body.base64(small)])
            #expect(answered.status == 200, "\(answered.status) \(answered.text)")
        }
        _ = server.stop()
    }

    /// A web page that rebinds its own name to 127.0.0.1 sends that name as Host: on a loopback
    /// bind only the loopback names are answered. And the client routes' openness is the
    /// configuration's, not a side effect of having no client keys.
    @Test func foreignHostNamesAndClosedRoutesAreRefused() throws {
        let f = ServeTests.fixture
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try ServerProcess(model: f.model, folder: folder, environment: ["DOPPEL_ADMIN_KEYS": ServeTests.adminKey, "DOPPEL_OPEN": "false"])
        for (host, status) in [("attacker.example", 421), ("attacker.example:\(server.port)", 421), ("localhost:\(server.port)", 200),
                               ("127.0.0.1", 200), ("[::1]:\(server.port)", 200)] {
            let client = try server.client()
            try client.write("GET /healthz HTTP/1.1\r\nHost: \(host)\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == status, "Host \(host): \(response.status)")
            if status == 421 { #expect(response.errorCode == "misdirected_request") }
        }
        let png = f.image(0, 0)
        let closed = try server.client().send("POST", "/v1/search", headers: [("Content-Type", "image/png")], body: png)
        #expect(closed.status == 401, "DOPPEL_OPEN=false: a key is needed even on loopback")
        let keyed = try server.client().send("POST", "/v1/search", headers: [("Content-Type", "image/png"), ("Authorization", "Bearer \(ServeTests.adminKey)")], body: png)
        #expect(keyed.status == 200)
        _ = server.stop()
        #expect(server.stderr.contains("access: client routes need a key"), "the start-up log says who may call")
    }
}
