// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelImaging
import DoppelModel
import DoppelNN
import DoppelTraining
import Foundation

/// `doppel embed`: embeddings of image files (or of preprocessed tensors) from the command line.
struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Print the embeddings of image files, or of tensors in a .npy file.",
        discussion: """
            Images are decoded and preprocessed by the model's input spec, exactly as `doppel serve` does. \
            --npy takes tensors already preprocessed, shaped N x C x H x W as the model's input (float32), and \
            skips decoding: that is how an import is checked against another runtime on the same numbers.

            With a face model, each image's embedding is of its largest face; an image without a face \
            gets none (its JSON entry says "error": "no face found") and the others are still embedded.

            Examples:
              doppel embed --model models/fashion-closed.safetensors data/demo/queries/bag/0.png --json
              doppel embed --model models/resnet.safetensors --npy inputs.npy --out embeddings.npy
            """
    )

    @Option(help: "The model file.") var model: String
    @Argument(help: "Image files (PNG, JPEG, PGM/PPM).") var images: [String] = []
    @Option(help: "A .npy file of preprocessed input tensors (N x C x H x W, float32) instead of images.") var npy: String?
    @Option(help: "With --npy: write the embeddings (N x D) to this .npy file instead of printing them.") var out: String?
    @Option(help: "The largest image accepted, in megapixels.") var maxMegapixels: Int = 40
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard (npy == nil) != images.isEmpty else { throw ValidationError("give image files or --npy, not both or neither") }
        guard out == nil || npy != nil else { throw ValidationError("--out goes with --npy") }
    }

    func run() throws {
        let file = try ModelFile.load(path: model)
        let embedder = try EmbeddingModel(file)
        let input = try ModelInput(file)
        let spec = embedder.spec
        let count: Int, values: [Float], labels: [String]
        var withoutFace = [String]()
        if let npy {
            let array = try NumpyArray(contentsOf: npy)
            let expected = [spec.channels, spec.height, spec.width]
            guard array.shape.count == 4, Array(array.shape.dropFirst()) == expected else {
                throw ValidationError("\(npy) is \(array.shape.map(String.init).joined(separator: "x")); the model takes Nx\(expected.map(String.init).joined(separator: "x"))")
            }
            (count, values, labels) = (array.shape[0], array.values, (0..<array.shape[0]).map { "\(npy)[\($0)]" })
        } else {
            var batch = [Float]()
            batch.reserveCapacity(images.count * spec.elementCount)
            for path in images {
                guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
                let image: Image
                do { image = try ImageDecoder.decode([UInt8](data), limits: DecodingLimits(maxPixels: maxMegapixels * 1_000_000)) } catch {
                    throw ValidationError("\(path): \(error)")
                }
                do { batch += try input.prepare(image).tensor } catch ModelInputError.noFace {
                    withoutFace.append(path)
                } catch { throw ValidationError("\(path): \(error)") }
            }
            let embedded = images.filter { !withoutFace.contains($0) }
            (count, values, labels) = (embedded.count, batch, embedded)
            if !withoutFace.isEmpty {
                Terminal.standardError.line("no face found in \(withoutFace.count) of \(images.count) images: \(withoutFace.prefix(5).joined(separator: ", "))\(withoutFace.count > 5 ? ", ..." : "")")
            }
        }
        let embeddings = embedder.embed(values: values, count: count)
        let dimension = embedder.dimension
        if let out {
            try Data(NumpyArray(shape: [count, dimension], values: embeddings).serialized()).write(to: URL(fileURLWithPath: out), options: .atomic)
            Terminal.standardError.line("wrote \(count) embeddings of \(dimension) values to \(out)")
            return
        }
        if json {
            var lines = [String](), index = 0
            for label in npy == nil ? images : labels {
                if withoutFace.contains(label) {
                    lines.append("{\"image\":\(jsonString(label)),\"error\":\"no face found\"}")
                    continue
                }
                let vector = embeddings[(index * dimension)..<((index + 1) * dimension)].map { "\($0)" }.joined(separator: ",")
                lines.append("{\"image\":\(jsonString(label)),\"embedding\":[\(vector)]}")
                index += 1
            }
            print("{\"model\":\(jsonString(file.metadata.modelID)),\"dimension\":\(dimension),\"embeddings\":[\(lines.joined(separator: ","))]}")
        } else {
            for (index, label) in labels.enumerated() {
                print(label + "\t" + embeddings[(index * dimension)..<((index + 1) * dimension)].map { String(format: "%.6g", $0) }.joined(separator: " "))
            }
        }
    }

    private func jsonString(_ text: String) -> String {
        String(decoding: (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
    }
}
