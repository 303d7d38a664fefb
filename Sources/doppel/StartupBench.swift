// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelGallery
import DoppelNN
import Foundation

/// `doppel bench startup`: how long a server takes to have its index ready, from opening the
/// gallery database to the last of N stored embeddings being searchable. Fills a SQLite
/// database with N random embeddings (N / 10 identities) the first time; with `--postgres`,
/// copies the same gallery into that PostgreSQL database (when it is empty) and times both in
/// the same run; with `--snapshot`, also times the start from an index snapshot (what a
/// restarted server does when nothing changed).
struct StartupBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "startup", abstract: "Index load time from the gallery database (SQLite, PostgreSQL) and from a snapshot.",
        discussion: """
            Examples:
              doppel bench startup --n 1000000 --dim 128
              doppel bench startup --n 1000000 --postgres 'postgresql://doppel@/bench?host=/tmp/pg' --json
              doppel bench startup --n 10000000 --precision int8 --snapshot
            """)

    @Option(help: "Stored embeddings.") var n: Int = 1_000_000
    @Option(help: "Dimension.") var dim: Int = 128
    @Option(help: "SQLite database (created and filled when empty).") var db: String = FileManager.default.temporaryDirectory.appendingPathComponent("doppel-startup.sqlite").path
    @Option(help: "A PostgreSQL URL: the same gallery is copied there when it holds none, and loaded from there too.") var postgres: String?
    @Option(help: "Folder of migrations.") var migrations: String = "Migrations"
    @Option(help: "Model id to store the embeddings under (default bench-DIM); a served model's id makes a gallery to load-test search with.") var modelId: String?
    @Option(help: "Index precision: float32, float16 or int8.") var precision: String = "float32"
    @Flag(help: "Also time the start from an index snapshot written beside the database.") var snapshot = false
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        guard let precision = IndexPrecision(rawValue: precision) else { throw ValidationError("--precision must be float32, float16 or int8") }
        let model = modelId ?? "bench-\(dim)"
        try fillSQLite(model: model)
        if let postgres { try fillPostgres(postgres, model: model) }

        var timings: [(backend: String, seconds: Double)] = []
        var indexBytes = 0
        var loadedIndexes: [String: GalleryIndex] = [:]
        for database in [db] + (postgres.map { [$0] } ?? []) {
            // Timed: open (migration check included), read every embedding, build the index, as
            // the server does at start-up.
            let start = DispatchTime.now().uptimeNanoseconds
            let store = try openGalleryStore(database: database, migrationsFolder: migrations)
            let indexes = try GalleryIndex.load(from: store, model: model, dimension: dim, metric: .euclidean, precision: precision)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            try check(indexes)
            timings.append((store.backend, seconds))
            indexBytes = indexes["default"]!.bytes
            loadedIndexes = indexes
        }
        var snapshotSeconds: Double? = nil
        if snapshot {
            let path = db + ".\(model).\(precision.rawValue).snapshot"
            let stamp = try openGalleryStore(database: db, migrationsFolder: migrations).indexStamp(model: model)
            try GalleryIndex.writeSnapshot(loadedIndexes, model: model, stamp: stamp, to: path)
            loadedIndexes = [:]
            // Timed as the server starts from one: open the store, read the stamp, map the file.
            let start = DispatchTime.now().uptimeNanoseconds
            let store = try openGalleryStore(database: db, migrationsFolder: migrations)
            let indexes = try GalleryIndex.readSnapshot(path: path, model: model, stamp: try store.indexStamp(model: model),
                                                        dimension: dim, metric: .euclidean, precision: precision).get()
            snapshotSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            try check(indexes)
        }
        if json {
            var fields = ["\"embeddings\": \(n)", "\"dimension\": \(dim)", "\"precision\": \"\(precision.rawValue)\"", "\"index_bytes\": \(indexBytes)"]
            fields += timings.map { "\"\($0.backend)_seconds\": \(String(format: "%.3f", $0.seconds))" }
            if let snapshotSeconds { fields.append("\"snapshot_seconds\": \(String(format: "%.3f", snapshotSeconds))") }
            print("{" + fields.joined(separator: ", ") + "}")
        } else {
            for timing in timings {
                print(String(format: "%d embeddings of %d floats (%@): index ready in %.2f s from %@", n, dim, precision.rawValue, timing.seconds, timing.backend))
            }
            if let snapshotSeconds { print(String(format: "from an index snapshot: %.2f s", snapshotSeconds)) }
        }
    }

    /// Every embedding loaded and searchable.
    private func check(_ indexes: [String: GalleryIndex]) throws {
        guard let index = indexes["default"], index.count == n, index.search((0..<dim).map { Float($0 % 3) }, k: 1).count == 1 else {
            throw ValidationError("the loaded index does not hold the \(n) embeddings")
        }
    }

    private func fillSQLite(model: String) throws {
        let store = try SQLiteStore(path: db, migrations: try Migrator.load(directory: migrations), storeImages: false)
        let existing = try store.stats().embeddings.first { $0.model == model }?.count ?? 0
        guard existing != n else { return }
        guard existing == 0 else { throw ValidationError("\(db) holds \(existing) embeddings of \(model); remove it or pass --n \(existing)") }
        FileHandle.standardError.write(Data("filling \(db) with \(n) embeddings...\n".utf8))
        try store.registerModel(id: model, architecture: "bench", dimension: dim, metric: "euclidean")
        var generator = SeededGenerator(seed: 5)
        try store.database.transaction {
            var identity: Int64 = 0
            for i in 0..<n {
                if i % 10 == 0 {
                    try store.database.query("INSERT INTO identities (gallery_id, external_id) VALUES (1, ?)", [.text("person\(i / 10)")])
                    identity = store.database.lastInsertedRowID
                }
                try store.database.query("INSERT INTO samples (identity_id, content_hash, width, height) VALUES (?, ?, 1, 1)",
                                         [.integer(identity), .text("h\(i)")])
                let vector = (0..<dim).map { _ in generator.nextGaussian() }
                try store.database.query("INSERT INTO embeddings (sample_id, model_id, vector) VALUES (?, ?, ?)",
                                         [.integer(store.database.lastInsertedRowID), .text(model), .bytes(vector.withUnsafeBytes { Array($0) })])
            }
        }
    }

    /// Copies the SQLite gallery's identities, samples and embeddings into PostgreSQL with
    /// binary COPY (row ids kept), in one transaction.
    private func fillPostgres(_ url: String, model: String) throws {
        let target = try PostgresStore(url: url, migrations: try Migrator.load(directory: (migrations as NSString).appendingPathComponent("postgres")), storeImages: false)
        let existing = try target.stats().embeddings.first { $0.model == model }?.count ?? 0
        guard existing != n else { return }
        guard existing == 0 else { throw ValidationError("\(PostgresStore.redacted(url)) holds \(existing) embeddings of \(model); drop them or pass --n \(existing)") }
        FileHandle.standardError.write(Data("copying the \(n) embeddings into PostgreSQL...\n".utf8))
        let source = try SQLiteStore(path: db, migrations: try Migrator.load(directory: migrations), storeImages: false)
        try target.registerModel(id: model, architecture: "bench", dimension: dim, metric: "euclidean")
        let connection = target.connection
        let identities = try source.identityNames().sorted { $0.key < $1.key }
        try connection.transaction {
            try connection.copyIn("COPY identities (id, gallery_id, external_id) FROM STDIN (FORMAT binary)") { rows in
                for (id, identity) in identities {
                    try rows.row(fields: 3)
                    rows.integer(id)
                    rows.integer(1)
                    rows.text(identity.id)
                }
            }
            // Samples, then embeddings: one COPY at a time on a connection, so two passes.
            try connection.copyIn("COPY samples (id, identity_id, content_hash, width, height) FROM STDIN (FORMAT binary)") { rows in
                try Self.forEachRow(of: source, model: model, dimension: dim) { sample, identity, _ in
                    try rows.row(fields: 5)
                    rows.integer(sample)
                    rows.integer(identity)
                    rows.text("h\(sample)")
                    rows.integer32(1)
                    rows.integer32(1)
                }
            }
            try connection.copyIn("COPY embeddings (sample_id, model_id, vector) FROM STDIN (FORMAT binary)") { rows in
                try Self.forEachRow(of: source, model: model, dimension: dim) { sample, _, vector in
                    try rows.row(fields: 3)
                    rows.integer(sample)
                    rows.text(model)
                    rows.floats(vector)
                }
            }
            // Later inserts continue after the copied ids.
            try connection.execute("""
                SELECT setval('identities_id_seq', (SELECT max(id) FROM identities));
                SELECT setval('samples_id_seq', (SELECT max(id) FROM samples));
                """)
        }
        try connection.execute("ANALYZE")
    }

    /// Each stored embedding of `model` in `store`: its sample, identity row and vector.
    private static func forEachRow(of store: SQLiteStore, model: String, dimension: Int,
                                   _ body: (Int64, Int64, UnsafeBufferPointer<Float>) throws -> Void) throws {
        var failure: Error? = nil
        try store.forEachEmbeddingChunk(model: model, dimension: dimension, rows: 65_536) { chunk in
            guard failure == nil else { return chunk }
            chunk.vectors.withUnsafeBufferPointer { vectors in
                do {
                    for r in 0..<chunk.count {
                        try body(chunk.samples[r], chunk.identities[r], UnsafeBufferPointer(rebasing: vectors[(r * dimension)..<((r + 1) * dimension)]))
                    }
                } catch {
                    failure = error
                }
            }
            var emptied = chunk
            emptied.clear()
            return emptied
        }
        if let failure { throw failure }
    }
}
