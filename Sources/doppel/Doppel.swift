// SPDX-License-Identifier: MIT
// The `doppel` executable: one thin command per file over the library targets, so tests call
// the libraries and the CLI only parses, prints and exits.
import ArgumentParser

@main
struct Doppel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doppel",
        abstract: "Train Siamese embedders, keep a gallery of identities, answer verify and search.",
        version: "0.1.0",
        subcommands: [TrainCommand.self, EvalCommand.self, CalibrateCommand.self, ImportCommand.self, EmbedCommand.self, ServeCommand.self, GalleryCommand.self, DatasetCommand.self, BenchCommand.self]
    )

    static func main() {
        BLASKernelSelection.useTheFastestKernels()
        main(nil)
    }
}
