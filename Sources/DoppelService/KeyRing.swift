// SPDX-License-Identifier: MIT
import DoppelHTTP
import DoppelNN
import Foundation

/// The admin and client keys, held as SHA-256 digests. A presented key is hashed and compared
/// with every digest in full (no early exit), so the time taken does not depend on how much of
/// a key an attacker guessed right. Keys are never logged; an actor is named by a fingerprint.
struct KeyRing: Sendable {
    private let admin: [[UInt8]]
    private let client: [[UInt8]]

    init(admin: [String], client: [String]) {
        self.admin = admin.map { Self.digest($0) }
        self.client = client.map { Self.digest($0) }
    }

    static func digest(_ key: String) -> [UInt8] {
        var hash = SHA256()
        hash.update(Array(key.utf8))
        return hash.finalize()
    }

    enum Role { case admin, client }

    /// The caller's fingerprint when allowed; 401 without a key, 403 with a wrong one. Client
    /// routes are open when no client keys are configured; an admin key opens them too.
    func authorize(_ request: HTTPRequest, as role: Role) throws(ServiceError) -> String {
        if role == .client && client.isEmpty { return "anonymous" }
        guard let header = request.headers["authorization"] else {
            throw ServiceError(401, "unauthorized", "this route needs Authorization: Bearer <\(role == .admin ? "admin" : "client") key>")
        }
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            throw ServiceError(401, "unauthorized", "the Authorization header must be Bearer <key>")
        }
        let presented = Self.digest(String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces))
        let allowed = role == .admin ? admin : admin + client
        var matched = false
        for digest in allowed { matched = Self.constantTimeEqual(presented, digest) || matched }
        guard matched else { throw ServiceError(403, "forbidden", "the key is not valid for this route") }
        return "key:" + presented.prefix(4).map { String(format: "%02x", $0) }.joined()
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
