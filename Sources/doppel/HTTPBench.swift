// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelHTTP
import Foundation

/// `doppel bench http-server`: DoppelHTTP alone, serving `GET /v1/ping` -> `{"status":"ok"}`,
/// for load generators (wrk) to measure the HTTP layer against other servers. Runs until
/// SIGTERM/SIGINT or `--seconds`.
struct HTTPBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http-server",
        abstract: "Serve a small JSON route with the bare HTTP layer (for wrk against other servers)."
    )

    @Option(help: "Port.") var port = 8092
    @Option(help: "Handler threads.") var workers = 64
    @Option(help: "Event loops (epoll threads).") var eventLoops = 1
    @Option(help: "Stop after this many seconds (0: until a signal).") var seconds = 0

    struct Ping: HTTPHandler {
        func handle(_ request: HTTPRequest, parameters: [String: String]) throws -> HTTPResponse { .json(200, #"{"status":"ok"}"#) }
    }

    func run() throws {
        var configuration = HTTPServerConfiguration()
        configuration.port = port
        configuration.workers = workers
        configuration.eventLoops = eventLoops
        var router = Router()
        router.add("GET", "/v1/ping", Ping())
        let server = try HTTPServer(configuration: configuration, responder: router)
        FileHandle.standardOutput.write(Data("doppel: listening on http://127.0.0.1:\(server.port)\n".utf8))
        let sources = server.shutdownOnSignals()
        if seconds > 0 { DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(seconds)) { server.shutdown() } }
        server.run()
        withExtendedLifetime(sources) {}
    }
}
