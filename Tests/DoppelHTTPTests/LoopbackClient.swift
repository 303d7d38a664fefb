// SPDX-License-Identifier: MIT
import Foundation
@testable import DoppelHTTP
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A server on a free loopback port, serving on a background thread until `stop()`.
final class TestServer: @unchecked Sendable {
    let server: HTTPServer
    private let finished = DispatchSemaphore(value: 0)

    init(configure: (inout HTTPServerConfiguration) -> Void = { _ in }, responder: any HTTPResponder = TestServer.echoRouter()) throws {
        var configuration = HTTPServerConfiguration()
        configuration.port = 0
        configure(&configuration)
        server = try HTTPServer(configuration: configuration, responder: responder)
        let thread = Thread { [server, finished] in
            server.run()
            finished.signal()
        }
        thread.start()
    }

    var port: Int { server.port }

    /// Shuts down and waits for `run()` to return; true when it did within `seconds`.
    @discardableResult
    func stop(within seconds: Double = 15) -> Bool {
        server.shutdown()
        return finished.wait(timeout: .now() + seconds) == .success
    }

    struct Echo: HTTPHandler {
        func handle(_ request: HTTPRequest, parameters: [String: String]) throws -> HTTPResponse {
            let query = request.query.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
            var response = HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "text/plain"), ("X-Path", request.path), ("X-Query", query)]),
                                        body: request.body)
            if request.body.isEmpty { response.body = Array("\(request.method) \(request.path)".utf8) }
            return response
        }
    }

    struct Sleep: HTTPHandler {
        func handle(_ request: HTTPRequest, parameters: [String: String]) throws -> HTTPResponse {
            Thread.sleep(forTimeInterval: Double(parameters["ms"]!)! / 1000)
            return .json(200, #"{"slept":\#(parameters["ms"]!)}"#)
        }
    }

    /// `kb` kibibytes of response, more than a socket's buffers take when pipelined.
    struct Big: HTTPHandler {
        func handle(_ request: HTTPRequest, parameters: [String: String]) throws -> HTTPResponse {
            HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "text/plain")]),
                         body: [UInt8](repeating: UInt8(ascii: "b"), count: Int(parameters["kb"]!)! << 10))
        }
    }

    static func echoRouter() -> Router {
        var router = Router()
        router.add("GET", "/sleep/{ms}", Sleep())
        router.add("GET", "/big/{kb}", Big())
        for method in ["GET", "POST", "PUT"] {
            for depth in 1...4 { router.add(method, "/" + Array(repeating: "{p}", count: depth).joined(separator: "/"), Echo()) }
        }
        return router
    }
}

