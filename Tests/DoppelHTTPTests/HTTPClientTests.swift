// SPDX-License-Identifier: MIT
import DoppelHTTP
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The test client's failed connect closes its own socket once: closing it twice used to close
/// whatever socket another thread had just been given the same number (seen as a replica
/// test's write failing with "connect: errno 9").
@Suite struct HTTPClientTests {
    @Test func aRefusedConnectLeavesOtherThreadsDescriptorsOpen() throws {
        // A port nobody listens on: bound, read back, released.
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(probe, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        close(probe)

        let refusing = DispatchGroup()
        let refused = NSLock()
        nonisolated(unsafe) var refusals = 0
        DispatchQueue.global().async(group: refusing) {
            for _ in 0..<3000 where (try? HTTPClient(port: port)) == nil { refused.withLock { refusals += 1 } }
        }
        // Meanwhile this thread keeps opening pipes and checks each end is still open a moment later.
        var closedUnderneath = 0, pipes = 0
        while refusing.wait(timeout: .now()) == .timedOut {
            var ends: [Int32] = [0, 0]
            guard pipe(&ends) == 0 else { continue }
            for _ in 0..<200 where fcntl(ends[0], F_GETFD) < 0 || fcntl(ends[1], F_GETFD) < 0 { closedUnderneath += 1; break }
            close(ends[0])
            close(ends[1])
            pipes += 1
        }
        #expect(refused.withLock { refusals } == 3000, "every connect to \(port) should be refused")
        #expect(pipes > 100)
        #expect(closedUnderneath == 0, "\(closedUnderneath) of \(pipes) pipes were closed by another thread's failed connect")
    }
}
