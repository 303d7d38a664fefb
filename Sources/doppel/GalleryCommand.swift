// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelGallery
import DoppelImaging
import DoppelModel
import DoppelNN
import DoppelService
import DoppelTraining
import Foundation

/// Where the gallery lives and which schema it uses; shared by the gallery subcommands.
struct GalleryOptions: ParsableArguments {
    @Option(help: "The gallery database: a SQLite file, or a postgres:// URL (password from the URL, PGPASSWORD or ~/.pgpass).") var db: String = "data/gallery.sqlite"
    @Option(help: "Folder of NNNN_name.sql migrations (default: ./Migrations, then /usr/share/doppel/Migrations).") var migrations: String?
    @Option(help: "Gallery (collection) name.") var gallery: String = "default"

    func open() throws -> GalleryStore {
        let candidates = migrations.map { [$0] } ?? ["Migrations", "/usr/share/doppel/Migrations"]
        guard let directory = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw ValidationError("no migrations folder at \(candidates.joined(separator: " or ")); give --migrations")
        }
        return try openGalleryStore(database: db, migrationsFolder: directory)
    }
}

struct GalleryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gallery",
        abstract: "Enrol and inspect identities offline.",
        discussion: """
            Examples:
              doppel gallery import people/ --model faces.safetensors  # a folder each
              doppel gallery stats
              doppel gallery list --limit 20
              doppel gallery reindex --model new.safetensors   # before serving it
              doppel gallery stats --db 'postgres://doppel@db/gallery'
            """,
        subcommands: [Import.self, List.self, Stats.self, Export.self, Reindex.self]
    )

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enrol a folder with one folder per identity, embedding every image with a model.",
            discussion: "One transaction per identity; an identity already in the gallery is skipped, so re-running after an interruption resumes. Prints `imported ID` once each identity is on disk."
        )
        @Argument(help: "Folder with one folder per identity.") var folder: String
        @Option(help: "The model that embeds the images.") var model: String
        @Option(help: "For a face model: single (a photo must show exactly one face, as the API's enrollment takes it) or largest.")
        var face: FacePolicy = .single
        @OptionGroup var options: GalleryOptions

        enum FacePolicy: String, ExpressibleByArgument {
            case single, largest
        }

        func run() throws {
            let file = try ModelFile.load(path: model)
            let embedder = try EmbeddingModel(file)
            let store = try options.open()
            try store.registerModel(id: file.metadata.modelID, architecture: file.network.architecture.description,
                                    dimension: embedder.dimension, metric: file.metadata.metric.rawValue)
            let input = try ModelInput(file)
            let dataset = try DatasetLoader().load(folder)
            let groups = dataset.samplesByIdentity()
            var imported = 0, skipped = 0
            for (identity, members) in groups.enumerated() {
                let name = dataset.identities[identity]
                if try store.hasIdentity(gallery: options.gallery, externalID: name) {
                    skipped += 1
                    continue
                }
                var images = [Dataset.Sample](), values = [Float]()
                for sample in members.map({ dataset.samples[$0] }) {
                    do {
                        values += try input.prepare(sample.image, choosing: face == .single ? .only : .largest).tensor
                        images.append(sample)
                    } catch ModelInputError.multipleFaces(let count) {
                        FileHandle.standardError.write(Data("\(sample.origin): \(count) faces found where one is taken (--face largest takes the largest), not enrolled\n".utf8))
                    } catch {
                        // Reported, not enrolled: the rest of the identity is.
                        FileHandle.standardError.write(Data("\(sample.origin): \(error), not enrolled\n".utf8))
                    }
                }
                guard !images.isEmpty else { continue }
                let embeddings = embedder.embed(values: values, count: images.count)
                let samples = try images.enumerated().map { index, sample in
                    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder).appendingPathComponent(sample.origin)))
                    return NewSample(image: bytes, width: sample.image.width, height: sample.image.height, contentHash: SHA256.hex(bytes),
                                     embedding: Array(embeddings[(index * embedder.dimension)..<((index + 1) * embedder.dimension)]))
                }
                try store.createIdentity(gallery: options.gallery, externalID: name, samples: samples, model: file.metadata.modelID, actor: "cli")
                imported += 1
                // Printed only after the transaction committed: a line here is a promise.
                FileHandle.standardOutput.write(Data("imported \(name)\n".utf8))
            }
            FileHandle.standardError.write(Data("gallery \(options.gallery): \(imported) identities imported, \(skipped) already present\n".utf8))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List identities, a page at a time.")
        @Option(help: "Page size.") var limit: Int = 100
        @Option(help: "List identities after this id.") var after: String?
        @OptionGroup var options: GalleryOptions

        func run() throws {
            for identity in try options.open().identities(gallery: options.gallery, limit: limit, after: after) {
                print("\(identity.externalID)\t\(identity.sampleIDs.count) samples\(identity.displayName.map { "\t\($0)" } ?? "")")
            }
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Counts per gallery and embeddings per model.")
        @OptionGroup var options: GalleryOptions

        func run() throws {
            let store = try options.open()
            let stats = try store.stats()
            for g in stats.galleries { print("gallery \(g.name): \(g.identities) identities, \(g.samples) samples") }
            for e in stats.embeddings { print("model \(e.model): \(e.count) embeddings") }
            print("integrity: \(try store.integrityCheck())")
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every identity of a gallery as JSON lines (without image bytes).")
        @OptionGroup var options: GalleryOptions

        struct Line: Encodable {
            struct Sample: Encodable { let id: Int64; let sha256: String; let width: Int; let height: Int }
            let gallery: String, id: String, name: String?, metadata: String, samples: [Sample]
        }

        func run() throws {
            let store = try options.open()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            var after: String? = nil
            while true {
                let page = try store.identities(gallery: options.gallery, limit: 500, after: after)
                for identity in page {
                    let samples = try store.samples(gallery: options.gallery, externalID: identity.externalID)
                        .map { Line.Sample(id: $0.id, sha256: $0.hash, width: $0.width, height: $0.height) }
                    let line = Line(gallery: options.gallery, id: identity.externalID, name: identity.displayName, metadata: identity.metadata, samples: samples)
                    FileHandle.standardOutput.write(try encoder.encode(line) + Data("\n".utf8))
                }
                guard let last = page.last else { break }
                after = last.externalID
            }
        }
    }

    struct Reindex: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Embed every stored image with a model the gallery has not indexed (resumable; progress on stderr)."
        )
        @Option(help: "The new model.") var model: String
        @Option(help: "Images per transaction.") var batch: Int = 256
        @OptionGroup var options: GalleryOptions

        func run() throws {
            let file = try ModelFile.load(path: model)
            let embedder = try EmbeddingModel(file)
            let input = try ModelInput(file)
            let store = try options.open()
            let id = file.metadata.modelID
            try store.registerModel(id: id, architecture: file.network.architecture.description, dimension: embedder.dimension,
                                    metric: file.metadata.metric.rawValue)
            var reembedding = Reembedding(store: store, modelID: id, input: input, dimension: embedder.dimension) { values, count in
                embedder.embed(values: values, count: count)
            }
            reembedding.batch = max(1, batch)
            let outcome = try reembedding.run { FileHandle.standardError.write(Data("reindex: \($0)\n".utf8)) }
            let missing = try store.samplesWithoutImages(missing: id)
            print("reindexed \(outcome.embedded) images with model \(id); \(outcome.skipped) undecodable or without a face; \(missing) samples have no stored image")
        }
    }
}
