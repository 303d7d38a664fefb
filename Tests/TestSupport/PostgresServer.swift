// SPDX-License-Identifier: MIT
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A PostgreSQL server of the tests' own: `initdb` in a scratch folder as the unprivileged
/// `postgres` user (PostgreSQL refuses to run as root), listening on a unix socket in that
/// folder only, stopped when the test process exits. `scripts/test` installs Debian's
/// `postgresql`; without it the tests that need a server fail and say so.
public final class PostgresServer: @unchecked Sendable {
    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    public let folder: String
    public let socketDirectory: String
    public let port = 5432
    private let bin: String
    private let lock = NSLock()
    private var databases = 0

    /// One server for the whole test process, started on first use.
    public static func shared() throws -> PostgresServer {
        try sharedLock.withLock {
            if let server = sharedServer { return server }
            let server = try PostgresServer()
            sharedServer = server
            atexit { PostgresServer.sharedServer?.destroy() }
            return server
        }
    }
    nonisolated(unsafe) private static var sharedServer: PostgresServer?
    private static let sharedLock = NSLock()

    /// Starts a fresh server in a scratch folder.
    public init() throws {
        guard let bin = Self.binaries() else {
            throw Unavailable(description: "PostgreSQL's server binaries (initdb, pg_ctl) are not installed; scripts/test installs Debian's postgresql")
        }
        self.bin = bin
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("doppel-pg-\(UUID().uuidString.prefix(8))").path
        socketDirectory = folder + "/socket"
        try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        if getuid() == 0 {
            // The scratch folder belongs to postgres, which runs the server.
            for path in [folder, socketDirectory] { _ = try Self.run("/bin/chown", ["postgres:postgres", path]) }
        }
        try asServerUser("\(bin)/initdb", ["-D", folder + "/data", "-U", "doppel", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        try start()
        try psql("postgres", "CREATE DATABASE doppel")
    }

    /// Starts (again) on the same folder.
    public func start() throws {
        try asServerUser("\(bin)/pg_ctl", ["-D", folder + "/data", "-l", folder + "/server.log", "-w", "-t", "30", "-o",
                                           "-k \(socketDirectory) -p \(port) -c listen_addresses='' -c fsync=on -c max_connections=200", "start"])
    }

    /// Stops (fast shutdown: open transactions are rolled back, committed ones are on disk).
    public func stop() {
        _ = try? asServerUser("\(bin)/pg_ctl", ["-D", folder + "/data", "-m", "fast", "-w", "-t", "30", "stop"])
    }

    /// Stops and removes the scratch folder.
    public func destroy() {
        stop()
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// A libpq URI for `database` over the unix socket.
    public func url(database: String = "doppel") -> String {
        "postgresql://doppel@/\(database)?host=\(socketDirectory)&port=\(port)"
    }

    /// The database a URI from `url(database:)` names.
    public static func databaseName(in url: String) -> String {
        let afterHost = url.range(of: "@/").map { url[$0.upperBound...] } ?? Substring(url)
        return String(afterHost.prefix { $0 != "?" })
    }

    /// A new empty database; its URI.
    public func createDatabase() throws -> String {
        let name = lock.withLock { () -> String in
            databases += 1
            return "doppel_\(getpid())_\(databases)"
        }
        try psql("postgres", "CREATE DATABASE \(name)")
        return url(database: name)
    }

    /// Runs SQL through psql (exits non-zero on error).
    @discardableResult
    public func psql(_ database: String, _ sql: String) throws -> String {
        try Self.run("\(bin)/psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", socketDirectory, "-p", String(port), "-U", "doppel",
                                      "-d", database, "-c", sql])
    }

    private func asServerUser(_ tool: String, _ arguments: [String]) throws {
        if getuid() == 0 {
            try Self.run("/usr/sbin/runuser", ["-u", "postgres", "--", tool] + arguments)
        } else {
            try Self.run(tool, arguments)
        }
    }

    /// The folder holding initdb and pg_ctl.
    static func binaries() -> String? {
        if let configured = try? run("/usr/bin/pg_config", ["--bindir"]).trimmingCharacters(in: .whitespacesAndNewlines),
           FileManager.default.isExecutableFile(atPath: configured + "/initdb") {
            return configured
        }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        return versions.sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }.map { "/usr/lib/postgresql/\($0)/bin" }
            .first { FileManager.default.isExecutableFile(atPath: $0 + "/initdb") }
    }

    /// Runs a tool to completion with posix_spawn and waitpid. Output goes to files, not pipes
    /// (`pg_ctl start` leaves a server holding them open), and not through Foundation's
    /// Process, which did not reap `runuser` here and waited forever.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> String {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("doppel-run-\(UUID().uuidString)").path
        let (outPath, errPath) = (scratch + ".out", scratch + ".err")
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = ([tool] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, tool, &actions, nil, argv, environ)
        guard spawned == 0 else { throw Unavailable(description: "cannot run \(tool): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let exited = status & 0x7F == 0, code = (status >> 8) & 0xFF
        guard exited && code == 0 else {
            let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            throw Unavailable(description: "\(tool) \(arguments.joined(separator: " ")) failed (status \(status)): \(err)")
        }
        return out
    }
}
