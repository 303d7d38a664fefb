// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelModel
import Foundation

/// Photos with zero, one or many faces, for a model with a face stage: which faces a request
/// wants (the `face`, `face1`, `face2` fields), embedding the chosen faces of all its images
/// in one job for the batcher, and how the answers describe the faces.
extension Service {
    /// One image of a request, embedded: its field, size, what the face stage found and the
    /// embeddings of the faces chosen (the whole image's one for a model without a stage).
    struct EmbeddedImage {
        let name: String
        let width: Int, height: Int
        let prepared: ModelInput.Prepared
        var vectors: [[Float]]
        /// The vector of the first face chosen (the largest unless the caller picked one).
        var vector: [Float] { vectors[0] }
    }

    /// The images' chosen faces embedded, in order, in one job for the batcher (the faces of
    /// one photo, and of all the request's photos, go through the network together).
    func embed(_ images: [(name: String, bytes: [UInt8])], choosing choices: [FaceChoice]) throws(ServiceError) -> [EmbeddedImage] {
        precondition(choices.count == images.count)
        var values = [Float](), embedded = [EmbeddedImage]()
        for ((name, bytes), choice) in zip(images, choices) {
            let (prepared, width, height) = try ImagePreprocessor.prepare(bytes, field: name, model: model, choosing: choice, maxPixels: configuration.maxImagePixels,
                                                                          budget: imageBudget, waitMilliseconds: configuration.decodeWaitMilliseconds)
            values += prepared.tensor
            embedded.append(EmbeddedImage(name: name, width: width, height: height, prepared: prepared, vectors: []))
        }
        let total = embedded.reduce(0) { $0 + $1.prepared.count }
        let flat = embedder.embed(values, count: total)
        let d = model.dimension
        var next = 0
        for i in embedded.indices {
            embedded[i].vectors = (0..<embedded[i].prepared.count).map { j in Array(flat[((next + j) * d)..<((next + j + 1) * d)]) }
            next += embedded[i].prepared.count
        }
        return embedded
    }

    /// The embeddings of whole images or their largest faces (enrollment's `face=largest`
    /// and the routes that compare one face per image by default).
    func embedLargest(_ images: [(name: String, bytes: [UInt8])]) throws(ServiceError) -> [EmbeddedImage] {
        try embed(images, choosing: Array(repeating: .largest, count: images.count))
    }

    // MARK: which faces

    /// The face a field names: `largest`, `single` (exactly one, where `allowsSingle`), a
    /// face's place among those found (0 the largest), or a box `left,top,right,bottom` in the
    /// image's pixels, which skips detection. Nil when the field is absent. A model without a
    /// face stage refuses the field, so a caller never believes it picked a face.
    func faceChoice(_ content: RequestContent, field: String, allowsSingle: Bool = false) throws(ServiceError) -> FaceChoice? {
        guard let text = try content.faceSelector(field)?.trimmingCharacters(in: .whitespaces) else { return nil }
        guard model.findsFaces else {
            throw ServiceError(.invalidFace, "\(field) applies to a model with a face stage; model \(model.id) embeds whole images")
        }
        let expected = "\(field) must be largest\(allowsSingle ? ", single" : ""), a face's number (0 is the largest) or a box left,top,right,bottom"
        switch text.lowercased() {
        case "largest": return .largest
        case "single" where allowsSingle: return .only
        default: break
        }
        if let index = Int(text) {
            guard index >= 0 && index < 10_000 else { throw ServiceError(.invalidFace, expected) }
            return .index(index)
        }
        let sides = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard sides.count == 4, let left = sides[0], let top = sides[1], let right = sides[2], let bottom = sides[3],
              [left, top, right, bottom].allSatisfy({ $0.isFinite && abs($0) < 1e6 }) else {
            throw ServiceError(.invalidFace, expected)
        }
        guard right > left, bottom > top else {
            throw ServiceError(.invalidFace, "\(field): a box's right must exceed its left and its bottom its top")
        }
        return .box(FaceBox(left: left.rounded(), top: top.rounded(), right: right.rounded(), bottom: bottom.rounded()))
    }

    /// `max_faces`: how many faces of a photo a search or embed answers for (the rest are
    /// counted), 1 to `limits.max_faces`.
    func maxFaces(_ content: RequestContent) throws(ServiceError) -> Int {
        guard let asked = try content.integer("max_faces") else { return configuration.maxFaces }
        guard model.findsFaces else {
            throw ServiceError(.invalidField, "max_faces applies to a model with a face stage; model \(model.id) embeds whole images")
        }
        guard (1...configuration.maxFaces).contains(asked) else {
            throw ServiceError(.invalidField, "max_faces must be an integer in 1...\(configuration.maxFaces) (limits.max_faces)")
        }
        return asked
    }

    // MARK: describing faces

    /// One face: its place among those found, its box cut to the image (in pixels, dlib's
    /// inclusive corners), the detector's score (null for a caller's box), and its five
    /// landmarks when asked for.
    func faceFields(_ image: EmbeddedImage, chosen position: Int, landmarks: Bool) -> [(String, JSONValue)] {
        let face = image.prepared.faces[position]
        var fields = [("face", JSONValue.int(image.prepared.indices[position]))] + Self.boxFields(face.box, confidence: face.confidence, image: image)
        if landmarks { fields.append(("landmarks", .array(face.landmarks.map { .array([.number($0.x.rounded()), .number($0.y.rounded())]) }))) }
        return fields
    }

    static func boxFields(_ box: FaceBox, confidence: Double, image: EmbeddedImage) -> [(String, JSONValue)] {
        let visible = Face.visible(box, width: image.width, height: image.height)
        return [("box", .ordered([("left", .int(Int(visible.left))), ("top", .int(Int(visible.top))), ("right", .int(Int(visible.right))),
                                  ("bottom", .int(Int(visible.bottom)))])),
                ("confidence", confidence.isNaN ? .null : .number(confidence))]
    }

    /// What the face stage did with each image of a request that uses one face per image
    /// (verify, enrollment): faces found, the one used, and the boxes of the first
    /// `limits.max_faces` found. Empty for a model without a face stage.
    func imagesField(_ images: [EmbeddedImage]) -> [(String, JSONValue)] {
        guard model.findsFaces else { return [] }
        return [("images", .array(images.map { image in
            .ordered([("image", .string(image.name)), ("found", .int(image.prepared.found.count)), ("used", .int(image.prepared.indices[0])),
                      ("faces", .array(image.prepared.found.prefix(configuration.maxFaces).enumerated().map { place, detection in
                          .ordered([("face", .int(place))] + Self.boxFields(detection.box, confidence: detection.confidence, image: image))
                      }))])
        }))]
    }

    /// The count fields of a per-face answer (search, embed): faces found, the cap, and
    /// whether faces were left out by it (only when every face was asked for).
    func faceCountFields(_ image: EmbeddedImage, choice: FaceChoice, maxFaces: Int) -> [(String, JSONValue)] {
        guard model.findsFaces else { return [] }
        let truncated = choice == .every(limit: maxFaces) && image.prepared.found.count > maxFaces
        return [("faces_found", .int(image.prepared.found.count)), ("max_faces", .int(maxFaces)), ("faces_truncated", .bool(truncated))]
    }
}
