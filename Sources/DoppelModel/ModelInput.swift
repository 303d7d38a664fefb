// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelNN
import Foundation

/// Why an image gives a model no input.
public enum ModelInputError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The model's face stage found no face in it.
    case noFace
    /// Exactly one face was asked for (`FaceChoice.only`) and the stage found these many.
    case multipleFaces(Int)
    /// The face asked for by its place (largest first, from 0) is not among those found.
    case noSuchFace(index: Int, found: Int)
    /// The caller's box does not overlap the photo, or has no area.
    case boxOutsidePhoto(FaceBox, width: Int, height: Int)

    public var description: String {
        switch self {
        case .noFace: "no face found"
        case .multipleFaces(let count): "\(count) faces found where one was expected"
        case .noSuchFace(let index, let found): "face \(index) asked for, \(found) found (numbered from 0, largest first)"
        case .boxOutsidePhoto(let box, let width, let height):
            "the box \(Int(box.left)),\(Int(box.top)),\(Int(box.right)),\(Int(box.bottom)) does not overlap the \(width)x\(height) photo"
        }
    }
}

/// Which faces of a photo a model with a face stage embeds.
public enum FaceChoice: Sendable, Equatable {
    /// Every face found, largest first, at most this many (the rest only counted).
    case every(limit: Int)
    /// The largest face, however many there are.
    case largest
    /// Exactly one face: a photo with none or several is refused.
    case only
    /// The face at this place, largest first, from 0.
    case index(Int)
    /// The face in this box, in the photo's pixels: no detection, landmarks and chip from it.
    case box(FaceBox)
}

/// How an image becomes a model's network input, the one path `serve`, `eval`, `embed`,
/// `calibrate` and `gallery import` / `reindex` share: the whole image by the input spec, or,
/// for a model with a face stage, the chip of the largest face found in it. Thread-safe.
public struct ModelInput: Sendable {
    public let spec: InputSpec
    public let faceStage: FaceStage?

    public init(spec: InputSpec, faceStage: FaceStage?) {
        self.spec = spec
        self.faceStage = faceStage
    }

    /// The input a model file describes (its spec, and its face stage when it has one).
    public init(_ file: ModelFile) throws {
        let spec = try file.inputSpec()
        self.init(spec: spec, faceStage: try spec.face.map { try FaceStage(spec: $0, attachments: file.attachments) })
    }

    /// An image's network input: one tensor per face chosen, laid out one after another (one
    /// for the whole image without a face stage), the faces they came from with their places
    /// among those found (largest first), and every face found (a caller's box is the one).
    public struct Prepared: Sendable {
        public var tensor: [Float]
        public var faces: [Face]
        public var indices: [Int]
        public var found: [FaceDetector.Detection]
        /// Inputs in `tensor`: the faces chosen, or 1 for the whole image.
        public var count: Int { indices.isEmpty ? 1 : indices.count }
    }

    /// Bytes preparing an image with this header holds at its peak, from decoding to the
    /// tensor: what a server reserves before decoding. A face stage's chips are counted at
    /// 64, the most faces a server answers for in one photo (`limits.max_faces`; a chip is
    /// 150 x 150, 67 KB, small beside the pyramid); the detector network's activations are the
    /// model's own working set, one detection at a time.
    public func workingBytes(for header: ImageHeader) -> Int {
        let decoding = header.decodingBytes
        guard let faceStage else { return decoding + spec.preprocessingBytes(width: header.width, height: header.height) }
        let chips = 64 * faceStage.spec.chipSize * faceStage.spec.chipSize * 3
        return decoding + faceStage.workingBytes(width: header.width, height: header.height) + chips
            + spec.preprocessingBytes(width: faceStage.spec.chipSize, height: faceStage.spec.chipSize)
    }

    /// The input of an image's largest face (or of the whole image without a face stage).
    public func prepare(_ image: Image) throws -> Prepared { try prepare(image, choosing: .largest) }

    /// The inputs of the faces chosen in an image, or of the whole image without a face stage
    /// (the choice then does not apply). Throws `ModelInputError` when the choice cannot be met.
    public func prepare(_ image: Image, choosing choice: FaceChoice) throws -> Prepared {
        guard let faceStage else { return Prepared(tensor: spec.tensor(from: image), faces: [], indices: [], found: []) }
        let found: [FaceDetector.Detection], chosen: [(index: Int, face: Face)]
        switch choice {
        case .box(let box):
            guard box.width > 0, box.height > 0, box.right >= 0, box.bottom >= 0, box.left < Double(image.width), box.top < Double(image.height) else {
                throw ModelInputError.boxOutsidePhoto(box, width: image.width, height: image.height)
            }
            let face = faceStage.face(in: image, box: box)
            (found, chosen) = ([FaceDetector.Detection(box: box, confidence: face.confidence)], [(0, face)])
        case .every(let limit):
            let faces = try faceStage.faces(in: image, limit: limit)
            (found, chosen) = (faces.detections, Array(faces.faces.enumerated().map { ($0.offset, $0.element) }))
        case .largest:
            let faces = try faceStage.faces(in: image, limit: 1)
            (found, chosen) = (faces.detections, faces.faces.map { (0, $0) })
        case .only:
            let faces = try faceStage.faces(in: image, limit: 1)
            guard faces.detections.count <= 1 else { throw ModelInputError.multipleFaces(faces.detections.count) }
            (found, chosen) = (faces.detections, faces.faces.map { (0, $0) })
        case .index(let index):
            let faces = try faceStage.faces(in: image, limit: index + 1)
            guard faces.detections.isEmpty || index < faces.detections.count else {
                throw ModelInputError.noSuchFace(index: index, found: faces.detections.count)
            }
            (found, chosen) = (faces.detections, faces.faces.count > index ? [(index, faces.faces[index])] : [])
        }
        guard !found.isEmpty else { throw ModelInputError.noFace }
        var tensor = [Float]()
        tensor.reserveCapacity(chosen.count * spec.elementCount)
        for (_, face) in chosen { tensor += spec.tensor(from: face.chip) }
        return Prepared(tensor: tensor, faces: chosen.map(\.face), indices: chosen.map(\.index), found: found)
    }
}
