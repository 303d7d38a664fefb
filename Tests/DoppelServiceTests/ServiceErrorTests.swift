// SPDX-License-Identifier: MIT
import Foundation
import Testing
@testable import DoppelService

@Suite struct ServiceErrorTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func matches(_ pattern: String, in text: String) throws -> [[String]] {
        let regex = try NSRegularExpression(pattern: pattern)
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { m in
            (1..<m.numberOfRanges).map { String(text[Range(m.range(at: $0), in: text)!]) }
        }
    }

    /// The (status, code) pairs the HTTP layer answers with on its own, before a route runs: the
    /// event loop's answers to requests its parser refuses, and the router's.
    static func httpLayerPairs() throws -> Set<String> {
        var pairs = Set<String>()
        let folder = repository.appendingPathComponent("Sources/DoppelHTTP")
        for file in try FileManager.default.contentsOfDirectory(atPath: folder.path) where file.hasSuffix(".swift") {
            let source = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            for m in try matches(#"case (\d{3}): "([a-z0-9_]+)""#, in: source) { pairs.insert("\(m[0]) \(m[1])") }
            if source.contains(#"default: "bad_request""#) { pairs.insert("400 bad_request") }
            for m in try matches(#"\.json\((\d{3}), #"\{"error":\{"code":"([a-z0-9_]+)""#, in: source) { pairs.insert("\(m[0]) \(m[1])") }
        }
        return pairs
    }

    /// docs/api.md's error table: a row per status, its codes in backticks.
    static func documentedPairs() throws -> Set<String> {
        let page = try String(contentsOf: repository.appendingPathComponent("docs/api.md"), encoding: .utf8)
        let table = page.components(separatedBy: "| status | codes |")[1].components(separatedBy: "\n\n")[0]
        var pairs = Set<String>()
        for row in table.split(separator: "\n") where row.hasPrefix("| ") {
            let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 2, let status = Int(cells[0]) else { continue }
            for m in try matches(#"`([a-z][a-z0-9]*(?:_[a-z0-9]+)*)`"#, in: cells[1]) { pairs.insert("\(status) \(m[0])") }
        }
        return pairs
    }

    /// docs/api.md's error table lists exactly the codes the server can answer with: every
    /// `ErrorCode` with its status, and the HTTP layer's own.
    @Test func theErrorTableListsExactlyTheCodesTheServerSends() throws {
        let service = Set(ErrorCode.allCases.map { "\($0.status) \($0.code)" })
        let http = try Self.httpLayerPairs()
        #expect(http.count >= 8, "the scan of DoppelHTTP found too few codes: \(http.sorted())")
        let sent = service.union(http)
        let documented = try Self.documentedPairs()
        #expect(sent.subtracting(documented).isEmpty, "sent but not in docs/api.md's error table: \(sent.subtracting(documented).sorted())")
        #expect(documented.subtracting(sent).isEmpty, "in the error table but never sent: \(documented.subtracting(sent).sorted())")
    }

    @Test func everyCodeHasOneStatusExceptTheImageOneThatTellsUndecodableFromUnusable() {
        var statuses = [String: Set<Int>]()
        for kind in ErrorCode.allCases { statuses[kind.code, default: []].insert(kind.status) }
        #expect(statuses.filter { $0.value.count > 1 } == ["invalid_image": [400, 422]])
        #expect(ServiceError(.noFace, "image2: no face").response.status == 422)
    }
}
