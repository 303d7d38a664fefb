// SPDX-License-Identifier: MIT
import Foundation
import Testing
@testable import DoppelService

@Suite struct ServiceConfigurationTests {
    @Test func defaultsAreValidAndSafe() throws {
        let defaults = ServiceConfiguration()
        try defaults.validate()
        #expect(defaults.host == "127.0.0.1" && defaults.adminKeys.isEmpty && defaults.maxBatch == 64)
        #expect(defaults.server.host == "127.0.0.1" && defaults.server.limits.maxBodyBytes == 16 << 20)
    }

    @Test func theShippedConfigFileParsesToTheDefaults() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("config/doppel.json")
        var parsed = ServiceConfiguration()
        try parsed.apply(json: try Data(contentsOf: file), source: "config/doppel.json")
        var expected = ServiceConfiguration()
        expected.migrations = nil
        #expect(parsed == expected)
    }

    /// Every field the loader accepts, as `section.field` (or `field` at the top level).
    static var acceptedFields: Set<String> {
        Set(ServiceConfiguration.topLevelFields.flatMap { name in
            ServiceConfiguration.sectionFields[name].map { $0.map { "\(name).\($0)" } } ?? [name]
        })
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// config/doppel.json is the documented list of defaults: it names every field there is.
    @Test func theShippedConfigFileNamesEveryField() throws {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.repository.appendingPathComponent("config/doppel.json"))) as! [String: Any]
        var leaves = Set<String>()
        for (key, value) in object {
            if let section = value as? [String: Any] { leaves.formUnion(section.keys.map { "\(key).\($0)" }) } else { leaves.insert(key) }
        }
        #expect(Self.acceptedFields.subtracting(leaves).isEmpty, "accepted but missing from config/doppel.json: \(Self.acceptedFields.subtracting(leaves).sorted())")
        #expect(leaves.subtracting(Self.acceptedFields).isEmpty, "in config/doppel.json but not accepted: \(leaves.subtracting(Self.acceptedFields).sorted())")
    }

    /// docs/operations.md's configuration table has a row for exactly the fields there are.
    @Test func theOperationsPageDocumentsEveryField() throws {
        let page = try String(contentsOf: Self.repository.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        let section = page.components(separatedBy: "## Configuration")[1].components(separatedBy: "\n## ")[0]
        let documented = Set(section.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("| `"), let end = line.dropFirst(3).firstIndex(of: "`") else { return nil }
            return String(line[line.index(line.startIndex, offsetBy: 3)..<end])
        })
        #expect(Self.acceptedFields.subtracting(documented).isEmpty, "not in docs/operations.md: \(Self.acceptedFields.subtracting(documented).sorted())")
        #expect(documented.subtracting(Self.acceptedFields).isEmpty, "documented but not accepted: \(documented.subtracting(Self.acceptedFields).sorted())")
    }

    @Test func fileThenEnvironmentOverride() throws {
        var c = ServiceConfiguration()
        try c.apply(json: Data(#"{"port": 9000, "batching": {"max_batch": 8}, "keys": {"admin": ["0123456789abcdef0"]}, "threshold": {"max_threshold": 1.5}}"#.utf8),
                    source: "test")
        #expect(c.port == 9000 && c.maxBatch == 8 && c.adminKeys == ["0123456789abcdef0"] && c.maxThreshold == 1.5)
        try c.apply(environment: ["DOPPEL_PORT": "9100", "DOPPEL_ADMIN_KEYS": "aaaaaaaaaaaaaaaa1,bbbbbbbbbbbbbbbb2", "DOPPEL_MAX_BATCH": "1",
                                  "DOPPEL_KERNELS": "portable"])
        #expect(c.port == 9100 && c.adminKeys == ["aaaaaaaaaaaaaaaa1", "bbbbbbbbbbbbbbbb2"] && c.maxBatch == 1 && c.kernels == "portable")
        try c.validate()
    }

    @Test(arguments: [
        (#"{"prot": 1}"#, "unknown field prot"),
        (#"{"limits": {"max_kk": 1}}"#, "unknown field limits.max_kk"),
        (#"{"port": "80"}"#, "port must be an integer"),
        (#"{"port": 1.5}"#, "port must be an integer"),
        (#"{"access_log": 1}"#, "access_log must be true or false"),
        (#"{"batching": 3}"#, "batching must be an object"),
        (#"{"keys": {"admin": [1]}}"#, "keys.admin must be a list of strings"),
        ("[1]", "not a JSON object"),
    ])
    func fileErrorsNameTheField(json: String, message: String) {
        var c = ServiceConfiguration()
        #expect { try c.apply(json: Data(json.utf8), source: "f.json") } throws: { "\($0)".contains(message) }
    }

    @Test(arguments: [
        ({ @Sendable (c: inout ServiceConfiguration) in c.port = 70000 }, "port 70000"),
        ({ @Sendable (c: inout ServiceConfiguration) in c.maxBatch = 0 }, "batching.max_batch"),
        ({ @Sendable (c: inout ServiceConfiguration) in c.adminKeys = ["short"] }, "at least 16 characters"),
        ({ @Sendable (c: inout ServiceConfiguration) in c.logLevel = "loud" }, "log_level loud"),
        ({ @Sendable (c: inout ServiceConfiguration) in c.aggregation = "median" }, "threshold.aggregation median"),
        ({ @Sendable (c: inout ServiceConfiguration) in c.maxK = 0 }, "limits.max_k"),
        ({ @Sendable (c: inout ServiceConfiguration) in c.kernels = "sse9" }, "kernels sse9 is not auto, portable, avx2 or avx512"),
    ] as [(@Sendable (inout ServiceConfiguration) -> Void, String)])
    func validationSaysWhatIsWrong(change: @Sendable (inout ServiceConfiguration) -> Void, message: String) {
        var c = ServiceConfiguration()
        change(&c)
        #expect { try c.validate() } throws: { "\($0)".contains(message) }
    }

    @Test func environmentNumbersMustBeNumbers() {
        var c = ServiceConfiguration()
        #expect { try c.apply(environment: ["DOPPEL_PORT": "eighty"]) } throws: { "\($0)".contains("DOPPEL_PORT=eighty") }
    }
}
