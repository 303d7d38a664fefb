// SPDX-License-Identifier: MIT

/// Everything an `HTTPServer` can be told; every limit has a default that is safe to face the
/// internet with. Times are in milliseconds.
public struct HTTPServerConfiguration: Sendable {
    /// `127.0.0.1` unless configured: a new install is not reachable from other machines.
    public var host = "127.0.0.1"
    /// 0 picks a free port; `HTTPServer.port` reports it.
    public var port = 8080
    public var backlog: Int32 = 1024
    public var limits = HTTPLimits()
    /// A request's head must arrive within this from its first byte (slow-loris defence) -> 408.
    public var headerTimeout = 10_000
    /// A body may pause for at most this between reads -> 408.
    public var bodyIdleTimeout = 10_000
    /// A body must arrive within this from the request's first byte, plus one second for every
    /// `bodyMinBytesPerSecond` bytes received, and never later than `bodyMaxTime` (a minimum
    /// rate, as Apache's mod_reqtimeout `body=20,MinRate=...`): a client trickling its upload
    /// holds a slot and its bytes for a bounded time -> 408.
    public var bodyTimeout = 20_000
    public var bodyMinBytesPerSecond = 16 << 10
    public var bodyMaxTime = 300_000
    /// An idle keep-alive connection is closed after this.
    public var keepAliveTimeout = 15_000
    /// A client that does not read a response within this is dropped (the event loop sends
    /// what the socket does not take at once; no worker waits for it).
    public var writeTimeout = 10_000
    /// Connections past this are answered 503 and closed.
    public var maxConnections = 1024
    /// Request bytes all connections together may hold (1,024 connections x a 16 MiB body
    /// would be 16 GiB): past it, the connection whose bytes do not fit gets 503 and is closed.
    public var maxBufferedBytes = 512 << 20
    /// Threads that run handlers; requests beyond them wait in order. Micro-batching callers
    /// want at least as many as the concurrency they expect.
    public var workers = 64
    /// Threads that accept, read and parse (epoll), each with its own connections.
    public var eventLoops = 1
    /// On shutdown, requests in flight get this long to finish.
    public var shutdownDeadline = 10_000

    public init() {}

    /// How long after its first byte a request whose body has `received` bytes so far may take.
    func bodyAllowance(received: Int) -> Int {
        min(bodyMaxTime, bodyTimeout + received / max(1, bodyMinBytesPerSecond) * 1000)
    }
}
