// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelImaging
import DoppelTraining
import Foundation

struct DatasetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Look at datasets before training on them.",
        subcommands: [Inspect.self, Export.self]
    )

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Count identities and images and write a contact sheet (one row per identity).",
            discussion: """
                PATH is a folder with one folder per identity (at any depth), an IDX image file \
                (labels beside it), an MNIST-style CSV, or builtin:fashion-mnist, \
                builtin:fashion-mnist:train, builtin:fashion-mnist:test, builtin:mnist-5k.
                """
        )

        @Argument(help: "The dataset.")
        var path: String

        @OptionGroup var datasetOptions: DatasetOptions

        @Option(help: "Where to write the contact sheet PNG.")
        var sheet: String = "contact-sheet.png"

        @Option(help: "Identities (rows) on the contact sheet.")
        var rows: Int = 20

        @Option(help: "Samples per row.")
        var columns: Int = 10

        @Option(help: "Seed for picking identities and samples.")
        var seed: UInt64 = 1

        @Flag(help: "Print the counts as JSON.")
        var json = false

        func validate() throws {
            guard rows > 0, columns > 0 else { throw ValidationError("--rows and --columns must be positive") }
        }

        func run() throws {
            let dataset = try datasetOptions.loader.load(path)
            let summary = DatasetSummary(dataset)
            let (image, rowNames) = ContactSheet.make(dataset, maxIdentities: rows, columns: columns, seed: seed)
            try Data(PNGEncoder.encode(image)).write(to: URL(fileURLWithPath: sheet))

            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(summary), as: UTF8.self))
                return
            }
            print("dataset      \(summary.source)")
            print("identities   \(summary.identities)")
            print("images       \(summary.images)")
            print("per identity min \(summary.minPerIdentity), median \(formatted(summary.medianPerIdentity)), max \(summary.maxPerIdentity)")
            print("image sizes  " + summary.shapes.prefix(8).map { "\($0.shape): \($0.count)" }.joined(separator: ", ")
                  + (summary.shapes.count > 8 ? ", ... (\(summary.shapes.count) sizes)" : ""))
            let skipped = dataset.skipped
            if skipped.total > 0 {
                print("skipped      \(skipped.hidden) hidden, \(skipped.notImages) not images, \(skipped.undecodable) undecodable")
                for example in skipped.examples { print("             \(example)") }
            }
            print("contact sheet \(sheet) (\(image.width)x\(image.height)); rows, top to bottom:")
            for (index, name) in rowNames.enumerated() { print(String(format: "  %3d  ", index + 1) + name) }
        }

        private func formatted(_ value: Double) -> String {
            value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write images of a dataset as PNG files, one folder per identity (the layout gallery import and train read).",
            discussion: "Folder names are the identity names made file-safe (T-shirt/top -> t-shirt-top)."
        )

        @Argument(help: "The dataset.") var path: String
        @OptionGroup var datasetOptions: DatasetOptions
        @Option(help: "Output folder.") var out: String
        @Option(help: "Images per identity.") var perIdentity: Int = 5
        @Option(help: "Skip this many images of each identity first (to take different images from the same set).") var offset: Int = 0
        @Option(parsing: .upToNextOption, help: "Only these identities (their names or file-safe names, e.g. trouser bag \"ankle-boot\").") var identities: [String] = []

        func validate() throws {
            guard perIdentity > 0, offset >= 0 else { throw ValidationError("--per-identity must be positive and --offset not negative") }
        }

        static func fileSafe(_ name: String) -> String {
            let mapped = name.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }
            return String(mapped).split(separator: "-").joined(separator: "-")
        }

        func run() throws {
            let dataset = try datasetOptions.loader.load(path)
            let wanted = Set(identities.map(Self.fileSafe))
            let unknown = wanted.subtracting(dataset.identities.map(Self.fileSafe))
            guard unknown.isEmpty else {
                throw ValidationError("no identity named \(unknown.sorted().joined(separator: ", ")) in \(path); it has \(dataset.identities.map(Self.fileSafe).joined(separator: ", "))")
            }
            var written = 0, exported = 0
            for (identity, members) in dataset.samplesByIdentity().enumerated() {
                if !wanted.isEmpty && !wanted.contains(Self.fileSafe(dataset.identities[identity])) { continue }
                exported += 1
                let folder = URL(fileURLWithPath: out).appendingPathComponent(Self.fileSafe(dataset.identities[identity]))
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                for (n, index) in members.dropFirst(offset).prefix(perIdentity).enumerated() {
                    try Data(PNGEncoder.encode(dataset.samples[index].image)).write(to: folder.appendingPathComponent("\(n + offset).png"))
                    written += 1
                }
            }
            print("wrote \(written) images of \(exported) identities to \(out)")
        }
    }
}
