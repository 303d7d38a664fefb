// SPDX-License-Identifier: MIT
import DoppelImaging
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The service under bad input and faults: every malformed request gets its 4xx with a JSON
/// error and changes nothing; a server killed in the middle of enrollment bursts keeps every
/// enrollment it acknowledged; SIGTERM under load cuts no response.
@Suite(.serialized, .slow) struct ReliabilityTests {
    typealias Case = (name: String, method: String, path: String, contentType: String?, body: [UInt8], status: Int)

    static func png(width: Int, height: Int) -> [UInt8] {
        PNGEncoder.encode(Image(width: width, height: height, layout: .gray, filledWith: 128))
    }

    /// A well-formed PNG whose header declares `width` x `height` and whose data is a few
    /// kilobytes of zeros: a decompression bomb's shape, caught before any pixel is allocated.
    static func bombPNG(width: UInt32, height: UInt32) -> [UInt8] {
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            let crc = Zlib.crc32(body)
            return bigEndian(UInt32(data.count)) + body + bigEndian(crc)
        }
        func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 255), UInt8((v >> 8) & 255), UInt8(v & 255)] }
        let header = bigEndian(width) + bigEndian(height) + [8, 0, 0, 0, 0]
        return [137, 80, 78, 71, 13, 10, 26, 10] + chunk("IHDR", header) + chunk("IDAT", Zlib.deflate([UInt8](repeating: 0, count: 65536)))
            + chunk("IEND", [])
    }

    static func catalogue(_ f: ServeTests.Fixture) -> [Case] {
        let good = f.image(1, 0)
        let jpeg = try! JPEGEncoder.encode(Image(width: 32, height: 32, layout: .rgb, filledWith: 90), quality: 90)
        let pgm = NetpbmEncoder.encode(Image(width: 16, height: 16, layout: .gray, filledWith: 7))
        let ppm = NetpbmEncoder.encode(Image(width: 16, height: 16, layout: .rgb, filledWith: 7))
        var cases = [Case]()
        func json(_ object: [String: Any]) -> [UInt8] { Body.json(object) }
        func b64(_ bytes: [UInt8]) -> String { Body.base64(bytes) }
        let imageRoutes = ["/v1/search", "/v1/embed", "/v1/identities/glyph0/verify", "/v1/identities/glyph0/samples"]
        // Bad images on every route that takes one, in every format, raw.
        for route in imageRoutes {
            for (name, bytes) in [("png", good), ("jpeg", jpeg), ("pgm", pgm), ("ppm", ppm)] {
                cases.append(("\(route) truncated \(name)", "POST", route, "application/octet-stream", Array(bytes.prefix(bytes.count / 2)), 400))
                cases.append(("\(route) \(name) missing its first bytes", "POST", route, "application/octet-stream", Array(bytes.dropFirst(3)), 400))
            }
            cases.append(("\(route) empty image", "POST", route, "image/png", [], 400))
            cases.append(("\(route) not an image", "POST", route, "image/png", Array("hello, world".utf8), 400))
            cases.append(("\(route) PNG bomb 100000x100000", "POST", route, "image/png", bombPNG(width: 100_000, height: 100_000), 413))
            cases.append(("\(route) PGM bomb", "POST", route, "image/x-portable-graymap", Array("P5\n70000 70000\n255\n".utf8) + [1, 2, 3], 413))
            cases.append(("\(route) text/plain", "POST", route, "text/plain", good, 415))
            cases.append(("\(route) no content type", "POST", route, nil, good, 415))
            cases.append(("\(route) malformed JSON", "POST", route, "application/json", Array("{\"image\": ".utf8), 400))
            cases.append(("\(route) JSON array", "POST", route, "application/json", Array("[1,2]".utf8), 400))
            cases.append(("\(route) invalid base64", "POST", route, "application/json", json(["image": "not base64 !!"]), 400))
            cases.append(("\(route) image as a number", "POST", route, "application/json", json(["image": 12]), 400))
            cases.append(("\(route) extra field", "POST", route, "application/json", json(["image": b64(good), "colour": "red"]), 400))
            cases.append(("\(route) multipart without boundary", "POST", route, "multipart/form-data", good, 400))
            cases.append(("\(route) multipart two boundaries", "POST", route, "multipart/form-data; boundary=a; boundary=b", good, 400))
            cases.append(("\(route) multipart never closed", "POST", route, "multipart/form-data; boundary=zz",
                          Array("--zz\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n".utf8) + good, 400))
            cases.append(("\(route) multipart part without disposition", "POST", route, "multipart/form-data; boundary=zz",
                          Array("--zz\r\nContent-Type: image/png\r\n\r\n".utf8) + good + Array("\r\n--zz--\r\n".utf8), 400))
            let twice = Body.multipart([("image", "a.png", good), ("image", "b.png", good)])
            if route != "/v1/identities/glyph0/samples" {
                cases.append(("\(route) the image part twice", "POST", route, twice.contentType, twice.body, 400))
            }
        }
        // Verify: pairs and thresholds.
        cases.append(("verify one image", "POST", "/v1/verify", "application/json", json(["image1": b64(good)]), 400))
        cases.append(("verify three images", "POST", "/v1/verify", "application/json", json(["image1": b64(good), "image2": b64(good), "image": b64(good)]), 400))
        cases.append(("verify truncated second", "POST", "/v1/verify", "application/json", json(["image1": b64(good), "image2": b64(Array(good.prefix(30)))]), 400))
        for threshold in ["-1", "0", "1e-320", "NaN", "inf", "1e400", "abc", "3"] {
            cases.append(("verify threshold \(threshold)", "POST", "/v1/verify?threshold=\(threshold)", "application/json",
                          json(["image1": b64(good), "image2": b64(good)]), 400))
        }
        cases.append(("verify threshold as a string", "POST", "/v1/verify", "application/json", json(["image1": b64(good), "image2": b64(good), "threshold": "0.5"]), 400))
        cases.append(("verify threshold true", "POST", "/v1/verify", "application/json", json(["image1": b64(good), "image2": b64(good), "threshold": true]), 400))
        cases.append(("verify threshold in the query and the body", "POST", "/v1/verify?threshold=5", "application/json",
                      json(["image1": b64(good), "image2": b64(good), "threshold": 0.5]), 400))
        let formThreshold = Body.multipart([("image1", "a.png", good), ("image2", "b.png", good), ("threshold", nil, Array("0.5".utf8))])
        cases.append(("verify threshold in the query and the form", "POST", "/v1/verify?threshold=0.5", formThreshold.contentType, formThreshold.body, 400))
        // Search: k and gallery.
        for k in ["0", "-3", "101", "1000000000", "1.5", "1e400", "five"] {
            cases.append(("search k=\(k)", "POST", "/v1/search?k=\(k)", "image/png", good, 400))
        }
        cases.append(("search gallery with a slash", "POST", "/v1/search?gallery=a%2Fb", "image/png", good, 400))
        cases.append(("search gallery with a control character", "POST", "/v1/search?gallery=a%01", "image/png", good, 400))
        cases.append(("search invalid UTF-8 in the query", "POST", "/v1/search?gallery=%FF", "image/png", good, 400))
        // Enrollment: ids, fields, unknown identities.
        func form(_ parts: [(String, String?, [UInt8])]) -> (String, [UInt8]) {
            let made = Body.multipart(parts.map { (name: $0.0, filename: $0.1, bytes: $0.2) })
            return (made.contentType, made.body)
        }
        for (label, id) in [("slash", Array("a/b".utf8)), ("backslash", Array("a\\b".utf8)), ("control", [0x61, 0x00, 0x62]), ("newline", Array("a\nb".utf8)),
                            ("empty", []), ("too long", Array(String(repeating: "x", count: 129).utf8)), ("invalid UTF-8", [0xC3, 0x28])] {
            let (type, body) = form([("id", nil, id), ("image", "a.png", good)])
            cases.append(("create id \(label)", "POST", "/v1/identities", type, body, 400))
        }
        let noID = form([("image", "a.png", good)])
        cases.append(("create without id", "POST", "/v1/identities", noID.0, noID.1, 400))
        let noImage = form([("id", nil, Array("new".utf8))])
        cases.append(("create without images", "POST", "/v1/identities", noImage.0, noImage.1, 400))
        cases.append(("create id as a number", "POST", "/v1/identities", "application/json", json(["id": 7, "images": [b64(good)]]), 400))
        cases.append(("create metadata not an object", "POST", "/v1/identities", "application/json", json(["id": "m", "images": [b64(good)], "metadata": [1, 2]]), 400))
        cases.append(("create strict not a boolean", "POST", "/v1/identities", "application/json", json(["id": "m", "images": [b64(good)], "strict": "maybe"]), 400))
        cases.append(("create images not a list of strings", "POST", "/v1/identities", "application/json", json(["id": "m", "images": [1]]), 400))
        cases.append(("create taken id", "POST", "/v1/identities", "application/json", json(["id": "glyph0", "images": [b64(good)]]), 409))
        cases.append(("create with one good and one truncated image", "POST", "/v1/identities", "application/json",
                      json(["id": "half", "images": [b64(good), b64(Array(good.prefix(20)))]]), 400))
        cases.append(("create the same image twice", "POST", "/v1/identities", "application/json", json(["id": "twice", "images": [b64(good), b64(good)]]), 409))
        cases.append(("too many images", "POST", "/v1/identities", "application/json", json(["id": "many", "images": Array(repeating: b64(good), count: 33)]), 400))
        cases.append(("verify unknown identity", "POST", "/v1/identities/nobody/verify", "image/png", good, 404))
        cases.append(("add samples to unknown identity", "POST", "/v1/identities/nobody/samples", "image/png", good, 404))
        cases.append(("show unknown identity", "GET", "/v1/identities/nobody", nil, [], 404))
        cases.append(("delete unknown identity", "DELETE", "/v1/identities/nobody", nil, [], 404))
        cases.append(("delete unknown sample", "DELETE", "/v1/identities/glyph0/samples/999999", nil, [], 404))
        cases.append(("delete sample not a number", "DELETE", "/v1/identities/glyph0/samples/abc", nil, [], 400))
        cases.append(("identity id with a control character", "GET", "/v1/identities/a%01b", nil, [], 400))
        cases.append(("identity id invalid UTF-8", "GET", "/v1/identities/%C3%28", nil, [], 400))
        cases.append(("list limit 0", "GET", "/v1/identities?limit=0", nil, [], 400))
        cases.append(("list limit huge", "GET", "/v1/identities?limit=99999999999999999999", nil, [], 400))
        cases.append(("body over the limit", "POST", "/v1/embed", "image/png", [UInt8](repeating: 1, count: (16 << 20) + 1), 413))
        return cases
    }

    @Test func badInputCatalogueGetsDocumented4xxAndChangesNothing() throws {
        let f = ServeTests.fixture
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try ServerProcess(model: f.model, folder: folder)
        let api = try ServeTests.Checked(server)
        #expect(try api.form("POST", "/v1/identities", [("id", nil, Array("glyph0".utf8)), ("image", "a.png", f.image(0, 0))]).status == 201)
        let before = try api.call("GET", "/v1/identities/glyph0", pattern: "/v1/identities/{id}").text
        let cases = Self.catalogue(f)
        var tried = 0
        for c in cases {
            var headers = [("Authorization", "Bearer \(ServeTests.adminKey)")]
            if let type = c.contentType { headers.append(("Content-Type", type)) }
            let response: RawClient.Response
            do { response = try server.client().send(c.method, c.path, headers: headers, body: c.body) } catch {
                Issue.record("\(c.name): no response (\(error))")
                continue
            }
            tried += 1
            #expect(response.status == c.status, "\(c.name): \(response.status) \(response.text.prefix(200))")
            #expect(response.errorCode != nil && (response.json["error"] as? [String: Any])?["message"] is String, "\(c.name): \(response.text.prefix(200))")
        }
        print("bad-input catalogue: \(tried) cases, all answered")
        #expect(tried == cases.count && tried > 140)
        // Still serving, and the gallery is exactly as it was.
        #expect(try api.call("GET", "/healthz", key: nil).status == 200)
        let list = try api.call("GET", "/v1/identities").json["identities"] as? [[String: Any]]
        #expect(list?.map { $0["id"] as? String } == ["glyph0"])
        #expect(try api.call("GET", "/v1/identities/glyph0", pattern: "/v1/identities/{id}").text == before)
        #expect(try api.call("GET", "/readyz", key: nil).json["samples"] as? Int == 1)
        #expect(server.stop() == 0)
        #expect(!server.stderr.contains(" 500 "), "no 5xx in the access log")
    }

    /// Kills the server (SIGKILL) in the middle of concurrent enrollments, 20 times; after each
    /// restart the database is sound and every acknowledged enrollment is there.
    @Test func sigkillDuringEnrollmentBurstsLosesNothingAcknowledged() throws {
        let f = ServeTests.fixture
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let acknowledgedBox = SendableBox<Set<String>>()
        acknowledgedBox.value = []
        let lock = NSLock()
        for round in 0..<20 {
            let server = try ServerProcess(model: f.model, folder: folder)
            let port = server.port
            let stop = SendableBox<Bool>()
            let group = DispatchGroup()
            for writer in 0..<4 {
                group.enter()
                Thread.detachNewThread {
                    defer { group.leave() }
                    var n = 0
                    while stop.value != true {
                        let id = "r\(round)-w\(writer)-\(n)"
                        n += 1
                        let body = Body.json(["id": id, "images": [Body.base64(f.image((writer + n) % 12, n % 8))]])
                        guard let client = try? RawClient(port: port),
                              let response = try? client.send("POST", "/v1/identities", headers: [("Authorization", "Bearer \(ServeTests.adminKey)"),
                                                                                                ("Content-Type", "application/json")], body: body)
                        else { return }
                        if response.status == 201 { lock.withLock { _ = acknowledgedBox.value!.insert(id) } }
                    }
                }
            }
            usleep(useconds_t(100_000 + (round % 5) * 40_000))
            kill(server.process.processIdentifier, SIGKILL)
            stop.value = true
            group.wait()
            server.process.waitUntilExit()
        }
        let acknowledged = acknowledgedBox.value!
        let check = try DoppelBinary.run(["gallery", "stats", "--db", folder.appendingPathComponent("gallery.sqlite").path,
                                          "--migrations", ServerProcess.repository.appendingPathComponent("Migrations").path])
        #expect(check.stdout.contains("integrity: ok"), "\(check.stdout) \(check.stderr)")
        let server = try ServerProcess(model: f.model, folder: folder)
        var present = Set<String>(), after: String? = nil
        repeat {
            let page = try server.client().send("GET", "/v1/identities?limit=1000" + (after.map { "&after=\($0)" } ?? ""),
                                                headers: [("Authorization", "Bearer \(ServeTests.adminKey)")]).json
            for item in page["identities"] as? [[String: Any]] ?? [] { present.insert(item["id"] as! String) }
            after = page["next"] as? String
        } while after != nil
        let lost = acknowledged.subtracting(present)
        print("SIGKILL x20: \(acknowledged.count) enrollments acknowledged, \(lost.count) lost, \(present.count) present")
        #expect(acknowledged.count > 20)
        #expect(lost.isEmpty, "lost: \(lost.sorted().prefix(10))")
        #expect(try server.client().send("GET", "/readyz").json["samples"] as? Int == present.count)
        #expect(server.stop() == 0)
    }

    /// SIGTERM while clients keep sending: every response that started arrives whole, and the
    /// server exits 0 within its deadline.
    @Test func sigtermUnderLoadCutsNoResponse() throws {
        let f = ServeTests.fixture
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try ServerProcess(model: f.model, folder: folder)
        let port = server.port
        let body = Body.json(["image1": Body.base64(f.image(0, 0)), "image2": Body.base64(f.image(1, 0))])
        let completed = SendableBox<Int>(), cut = SendableBox<Int>()
        completed.value = 0
        cut.value = 0
        let lock = NSLock()
        let group = DispatchGroup()
        let stopAt = Date().addingTimeInterval(1.5)
        for _ in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                while Date() < stopAt {
                    guard let client = try? RawClient(port: port) else { usleep(10_000); continue }
                    do {
                        try client.write(Array("POST /v1/verify HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
                    } catch { continue }
                    do {
                        let response = try client.readResponse()
                        lock.withLock { if response.status == 200 { completed.value! += 1 } else { cut.value! += 1 } }
                    } catch let failure as RawClient.Failure where failure.description.contains("inside a body") {
                        lock.withLock { cut.value! += 1 }
                    } catch {
                        // Refused or reset before any byte of a response: never accepted as in flight.
                    }
                }
            }
        }
        usleep(500_000)
        let signalled = Date()
        kill(server.process.processIdentifier, SIGTERM)
        let status = server.stop()
        let seconds = Date().timeIntervalSince(signalled)
        group.wait()
        print("SIGTERM under load: \(completed.value!) completed, \(cut.value!) cut, exit \(status) after \(String(format: "%.2f", seconds)) s")
        #expect(status == 0 && seconds < 11)
        #expect(cut.value == 0 && completed.value! > 0)
    }

    /// A full gallery file (a size cap, which SQLite reports exactly as a full disk): writes
    /// answer 503 and change nothing, reads go on, and writes work again once space is freed.
    @Test func fullStorageRefusesWritesKeepsReadsAndRecovers() throws {
        let f = ServeTests.fixture
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try ServerProcess.configured(#"{"limits": {"max_database_mb": 1}}"#, model: f.model, folder: folder)
        let api = try ServeTests.Checked(server)
        var generator = SystemRandomNumberGenerator()
        func noise() -> [UInt8] {
            var image = Image(width: 160, height: 160, layout: .gray, filledWith: 0)
            for y in 0..<160 { for x in 0..<160 { image[x, y, 0] = UInt8.random(in: 0...255, using: &generator) } }
            return PNGEncoder.encode(image)
        }
        var enrolled = [String](), refused: RawClient.Response?
        for n in 0..<60 {
            let response = try api.form("POST", "/v1/identities", [("id", nil, Array("big\(n)".utf8)), ("image", "n.png", noise())])
            if response.status == 201 { enrolled.append("big\(n)") } else { refused = response; break }
        }
        #expect(refused?.status == 503 && refused?.errorCode == "storage_unavailable", "\(refused?.text ?? "never refused")")
        #expect(enrolled.count >= 5)
        // Reads go on, and the refused write left nothing behind.
        #expect(try api.form("POST", "/v1/search", key: nil, [("image", "q.png", f.image(0, 0))]).status == 200)
        let list = try api.call("GET", "/v1/identities?limit=1000").json["identities"] as? [[String: Any]]
        #expect(list?.map { $0["id"] as! String }.sorted() == enrolled.sorted())
        #expect(try api.call("GET", "/readyz", key: nil).json["samples"] as? Int == enrolled.count)
        // Space returns: delete some, and enrollment works again.
        for id in enrolled.prefix(4) { #expect(try api.call("DELETE", "/v1/identities/\(id)", pattern: "/v1/identities/{id}").status == 200) }
        #expect(try api.form("POST", "/v1/identities", [("id", nil, Array("after".utf8)), ("image", "n.png", noise())]).status == 201)
        #expect(server.stop() == 0)
    }
}
