// SPDX-License-Identifier: MIT
import CLinuxEvents
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One epoll loop: accepts connections, reads and parses them, enforces the timeouts, and hands
/// each complete request to the server's workers. Connections are registered EPOLLONESHOT, so
/// exactly one thread touches a connection at a time; the table is locked only for the moments
/// a connection changes hands.
final class EventLoop: @unchecked Sendable {
    private unowned let server: HTTPServer
    private let epoll: Int32
    private let wakeup: Int32
    private let lock = NSLock()
    private var connections: [Int32: Connection] = [:]
    private var readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
    private var listening = true

    init(server: HTTPServer) throws(SocketError) {
        self.server = server
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw .failed("epoll_create1") }
        wakeup = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        // Every property is set from here on, so a throw runs deinit, which closes what is open
        // (closing here as well would close a descriptor another thread may have been given).
        guard wakeup >= 0 else { throw .failed("eventfd") }
        try register(wakeup, EPOLLIN.rawValue, add: true)
        // EPOLLEXCLUSIVE: one loop wakes per incoming connection, not all of them.
        try register(server.listener, EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue, add: true)
    }

    deinit {
        readBuffer.deallocate()
        Socket.closeDescriptor(wakeup)
        Socket.closeDescriptor(epoll)
    }

    private func register(_ descriptor: Int32, _ events: UInt32, add: Bool) throws(SocketError) {
        var event = epoll_event()
        event.events = events
        event.data.fd = descriptor
        guard epoll_ctl(epoll, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, descriptor, &event) == 0 else { throw .failed("epoll_ctl") }
    }

    /// Arms the connection for one readiness event: bytes to read, or room to write.
    private func arm(_ descriptor: Int32, add: Bool = false, forWriting: Bool = false) -> Bool {
        let readiness = forWriting ? EPOLLOUT.rawValue : EPOLLIN.rawValue
        return (try? register(descriptor, readiness | EPOLLRDHUP.rawValue | EPOLLONESHOT.rawValue, add: add)) != nil
    }

    func stopAccepting() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeup, &one, 8)
    }

    // MARK: the loop

    func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        var lastSweep = Clock.milliseconds()
        while true {
            let count = epoll_wait(epoll, &events, Int32(events.count), 100)
            if count < 0 && errno != EINTR { break }
            for event in events.prefix(max(0, Int(count))) {
                let descriptor = event.data.fd
                if descriptor == server.listener {
                    acceptAll()
                } else if descriptor == wakeup {
                    var value: UInt64 = 0
                    _ = Glibc.read(wakeup, &value, 8)
                } else {
                    readable(descriptor)
                }
            }
            if server.isDraining && listening {
                listening = false
                _ = epoll_ctl(epoll, EPOLL_CTL_DEL, server.listener, nil)
            }
            let now = Clock.milliseconds()
            if now - lastSweep >= 100 || server.isDraining {
                lastSweep = now
                if sweep(now: now) { break }
            }
        }
    }

    private func acceptAll() {
        while listening, let descriptor = try? Socket.accept(server.listener) {
            let now = Clock.milliseconds()
            let open = server.openConnections.wrappingAdd(1, ordering: .relaxed).newValue
            let connection = Connection(descriptor: descriptor, limits: server.configuration.limits, now: now)
            lock.withLock { connections[descriptor] = connection }
            guard arm(descriptor, add: true) else {
                close(connection)
                continue
            }
            if open > server.configuration.maxConnections {
                // Over the limit: a quick 503 instead of a silent queue the client cannot see.
                let response = HTTPResponse.json(503, #"{"error":{"code":"overloaded","message":"too many open connections"}}"#)
                _ = Socket.writeSome(descriptor, response.serialized(closing: true), from: 0)
                linger(connection, now: now)
            }
        }
    }

    private func readable(_ descriptor: Int32) {
        guard let connection = lock.withLock({ connections[descriptor] }) else { return }
        switch connection.state {
        case .handling:
            return  // a stale event from before the hand-over
        case .writing:
            continueWriting(connection)
            return
        case .lingering:
            switch Socket.read(descriptor, into: readBuffer) {
            case .bytes: if !arm(descriptor) { close(connection) }
            case .wouldBlock: if !arm(descriptor) { close(connection) }
            case .closed: close(connection)
            }
            return
        case .reading:
            break
        }
        switch Socket.read(descriptor, into: readBuffer) {
        case .closed:
            close(connection)
        case .wouldBlock:
            if !arm(descriptor) { close(connection) }
        case .bytes(let n):
            let now = Clock.milliseconds()
            connection.lastRead = now
            if connection.requestStarted == 0 { connection.requestStarted = now }
            connection.parser.append(UnsafeRawBufferPointer(rebasing: readBuffer[0..<n]))
            guard charge(connection) else {
                // Every connection may send a body up to the limit, but not all at once: past the
                // server-wide budget the newest bytes are refused, not buffered.
                reject(connection, HTTPParseError(status: 503, message: "the server holds too much request data right now; retry shortly"))
                return
            }
            switch advance(connection) {
            case .request(let request):
                lock.withLock { connection.state = .handling }
                server.dispatch(request, on: connection, loop: self)
            case .needMoreBytes:
                if !arm(descriptor) { close(connection) }
            case .failed(let error):
                reject(connection, error)
            case .closed:
                close(connection)
            }
        }
    }

    enum Step { case request(HTTPRequest), needMoreBytes, failed(HTTPParseError), closed }

    /// The next thing to do with a connection's buffered bytes; answers `100 Continue` on the
    /// way. Called by whichever thread owns the connection.
    func advance(_ connection: Connection) -> Step {
        do {
            while true {
                switch try connection.parser.next() {
                case nil:
                    if connection.parser.bufferedByteCount == 0 && !connection.parser.isAwaitingBody { connection.requestStarted = 0 }
                    return .needMoreBytes
                case .continueExpected:
                    // Without waiting: a client whose socket cannot take 25 bytes is not reading.
                    let interim = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
                    guard Socket.writeSome(connection.descriptor, interim, from: 0) == interim.count else { return .closed }
                case .request(let request):
                    return .request(request)
                }
            }
        } catch {
            return .failed(error)
        }
    }

    // MARK: hand-overs and endings

    /// Called by a worker whose response the socket could not take at once: the loop sends the
    /// rest as the client reads, so a client that never reads holds a descriptor and its
    /// response until `writeTimeout`, never a worker.
    func finishWriting(_ connection: Connection, _ bytes: [UInt8], sent: Int, closing: Bool) {
        connection.output = bytes
        connection.outputSent = sent
        connection.closeAfterOutput = closing
        connection.outputDeadline = Clock.milliseconds() + server.configuration.writeTimeout
        lock.withLock { connection.state = .writing }
        if !arm(connection.descriptor, forWriting: true) { close(connection) }
    }

    private func continueWriting(_ connection: Connection) {
        guard let sent = Socket.writeSome(connection.descriptor, connection.output, from: connection.outputSent) else {
            close(connection)
            return
        }
        guard sent == connection.output.count else {
            connection.outputSent = sent
            if !arm(connection.descriptor, forWriting: true) { close(connection) }
            return
        }
        connection.output = []
        connection.outputSent = 0
        guard !connection.closeAfterOutput else {
            close(connection)
            return
        }
        lock.withLock { connection.state = .handling }
        switch advance(connection) {
        case .request(let request):
            server.dispatch(request, on: connection, loop: self)
        case .needMoreBytes:
            resumeReading(connection)
        case .failed(let error):
            reject(connection, error)
        case .closed:
            close(connection)
        }
    }

    /// Called by a worker: the response is sent, the connection waits for its next request.
    func resumeReading(_ connection: Connection) {
        release(connection, keeping: connection.parser.bufferedByteCount)
        let now = Clock.milliseconds()
        connection.idleSince = now
        connection.requestStarted = connection.parser.bufferedByteCount > 0 ? now : 0
        lock.withLock { connection.state = .reading }
        if !arm(connection.descriptor) { close(connection) }
    }

    /// Answers a request the parser refused, then closes: after a framing error the byte
    /// stream cannot be trusted to hold another request.
    func reject(_ connection: Connection, _ error: HTTPParseError) {
        let code = switch error.status {
        case 408: "request_timeout"
        case 413: "payload_too_large"
        case 414: "uri_too_long"
        case 431: "headers_too_large"
        case 501: "not_implemented"
        case 503: "overloaded"
        case 505: "http_version_not_supported"
        default: "bad_request"
        }
        let message = error.message.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        let response = HTTPResponse.json(error.status, #"{"error":{"code":"\#(code)","message":"\#(message)"}}"#)
        release(connection, keeping: 0)  // what it sent is dropped with it
        // Without waiting (this may run on the loop): a client that reads nothing gets nothing.
        _ = Socket.writeSome(connection.descriptor, response.serialized(closing: true), from: 0)
        server.accessLog?.info("- - \(error.status) \(response.body.count) 0ms (\(error.message))")
        linger(connection, now: Clock.milliseconds())
    }

    private func linger(_ connection: Connection, now: Int) {
        Glibc.shutdown(connection.descriptor, Int32(SHUT_WR))
        lock.withLock {
            connection.state = .lingering
            connection.lingerUntil = now + 2000
        }
        if !arm(connection.descriptor) { close(connection) }
    }

    /// Brings the server-wide count of buffered request bytes up to date with this connection's
    /// parser buffer; false when that would pass `maxBufferedBytes`. A request's bytes stay
    /// charged while it is handled, and are released when the connection reads again or closes.
    private func charge(_ connection: Connection) -> Bool {
        let now = connection.parser.bufferedByteCount
        let change = now - connection.chargedBytes
        guard change > 0 else { return true }
        let total = server.bufferedBytes.wrappingAdd(change, ordering: .relaxed).newValue
        connection.chargedBytes = now
        return total <= server.configuration.maxBufferedBytes
    }

    private func release(_ connection: Connection, keeping kept: Int) {
        let freed = connection.chargedBytes - kept
        if freed > 0 { server.bufferedBytes.wrappingSubtract(freed, ordering: .relaxed) }
        connection.chargedBytes = min(connection.chargedBytes, kept)
    }

    func close(_ connection: Connection) {
        let removed = lock.withLock { connections.removeValue(forKey: connection.descriptor) }
        guard removed != nil else { return }
        release(connection, keeping: 0)
        // Removed from the table before the descriptor is released: a new connection that
        // gets the same number can never be mistaken for this one.
        Socket.closeDescriptor(connection.descriptor)
        server.openConnections.wrappingSubtract(1, ordering: .relaxed)
    }

    /// Closes connections whose deadlines passed; while draining, also idle ones. Returns true
    /// when the loop is done (draining and nothing left, or the drain deadline passed).
    private func sweep(now: Int) -> Bool {
        let configuration = server.configuration
        let draining = server.isDraining
        let drainExpired = draining && now >= server.drainDeadline.load(ordering: .acquiring)
        var timedOut = [Connection](), expired = [Connection]()
        let remaining: Int = lock.withLock {
            for connection in connections.values {
                switch connection.state {
                case .handling:
                    // Its worker closes it; past the drain deadline, make its writes fail now.
                    // (Closing here could hand the number to another file while the worker
                    // still writes to it.)
                    if drainExpired { Glibc.shutdown(connection.descriptor, Int32(SHUT_RDWR)) }
                case _ where drainExpired:
                    expired.append(connection)
                case .lingering:
                    if now >= connection.lingerUntil { expired.append(connection) }
                case .writing:
                    if now >= connection.outputDeadline { expired.append(connection) }
                case .reading:
                    if connection.parser.isAwaitingBody {
                        if now - connection.lastRead >= configuration.bodyIdleTimeout
                            || now >= connection.requestStarted + configuration.bodyAllowance(received: connection.parser.bufferedByteCount) {
                            timedOut.append(connection)
                        }
                    } else if connection.requestStarted > 0 {
                        if now - connection.requestStarted >= configuration.headerTimeout { timedOut.append(connection) }
                    } else if draining || now - connection.idleSince >= configuration.keepAliveTimeout {
                        expired.append(connection)
                    }
                }
            }
            return connections.count
        }
        for connection in timedOut { reject(connection, HTTPParseError(status: 408, message: "request not received in time")) }
        for connection in expired { close(connection) }
        return draining && (drainExpired || remaining - expired.count == 0)
    }
}
