// SPDX-License-Identifier: MIT
import DoppelGallery
import DoppelHTTP
import DoppelModel
import Foundation

/// Everything `doppel serve` can be told. Read from `config/doppel.json` (every field optional,
/// documented in the README), then `DOPPEL_*` environment variables, then command-line flags,
/// each overriding the one before; `validate()` says what is wrong in words.
public struct ServiceConfiguration: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var model = "models/fashion-closed.safetensors"
    /// A SQLite file path, or a PostgreSQL URL (`postgres://user@host:5432/db?sslmode=require`)
    /// for a gallery shared by several replicas.
    public var database = "data/gallery.sqlite"
    /// A file holding the PostgreSQL password (else the URL's, or PGPASSWORD, or ~/.pgpass).
    public var databasePasswordFile: String?
    /// How often a replica looks at the change log when no notification wakes it, in ms.
    public var replicationPollMilliseconds = 1000
    /// A replica more than this behind the change log answers /readyz with 503, in ms.
    public var replicationMaxLagMilliseconds = 5000
    /// Where the generated admin key lives (mode 0600).
    public var dataDirectory = "data"
    public var migrations: String?
    public var storeImages = true
    public var logLevel = "info"
    public var accessLog = true
    /// Serve the web console at `/` (its API calls need the same keys as curl's).
    public var console = true

    // limits
    public var maxImagePixels = 40_000_000
    public var maxBodyBytes = 16 << 20
    public var maxHeaderBytes = 16384
    public var maxImagesPerRequest = 32
    public var maxK = 100
    public var headerTimeoutMilliseconds = 10_000
    public var bodyTimeoutMilliseconds = 10_000
    /// A body's total time: this, plus a second per `bodyMinRateBytes` received, at most
    /// `bodyMaxMilliseconds` (a trickled upload ends with 408).
    public var bodyDeadlineMilliseconds = 20_000
    public var bodyMinRateBytes = 16 << 10
    public var bodyMaxMilliseconds = 300_000
    /// A client that has not read a response within this is disconnected.
    public var writeTimeoutMilliseconds = 10_000
    public var keepAliveTimeoutMilliseconds = 15_000
    public var maxConnections = 1024
    public var maxMultipartParts = 64
    /// A cap on the gallery file (0: none); past it writes answer 503 and reads go on.
    public var maxDatabaseMegabytes = 0
    /// Request data all connections together may hold, in MiB (503 past it).
    public var maxBufferedMegabytes = 512
    /// Memory all image work together may hold (decoding, conversion, resampling, a face
    /// stage), in MiB: each image reserves its cost from its header first. Sized so that two
    /// of the largest images allowed (40 MP) are decoded at once on two cores.
    public var maxDecodeMegabytes = 1024
    /// How long an image waits for room in that budget before 503.
    public var decodeWaitMilliseconds = 2000
    /// A face model detects on photos scaled down to at most this many pixels.
    public var maxDetectionPixels = FaceStage.defaultMaxDetectionPixels
    /// A face model answers for at most this many faces of one photo (search, embed; the
    /// rest are counted) and lists at most this many boxes per image. The image memory
    /// budget counts a chip for each of up to 64.
    public var maxFaces = 10

    // batching
    /// Images per forward pass at most; 1 turns micro-batching off.
    public var maxBatch = 64
    /// How long the first request of a batch waits for company, in microseconds.
    public var maxWaitMicroseconds = 500

    /// Searches answered in one pass over the gallery at most; 1 turns search batching off.
    public var searchMaxBatch = 64
    /// How long the first search of a batch waits for company, in microseconds.
    public var searchMaxWaitMicroseconds = 200

    // index
    /// How the in-memory index stores vectors: `float32` (exact), `float16` or `int8`.
    public var indexPrecision = "float32"
    /// A compact index re-ranks its best `rerank x k` identities by their stored float32
    /// embeddings (0: no re-ranking).
    public var indexRerank = 0
    /// Keep a snapshot of the index beside the database, so a restart reads it at disk speed.
    public var indexSnapshot = true
    /// Seconds without changes before the snapshot is rewritten.
    public var snapshotDelaySeconds = 30

    // server
    /// The ceiling on the instruction sets Doppel's own C kernels use: `auto` (what the
    /// processor runs), `avx512`, `avx2` or `portable` (plain C, what arm64 runs).
    public var kernels = "auto"
    public var workers = 64
    public var eventLoops = 1
    public var shutdownDeadlineMilliseconds = 10_000

    // keys
    public var adminKeys: [String] = []
    /// When not empty, verify/search/embed need one of these (or an admin key).
    public var clientKeys: [String] = []
    /// Keys that may compare (verify, search's matches, verify against an identity) but not
    /// learn which identities exist or how near non-matching ones are.
    public var compareKeys: [String] = []
    /// Whether callers without a key may use the client routes (compare scope). Unset: yes
    /// on a loopback bind, no otherwise (they need a key); `true` opens them on any bind.
    public var openClientRoutes: Bool?
    /// Host names requests must carry (DNS rebinding). Unset: the loopback names on a
    /// loopback bind, any name otherwise; empty: any name.
    public var allowedHosts: [String]?

    // threshold policy
    /// Two identities whose distances differ by less than this make a search `ambiguous`.
    public var ambiguityMargin: Float = 0.05
    /// Upper bound of a per-request threshold override (nil: the metric's natural bound).
    public var maxThreshold: Float?
    /// `best`, `mean-of-best:M` or `centroid`. Best by default: it ties the others on faces,
    /// keeps the threshold's pair calibration, and is the batched search path; centroid ranks
    /// better on characters and clothing with several images each (docs/accuracy.md).
    public var aggregation = "best"

    public init() {}

    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// The fields a config file may hold: the top level (sections among them) and each
    /// section's. Anything else stops the start with the field's name; the shipped
    /// config/doppel.json and docs/operations.md list exactly these (checked by tests).
    static let topLevelFields: Set<String> = ["host", "port", "model", "database", "database_password_file", "replication", "data_dir", "migrations", "store_images",
                                 "log_level", "access_log", "console", "kernels", "limits", "batching", "search_batching", "index", "server", "keys",
                                 "threshold"]
    static let sectionFields: [String: Set<String>] = [
        "replication": ["poll_ms", "max_lag_ms"],
        "limits": ["max_image_pixels", "max_body_bytes", "max_header_bytes", "max_images_per_request", "max_k", "header_timeout_ms", "body_timeout_ms",
                   "body_deadline_ms", "body_min_rate_bytes", "body_max_ms", "write_timeout_ms", "keep_alive_timeout_ms", "max_connections",
                   "max_multipart_parts", "max_database_mb", "max_buffered_mb", "max_decode_mb", "decode_wait_ms", "max_detection_pixels", "max_faces"],
        "batching": ["max_batch", "max_wait_us"],
        "search_batching": ["max_batch", "max_wait_us"],
        "index": ["precision", "rerank", "snapshot", "snapshot_delay_s"],
        "server": ["workers", "event_loops", "shutdown_deadline_ms", "allowed_hosts"],
        "keys": ["admin", "client", "compare", "open"],
        "threshold": ["ambiguity_margin", "max_threshold", "aggregation"],
    ]

    /// The file's settings over the defaults. Unknown fields are errors, so a typo is caught.
    public mutating func apply(json data: Data, source: String) throws(Invalid) {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw Invalid("\(source): not a JSON object")
        }
        var reader = FieldReader(source: source)
        try reader.object(root, known: Self.topLevelFields) { (r: inout FieldReader, o: [String: Any]) throws(Invalid) in
            try r.read(o, "host", into: &host)
            try r.read(o, "port", into: &port)
            try r.read(o, "model", into: &model)
            try r.read(o, "database", into: &database)
            try r.readOptional(o, "database_password_file", into: &databasePasswordFile)
            try r.nested(o, "replication", known: Self.sectionFields["replication"]!) { (r: inout FieldReader, o: [String: Any]) throws(Invalid) in
                try r.read(o, "poll_ms", into: &replicationPollMilliseconds)
                try r.read(o, "max_lag_ms", into: &replicationMaxLagMilliseconds)
            }
            try r.read(o, "data_dir", into: &dataDirectory)
            try r.readOptional(o, "migrations", into: &migrations)
            try r.read(o, "store_images", into: &storeImages)
            try r.read(o, "log_level", into: &logLevel)
            try r.read(o, "access_log", into: &accessLog)
            try r.read(o, "console", into: &console)
            try r.read(o, "kernels", into: &kernels)
            try r.nested(o, "limits", known: Self.sectionFields["limits"]!) { (r: inout FieldReader, o: [String: Any]) throws(Invalid) in
                try r.read(o, "max_image_pixels", into: &maxImagePixels)
                try r.read(o, "max_body_bytes", into: &maxBodyBytes)
                try r.read(o, "max_header_bytes", into: &maxHeaderBytes)
                try r.read(o, "max_images_per_request", into: &maxImagesPerRequest)
                try r.read(o, "max_k", into: &maxK)
                try r.read(o, "header_timeout_ms", into: &headerTimeoutMilliseconds)
                try r.read(o, "body_timeout_ms", into: &bodyTimeoutMilliseconds)
                try r.read(o, "body_deadline_ms", into: &bodyDeadlineMilliseconds)
                try r.read(o, "body_min_rate_bytes", into: &bodyMinRateBytes)
                try r.read(o, "body_max_ms", into: &bodyMaxMilliseconds)
                try r.read(o, "write_timeout_ms", into: &writeTimeoutMilliseconds)
                try r.read(o, "keep_alive_timeout_ms", into: &keepAliveTimeoutMilliseconds)
                try r.read(o, "max_connections", into: &maxConnections)
                try r.read(o, "max_multipart_parts", into: &maxMultipartParts)
                try r.read(o, "max_database_mb", into: &maxDatabaseMegabytes)
                try r.read(o, "max_buffered_mb", into: &maxBufferedMegabytes)
                try r.read(o, "max_decode_mb", into: &maxDecodeMegabytes)
                try r.read(o, "decode_wait_ms", into: &decodeWaitMilliseconds)
                try r.read(o, "max_detection_pixels", into: &maxDetectionPixels)
                try r.read(o, "max_faces", into: &maxFaces)
            }
            try r.nested(o, "batching", known: Self.sectionFields["batching"]!) { (r: inout FieldReader, o: [String: Any]) throws(Invalid) in
                try r.read(o, "max_batch", into: &maxBatch)
                try r.read(o, "max_wait_us", into: &maxWaitMicroseconds)
            }
            try r.nested(o, "search_batching", known: Self.sectionFields["search_batching"]!) { (r: inout FieldReader, o: [String: Any]) throws(Invalid) in
                try r.read(o, "max_batch", into: &searchMaxBatch)
                try r.read(o, "max_wait_us", into: &searchMaxWaitMicroseconds)
            }
            try r.nested(o, "index", known: Self.sectionFields["index"]!) { (r: inout FieldReader, o: [String: Any]) throws(Invalid) in
                try r.read(o, "precision", into: &indexPrecision)
                try r.read(o, "rerank", into: &indexRerank)
                try r.read(o, "snapshot", into: &indexSnapshot)
                try r.read(o, "snapshot_delay_s", into: &snapshotDelaySeconds)
            }
            try r.nested(o, "server", known: Self.sectionFields["server"]!) { (r: inout FieldReader, o: [String: Any]) throws(Invalid) in
                // null is the default: loopback names on a loopback bind, any name otherwise.
                if let value = o["allowed_hosts"], !(value is NSNull) {
                    var hosts = [String]()
                    try r.read(o, "allowed_hosts", into: &hosts)
                    allowedHosts = hosts
                }
                try r.read(o, "workers", into: &workers)
                try r.read(o, "event_loops", into: &eventLoops)
                try r.read(o, "shutdown_deadline_ms", into: &shutdownDeadlineMilliseconds)
            }
            try r.nested(o, "keys", known: Self.sectionFields["keys"]!) { (r: inout FieldReader, o: [String: Any]) throws(Invalid) in
                try r.read(o, "admin", into: &adminKeys)
                try r.read(o, "client", into: &clientKeys)
                try r.read(o, "compare", into: &compareKeys)
                // null is the default: open on a loopback bind without client or compare keys.
                if let value = o["open"], !(value is NSNull) {
                    var open = false
                    try r.read(o, "open", into: &open)
                    openClientRoutes = open
                }
            }
            try r.nested(o, "threshold", known: Self.sectionFields["threshold"]!) { (r: inout FieldReader, o: [String: Any]) throws(Invalid) in
                var margin = Double(ambiguityMargin)
                try r.read(o, "ambiguity_margin", into: &margin)
                ambiguityMargin = Float(margin)
                var bound = maxThreshold.map(Double.init)
                try r.readOptional(o, "max_threshold", into: &bound)
                maxThreshold = bound.map(Float.init)
                try r.read(o, "aggregation", into: &aggregation)
            }
        }
    }

    /// `DOPPEL_HOST`, `DOPPEL_PORT`, `DOPPEL_MODEL`, `DOPPEL_DATABASE`, `DOPPEL_DATABASE_PASSWORD_FILE`, `DOPPEL_DATA_DIR`,
    /// `DOPPEL_LOG_LEVEL`, `DOPPEL_CONSOLE`, `DOPPEL_ADMIN_KEYS`, `DOPPEL_CLIENT_KEYS` and
    /// `DOPPEL_COMPARE_KEYS` (comma-separated), `DOPPEL_OPEN`, `DOPPEL_ALLOWED_HOSTS`,
    /// `DOPPEL_MAX_BATCH`, `DOPPEL_MAX_WAIT_US`, `DOPPEL_WORKERS`, `DOPPEL_SEARCH_MAX_BATCH`,
    /// `DOPPEL_INDEX_PRECISION`, `DOPPEL_INDEX_RERANK`, `DOPPEL_KERNELS`.
    public mutating func apply(environment: [String: String]) throws(Invalid) {
        func int(_ name: String, _ target: inout Int) throws(Invalid) {
            guard let text = environment[name] else { return }
            guard let value = Int(text) else { throw Invalid("\(name)=\(text) is not an integer") }
            target = value
        }
        func bool(_ name: String) throws(Invalid) -> Bool? {
            guard let text = environment[name] else { return nil }
            guard let value = ["true": true, "1": true, "false": false, "0": false][text.lowercased()] else { throw Invalid("\(name)=\(text) is not true or false") }
            return value
        }
        if let v = environment["DOPPEL_HOST"] { host = v }
        try int("DOPPEL_PORT", &port)
        if let v = environment["DOPPEL_MODEL"] { model = v }
        if let v = environment["DOPPEL_DATABASE"] { database = v }
        if let v = environment["DOPPEL_DATABASE_PASSWORD_FILE"] { databasePasswordFile = v }
        if let v = environment["DOPPEL_DATA_DIR"] { dataDirectory = v }
        if let v = environment["DOPPEL_LOG_LEVEL"] { logLevel = v }
        if let on = try bool("DOPPEL_CONSOLE") { console = on }
        if let v = environment["DOPPEL_ADMIN_KEYS"] { adminKeys = v.split(separator: ",").map(String.init) }
        if let v = environment["DOPPEL_CLIENT_KEYS"] { clientKeys = v.split(separator: ",").map(String.init) }
        if let v = environment["DOPPEL_COMPARE_KEYS"] { compareKeys = v.split(separator: ",").map(String.init) }
        if let open = try bool("DOPPEL_OPEN") { openClientRoutes = open }
        if let v = environment["DOPPEL_ALLOWED_HOSTS"] { allowedHosts = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() } }
        try int("DOPPEL_MAX_BATCH", &maxBatch)
        try int("DOPPEL_MAX_WAIT_US", &maxWaitMicroseconds)
        try int("DOPPEL_WORKERS", &workers)
        try int("DOPPEL_SEARCH_MAX_BATCH", &searchMaxBatch)
        if let v = environment["DOPPEL_INDEX_PRECISION"] { indexPrecision = v }
        try int("DOPPEL_INDEX_RERANK", &indexRerank)
        if let v = environment["DOPPEL_KERNELS"] { kernels = v }
    }

    /// Every setting in range, or the first one that is not, in words.
    public func validate() throws(Invalid) {
        func check(_ ok: Bool, _ message: String) throws(Invalid) { if !ok { throw Invalid(message) } }
        try check(!host.isEmpty, "host must not be empty")
        try check((0...65535).contains(port), "port \(port) is not in 0...65535")
        try check(!model.isEmpty, "model must name a model file")
        try check(!database.isEmpty, "database must name a file or a postgres:// URL")
        try check(replicationPollMilliseconds >= 10 && replicationPollMilliseconds <= 60_000, "replication.poll_ms must be in 10...60000")
        try check(replicationMaxLagMilliseconds >= 100, "replication.max_lag_ms must be at least 100")
        try check(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel),
                  "log_level \(logLevel) is not one of trace, debug, info, notice, warning, error, critical")
        try check(maxImagePixels >= 1, "limits.max_image_pixels must be positive")
        try check(maxBodyBytes >= 1024, "limits.max_body_bytes must be at least 1024")
        try check(maxHeaderBytes >= 1024, "limits.max_header_bytes must be at least 1024")
        try check(maxImagesPerRequest >= 1, "limits.max_images_per_request must be at least 1")
        try check(maxK >= 1 && maxK <= 10_000, "limits.max_k must be in 1...10000")
        try check(bodyDeadlineMilliseconds >= 100 && bodyMaxMilliseconds >= bodyDeadlineMilliseconds && bodyMinRateBytes >= 1 && writeTimeoutMilliseconds >= 100,
                  "limits.body_deadline_ms and write_timeout_ms must be at least 100, body_max_ms at least body_deadline_ms, body_min_rate_bytes positive")
        try check(headerTimeoutMilliseconds >= 100 && bodyTimeoutMilliseconds >= 100 && keepAliveTimeoutMilliseconds >= 100,
                  "timeouts must be at least 100 ms")
        try check(maxConnections >= 1, "limits.max_connections must be at least 1")
        try check(maxMultipartParts >= 1, "limits.max_multipart_parts must be at least 1")
        try check(maxDatabaseMegabytes >= 0, "limits.max_database_mb must not be negative")
        try check(maxBufferedMegabytes >= 1, "limits.max_buffered_mb must be at least 1")
        try check(maxDecodeMegabytes >= 1, "limits.max_decode_mb must be at least 1")
        try check(decodeWaitMilliseconds >= 0 && decodeWaitMilliseconds <= 60_000, "limits.decode_wait_ms must be in 0...60000")
        try check(maxDetectionPixels >= 10_000, "limits.max_detection_pixels must be at least 10000")
        try check(maxFaces >= 1 && maxFaces <= 64, "limits.max_faces must be in 1...64")
        try check(maxBatch >= 1 && maxBatch <= 4096, "batching.max_batch must be in 1...4096")
        try check(maxWaitMicroseconds >= 0 && maxWaitMicroseconds <= 1_000_000, "batching.max_wait_us must be in 0...1000000")
        try check(searchMaxBatch >= 1 && searchMaxBatch <= 4096, "search_batching.max_batch must be in 1...4096")
        try check(searchMaxWaitMicroseconds >= 0 && searchMaxWaitMicroseconds <= 1_000_000, "search_batching.max_wait_us must be in 0...1000000")
        try check(["float32", "float16", "int8"].contains(indexPrecision), "index.precision \(indexPrecision) is not float32, float16 or int8")
        try check(indexRerank >= 0 && indexRerank <= 100, "index.rerank must be in 0...100")
        try check(snapshotDelaySeconds >= 1, "index.snapshot_delay_s must be at least 1")
        try check(["auto", "portable", "avx2", "avx512"].contains(kernels), "kernels \(kernels) is not auto, portable, avx2 or avx512")
        try check(workers >= 1 && workers <= 4096, "server.workers must be in 1...4096")
        try check(eventLoops >= 1 && eventLoops <= 64, "server.event_loops must be in 1...64")
        try check(shutdownDeadlineMilliseconds >= 0, "server.shutdown_deadline_ms must not be negative")
        for key in adminKeys + clientKeys + compareKeys {
            try check(key.count >= 16, "keys must be at least 16 characters (one is \(key.count))")
            try check(key.allSatisfy { $0.isASCII && !$0.isWhitespace && $0 != "," }, "keys must be printable ASCII without spaces or commas")
        }
        try check(ambiguityMargin.isFinite && ambiguityMargin >= 0, "threshold.ambiguity_margin must be a non-negative number")
        if let maxThreshold { try check(maxThreshold.isFinite && maxThreshold > 0, "threshold.max_threshold must be positive") }
        _ = try aggregationPolicy()
    }

    func aggregationPolicy() throws(Invalid) -> AggregationPolicy {
        guard let policy = AggregationPolicy(aggregation) else {
            throw Invalid("threshold.aggregation \(aggregation) is not best, mean-of-best:M or centroid")
        }
        return policy
    }

    /// Whether `database` names a PostgreSQL server rather than a SQLite file.
    public var usesPostgres: Bool { isPostgresURL(database) }

    /// `database` as it may be logged: a URL's password replaced by `***`.
    public var databaseForLogs: String { usesPostgres ? PostgresStore.redacted(database) : database }

    /// Whether the server listens on a loopback address only (reachable from this machine).
    public var bindsLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// What a caller without a key may do on client routes: compare, when the routes are open
    /// (explicitly, or by default on a loopback bind and without client keys); nothing otherwise.
    var anonymousScope: Scope? {
        if let openClientRoutes { return openClientRoutes ? .compare : nil }
        return bindsLoopback && clientKeys.isEmpty && compareKeys.isEmpty ? .compare : nil
    }

    /// Who may call what, for the start-up log.
    public var accessSummary: String {
        let client = switch anonymousScope {
        case .some: "client routes open without a key (compare only: matches, never the identities that do not match)"
        case nil: "client routes need a key (\(clientKeys.count) client, \(compareKeys.count) compare-only)"
        }
        let hosts = effectiveAllowedHosts.isEmpty ? "any Host" : "Host \(effectiveAllowedHosts.joined(separator: ", "))"
        return "\(client); /metrics \(bindsLoopback ? "open on loopback" : "needs a key"); \(hosts)"
    }

    /// The Host names requests must carry; empty means any.
    public var effectiveAllowedHosts: [String] {
        allowedHosts ?? (bindsLoopback ? ["localhost", "127.0.0.1", "::1"] : [])
    }

    /// The HTTP layer's settings.
    public var server: HTTPServerConfiguration {
        var c = HTTPServerConfiguration()
        c.host = host
        c.port = port
        c.limits.maxBodyBytes = maxBodyBytes
        c.limits.maxHeaderBytes = maxHeaderBytes
        c.headerTimeout = headerTimeoutMilliseconds
        c.bodyIdleTimeout = bodyTimeoutMilliseconds
        c.bodyTimeout = bodyDeadlineMilliseconds
        c.bodyMinBytesPerSecond = bodyMinRateBytes
        c.bodyMaxTime = bodyMaxMilliseconds
        c.writeTimeout = writeTimeoutMilliseconds
        c.keepAliveTimeout = keepAliveTimeoutMilliseconds
        c.maxConnections = maxConnections
        c.maxBufferedBytes = maxBufferedMegabytes << 20
        c.workers = workers
        c.eventLoops = eventLoops
        c.shutdownDeadline = shutdownDeadlineMilliseconds
        return c
    }
}

/// How search folds an identity's samples into one distance (config `threshold.aggregation`).
struct AggregationPolicy: Equatable {
    enum Kind: Equatable { case best, meanOfBest(Int), centroid }
    let kind: Kind

    init?(_ text: String) {
        switch text {
        case "best": kind = .best
        case "centroid": kind = .centroid
        default:
            guard text.hasPrefix("mean-of-best:"), let m = Int(text.dropFirst("mean-of-best:".count)), m >= 1 else { return nil }
            kind = .meanOfBest(m)
        }
    }
}

/// Reads typed fields out of a decoded JSON object, naming the field path in every error.
struct FieldReader {
    let source: String
    var path: [String] = []

    private func name(_ key: String) -> String { (path + [key]).joined(separator: ".") }

    mutating func object(_ o: [String: Any], known: Set<String>, _ body: (inout FieldReader, [String: Any]) throws(ServiceConfiguration.Invalid) -> Void) throws(ServiceConfiguration.Invalid) {
        if let unknown = o.keys.sorted().first(where: { !known.contains($0) }) {
            throw .init("\(source): unknown field \(name(unknown)) (known: \(known.sorted().joined(separator: ", ")))")
        }
        try body(&self, o)
    }

    mutating func nested(_ o: [String: Any], _ key: String, known: Set<String>, _ body: (inout FieldReader, [String: Any]) throws(ServiceConfiguration.Invalid) -> Void) throws(ServiceConfiguration.Invalid) {
        guard let value = o[key] else { return }
        guard let inner = value as? [String: Any] else { throw .init("\(source): \(name(key)) must be an object") }
        path.append(key)
        defer { path.removeLast() }
        try object(inner, known: known, body)
    }

    func read(_ o: [String: Any], _ key: String, into target: inout String) throws(ServiceConfiguration.Invalid) {
        guard let value = o[key] else { return }
        guard let text = value as? String else { throw .init("\(source): \(name(key)) must be a string") }
        target = text
    }

    func readOptional(_ o: [String: Any], _ key: String, into target: inout String?) throws(ServiceConfiguration.Invalid) {
        guard let value = o[key] else { return }
        if value is NSNull { target = nil; return }
        guard let text = value as? String else { throw .init("\(source): \(name(key)) must be a string or null") }
        target = text
    }

    func read(_ o: [String: Any], _ key: String, into target: inout Int) throws(ServiceConfiguration.Invalid) {
        guard let value = o[key] else { return }
        guard let number = value as? NSNumber, !number.isJSONBoolean, let int = Int(exactly: number.doubleValue) else {
            throw .init("\(source): \(name(key)) must be an integer")
        }
        target = int
    }

    func read(_ o: [String: Any], _ key: String, into target: inout Double) throws(ServiceConfiguration.Invalid) {
        guard let value = o[key] else { return }
        guard let number = value as? NSNumber, !number.isJSONBoolean else { throw .init("\(source): \(name(key)) must be a number") }
        target = number.doubleValue
    }

    func readOptional(_ o: [String: Any], _ key: String, into target: inout Double?) throws(ServiceConfiguration.Invalid) {
        guard let value = o[key] else { return }
        if value is NSNull { target = nil; return }
        var number = 0.0
        try read(o, key, into: &number)
        target = number
    }

    func read(_ o: [String: Any], _ key: String, into target: inout Bool) throws(ServiceConfiguration.Invalid) {
        guard let value = o[key] else { return }
        guard let number = value as? NSNumber, number.isJSONBoolean else { throw .init("\(source): \(name(key)) must be true or false") }
        target = number.boolValue
    }

    func read(_ o: [String: Any], _ key: String, into target: inout [String]) throws(ServiceConfiguration.Invalid) {
        guard let value = o[key] else { return }
        guard let list = value as? [String] else { throw .init("\(source): \(name(key)) must be a list of strings") }
        target = list
    }
}

extension NSNumber {
    /// JSONSerialization gives true and false as NSNumbers too; they are the ones of type char.
    var isJSONBoolean: Bool { String(cString: objCType) == "c" }
}
