// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelImaging
import DoppelKernels
import DoppelModel
import DoppelNN
import Foundation

/// `doppel bench faces`: a face model's stages on real photos, each timed on its own: the
/// detector (upsampling, the tiled pyramid, the network, the windows), the landmarks, the
/// aligned chip, and the recognition network on the chips at batch 1 and at a larger batch.
/// scripts/compare/face_recognition_reference.py --time times face_recognition on the same photos.
struct FaceBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faces", abstract: "Face detection, landmarks, chips and encoding speed on photos.",
        discussion: """
            Example:
              doppel bench faces --model faces.safetensors photo.jpg --json
            """)

    @Option(help: "A face model (doppel import of dlib's three files).")
    var model: String

    @Argument(help: "Photos (PNG, JPEG, PGM/PPM), each timed on its own.")
    var photos: [String]

    @Option(help: "Faces per batch for the encoding throughput.")
    var batch: Int = 32

    @Option(help: "Seconds per measurement.")
    var seconds: Double = 2

    @Option(help: "BLAS threads (default: all cores).")
    var threads: Int?

    @Flag(help: "Print JSON.")
    var json = false

    struct Detection: Codable {
        let milliseconds: Double
        /// Where the detection's time went, in milliseconds.
        let upsample, pyramid, network, windows: Double
        /// The tiled pyramid the network runs on, rows x columns.
        let tiled: String
    }

    struct Photo: Codable {
        let photo: String
        let width, height, faces: Int
        let detection: Detection
        let landmarksMillisecondsPerFace: Double
        let chipMillisecondsPerFace: Double
        let encodeMillisecondsPerFace: Double
        let encodeFacesPerSecondBatched: Double
        /// One photo as a search or embed request costs it: detection, then every face's landmarks and chip, all faces encoded as one batch.
        let millisecondsPerPhoto: Double
    }

    struct Report: Codable {
        let model: String
        let upsample: Int
        let batch: Int
        let blasKernels: String
        let packedKernels: String
        let photos: [Photo]
    }

    func validate() throws {
        guard !photos.isEmpty else { throw ValidationError("give at least one photo") }
        guard (1...1024).contains(batch), seconds > 0 else { throw ValidationError("--batch must be 1...1024, --seconds > 0") }
    }

    func run() throws {
        if let threads { BLASThreads.set(threads) }
        let file = try ModelFile.load(path: model)
        let input = try ModelInput(file)
        guard let stage = input.faceStage else { throw ValidationError("\(model) has no face stage: doppel bench embed times it") }
        let embedder = try EmbeddingModel(file)
        // Every figure is a mean over the calls of `seconds`, after one untimed call.
        func milliseconds(_ body: () throws -> Void) throws -> Double {
            try body()
            var calls = 0
            let start = ContinuousClock.now
            repeat {
                try body()
                calls += 1
            } while ContinuousClock.now - start < .milliseconds(Int(seconds * 1000))
            let elapsed = (ContinuousClock.now - start).components
            return (Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18) * 1000 / Double(calls)
        }
        func round(_ value: Double) -> Double { (value * 100).rounded() / 100 }

        var results = [Photo]()
        for path in photos {
            let image = try ImageDecoder.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))).converted(to: .rgb)
            let faces = try stage.faces(in: image)
            guard !faces.isEmpty else { throw ValidationError("\(path): no face found, so nothing past detection to time") }
            // The detection, and the mean of its stages, over the calls after a first (which builds
            // the network for this photo's size).
            var total = FaceDetector.Timing(), calls = 0.0
            _ = try stage.detector.detect(image)
            let start = ContinuousClock.now
            repeat {
                var timing = FaceDetector.Timing()
                _ = try stage.detector.detect(image, timing: &timing)
                total.upsample += timing.upsample; total.pyramid += timing.pyramid
                total.network += timing.network; total.windows += timing.windows
                (total.tiledRows, total.tiledColumns) = (timing.tiledRows, timing.tiledColumns)
                calls += 1
            } while ContinuousClock.now - start < .milliseconds(Int(seconds * 1000))
            let share = { (seconds: Double) in round(seconds / calls * 1000) }
            let detect = (total.upsample + total.pyramid + total.network + total.windows) / calls * 1000
            let intensity = ShapePredictor.intensity(of: image)
            let landmarks = try milliseconds {
                for face in faces { _ = stage.landmarks.landmarks(intensity: intensity, width: image.width, height: image.height, box: face.box) }
            } / Double(faces.count)
            let chips = try milliseconds {
                for face in faces { _ = FaceChip(landmarks: face.landmarks, size: stage.spec.chipSize, padding: stage.spec.chipPadding).extract(from: image) }
            } / Double(faces.count)
            let tensor = input.spec.tensor(from: faces[0].chip)
            let encodeOne = try milliseconds { _ = embedder.embed(values: tensor, count: 1) }
            let batched = [Float]((0..<batch).map { _ in tensor }.joined())
            let encodeBatch = try milliseconds { _ = embedder.embed(values: batched, count: batch) }
            // The whole path a request takes: detection, then every face's landmarks and chip,
            // and all the faces through the network as one batch.
            let perPhoto = try milliseconds {
                let prepared = try input.prepare(image, choosing: .every(limit: 64))
                _ = embedder.embed(values: prepared.tensor, count: prepared.count)
            }
            results.append(Photo(
                photo: path, width: image.width, height: image.height, faces: faces.count,
                detection: Detection(milliseconds: round(detect), upsample: share(total.upsample), pyramid: share(total.pyramid),
                                     network: share(total.network), windows: share(total.windows), tiled: "\(total.tiledRows)x\(total.tiledColumns)"),
                landmarksMillisecondsPerFace: round(landmarks), chipMillisecondsPerFace: round(chips),
                encodeMillisecondsPerFace: round(encodeOne), encodeFacesPerSecondBatched: (Double(batch) * 1000 / encodeBatch).rounded(),
                millisecondsPerPhoto: round(perPhoto)))
        }
        let report = Report(model: file.metadata.modelID, upsample: stage.spec.detector.upsample, batch: batch,
                            blasKernels: BLASKernels.chosen, packedKernels: KernelLevels.packedGEMM, photos: results)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print("model \(report.model), detector upsampling \(report.upsample), kernels: \(KernelLevels.report)")
        for p in results {
            let d = p.detection
            print("\(p.photo) (\(p.width)x\(p.height), \(p.faces) faces): \(p.millisecondsPerPhoto) ms per photo")
            print("  detection \(d.milliseconds) ms: upsample \(d.upsample), pyramid \(d.pyramid), network \(d.network) on \(d.tiled), windows \(d.windows)")
            print("  per face: landmarks \(p.landmarksMillisecondsPerFace) ms, chip \(p.chipMillisecondsPerFace) ms, encoding \(p.encodeMillisecondsPerFace) ms"
                  + " (\(Int(p.encodeFacesPerSecondBatched)) faces/s at batch \(report.batch))")
        }
    }
}
