// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelHTTP
import DoppelKernels
import DoppelNN
import DoppelService
import Foundation
import Logging

/// `doppel serve`: configuration from file, environment and flags; the service behind the
/// HTTP server; SIGTERM and SIGINT shut down gracefully (exit 0 once requests in flight are
/// answered).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve verify, search, embed and enrollment over HTTP.",
        discussion: """
            Settings come from the config file (default config/doppel.json when present), then DOPPEL_* environment variables, then these flags; docs/operations.md lists them all. The web console is at / and the API is described at /openapi.json and in docs/api.md.

            Examples:
              doppel serve --model models/faces.safetensors
              DOPPEL_ADMIN_KEYS=$(cat admin.key) doppel serve --host :: --port 9000
              doppel serve --db 'postgres://doppel@db:5432/gallery'   # a replica
            """
    )

    @Option(help: "Config file (JSON).") var config: String?
    @Option(help: "Model file.") var model: String?
    @Option(help: "Gallery database.") var db: String?
    @Option(help: "Address to bind (127.0.0.1 by default; :: for every interface).") var host: String?
    @Option(help: "Port (0 picks a free one and prints it).") var port: Int?
    @Option(help: "Data directory (generated admin key).") var dataDir: String?
    @Option(help: "Folder of migrations.") var migrations: String?
    @Option(help: "Images per forward pass at most (1: micro-batching off).") var maxBatch: Int?
    @Option(help: "Microseconds a batch waits for company.") var maxWaitUs: Int?
    @Option(help: "Handler threads.") var workers: Int?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: String?
    @Flag(help: "No access log lines.") var noAccessLog = false

    func run() throws {
        var settings = ServiceConfiguration()
        do {
            let file = config ?? (FileManager.default.fileExists(atPath: "config/doppel.json") ? "config/doppel.json" : nil)
            if let file {
                guard let data = FileManager.default.contents(atPath: file) else { throw ServiceConfiguration.Invalid("cannot read the config file \(file)") }
                try settings.apply(json: data, source: file)
            }
            try settings.apply(environment: ProcessInfo.processInfo.environment)
            if let model { settings.model = model }
            if let db { settings.database = db }
            if let host { settings.host = host }
            if let port { settings.port = port }
            if let dataDir { settings.dataDirectory = dataDir }
            if let migrations { settings.migrations = migrations }
            if let maxBatch { settings.maxBatch = maxBatch }
            if let maxWaitUs { settings.maxWaitMicroseconds = maxWaitUs }
            if let workers { settings.workers = workers }
            if let logLevel { settings.logLevel = logLevel }
            if noAccessLog { settings.accessLog = false }
            try settings.validate()
        } catch let error as ServiceConfiguration.Invalid {
            throw ValidationError("configuration: \(error)")
        }

        // One BLAS thread per call: the server's own concurrency (requests in flight, batches
        // split per core) fills the cores. 100,000 x 64 search under `wrk -c64`: 1,388 -> 2,028-2,284
        // req/s, p99 79 -> 45-48 ms. An OPENBLAS_NUM_THREADS you set is kept instead.
        BLASThreads.pin(Int(ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"] ?? "") ?? 1)
        let level = Logger.Level(rawValue: settings.logLevel) ?? .info
        LoggingSystem.bootstrap { label in BufferedLogHandler(label: label, logLevel: level) }
        let logger = Logger(label: "doppel")
        KernelLevels.setCeiling(settings.kernels)
        logger.notice("kernels: \(KernelLevels.report)")
        let service: Service
        do { service = try Service(configuration: settings, logger: logger) } catch {
            FileHandle.standardError.write(Data("doppel serve: \(error)\n".utf8))
            throw ExitCode(1)
        }
        logger.notice("access: \(settings.accessSummary)")
        if settings.openClientRoutes == true && !settings.bindsLoopback {
            logger.warning("client routes are open to anyone who reaches \(settings.host) (keys.open): they may compare images with the galleries without a key")
        }
        if let path = service.generatedAdminKeyPath {
            logger.notice("admin key: \(path) (mode 0600; send it as Authorization: Bearer <key>)")
        }
        let server: HTTPServer
        do {
            server = try HTTPServer(configuration: settings.server, responder: service,
                                    accessLog: settings.accessLog ? Logger(label: "doppel.access") : nil)
        } catch {
            FileHandle.standardError.write(Data("doppel serve: cannot listen on \(settings.host):\(settings.port): \(error)\n".utf8))
            throw ExitCode(1)
        }
        let display = settings.host.contains(":") ? "[\(settings.host)]" : settings.host
        // One line on stdout that scripts and tests can wait for (the port, when 0 was asked).
        FileHandle.standardOutput.write(Data("doppel: listening on http://\(display):\(server.port)\n".utf8))

        let signals = server.shutdownOnSignals { number in
            logger.notice("signal \(number): finishing requests in flight, then exiting")
        }
        let failed = LockedFlag()
        Thread.detachNewThread {
            do { try service.prepare() } catch {
                logger.critical("cannot serve: \(error)")
                failed.set()
                server.shutdown()
            }
        }
        server.run()
        service.stop()
        withExtendedLifetime(signals) {}
        defer { BufferedLogSink.shared.flush() }
        if failed.isSet { throw ExitCode(1) }
        logger.notice("stopped")
    }
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
