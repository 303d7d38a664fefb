// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelNN
import Foundation

/// One face found in a photo: where (the detector's box, in the photo's pixels; it may reach
/// past the edges), how sure, its landmarks, and its aligned chip, the network's input.
public struct Face: Sendable {
    public var box: FaceBox
    public var confidence: Double
    public var landmarks: [FacePoint]
    public var chip: Image

    /// The box cut to the photo, as face_recognition reports face locations.
    public func visibleBox(width: Int, height: Int) -> FaceBox { Self.visible(box, width: width, height: height) }

    /// A box cut to a `width` x `height` photo.
    public static func visible(_ box: FaceBox, width: Int, height: Int) -> FaceBox {
        FaceBox(left: max(box.left, 0), top: max(box.top, 0), right: min(box.right, Double(width - 1)), bottom: min(box.bottom, Double(height - 1)))
    }
}

/// The stage before a face model's network, in face_recognition's four steps each a type of
/// its own: detection (`FaceDetector`), landmarks (`ShapePredictor`), the aligned chip
/// (`FaceChip`); the network then embeds the chip.
public final class FaceStage: @unchecked Sendable {
    public let spec: InputSpec.FaceStage
    public let detector: FaceDetector
    public let landmarks: ShapePredictor
    /// Detection runs on the photo scaled down to at most this many pixels (area averaging),
    /// boxes mapped back; landmarks and chips come from the full photo. The detector's cost
    /// grows with the pixels (a 640 x 480 photo, upsampled once, is a 3506 x 1304 network
    /// input), so this bounds its time and memory for any photo the decoder accepts.
    public var maxDetectionPixels = FaceStage.defaultMaxDetectionPixels
    public static let defaultMaxDetectionPixels = 1_000_000

    public init(spec: InputSpec.FaceStage, detector: FaceDetector, landmarks: ShapePredictor) {
        self.spec = spec
        self.detector = detector
        self.landmarks = landmarks
    }

    static let detectorPrefix = "face.detector."
    static let landmarksPrefix = "face.landmarks."

    /// The stage a model file describes (its spec's `face` and its `face.*` tensors).
    public convenience init(spec: InputSpec.FaceStage, attachments: [(name: String, tensor: SafeTensors.Tensor)]) throws {
        var detectorTensors = [String: [Float]](), landmarkTensors = [String: SafeTensors.Tensor]()
        for (name, tensor) in attachments {
            if name.hasPrefix(Self.detectorPrefix) {
                detectorTensors[String(name.dropFirst(Self.detectorPrefix.count))] = tensor.values
            } else if name.hasPrefix(Self.landmarksPrefix) {
                landmarkTensors[String(name.dropFirst(Self.landmarksPrefix.count))] = tensor
            }
        }
        self.init(spec: spec, detector: try FaceDetector(settings: spec.detector, tensors: detectorTensors),
                  landmarks: try ShapePredictor(tensors: landmarkTensors))
    }

    /// The stage's tensors as a model file attaches them.
    public var attachments: [(name: String, tensor: SafeTensors.Tensor)] {
        detector.tensorList.map { (Self.detectorPrefix + $0.name, $0.tensor) } + landmarks.tensors.map { (Self.landmarksPrefix + $0.name, $0.tensor) }
    }

    /// Every face in a photo, largest box first, each with its landmarks and chip.
    public func faces(in photo: Image) throws -> [Face] { try faces(in: photo, limit: .max).faces }

    /// The faces in a photo, largest box first: every detection, and the first `limit` of
    /// them with their landmarks and chips (a crowd's small faces cost detection only).
    public func faces(in photo: Image, limit: Int) throws -> (detections: [FaceDetector.Detection], faces: [Face]) {
        let rgb = photo.layout == .rgb ? photo : photo.converted(to: .rgb)
        let detections = try detect(in: rgb).sorted { ($0.box.area, $0.confidence) > ($1.box.area, $1.confidence) }
        guard !detections.isEmpty, limit > 0 else { return (detections, []) }
        let intensity = ShapePredictor.intensity(of: rgb)
        return (detections, detections.prefix(limit).map { face(in: rgb, intensity: intensity, box: $0.box, confidence: $0.confidence) })
    }

    /// The face in a box the caller gives (no detection): its landmarks and chip. Its
    /// confidence is NaN, the detector having given none.
    public func face(in photo: Image, box: FaceBox) -> Face {
        let rgb = photo.layout == .rgb ? photo : photo.converted(to: .rgb)
        return face(in: rgb, intensity: ShapePredictor.intensity(of: rgb), box: box, confidence: .nan)
    }

    private func face(in rgb: Image, intensity: [UInt8], box: FaceBox, confidence: Double) -> Face {
        let points = landmarks.landmarks(intensity: intensity, width: rgb.width, height: rgb.height, box: box)
        let chip = FaceChip(landmarks: points, size: spec.chipSize, padding: spec.chipPadding).extract(from: rgb)
        return Face(box: box, confidence: confidence, landmarks: points, chip: chip)
    }
}

extension FaceStage {
    /// The scale detection runs at for a `width x height` photo (1, or less past the cap).
    func detectionScale(width: Int, height: Int) -> Double {
        let pixels = Double(width) * Double(height)
        return pixels <= Double(maxDetectionPixels) ? 1 : (Double(maxDetectionPixels) / pixels).squareRoot()
    }

    private func detect(in rgb: Image) throws -> [FaceDetector.Detection] {
        let scale = detectionScale(width: rgb.width, height: rgb.height)
        guard scale < 1 else { return try detector.detect(rgb) }
        let small = rgb.resized(width: max(1, Int(Double(rgb.width) * scale)), height: max(1, Int(Double(rgb.height) * scale)))
        let (sx, sy) = (Double(rgb.width) / Double(small.width), Double(rgb.height) / Double(small.height))
        return try detector.detect(small).map { detection in
            let b = detection.box
            return FaceDetector.Detection(box: FaceBox(left: b.left * sx, top: b.top * sy, right: b.right * sx, bottom: b.bottom * sy).rounded,
                                          confidence: detection.confidence)
        }
    }

    /// Bytes one photo's pass through the stage holds beyond the decoded photo, before the
    /// detector network runs: the RGB copy, the photo at detection scale, each upsampling
    /// (3 bytes a pixel), and the tiled pyramid as the network's Float input. The network's
    /// own activations are the model's working set (one detection runs at a time).
    public func workingBytes(width: Int, height: Int) -> Int {
        let scale = detectionScale(width: width, height: height)
        var w = max(1, Int(Double(width) * scale)), h = max(1, Int(Double(height) * scale))
        var bytes = 3 * width * height + 3 * w * h
        for _ in 0..<spec.detector.upsample {
            (w, h) = (2 * w, 2 * h)
            bytes += 3 * w * h
        }
        let pyramid = TiledPyramid(rows: h, columns: w, rate: spec.detector.pyramidRate, padding: spec.detector.padding,
                                   outerPadding: spec.detector.outerPadding)
        return bytes + 4 * 3 * pyramid.rows * pyramid.columns + width * height  // + the landmarks' intensity plane
    }
}

extension ShapePredictor {
    /// The predictor as named tensors: the initial shape, and per cascade its splits (first
    /// pixel, second pixel, threshold: [trees, splits, 3]), leaves ([trees, leaves, 2 parts]),
    /// anchors and deltas ([pixels, 2]). Indices are small integers, exact in Float.
    var tensors: [(name: String, tensor: SafeTensors.Tensor)] {
        var list = [("initial_shape", SafeTensors.Tensor(shape: [initialShape.count], values: initialShape))]
        for (i, forest) in forests.enumerated() {
            let splits = forest.first?.splits.count ?? 0
            list.append(("cascade\(i).splits", SafeTensors.Tensor(shape: [forest.count, splits, 3],
                                                                   values: forest.flatMap { $0.splits.flatMap { [Float($0.first), Float($0.second), $0.threshold] } })))
            list.append(("cascade\(i).leaves", SafeTensors.Tensor(shape: [forest.count, splits + 1, initialShape.count],
                                                                   values: forest.flatMap { $0.leaves.flatMap { $0 } })))
            list.append(("cascade\(i).anchors", SafeTensors.Tensor(shape: [anchors[i].count], values: anchors[i].map(Float.init))))
            list.append(("cascade\(i).deltas", SafeTensors.Tensor(shape: [deltas[i].count, 2], values: deltas[i].flatMap { [$0.x, $0.y] })))
        }
        return list
    }

    /// The predictor from its tensors (`tensors`), checked for shape and range.
    init(tensors: [String: SafeTensors.Tensor]) throws {
        func refuse(_ detail: String) -> DlibFormatError { .malformed(offset: 0, expected: "the landmark model's tensors", found: detail) }
        guard let initial = tensors["initial_shape"], initial.values.count >= 2, initial.values.count % 2 == 0 else { throw refuse("no initial shape") }
        let size = initial.values.count
        var forests = [[Tree]](), anchors = [[Int]](), deltas = [[(x: Float, y: Float)]]()
        var cascade = 0
        while let splits = tensors["cascade\(cascade).splits"] {
            guard let leaves = tensors["cascade\(cascade).leaves"], let anchor = tensors["cascade\(cascade).anchors"],
                  let delta = tensors["cascade\(cascade).deltas"], splits.shape.count == 3, splits.shape[2] == 3,
                  leaves.shape == [splits.shape[0], splits.shape[1] + 1, size], delta.shape == [anchor.values.count, 2] else {
                throw refuse("cascade \(cascade) is incomplete or misshapen")
            }
            let (trees, count) = (splits.shape[0], splits.shape[1])
            let pixels = anchor.values.count
            var forest = [Tree]()
            for t in 0..<trees {
                let treeSplits = (0..<count).map { s in
                    Split(first: Int(splits.values[(t * count + s) * 3]), second: Int(splits.values[(t * count + s) * 3 + 1]),
                          threshold: splits.values[(t * count + s) * 3 + 2])
                }
                guard treeSplits.allSatisfy({ $0.first >= 0 && $0.first < pixels && $0.second >= 0 && $0.second < pixels }) else {
                    throw refuse("a split in cascade \(cascade) reads past its \(pixels) pixels")
                }
                let treeLeaves = (0...count).map { l in Array(leaves.values[((t * (count + 1) + l) * size)..<((t * (count + 1) + l + 1) * size)]) }
                forest.append(Tree(splits: treeSplits, leaves: treeLeaves))
            }
            let anchorList = anchor.values.map { Int($0) }
            guard anchorList.allSatisfy({ $0 >= 0 && $0 < size / 2 }) else { throw refuse("an anchor past the \(size / 2) landmarks") }
            forests.append(forest)
            anchors.append(anchorList)
            deltas.append((0..<pixels).map { (delta.values[2 * $0], delta.values[2 * $0 + 1]) })
            cascade += 1
        }
        guard !forests.isEmpty else { throw refuse("no cascades") }
        self.init(initialShape: initial.values, forests: forests, anchors: anchors, deltas: deltas)
    }
}

extension FaceDetector {
    /// The detector network's tensors by name, in the network's order.
    var tensorList: [(name: String, tensor: SafeTensors.Tensor)] {
        tensorOrder.map { ($0.name, SafeTensors.Tensor(shape: $0.shape, values: tensorValues[$0.name]!)) }
    }
}
