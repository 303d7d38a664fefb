// SPDX-License-Identifier: MIT
// DoppelService owns what users touch over HTTP: the routes of DESIGN.md (verify, search,
// embed, admin enrollment, health, metrics, model, OpenAPI), authentication, configuration,
// micro-batching and metrics. It plugs a router into DoppelHTTP and knows nothing of sockets.
import DoppelGallery
import DoppelHTTP
import DoppelImaging
import DoppelNN
import Foundation
import Logging
import Synchronization

/// The service: a model, its galleries, keys and routes. `init` loads and checks everything
/// that can be checked without work; `prepare()` brings the galleries' indexes up to the
/// model (re-embedding stored images if the model changed) and makes the service ready.
public final class Service: HTTPResponder, @unchecked Sendable {
    public let configuration: ServiceConfiguration
    let model: ServedModel
    let embedder: BatchingEmbedder
    let searches: SearchBatcher
    let galleries: Galleries
    let keys: KeyRing
    let metrics = ServiceMetrics()
    let logger: Logger
    let aggregation: Aggregation
    let openAPI: [UInt8]
    /// The memory all image work together may hold (`limits.max_decode_mb`).
    let imageBudget: ImageMemoryBudget
    private var router = Router()
    private let isReady = Atomic<Bool>(false)
    /// Where the generated admin key was written, when the configuration gave none.
    public private(set) var generatedAdminKeyPath: String?

    public init(configuration: ServiceConfiguration, logger: Logger) throws {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        model = try ServedModel(path: configuration.model)
        model.input.faceStage?.maxDetectionPixels = configuration.maxDetectionPixels
        imageBudget = ImageMemoryBudget(bytes: configuration.maxDecodeMegabytes << 20)
        let policy = try configuration.aggregationPolicy()
        aggregation = switch policy.kind {
        case .best: .best
        case .centroid: .centroid
        case .meanOfBest(let m): .meanOfBest(m)
        }
        var adminKeys = configuration.adminKeys
        if adminKeys.isEmpty {
            let generated = try KeyRing.loadOrCreateAdminKey(directory: configuration.dataDirectory)
            adminKeys = [generated.key]
            generatedAdminKeyPath = generated.path
        }
        keys = KeyRing(admin: adminKeys, client: configuration.clientKeys, compare: configuration.compareKeys,
                       anonymous: configuration.anonymousScope)
        let migrationsFolder = try Self.migrationsFolder(configuration.migrations)
        var password: String? = nil
        if let file = configuration.databasePasswordFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ServiceConfiguration.Invalid("database_password_file \(file) cannot be read")
            }
            password = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let store = try openGalleryStore(database: configuration.database, password: password, migrationsFolder: migrationsFolder,
                                         storeImages: configuration.storeImages)
        var snapshotPath = "\(configuration.database).\(model.id).index"
        if configuration.usesPostgres {
            // Each replica keeps its own snapshot in its data folder.
            try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
            snapshotPath = (configuration.dataDirectory as NSString).appendingPathComponent("index-\(model.id).snapshot")
        }
        if let capped = store as? any SizeCappedStore, configuration.maxDatabaseMegabytes > 0 {
            try capped.capSize(megabytes: configuration.maxDatabaseMegabytes)
        }
        var options = Galleries.IndexOptions()
        options.precision = IndexPrecision(rawValue: configuration.indexPrecision) ?? .float32
        if options.precision != .float32 && configuration.indexRerank > 0 {
            options.rerank = GalleryIndex.Rerank(factor: configuration.indexRerank, source: try store.makeVectorReader(model: model.id)) { [logger] error in
                logger.error("re-ranking read no stored vectors (answered from the index's codes): \(error)")
            }
        }
        options.tracksCentroids = aggregation == .centroid
        if configuration.indexSnapshot { options.snapshotPath = snapshotPath }
        options.snapshotDelay = TimeInterval(configuration.snapshotDelaySeconds)
        galleries = Galleries(store: store, model: model, options: options)
        galleries.pollInterval = Double(configuration.replicationPollMilliseconds) / 1000
        galleries.log = { [logger] in logger.info("\($0)") }
        embedder = BatchingEmbedder(model: model, maxBatch: configuration.maxBatch, maxWaitMicroseconds: configuration.maxWaitMicroseconds)
        searches = SearchBatcher(maxBatch: configuration.searchMaxBatch, maxWaitMicroseconds: configuration.searchMaxWaitMicroseconds,
                                 aggregation: aggregation, index: { [galleries] in galleries.index($0) })
        openAPI = try OpenAPIDocument.json(limits: [
            "limits.max_k": Double(configuration.maxK), "limits.max_images_per_request": Double(configuration.maxImagesPerRequest),
            "limits.max_faces": Double(configuration.maxFaces), "threshold.max_threshold": Double(configuration.maxThreshold ?? model.naturalMaxThreshold),
        ])
        embedder.onBatch = { [metrics] size in metrics.recordBatch(size) }
        searches.onBatch = { [metrics] size in metrics.recordSearchBatch(size) }
        addRoutes()
        addConsoleRoutes()
    }

    static func migrationsFolder(_ configured: String?) throws -> String {
        let candidates = configured.map { [$0] } ?? ["Migrations", "/usr/share/doppel/Migrations"]
        guard let folder = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw ServiceConfiguration.Invalid("no migrations folder at \(candidates.joined(separator: " or ")); set \"migrations\" in the config")
        }
        return folder
    }

    /// Re-embeds what the model has not indexed and loads the indexes; then ready.
    public func prepare() throws {
        logger.info("gallery database: \(configuration.databaseForLogs) (\(galleries.store.backend))")
        try galleries.prepare(embedder: embedder) { logger.info("\($0)") }
        isReady.store(true, ordering: .releasing)
        if galleries.isReadOnly {
            logger.warning("the gallery database is read-only: serving reads; writes answer 503 until it can be written")
        }
        let sizes = galleries.sizes()
        logger.info("ready: model \(model.id), \(sizes.reduce(0) { $0 + $1.samples }) samples in \(sizes.count) galleries")
    }

    public var ready: Bool { isReady.load(ordering: .acquiring) }

    /// Stops the batchers and writes the index snapshot if anything changed since the last.
    public func stop() {
        embedder.stop()
        searches.stop()
        if let outcome = galleries.close() { logger.info("\(outcome)") }
    }

    // MARK: HTTPResponder

    public func respond(to request: HTTPRequest) -> HTTPResponse {
        let started = DispatchTime.now().uptimeNanoseconds
        var (response, pattern) = allowedHost(request) ? router.route(request) : (ServiceError(.misdirectedRequest,
            "this server answers for \(configuration.effectiveAllowedHosts.joined(separator: ", ")) only (server.allowed_hosts)").response, nil)
        if response.status >= 500 { logger.error("\(request.method) \(request.path) answered \(response.status)") }
        response.headers.add("X-Content-Type-Options", "nosniff")
        // Labels come from a fixed set, so clients cannot grow the metrics with made-up methods or paths.
        let method = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"].contains(request.method) ? request.method : "other"
        metrics.record(route: pattern ?? "unmatched", method: method, status: response.status,
                       nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds - started))
        return response
    }

    /// Health checks and the cached documents: answered on the server's quick lane, so a load
    /// balancer's probe never waits behind images being decoded and embedded.
    public func isLightweight(_ request: HTTPRequest) -> Bool {
        request.method == "GET" && ["/healthz", "/readyz", "/metrics", "/openapi.json"].contains(request.path)
    }

    /// Whether the request's Host names this server: a web page that rebinds its own name to
    /// 127.0.0.1 sends its own name, which is not in the list (DNS rebinding). An HTTP/1.0
    /// request without Host is let through (browsers always send it).
    func allowedHost(_ request: HTTPRequest) -> Bool {
        let allowed = configuration.effectiveAllowedHosts
        guard !allowed.isEmpty, let host = request.headers["host"] else { return true }
        var name = Substring(host.lowercased())
        if name.hasPrefix("[") { name = name.prefix { $0 != "]" }.dropFirst() } else if let colon = name.lastIndex(of: ":") { name = name[..<colon] }
        return allowed.contains(String(name))
    }

    /// A route body as a handler.
    struct Route: HTTPHandler {
        let body: @Sendable (HTTPRequest, [String: String]) throws -> HTTPResponse
        func handle(_ request: HTTPRequest, parameters: [String: String]) throws -> HTTPResponse { try body(request, parameters) }
    }

    /// Who may call a route: anyone; anyone on a loopback bind, any key holder otherwise
    /// (`/metrics`); client keys (and the anonymous scope, when there is one); admin keys.
    enum Access { case open, local, client, admin }

    /// Registers `body` under `method pattern`, behind the key check and readiness gate.
    func add(_ method: String, _ pattern: String, access: Access, needsReady: Bool = true,
             _ body: @escaping @Sendable (Service, HTTPRequest, [String: String], Caller) throws -> HTTPResponse) {
        router.add(method, pattern, Route { [unowned self] request, parameters in
            var caller = Caller(actor: "anonymous", scope: .compare)
            switch access {
            case .open: break
            case .local: if !configuration.bindsLoopback { caller = try keys.authorize(request, as: .client) }
            case .client: caller = try keys.authorize(request, as: .client)
            case .admin: caller = try keys.authorize(request, as: .admin)
            }
            if needsReady && !ready { throw ServiceError(.notReady, "the gallery is being indexed for model \(model.id); retry shortly") }
            return try body(self, request, parameters, caller)
        })
    }
}
