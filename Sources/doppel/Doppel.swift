// SPDX-License-Identifier: MIT
// The `doppel` executable: one thin command per file over the library targets, so tests call
// the libraries and the CLI only parses, prints and exits.
import ArgumentParser
import DoppelKernels
import DoppelNN
import Foundation

@main
struct Doppel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doppel",
        abstract: "Train Siamese embedders, keep a gallery of identities, answer verify and search.",
        discussion: """
            Doppel answers "are these two images the same identity?" and "who in my gallery does this image look like?" over HTTP, from a model it trains on your images or one you bring as ONNX. Start with scripts/demo in the repository; the docs/ folder has the rest.

            Examples:
              doppel train --preset faces --data photos/ --out faces.safetensors
              doppel eval --model faces.safetensors
              doppel gallery import people/ --model faces.safetensors
              doppel serve --model faces.safetensors   # console: http://127.0.0.1:8080/
              doppel import arcface.onnx --out arcface.safetensors --input 3x112x112
            """,
        version: "0.1.0",
        subcommands: [TrainCommand.self, EvalCommand.self, CalibrateCommand.self, ImportCommand.self, EmbedCommand.self, ServeCommand.self, GalleryCommand.self, DatasetCommand.self, BenchCommand.self]
    )

    static func main() {
        BLASKernelSelection.useTheFastestKernels()
        if let asked = ProcessInfo.processInfo.environment["DOPPEL_KERNELS"], !KernelLevels.names.contains(asked) {
            FileHandle.standardError.write(Data("doppel: DOPPEL_KERNELS=\(asked) is not one of \(KernelLevels.names.joined(separator: ", ")); using auto\n".utf8))
        }
        main(nil)
    }
}
