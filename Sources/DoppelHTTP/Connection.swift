// SPDX-License-Identifier: MIT

/// One client connection: its descriptor, its parser and the times its deadlines come from.
/// Owned by its event loop while `reading` or `lingering`, by one worker while `handling`.
final class Connection: @unchecked Sendable {
    enum State {
        /// Waiting for (the rest of) a request; the loop reads.
        case reading
        /// A worker is answering a request.
        case handling
        /// A response the client has not read yet is being sent by the loop as the socket
        /// drains; the connection reads nothing more until it is sent.
        case writing
        /// The last response is sent and our side is shut; discard what the client still sends
        /// so closing does not reset the connection before the client reads the response.
        case lingering
    }

    let descriptor: Int32
    var parser: HTTPRequestParser
    var state = State.reading
    /// When the first byte of the request being read arrived (0: none yet).
    var requestStarted = 0
    /// When bytes last arrived.
    var lastRead: Int
    /// When the connection last became idle (accepted, or a response was sent).
    var idleSince: Int
    var lingerUntil = 0
    /// Bytes of this connection counted in the server's buffered-bytes budget.
    var chargedBytes = 0
    /// While `writing`: what is left to send, where it starts, whether to close after it, and
    /// when the client must have read it all.
    var output: [UInt8] = []
    var outputSent = 0
    var closeAfterOutput = false
    var outputDeadline = 0

    init(descriptor: Int32, limits: HTTPLimits, now: Int) {
        self.descriptor = descriptor
        parser = HTTPRequestParser(limits: limits)
        lastRead = now
        idleSince = now
    }
}
