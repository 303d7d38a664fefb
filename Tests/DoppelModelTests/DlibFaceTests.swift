// SPDX-License-Identifier: MIT
import DoppelImaging
@testable import DoppelModel
import DoppelNN
import Foundation
import Testing
import TestSupport

/// dlib's face models read natively against face_recognition on the same photos, stage by
/// stage (Fixtures/faces, made by scripts/compare/make_face_fixture.py): the detector's boxes,
/// the landmarks on dlib's box, the chip from dlib's landmarks, the encoding of dlib's chip,
/// and the whole pipeline end to end. The model files are cached by scripts/bootstrap.
// Serialized: the tests share the imported model, whose network is not for concurrent use
// (a forward pass packs and folds its weights in place the first time).
@Suite(.serialized, .slow) struct DlibFaceTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/faces")
    static var modelFolder: URL {
        URL(fileURLWithPath: ProcessInfo.processInfo.environment["DOPPEL_CACHE_DIR"] ?? NSHomeDirectory() + "/.cache/doppel")
            .appendingPathComponent("face-models")
    }
    static let modelFiles = ["dlib_face_recognition_resnet_model_v1.dat", "mmod_human_face_detector.dat", "shape_predictor_5_face_landmarks.dat"]

    /// The three files imported once for the suite.
    nonisolated(unsafe) static let imported: Result<ModelFile, Error> = Result {
        let paths = modelFiles.map { modelFolder.appendingPathComponent($0).path }
        for path in paths where !FileManager.default.fileExists(atPath: path) {
            throw DlibImportError(file: path, reason: "missing: scripts/bootstrap --faces (or --test) caches dlib's face models")
        }
        return try DlibImport.modelFile(paths: paths)
    }

    struct Reference: Decodable {
        struct Box: Decodable { let left, top, right, bottom: Double; let confidence: Double }
        struct FaceEntry: Decodable { let landmarks: [[Double]]; let chip: String; let encoding: [Double] }
        struct Entry: Decodable { let image: String; let boxes: [Box]; let faces: [FaceEntry] }
        let images: [Entry]
    }

    static func reference() throws -> Reference {
        try JSONDecoder().decode(Reference.self, from: Data(contentsOf: fixtures.appendingPathComponent("reference.json")))
    }

    static func image(_ name: String) throws -> Image {
        try ImageDecoder.decode([UInt8](try Data(contentsOf: fixtures.appendingPathComponent(name)))).converted(to: .rgb)
    }

    @Test func everyStageGivesWhatFaceRecognitionGives() throws {
        let file = try Self.imported.get()
        let input = try ModelInput(file)
        let stage = try #require(input.faceStage)
        let network = file.network
        for entry in try Self.reference().images {
            let photo = try Self.image(entry.image)
            // Detection: every box within IoU 0.95 of dlib's, in its order, the score to
            // float rounding of the network's sums.
            let found = try stage.detector.detect(photo)
            #expect(found.count == entry.boxes.count, "\(entry.image): \(found.count) faces, dlib \(entry.boxes.count)")
            for (box, want) in zip(found, entry.boxes) {
                let wanted = FaceBox(left: want.left, top: want.top, right: want.right, bottom: want.bottom)
                print("\(entry.image): box \(box.box) IoU \(box.box.overlap(wanted)), score \(box.confidence) against \(want.confidence)")
                #expect(box.box.overlap(wanted) >= 0.95)
                #expect(abs(box.confidence - want.confidence) < 1e-3, "a score moves the detection threshold's decisions only by rounding")
            }
            let intensity = ShapePredictor.intensity(of: photo)
            for (box, face) in zip(entry.boxes, entry.faces) {
                // Landmarks on dlib's own box: whole pixels, so within 0.5 px means equal.
                let points = stage.landmarks.landmarks(intensity: intensity, width: photo.width, height: photo.height,
                                                       box: FaceBox(left: box.left, top: box.top, right: box.right, bottom: box.bottom))
                let want = face.landmarks.map { FacePoint(x: $0[0], y: $0[1]) }
                #expect(zip(points, want).allSatisfy { abs($0.x - $1.x) <= 0.5 && abs($0.y - $1.y) <= 0.5 }, "\(entry.image): \(points) against \(want)")
                // The chip from dlib's landmarks: within one grey level of dlib's.
                let chip = FaceChip(landmarks: want, size: 150, padding: 0.25).extract(from: photo)
                let dlibChip = try Self.image(face.chip)
                let worst = zip(chip.pixels, dlibChip.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
                #expect(worst <= 1, "\(face.chip): \(worst) grey levels apart")
                // The encoding of dlib's chip: within 1e-4, and within the network's rounding.
                let encoding = Array(network.forward(input.spec.tensor(from: dlibChip), batch: 1, mode: .inference))
                let wantEncoding = face.encoding.map(Float.init)
                let difference = Double(zip(encoding, wantEncoding).map { abs($0 - $1) }.max()!)
                let bound = RoundingBound.forward(network, scale: Double(wantEncoding.map { abs($0) }.max()!))
                print("\(face.chip): max |doppel - dlib| \(difference), rounding bound \(bound)")
                #expect(difference <= 1e-4 && difference <= bound)
            }
            // End to end, the largest face: detection, landmarks, chip and network.
            if let largest = entry.boxes.indices.max(by: { Self.area(entry.boxes[$0]) < Self.area(entry.boxes[$1]) }) {
                let prepared = try input.prepare(photo)
                let encoding = Array(network.forward(prepared.tensor, batch: 1, mode: .inference))
                let difference = zip(encoding, entry.faces[largest].encoding.map(Float.init)).map { abs($0 - $1) }.max()!
                #expect(difference <= 1e-4, "\(entry.image) end to end: \(difference)")
                #expect(prepared.found.count == entry.boxes.count && prepared.indices == [0], "every face counted, the largest embedded")
            }
            // A caller's box skips detection: on dlib's own box, dlib's encoding of that face.
            for (box, face) in zip(entry.boxes, entry.faces) {
                let given = FaceBox(left: box.left, top: box.top, right: box.right, bottom: box.bottom)
                let prepared = try input.prepare(photo, choosing: .box(given))
                let encoding = Array(network.forward(prepared.tensor, batch: 1, mode: .inference))
                let difference = zip(encoding, face.encoding.map(Float.init)).map { abs($0 - $1) }.max()!
                #expect(difference <= 1e-4 && prepared.faces.first?.confidence.isNaN == true, "\(entry.image), given box: \(difference)")
            }
        }
    }

    /// A photo past `maxDetectionPixels` is detected at a bounded scale: the two-face photo
    /// enlarged 3x (bilinear) with the cap at the original's pixels is scaled back to about
    /// the original for detection, so it finds the same faces at 3x the boxes. Each box edge
    /// is a whole pixel of the detection scale, which is 3 photo pixels, and the enlargement
    /// and its reduction blur by about a pixel more: within 6 px per edge.
    @Test func largePhotosAreDetectedAtABoundedScale() throws {
        let input = try ModelInput(try Self.imported.get())
        let stage = try #require(input.faceStage)
        let photo = try Self.image("two_faces.png")
        let original = try stage.faces(in: photo)
        let enlarged = photo.resized(width: photo.width * 3, height: photo.height * 3)
        let saved = stage.maxDetectionPixels
        defer { stage.maxDetectionPixels = saved }
        stage.maxDetectionPixels = photo.width * photo.height
        #expect(stage.detectionScale(width: enlarged.width, height: enlarged.height) < 0.34)
        let found = try stage.faces(in: enlarged)
        #expect(found.count == original.count && !found.isEmpty)
        for (face, small) in zip(found, original) {
            let edges = [(face.box.left, small.box.left), (face.box.top, small.box.top), (face.box.right, small.box.right), (face.box.bottom, small.box.bottom)]
            #expect(edges.allSatisfy { abs($0 - 3 * $1) <= 6 }, "\(face.box) against 3 x \(small.box)")
        }
    }

    static func area(_ box: Reference.Box) -> Double { (box.right - box.left + 1) * (box.bottom - box.top + 1) }

    @Test func theModelFileKeepsTheFaceStage() throws {
        var file = try Self.imported.get()
        let bytes = file.serialized()
        let loaded = try ModelFile.load(bytes: bytes)
        #expect(loaded.metadata.modelID == file.metadata.modelID && loaded.attachments.count == file.attachments.count)
        let stage = try #require(try ModelInput(loaded).faceStage)
        #expect(stage.spec.detector.upsample == 1 && stage.spec.chipSize == 150 && stage.landmarks.parts == 5)
        #expect(try DecisionRule(loaded).threshold == 0.6)
        let photo = try Self.image("s1_1.pgm")
        let (before, after) = (try ModelInput(file).prepare(photo), try ModelInput(loaded).prepare(photo))
        #expect(before.tensor == after.tensor && before.faces.map(\.box) == after.faces.map(\.box))
        // A photo without a face is said to be one.
        #expect(throws: ModelInputError.noFace) { try ModelInput(loaded).prepare(Image(width: 120, height: 90, layout: .rgb, filledWith: 128)) }
    }
}

/// dlib's wire types and the refusals, on bytes made here.
@Suite struct DlibReaderTests {
    /// dlib's integer encoding: a control byte (sign 0x80, length) and the magnitude's bytes.
    static func integer(_ value: Int) -> [UInt8] {
        var magnitude = UInt64(value.magnitude), bytes = [UInt8]()
        repeat {
            bytes.append(UInt8(magnitude & 0xFF))
            magnitude >>= 8
        } while magnitude != 0
        return [UInt8(bytes.count) | (value < 0 ? 0x80 : 0)] + bytes
    }
    static func string(_ text: String) -> [UInt8] { integer(text.utf8.count) + Array(text.utf8) }
    static func float(_ value: Float) -> [UInt8] {
        let exponent = value == 0 ? 0 : Int(value.exponent) - 23
        return integer(Int(value.significand * Float(1 << 23)) * (value < 0 ? -1 : 1)) + integer(exponent)
    }

    @Test func wireTypesReadBack() throws {
        var reader = DlibReader(bytes: Self.integer(0) + Self.integer(-300) + Self.integer(70000) + Self.string("con_4")
                                + Self.float(0.5) + Self.float(-122.782) + [0x31, 0x30] + [0x01, 0x00, 0x02, 0x00, 0x7D])
        #expect(try reader.integer("a") == 0 && reader.integer("b") == -300 && reader.unsigned("c") == 70000)
        #expect(try reader.string("d") == "con_4")
        #expect(try reader.float("e") == 0.5 && Float(reader.float("f")) == -122.782)
        #expect(try reader.bool("g") == true && reader.bool("h") == false)
        #expect(try reader.float("inf") == .infinity)
        #expect(reader.isAtEnd)
    }

    @Test func damagedInputIsRefusedWithItsOffset() {
        var truncated = DlibReader(bytes: [0x04, 0x01, 0x02])
        #expect(throws: DlibFormatError.truncated(offset: 1, expected: "x")) { try truncated.integer("x") }
        var badBool = DlibReader(bytes: [0x32])
        #expect(throws: DlibFormatError.self) { try badBool.bool("flag") }
        var negative = DlibReader(bytes: Self.integer(-1))
        #expect(throws: DlibFormatError.self) { try negative.unsigned("count") }
    }

    /// A network with a layer Doppel does not read: refused with that layer's name.
    @Test func anUnsupportedLayerIsNamed() {
        var bytes = Self.integer(1) + Self.string("loss_metric_2") + Self.float(0.04) + Self.float(0.6)
        bytes += Self.integer(3)  // one add_layer, on the input
        bytes += Self.string("input_rgb_image_sized") + Self.float(122) + Self.float(117) + Self.float(104) + Self.integer(150) + Self.integer(150)
        bytes += Self.string("mystery_") + [0, 0, 0, 0]
        #expect { try DlibNetwork(bytes: bytes) } throws: {
            guard case DlibFormatError.unsupportedLayer(let name, _, let supported) = $0 else { return false }
            return name == "mystery_" && supported.contains("con_4")
        }
    }
}
