// SPDX-License-Identifier: MIT
import DoppelHTTP
import Foundation
import Testing
@testable import DoppelService

@Suite struct KeyRingTests {
    static let admin = "admin-key-0123456789abcdef0123456789abcdef"
    static let client = "client-key-0123456789abcdef0123456789abcd"

    static func request(_ authorization: String?) -> HTTPRequest {
        var headers = HTTPHeaders([("Host", "x")])
        if let authorization { headers.add("Authorization", authorization) }
        return HTTPRequest(method: "GET", path: "/", query: [], version: .http11, headers: headers, body: [])
    }

    static func status(_ ring: KeyRing, _ authorization: String?, _ role: KeyRing.Role) -> Int {
        do {
            _ = try ring.authorize(request(authorization), as: role)
            return 200
        } catch {
            return error.status
        }
    }

    @Test func adminAndClientRoles() {
        let ring = KeyRing(admin: [Self.admin], client: [Self.client], anonymous: nil)
        #expect(Self.status(ring, nil, .admin) == 401)
        #expect(Self.status(ring, "Basic abc", .admin) == 401)
        #expect(Self.status(ring, "Bearer nope", .admin) == 403)
        #expect(Self.status(ring, "Bearer \(Self.client)", .admin) == 403)
        #expect(Self.status(ring, "Bearer \(Self.admin)", .admin) == 200)
        #expect(Self.status(ring, "bearer \(Self.admin)", .admin) == 200)
        #expect(Self.status(ring, "Bearer \(Self.client)", .client) == 200)
        #expect(Self.status(ring, "Bearer \(Self.admin)", .client) == 200)
        #expect(Self.status(ring, nil, .client) == 401)
        #expect(Self.status(KeyRing(admin: [Self.admin], client: [], anonymous: .compare), nil, .client) == 200, "client routes open without a key")
        #expect(Self.status(KeyRing(admin: [Self.admin], client: [], anonymous: nil), nil, .client) == 401, "client routes that need a key")
    }

    /// Each key carries its scope; a key in two lists gets the wider; an admin key is admin
    /// everywhere; anonymous callers get the ring's anonymous scope, and a key, when sent,
    /// must be valid even where anonymous calls are allowed.
    @Test func keysCarryTheirScopes() throws {
        let compare = "compare-key-0123456789abcdef0123456789ab"
        let ring = KeyRing(admin: [Self.admin], client: [Self.client], compare: [compare, Self.client], anonymous: .compare)
        #expect(try ring.authorize(Self.request("Bearer \(compare)"), as: .client).scope == .compare)
        #expect(try ring.authorize(Self.request("Bearer \(Self.client)"), as: .client).scope == .identify)
        #expect(try ring.authorize(Self.request("Bearer \(Self.admin)"), as: .client).scope == .admin)
        #expect(try ring.authorize(Self.request(nil), as: .client).scope == .compare)
        #expect(Self.status(ring, "Bearer \(compare)", .admin) == 403)
        #expect(Self.status(ring, "Bearer wrong-key-0123456789abcdef", .client) == 403)
    }

    /// Who may call without a key follows the bind unless said: open on loopback (compare
    /// only), closed elsewhere, and `keys.open` either way; Host names likewise.
    @Test func theDefaultsArePrivateOffLoopback() {
        var settings = ServiceConfiguration()
        #expect(settings.bindsLoopback && settings.anonymousScope == .compare)
        #expect(settings.effectiveAllowedHosts.contains("localhost"))
        settings.host = "0.0.0.0"
        #expect(!settings.bindsLoopback && settings.anonymousScope == nil && settings.effectiveAllowedHosts.isEmpty)
        settings.openClientRoutes = true
        #expect(settings.anonymousScope == .compare)
        settings.host = "127.0.0.1"
        settings.openClientRoutes = nil
        settings.clientKeys = [Self.client]
        #expect(settings.anonymousScope == nil, "configured client keys close the routes on loopback too")
    }

    @Test func theFingerprintIsNotTheKey() throws {
        let ring = KeyRing(admin: [Self.admin], client: [], anonymous: nil)
        let actor = try ring.authorize(Self.request("Bearer \(Self.admin)"), as: .admin).actor
        #expect(actor.hasPrefix("key:") && actor.count == 12 && !Self.admin.contains(actor.dropFirst(4)))
    }

    /// A wrong key sharing a long prefix with the right one takes as long to refuse as one
    /// sharing nothing (medians over alternating batches; the bound is loose for a noisy VM).
    @Test func refusalTimeDoesNotDependOnTheSharedPrefix() {
        let ring = KeyRing(admin: [Self.admin], client: [], anonymous: nil)
        let near = Self.request("Bearer " + Self.admin.dropLast() + "X")
        let far = Self.request("Bearer X" + Self.admin.dropFirst())
        func time(_ request: HTTPRequest) -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<2000 { _ = try? ring.authorize(request, as: .admin) }
            return Double(DispatchTime.now().uptimeNanoseconds - start)
        }
        var nearTimes = [Double](), farTimes = [Double]()
        for _ in 0..<31 {
            nearTimes.append(time(near))
            farTimes.append(time(far))
        }
        let ratio = nearTimes.sorted()[15] / farTimes.sorted()[15]
        print("key refusal time, shared prefix of 40 vs 0 characters: ratio \(ratio)")
        #expect(ratio > 0.67 && ratio < 1.5)
    }
}
