// SPDX-License-Identifier: MIT
import Foundation
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An HTTP/1.1 server on POSIX sockets: event loops (epoll) accept, read and parse; a bounded
/// pool of workers runs the responder and writes the response. A connection belongs to one
/// side at a time (EPOLLONESHOT), so a slow client costs a descriptor and a buffer, never a
/// worker, and a handler may block (micro-batching waits) without stalling other connections.
///
/// Lifecycle: `init` binds (so `port` is known at once), `run()` serves until `shutdown()`,
/// which stops accepting, lets requests in flight finish within the deadline, closes idle
/// connections, and makes `run()` return.
public final class HTTPServer: @unchecked Sendable {
    public let configuration: HTTPServerConfiguration
    /// The bound port (the chosen one when configured with 0).
    public let port: Int
    let responder: any HTTPResponder
    let accessLog: Logger?
    let listener: Int32
    let openConnections = Atomic<Int>(0)
    /// Request bytes held by all connections (parser buffers and requests being handled).
    let bufferedBytes = Atomic<Int>(0)
    let draining = Atomic<Bool>(false)
    let drainDeadline = Atomic<Int>(0)
    private var loops: [EventLoop] = []
    private let workers: WorkerPool
    /// Threads for lightweight requests only (`HTTPResponder.isLightweight`).
    private let quickWorkers: WorkerPool
    private let stopped = NSCondition()
    private var runningLoops = 0

    /// Binds and listens; serving starts with `run()`. `accessLog` gets one line per request.
    public init(configuration: HTTPServerConfiguration, responder: any HTTPResponder, accessLog: Logger? = nil) throws {
        signal(SIGPIPE, SIG_IGN)
        self.configuration = configuration
        self.responder = responder
        self.accessLog = accessLog
        (listener, port) = try Socket.listen(host: configuration.host, port: configuration.port, backlog: configuration.backlog)
        workers = WorkerPool(maxThreads: configuration.workers, name: "http-worker")
        quickWorkers = WorkerPool(maxThreads: 2, name: "http-quick")
        do {
            for _ in 0..<max(1, configuration.eventLoops) { loops.append(try EventLoop(server: self)) }
        } catch {
            Socket.closeDescriptor(listener)
            throw error
        }
    }

    /// Serves until `shutdown()`; returns once every connection is closed.
    public func run() {
        stopped.lock()
        runningLoops = loops.count
        stopped.unlock()
        for (index, loop) in loops.enumerated() {
            let thread = Thread { [self] in
                loop.run()
                stopped.lock()
                runningLoops -= 1
                stopped.broadcast()
                stopped.unlock()
            }
            thread.name = "http-loop-\(index)"
            thread.start()
        }
        stopped.lock()
        while runningLoops > 0 { stopped.wait() }
        stopped.unlock()
        workers.stop(deadline: 1000)
        quickWorkers.stop(deadline: 1000)
        Socket.closeDescriptor(listener)
    }

    /// Stops accepting at once; `run()` returns when requests in flight are answered or the
    /// shutdown deadline passes. Safe to call from any thread, more than once.
    public func shutdown() {
        guard !draining.exchange(true, ordering: .acquiringAndReleasing) else { return }
        drainDeadline.store(Clock.milliseconds() + configuration.shutdownDeadline, ordering: .releasing)
        for loop in loops { loop.stopAccepting() }
        // Refuse new connections now rather than leave them in the backlog.
        Glibc.shutdown(listener, Int32(SHUT_RDWR))
    }

    var isDraining: Bool { draining.load(ordering: .acquiring) }

    /// For handlers: runs `body`, which waits (for a batch, a lock, I/O), letting the worker
    /// pool start another thread so queued requests are not held up by the wait. Off a worker
    /// thread it just runs `body`.
    public static func blocking<T>(_ body: () throws -> T) rethrows -> T {
        guard let pool = WorkerPool.current else { return try body() }
        return try pool.blocking(body)
    }

    // MARK: worker side

    func dispatch(_ request: HTTPRequest, on connection: Connection, loop: EventLoop) {
        let pool = responder.isLightweight(request) ? quickWorkers : workers
        pool.submit { [self] in serve(request, on: connection, loop: loop) }
    }

    /// Runs on a worker: answers `request`, then hands the connection back to its loop, closes
    /// it, or queues its next pipelined request behind everyone else's (a connection with 200
    /// requests in its pipeline takes its turn per request, not its whole pipeline at once). A
    /// response the socket cannot take at once goes to the loop to finish, so the worker never
    /// waits for a client.
    private func serve(_ request: HTTPRequest, on connection: Connection, loop: EventLoop) {
        let started = Clock.milliseconds()
        let response = responder.respond(to: request)
        let closing = !request.keepsAlive || isDraining
        let bytes = response.serialized(closing: closing)
        let sent = Socket.writeSome(connection.descriptor, bytes, from: 0)
        accessLog?.info("\(request.method) \(LogText.escaped(request.path)) \(response.status) \(response.body.count) \(Clock.milliseconds() - started)ms")
        guard let sent else {
            loop.close(connection)
            return
        }
        if sent < bytes.count {
            loop.finishWriting(connection, bytes, sent: sent, closing: closing)
            return
        }
        guard !closing else {
            loop.close(connection)
            return
        }
        switch loop.advance(connection) {
        case .request(let next):
            dispatch(next, on: connection, loop: loop)
            return
        case .needMoreBytes:
            loop.resumeReading(connection)
            return
        case .failed(let error):
            loop.reject(connection, error)
            return
        case .closed:
            loop.close(connection)
            return
        }
    }
}
