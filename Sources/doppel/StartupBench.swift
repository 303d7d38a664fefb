// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelGallery
import DoppelNN
import Foundation

/// `doppel bench startup`: how long a server takes to have its index ready, from opening the
/// gallery database to the last of N stored embeddings being searchable. Fills the database
/// with N random embeddings (N / 10 identities) the first time.
struct StartupBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "startup", abstract: "Index load time from the gallery database.")

    @Option(help: "Stored embeddings.") var n: Int = 1_000_000
    @Option(help: "Dimension.") var dim: Int = 128
    @Option(help: "Database (created and filled when empty).") var db: String = FileManager.default.temporaryDirectory.appendingPathComponent("doppel-startup.sqlite").path
    @Option(help: "Folder of migrations.") var migrations: String = "Migrations"
    @Option(help: "Model id to store the embeddings under (default bench-DIM); a served model's id makes a gallery to load-test search with.") var modelId: String?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let model = modelId ?? "bench-\(dim)"
        let loaded = try Migrator.load(directory: migrations)
        do {
            let store = try SQLiteStore(path: db, migrations: loaded, storeImages: false)
            let existing = try store.stats().embeddings.first { $0.model == model }?.count ?? 0
            if existing != n {
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
                                                 [.integer(store.database.lastInsertedRowID), .text(model), .blob(vector.withUnsafeBytes { Array($0) })])
                    }
                }
            }
        }
        // Timed: open (migration check included), read every embedding, build the index, as the
        // server does at start-up.
        let start = DispatchTime.now().uptimeNanoseconds
        let store = try SQLiteStore(path: db, migrations: loaded)
        let index = try GalleryIndex.load(from: store, model: model, dimension: dim, metric: .euclidean)["default"]!
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let probe = index.search((0..<dim).map { Float($0 % 3) }, k: 1)
        precondition(index.count == n && probe.count == 1)
        if json {
            print("{\"embeddings\": \(n), \"dimension\": \(dim), \"seconds\": \(String(format: "%.3f", seconds))}")
        } else {
            print(String(format: "%d embeddings of %d floats: index ready in %.2f s", n, dim, seconds))
        }
    }
}
