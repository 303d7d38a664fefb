// SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed socket call: which call, errno and its text.
public struct SocketError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let code: Int32
    public var description: String { "\(call) failed: \(String(cString: strerror(code))) (errno \(code))" }

    static func failed(_ call: String, _ code: Int32 = errno) -> SocketError { SocketError(call: call, code: code) }
}

/// The POSIX calls the server makes, each checked at the call. Descriptors are plain `Int32`s
/// owned by whoever holds them; `closeDescriptor` is the only way they are closed.
enum Socket {
    /// A non-blocking listening socket on `host:port` (IPv4 or IPv6 literal, or a name that
    /// resolves to one), with `SO_REUSEADDR`. Returns the descriptor and the bound port.
    static func listen(host: String, port: Int, backlog: Int32) throws(SocketError) -> (descriptor: Int32, port: Int) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var results: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &results)
        guard status == 0, let first = results else {
            throw SocketError(call: "getaddrinfo(\(host))", code: status == EAI_SYSTEM ? errno : EINVAL)
        }
        defer { freeaddrinfo(results) }
        let info = first.pointee
        let descriptor = socket(info.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw .failed("socket") }
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if info.ai_family == AF_INET6 {
            // "::" serves IPv4 too unless the system forces v6-only.
            var zero: Int32 = 0
            setsockopt(descriptor, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(MemoryLayout<Int32>.size))
        }
        guard bind(descriptor, info.ai_addr, info.ai_addrlen) == 0 else {
            let code = errno
            closeDescriptor(descriptor)
            throw .failed("bind(\(host):\(port))", code)
        }
        guard Glibc.listen(descriptor, backlog) == 0 else {
            let code = errno
            closeDescriptor(descriptor)
            throw .failed("listen", code)
        }
        return (descriptor, try boundPort(descriptor))
    }

    static func boundPort(_ descriptor: Int32) throws(SocketError) -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard status == 0 else { throw .failed("getsockname") }
        let family = storage.ss_family
        return withUnsafePointer(to: &storage) { pointer in
            if family == sa_family_t(AF_INET6) {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }

    /// A new non-blocking connection, nil when none is waiting.
    static func accept(_ listener: Int32) throws(SocketError) -> Int32? {
        // accept4 is not visible from Swift's Glibc module; two fcntl calls do the same.
        let descriptor = Glibc.accept(listener, nil, nil)
        if descriptor >= 0 {
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL, 0) | O_NONBLOCK)
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            var one: Int32 = 1
            // Responses are written whole; do not hold the last segment back for an ACK.
            setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            return descriptor
        }
        switch errno {
        case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EPROTO: return nil
        default: throw .failed("accept")
        }
    }

    enum ReadResult { case bytes(Int), wouldBlock, closed }

    static func read(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer) -> ReadResult {
        while true {
            let n = recv(descriptor, buffer.baseAddress, buffer.count, 0)
            if n > 0 { return .bytes(n) }
            if n == 0 { return .closed }
            if errno == EINTR { continue }
            return errno == EAGAIN || errno == EWOULDBLOCK ? .wouldBlock : .closed
        }
    }

    /// Sends as much of `bytes[from...]` as the socket takes now, without waiting; the new
    /// offset, or nil when the peer is gone.
    static func writeSome(_ descriptor: Int32, _ bytes: [UInt8], from offset: Int) -> Int? {
        var offset = offset
        return bytes.withUnsafeBytes { buffer in
            while offset < buffer.count {
                let n = send(descriptor, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                if n > 0 {
                    offset += n
                    continue
                }
                if n < 0 && errno == EINTR { continue }
                return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? offset : nil
            }
            return offset
        }
    }

    static func closeDescriptor(_ descriptor: Int32) {
        _ = Glibc.close(descriptor)
    }
}

/// Monotonic milliseconds, for deadlines.
enum Clock {
    static func milliseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
    }

    static func microseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now.tv_sec * 1_000_000 + now.tv_nsec / 1000
    }
}
