// SPDX-License-Identifier: MIT
import DoppelGallery
import DoppelHTTP
import DoppelModel
import DoppelNN
import Foundation

/// The routes of DESIGN.md's HTTP table. Each reads its input through `RequestContent`,
/// validates every parameter, and answers JSON; errors are `ServiceError`s.
extension Service {
    func addRoutes() {
        add("GET", "/healthz", access: .open, needsReady: false) { _, _, _, _ in .json(200, #"{"status":"ok"}"#) }
        add("GET", "/readyz", access: .open, needsReady: false) { service, _, _, _ in
            guard service.ready else { throw ServiceError(.notReady, "the gallery is being indexed for model \(service.model.id)") }
            let samples = service.galleries.sizes().reduce(0) { $0 + $1.samples }
            let footprint = service.galleries.indexFootprint()
            var fields: [(String, JSONValue)] = [("status", .string("ready")), ("model", .string(service.model.id)), ("samples", .int(samples)),
                                                 ("index", .ordered([("precision", .string(service.configuration.indexPrecision)),
                                                                     ("bytes_per_vector", .int(footprint.bytesPerVector)), ("bytes", .int(footprint.bytes))]))]
            if let replication = service.galleries.replication {
                let lag = replication.pendingFor ?? 0
                // Behind the change log for longer than allowed: out of rotation until caught up.
                if lag * 1000 > Double(service.configuration.replicationMaxLagMilliseconds) {
                    throw ServiceError(.behind, String(format: "this replica is %.1f s behind the change log (applied change %lld)", lag, replication.applied))
                }
                fields.append(("replication", .ordered([("applied", .int(Int(replication.applied))), ("lag_ms", .int(Int(lag * 1000))),
                                                        ("change_log", .string(replication.feedReachable ? "reachable" : "unreachable"))])))
            }
            return .json(200, .ordered(fields))
        }
        add("GET", "/metrics", access: .local, needsReady: false) { service, _, _, _ in
            HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "text/plain; version=0.0.4; charset=utf-8")]),
                         body: service.metrics.text(galleries: service.galleries.sizes(), index: service.galleries.indexFootprint(), isReady: service.ready))
        }
        add("GET", "/openapi.json", access: .open, needsReady: false) { service, _, _, _ in
            HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/json")]), body: service.openAPI)
        }
        add("GET", "/v1/model", access: .client, needsReady: false) { service, _, _, _ in .json(200, service.modelDescription()) }
        add("POST", "/v1/verify", access: .client) { service, request, _, _ in try service.verify(request) }
        add("POST", "/v1/search", access: .client) { service, request, _, caller in try service.search(request, scope: caller.scope) }
        add("POST", "/v1/embed", access: .client) { service, request, _, _ in try service.embed(request) }
        add("POST", "/v1/identities/{id}/verify", access: .client) { service, request, parameters, caller in
            try service.verifyIdentity(request, id: parameters["id"]!, scope: caller.scope)
        }
        add("POST", "/v1/identities", access: .admin) { service, request, _, caller in try service.createIdentity(request, actor: caller.actor) }
        add("GET", "/v1/index/digest", access: .admin) { service, _, _, _ in
            let (samples, digest) = service.galleries.indexDigest()
            return .json(200, .ordered([("model", .string(service.model.id)), ("samples", .int(samples)), ("digest", .string(digest))]))
        }
        add("GET", "/v1/identities", access: .admin) { service, request, _, _ in try service.listIdentities(request) }
        add("GET", "/v1/identities/{id}", access: .admin) { service, request, parameters, _ in
            try service.showIdentity(request, id: parameters["id"]!)
        }
        add("DELETE", "/v1/identities/{id}", access: .admin) { service, request, parameters, caller in
            try service.deleteIdentity(request, id: parameters["id"]!, actor: caller.actor)
        }
        add("POST", "/v1/identities/{id}/samples", access: .admin) { service, request, parameters, caller in
            try service.addSamples(request, id: parameters["id"]!, actor: caller.actor)
        }
        add("DELETE", "/v1/identities/{id}/samples/{sample}", access: .admin) { service, request, parameters, caller in
            try service.deleteSample(request, id: parameters["id"]!, sample: parameters["sample"]!, actor: caller.actor)
        }
    }

    // MARK: reading requests

    func content(_ request: HTTPRequest, allowed: Set<String>) throws(ServiceError) -> RequestContent {
        let content = try RequestContent(request, maxParts: configuration.maxMultipartParts, maxImages: configuration.maxImagesPerRequest)
        try content.rejectUnknownFields(allowed: allowed)
        return content
    }

    static let minThreshold: Float = 1e-6

    /// The request's threshold, or the model's. A compare-only caller may make it stricter,
    /// never looser: a looser threshold would turn non-matching identities into matches.
    func threshold(_ content: RequestContent, scope: Scope = .identify) throws(ServiceError) -> Float {
        guard let asked = try content.number("threshold") else { return model.threshold }
        if scope == .compare, asked.isFinite, Float(asked) > model.threshold {
            throw ServiceError(.forbidden, "a compare-only caller may not raise the threshold above the model's \(model.threshold)")
        }
        let bound = configuration.maxThreshold ?? model.naturalMaxThreshold
        // Checked as the Float it becomes (1e-320 is 0 as a Float); below 1e-6 means nothing.
        guard asked.isFinite, Float(asked) >= Self.minThreshold, Float(asked) <= bound else {
            throw ServiceError(.invalidThreshold, "threshold must be a number in [\(Self.minThreshold), \(bound)]; the model's calibrated threshold is \(model.threshold)")
        }
        return Float(asked)
    }

    func gallery(_ content: RequestContent) throws(ServiceError) -> String {
        let name = try content.string("gallery") ?? "default"
        try Self.checkIdentifier(name, as: .gallery)
        return name
    }

    /// What an identifier names: an identity's id (1-128 characters) or a gallery (1-64).
    enum Identifier: String {
        case id, gallery
        var maxCharacters: Int { self == .id ? 128 : 64 }
        var error: ErrorCode { self == .id ? .invalidID : .invalidGallery }
    }

    /// Ids and gallery names: 1 to `maxCharacters` characters, no control characters or path
    /// separators.
    static func checkIdentifier(_ value: String, as kind: Identifier) throws(ServiceError) {
        guard !value.isEmpty, value.unicodeScalars.count <= kind.maxCharacters else {
            throw ServiceError(kind.error, "\(kind.rawValue) must be 1 to \(kind.maxCharacters) characters")
        }
        guard !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "/" || $0 == "\\" || (0x80...0x9F).contains($0.value) }) else {
            throw ServiceError(kind.error, "\(kind.rawValue) must not contain control characters, / or \\")
        }
    }

    func decision(distance: Float, threshold: Float) -> [(String, JSONValue)] {
        [("distance", .float(distance)), ("threshold", .float(threshold)), ("match", .bool(distance <= threshold)),
         ("similarity", .number(model.similarity(distance: distance))), ("far", model.falseAcceptRate(at: threshold).map(JSONValue.number) ?? .null)]
    }

    // MARK: comparison routes

    /// Two images compared: by default the largest face of each (for a face model);
    /// `face1` / `face2` pick another face by its place or give a box.
    func verify(_ request: HTTPRequest) throws(ServiceError) -> HTTPResponse {
        let content = try content(request, allowed: ["threshold", "face1", "face2"])
        guard content.images.count == 2 else {
            throw ServiceError(.missingImage, "verify needs exactly two images (image1 and image2); got \(content.images.count)")
        }
        let threshold = try threshold(content)
        let choices = [try faceChoice(content, field: "face1") ?? .largest, try faceChoice(content, field: "face2") ?? .largest]
        let images = try embed(content.images, choosing: choices)
        let distance = model.distance(images[0].vector, images[1].vector)
        return .json(200, .ordered(decision(distance: distance, threshold: threshold) + imagesField(images) + [("model", .string(model.id))]))
    }

    func singleImage(_ content: RequestContent, route: String) throws(ServiceError) -> (name: String, bytes: [UInt8]) {
        guard content.images.count == 1 else {
            throw ServiceError(.missingImage, "\(route) needs exactly one image; got \(content.images.count)")
        }
        return content.images[0]
    }

    /// The nearest identities. A compare-only caller gets only those that match (and none
    /// when the decision is not a match): never the names or distances of people who do not.
    /// A face model answers for each face found (largest first, at most `max_faces`), or for
    /// the one `face` picks; the top-level answer is the first face's.
    func search(_ request: HTTPRequest, scope: Scope) throws(ServiceError) -> HTTPResponse {
        let content = try content(request, allowed: ["k", "threshold", "gallery", "face", "max_faces", "landmarks"])
        let image = try singleImage(content, route: "search")
        let k = try content.integer("k") ?? 5
        guard (1...configuration.maxK).contains(k) else {
            throw ServiceError(.invalidK, "k must be an integer in 1...\(configuration.maxK)")
        }
        let threshold = try threshold(content, scope: scope)
        let gallery = try gallery(content)
        let maxFaces = try maxFaces(content)
        let choice = try faceChoice(content, field: "face") ?? .every(limit: maxFaces)
        let landmarks = try landmarksWanted(content)
        let embedded = try embed([image], choosing: [choice])[0]
        var answers = [[(String, JSONValue)]]()
        for vector in embedded.vectors {
            answers.append(try searchAnswer(vector, gallery: gallery, k: k, threshold: threshold, scope: scope))
        }
        var fields = answers[0] + [("gallery", .string(gallery)), ("model", .string(model.id)), ("threshold", .float(threshold))]
        if model.findsFaces {
            fields += faceCountFields(embedded, choice: choice, maxFaces: maxFaces)
            fields.append(("faces", .array(answers.indices.map { .ordered(faceFields(embedded, chosen: $0, landmarks: landmarks) + answers[$0]) })))
        }
        return .json(200, .ordered(fields))
    }

    /// `landmarks=true`: each face's five points (eyes' corners and the nose) in the answer.
    func landmarksWanted(_ content: RequestContent) throws(ServiceError) -> Bool {
        guard let wanted = try content.bool("landmarks") else { return false }
        guard model.findsFaces else {
            throw ServiceError(.invalidField, "landmarks applies to a model with a face stage; model \(model.id) embeds whole images")
        }
        return wanted
    }

    /// One query's decision and matches.
    func searchAnswer(_ query: [Float], gallery: String, k: Int, threshold: Float, scope: Scope) throws(ServiceError) -> [(String, JSONValue)] {
        let ranked = try rank(query, gallery: gallery, k: max(k, 2))
        let matches = scope >= .identify ? ranked : ranked.filter { $0.distance <= threshold }
        let margin = configuration.ambiguityMargin
        let decision: String
        if let best = matches.first, best.distance <= threshold {
            decision = matches.count > 1 && matches[1].distance - best.distance < margin ? "ambiguous" : "match"
        } else {
            decision = "unknown"
        }
        let results: [JSONValue] = matches.prefix(k).map { m in
            .ordered([("identity", .string(m.identity)), ("distance", .float(m.distance)), ("similarity", .number(model.similarity(distance: m.distance))),
                      ("match", .bool(m.distance <= threshold)), ("sample", .int(m.sample))])
        }
        return [("decision", .string(decision)), ("margin", .float(margin)), ("far", model.falseAcceptRate(at: threshold).map(JSONValue.number) ?? .null),
                ("matches", .array(results))]
    }

    /// Identities nearest to `query`, best sample each. With a Koch head the index proposes
    /// candidates by embedding distance and the head re-ranks them (its distance is what the
    /// threshold was calibrated on).
    func rank(_ query: [Float], gallery: String, k: Int) throws(ServiceError) -> [Match] {
        guard model.head != nil else { return searches.search(query, gallery: gallery, k: k) }
        let index = galleries.index(gallery)
        let candidates = index.searchSamples(query, k: max(k * 8, 32))
        let vectors = try galleries.storeCall { store throws(GalleryError) in try store.vectors(samples: candidates.map(\.sample), model: model.id) }
        var best = [String: Match]()
        for candidate in candidates {
            guard let vector = vectors[candidate.sample] else { continue }
            let distance = model.distance(query, vector)
            if best[candidate.identity].map({ distance < $0.distance }) ?? true {
                best[candidate.identity] = Match(identity: candidate.identity, distance: distance, sample: candidate.sample)
            }
        }
        return best.values.sorted { ($0.distance, $0.identity) < ($1.distance, $1.identity) }.prefix(k).map { $0 }
    }

    /// An image's embedding; a face model's for each face found (largest first, at most
    /// `max_faces`) or the one `face` picks, the top-level `embedding` the first face's.
    func embed(_ request: HTTPRequest) throws(ServiceError) -> HTTPResponse {
        let content = try content(request, allowed: ["face", "max_faces", "landmarks"])
        let image = try singleImage(content, route: "embed")
        let maxFaces = try maxFaces(content)
        let choice = try faceChoice(content, field: "face") ?? .every(limit: maxFaces)
        let landmarks = try landmarksWanted(content)
        let embedded = try embed([image], choosing: [choice])[0]
        var fields: [(String, JSONValue)] = [("embedding", .array(embedded.vector.map(JSONValue.float))), ("dimension", .int(model.dimension)),
                                             ("model", .string(model.id))]
        if model.findsFaces {
            fields += faceCountFields(embedded, choice: choice, maxFaces: maxFaces)
            fields.append(("faces", .array(embedded.vectors.indices.map { i in
                .ordered(faceFields(embedded, chosen: i, landmarks: landmarks) + [("embedding", .array(embedded.vectors[i].map(JSONValue.float)))])
            })))
        }
        return .json(200, .ordered(fields))
    }

    /// An image against one identity. A compare-only caller learns whether it matches and
    /// nothing else: an identity that does not exist, or has no samples, answers as one that
    /// does not match (no existence oracle), and no distance is given.
    func verifyIdentity(_ request: HTTPRequest, id: String, scope: Scope) throws(ServiceError) -> HTTPResponse {
        try Self.checkIdentifier(id, as: .id)
        let content = try content(request, allowed: ["threshold", "gallery", "face"])
        let image = try singleImage(content, route: "verify against an identity")
        let threshold = try threshold(content, scope: scope)
        let gallery = try gallery(content)
        let embedded = try embed([image], choosing: [try faceChoice(content, field: "face") ?? .largest])
        let own: [Int64: [Float]]
        do { own = try vectors(gallery: gallery, id: id) } catch where scope == .compare && error.status == 404 { own = [:] }
        let query = embedded[0].vector
        let best = own.map({ ($0.key, model.distance(query, $0.value)) }).min(by: { ($0.1, $0.0) < ($1.1, $1.0) })
        if scope == .compare {
            return .json(200, .ordered([("identity", .string(id)), ("match", .bool(best.map { $0.1 <= threshold } ?? false)),
                                        ("threshold", .float(threshold)), ("model", .string(model.id))] + imagesField(embedded)))
        }
        guard let (sample, distance) = best else {
            throw ServiceError(.noSamples, "identity '\(id)' has no samples to compare with")
        }
        return .json(200, .ordered([("identity", .string(id))] + decision(distance: distance, threshold: threshold)
                                   + [("sample", .int(sample)), ("model", .string(model.id))] + imagesField(embedded)))
    }

    /// An identity's embeddings under the served model (404 when it does not exist).
    func vectors(gallery: String, id: String) throws(ServiceError) -> [Int64: [Float]] {
        try galleries.storeCall { store throws(GalleryError) in
            let record = try store.identity(gallery: gallery, externalID: id)
            return try store.vectors(samples: record.sampleIDs, model: model.id)
        }
    }

    // MARK: admin routes

    func createIdentity(_ request: HTTPRequest, actor: String) throws(ServiceError) -> HTTPResponse {
        let content = try content(request, allowed: ["id", "name", "metadata", "strict", "gallery", "face"])
        guard let id = try content.string("id") else { throw ServiceError(.missingField, "id is required") }
        try Self.checkIdentifier(id, as: .id)
        let name = try content.string("name")
        if let name { guard name.unicodeScalars.count <= 256 else { throw ServiceError(.invalidField, "name must be at most 256 characters") } }
        let metadata = try content.jsonObject("metadata") ?? "{}"
        let gallery = try gallery(content)
        let strict = try content.bool("strict") ?? false
        guard !content.images.isEmpty else { throw ServiceError(.missingImage, "an identity needs at least one image") }
        let images = try embedForEnrollment(content)
        let vectors = images.map(\.vector)
        let warnings = quality(of: vectors, joining: id, existing: [:], gallery: gallery)
        if strict && !warnings.isEmpty {
            throw ServiceError(.enrollmentQuality, "strict enrollment refused: \(warnings.count) quality warnings", details: ["warnings": .array(warnings)])
        }
        let samples = newSamples(content, images)
        let record = try galleries.create(gallery: gallery, id: id, name: name, metadata: metadata, samples: samples, actor: actor)
        return .json(201, .ordered([
            ("id", .string(id)), ("name", name.map(JSONValue.string) ?? .null), ("gallery", .string(gallery)),
            ("samples", .array(record.sampleIDs.map(JSONValue.int))), ("warnings", .array(warnings)), ("model", .string(model.id)),
        ] + imagesField(images)))
    }

    func addSamples(_ request: HTTPRequest, id: String, actor: String) throws(ServiceError) -> HTTPResponse {
        try Self.checkIdentifier(id, as: .id)
        let content = try content(request, allowed: ["strict", "gallery", "face"])
        let gallery = try gallery(content)
        let strict = try content.bool("strict") ?? false
        guard !content.images.isEmpty else { throw ServiceError(.missingImage, "give at least one image") }
        let existing = try vectors(gallery: gallery, id: id)
        let images = try embedForEnrollment(content)
        let vectors = images.map(\.vector)
        let warnings = quality(of: vectors, joining: id, existing: existing, gallery: gallery)
        if strict && !warnings.isEmpty {
            throw ServiceError(.enrollmentQuality, "strict enrollment refused: \(warnings.count) quality warnings", details: ["warnings": .array(warnings)])
        }
        let samples = newSamples(content, images)
        let ids = try galleries.addSamples(gallery: gallery, id: id, samples: samples, actor: actor)
        return .json(201, .ordered([("id", .string(id)), ("gallery", .string(gallery)), ("samples", .array(ids.map(JSONValue.int))),
                                    ("warnings", .array(warnings)), ("model", .string(model.id))] + imagesField(images)))
    }

    /// The images of an enrollment embedded: one face per image. By default a photo must show
    /// exactly one (none or several is 422 and nothing is stored: a group photo is not
    /// guessed at); `face=largest` takes the largest. A stored sample is re-embedded from its
    /// image when the model changes, by the same rule, so no other face may be picked here.
    func embedForEnrollment(_ content: RequestContent) throws(ServiceError) -> [EmbeddedImage] {
        let choice = try faceChoice(content, field: "face", allowsSingle: true) ?? .only
        guard choice == .only || choice == .largest else {
            throw ServiceError(.invalidFace, "enrollment takes face=single (the default) or face=largest: a stored image is re-embedded by that rule when the model changes; crop a group photo to the person first")
        }
        return try embed(content.images, choosing: Array(repeating: choice, count: content.images.count))
    }

    func newSamples(_ content: RequestContent, _ images: [EmbeddedImage]) -> [NewSample] {
        zip(content.images, images).map { image, embedded in
            NewSample(image: image.bytes, width: embedded.width, height: embedded.height, contentHash: SHA256.hex(image.bytes), embedding: embedded.vector)
        }
    }

    /// Warnings for images about to join identity `id`: one nearer to another identity than to
    /// its own samples (or, with no own samples yet, within the threshold of another identity),
    /// and one farther than the threshold from every own sample (outside the identity's spread).
    func quality(of vectors: [[Float]], joining id: String, existing: [Int64: [Float]], gallery: String) -> [JSONValue] {
        var warnings = [JSONValue]()
        for (i, vector) in vectors.enumerated() {
            let own = existing.values.map { model.distance(vector, $0) }
                + vectors.indices.filter { $0 != i }.map { model.distance(vector, vectors[$0]) }
            let ownNearest = own.min()
            if let other = (try? rank(vector, gallery: gallery, k: 2))?.first(where: { $0.identity != id }) {
                if other.distance < (ownNearest ?? model.threshold.nextUp) {
                    warnings.append(.ordered([
                        ("code", .string("closer_to_other_identity")), ("image", .int(i)), ("identity", .string(other.identity)),
                        ("distance", .float(other.distance)), ("own_distance", ownNearest.map(JSONValue.float) ?? .null),
                        ("message", .string("image \(i) is closer to identity '\(other.identity)' (\(other.distance)) than to '\(id)'")),
                    ]))
                }
            }
            if let ownNearest, ownNearest > model.threshold {
                warnings.append(.ordered([
                    ("code", .string("outside_spread")), ("image", .int(i)), ("own_distance", .float(ownNearest)), ("threshold", .float(model.threshold)),
                    ("message", .string("image \(i) is farther (\(ownNearest)) than the threshold from every image of '\(id)'")),
                ]))
            }
        }
        return warnings
    }

    func listIdentities(_ request: HTTPRequest) throws(ServiceError) -> HTTPResponse {
        let content = try content(request, allowed: ["limit", "after", "gallery", "prefix"])
        let limit = try content.integer("limit") ?? 100
        guard (1...1000).contains(limit) else { throw ServiceError(.invalidLimit, "limit must be an integer in 1...1000") }
        let after = try content.string("after")
        let prefix = try content.string("prefix")
        if let prefix, prefix.unicodeScalars.count > 128 { throw ServiceError(.invalidPrefix, "prefix must be at most 128 characters") }
        let gallery = try gallery(content)
        let records = try galleries.storeCall { store throws(GalleryError) in
            try store.identities(gallery: gallery, limit: limit, after: after, prefix: prefix)
        }
        let items: [JSONValue] = records.map { r in
            .ordered([("id", .string(r.externalID)), ("name", r.displayName.map(JSONValue.string) ?? .null), ("samples", .int(r.sampleIDs.count)),
                      ("first_sample", r.sampleIDs.first.map { .int($0) } ?? .null)])
        }
        let next: JSONValue = records.count == limit ? .string(records.last!.externalID) : .null
        return .json(200, .ordered([("identities", .array(items)), ("next", next), ("gallery", .string(gallery))]))
    }

    func showIdentity(_ request: HTTPRequest, id: String) throws(ServiceError) -> HTTPResponse {
        try Self.checkIdentifier(id, as: .id)
        let gallery = try gallery(try content(request, allowed: ["gallery"]))
        let (record, samples, vectors) = try galleries.storeCall { store throws(GalleryError) in
            let record = try store.identity(gallery: gallery, externalID: id)
            return (record, try store.samples(gallery: gallery, externalID: id), try store.vectors(samples: record.sampleIDs, model: model.id))
        }
        let metadata = (try? JSONSerialization.jsonObject(with: Data(record.metadata.utf8))).map(JSONValue.init(any:)) ?? .object([:])
        return .json(200, .ordered([
            ("id", .string(id)), ("name", record.displayName.map(JSONValue.string) ?? .null), ("gallery", .string(gallery)), ("metadata", metadata),
            ("created_at", record.createdAt.map(JSONValue.string) ?? .null), ("updated_at", record.updatedAt.map(JSONValue.string) ?? .null),
            ("samples", .array(samples.map { .ordered([("id", .int($0.id)), ("sha256", .string($0.hash)), ("width", .int($0.width)), ("height", .int($0.height))]) })),
            ("spread", spread(samples.compactMap { vectors[$0.id] })),
        ]))
    }

    /// How far an identity's samples lie from each other: mean distance to their centroid and
    /// the largest pairwise distance (first 200 samples), in the model's distance.
    func spread(_ vectors: [[Float]]) -> JSONValue {
        guard vectors.count >= 2 else {
            return .ordered([("samples", .int(vectors.count)), ("mean_distance_to_centroid", .null), ("max_pairwise_distance", .null)])
        }
        var centroid = [Float](repeating: 0, count: model.dimension)
        for v in vectors { for j in 0..<model.dimension { centroid[j] += v[j] / Float(vectors.count) } }
        let toCentroid = vectors.map { model.metric.distance($0, centroid) }.reduce(0, +) / Float(vectors.count)
        let sampled = Array(vectors.prefix(200))
        var widest: Float = 0
        for a in 0..<sampled.count { for b in (a + 1)..<sampled.count { widest = max(widest, model.distance(sampled[a], sampled[b])) } }
        return .ordered([("samples", .int(vectors.count)), ("mean_distance_to_centroid", .float(toCentroid)), ("max_pairwise_distance", .float(widest))])
    }

    func deleteIdentity(_ request: HTTPRequest, id: String, actor: String) throws(ServiceError) -> HTTPResponse {
        try Self.checkIdentifier(id, as: .id)
        let gallery = try gallery(try content(request, allowed: ["gallery"]))
        let removed = try galleries.delete(gallery: gallery, id: id, actor: actor)
        return .json(200, .ordered([("deleted", .string(id)), ("gallery", .string(gallery)), ("samples", .int(removed))]))
    }

    func deleteSample(_ request: HTTPRequest, id: String, sample: String, actor: String) throws(ServiceError) -> HTTPResponse {
        try Self.checkIdentifier(id, as: .id)
        guard let sampleID = Int64(sample), sampleID > 0 else { throw ServiceError(.invalidSample, "sample must be a positive integer id") }
        let gallery = try gallery(try content(request, allowed: ["gallery"]))
        try galleries.deleteSample(gallery: gallery, id: id, sample: sampleID, actor: actor)
        return .json(200, .ordered([("deleted", .int(sampleID)), ("id", .string(id)), ("gallery", .string(gallery))]))
    }

    func modelDescription() -> JSONValue {
        let metadata = model.file.metadata
        func object(_ text: String?) -> JSONValue {
            text.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) }.map(JSONValue.init(any:)) ?? .null
        }
        return .ordered([
            ("id", .string(model.id)), ("architecture", .string(metadata.architecture.description)), ("objective", .string(metadata.objective)),
            ("metric", .string(metadata.metric.rawValue)), ("embedding_dim", .int(model.dimension)), ("input_spec", object(metadata.inputSpec)),
            ("threshold", .float(model.threshold)), ("threshold_method", metadata.thresholdMethod.map(JSONValue.string) ?? .null),
            ("calibration", object(metadata.calibration)), ("recipe", object(metadata.recipe)),
        ])
    }
}

extension JSONValue {
    /// A value from JSONSerialization's output.
    init(any value: Any) {
        switch value {
        case let n as NSNumber where n.isJSONBoolean: self = .bool(n.boolValue)
        case let n as NSNumber: self = .number(n.doubleValue)
        case let s as String: self = .string(s)
        case let a as [Any]: self = .array(a.map(JSONValue.init(any:)))
        case let o as [String: Any]: self = .object(o.mapValues(JSONValue.init(any:)))
        default: self = .null
        }
    }
}
