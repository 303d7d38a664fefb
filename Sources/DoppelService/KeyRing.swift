// SPDX-License-Identifier: MIT
import DoppelHTTP
import DoppelNN
import Foundation

/// What a caller may learn about the galleries.
enum Scope: Int, Comparable, Sendable {
    /// Compare images, and an image with a gallery, and learn whether they match: never
    /// which identities exist or how near a non-matching one is.
    case compare
    /// Also see the nearest identities whether or not they match (search's full list), and
    /// whether an identity exists.
    case identify
    /// Everything, enrollment included.
    case admin

    static func < (a: Scope, b: Scope) -> Bool { a.rawValue < b.rawValue }
}

/// Who called and what they may see.
struct Caller: Sendable {
    var actor: String
    var scope: Scope
}

/// The admin and client keys, held as SHA-256 digests. A presented key is hashed and compared
/// with every digest in full (no early exit), so the time taken does not depend on how much of
/// a key an attacker guessed right. Keys are never logged; an actor is named by a fingerprint.
struct KeyRing: Sendable {
    private let admin: [[UInt8]]
    private let client: [[UInt8]]
    private let compare: [[UInt8]]
    /// The scope of a caller without a key on client routes; nil when they need one.
    let anonymous: Scope?

    init(admin: [String], client: [String], compare: [String] = [], anonymous: Scope?) {
        self.admin = admin.map { Self.digest($0) }
        self.client = client.map { Self.digest($0) }
        self.compare = compare.map { Self.digest($0) }
        self.anonymous = anonymous
    }

    static func digest(_ key: String) -> [UInt8] {
        var hash = SHA256()
        hash.update(Array(key.utf8))
        return hash.finalize()
    }

    enum Role { case admin, client }

    /// The caller when allowed; 401 without a key, 403 with a wrong one. Without a key, client
    /// routes answer with the `anonymous` scope when there is one; any valid key opens them.
    func authorize(_ request: HTTPRequest, as role: Role) throws(ServiceError) -> Caller {
        if role == .client, let anonymous, request.headers["authorization"] == nil { return Caller(actor: "anonymous", scope: anonymous) }
        guard let header = request.headers["authorization"] else {
            throw ServiceError(.unauthorized, "this route needs Authorization: Bearer <\(role == .admin ? "admin" : "client") key>")
        }
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            throw ServiceError(.unauthorized, "the Authorization header must be Bearer <key>")
        }
        let presented = Self.digest(String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces))
        var scope: Scope?
        for (digests, keyScope) in [(admin, Scope.admin), (client, .identify), (compare, .compare)] {
            var matched = false
            for digest in digests { matched = Self.constantTimeEqual(presented, digest) || matched }
            if matched && scope.map({ keyScope > $0 }) ?? true { scope = keyScope }
        }
        guard let scope, role == .client || scope == .admin else { throw ServiceError(.forbidden, "the key is not valid for this route") }
        return Caller(actor: "key:" + presented.prefix(4).map { String(format: "%02x", $0) }.joined(), scope: scope)
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<a.count { difference |= a[i] ^ b[i] }
        return difference == 0
    }

    /// The admin key of `directory/admin.key`, made (32 random bytes, hex, mode 0600) when it
    /// does not exist. Returns the key and whether it was created now.
    static func loadOrCreateAdminKey(directory: String) throws -> (key: String, path: String, created: Bool) {
        let path = (directory as NSString).appendingPathComponent("admin.key")
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard key.count >= 16 else { throw ServiceConfiguration.Invalid("\(path) holds no usable key (at least 16 characters)") }
            return (key, path, false)
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &generator) }
        let key = bytes.map { String(format: "%02x", $0) }.joined()
        // Created with 0600 from the start: never readable by others, not even for a moment.
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else { throw ServiceConfiguration.Invalid("cannot create \(path): errno \(errno)") }
        let line = Array((key + "\n").utf8)
        let written = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        fsync(descriptor)
        close(descriptor)
        guard written == line.count else { throw ServiceConfiguration.Invalid("cannot write \(path)") }
        return (key, path, true)
    }
}
