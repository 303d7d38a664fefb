// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelNN
import Foundation

/// Why an image gives a model no input.
public enum ModelInputError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The model's face stage found no face in it.
    case noFace

    public var description: String {
        switch self {
        case .noFace: "no face found"
        }
    }
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

    /// An image's network input, with every face the stage found (largest first; the first
    /// is the one embedded), none without a stage.
    public struct Prepared: Sendable {
        public var tensor: [Float]
        public var faces: [Face]
    }

    /// Bytes preparing an image with this header holds at its peak, from decoding to the
    /// tensor: what a server reserves before decoding. A face stage's chips are counted at
    /// the most faces a photo can yield in practice (their chips are 150 x 150, 67 KB each,
    /// small beside the pyramid); the detector network's activations are the model's own
    /// working set, one detection at a time.
    public func workingBytes(for header: ImageHeader) -> Int {
        let decoding = header.decodingBytes
        guard let faceStage else { return decoding + spec.preprocessingBytes(width: header.width, height: header.height) }
        let chips = 64 * faceStage.spec.chipSize * faceStage.spec.chipSize * 3
        return decoding + faceStage.workingBytes(width: header.width, height: header.height) + chips
            + spec.preprocessingBytes(width: faceStage.spec.chipSize, height: faceStage.spec.chipSize)
    }

    public func prepare(_ image: Image) throws -> Prepared {
        guard let faceStage else { return Prepared(tensor: spec.tensor(from: image), faces: []) }
        let faces = try faceStage.faces(in: image)
        guard let largest = faces.first else { throw ModelInputError.noFace }
        return Prepared(tensor: spec.tensor(from: largest.chip), faces: faces)
    }
}
