// SPDX-License-Identifier: MIT
import DoppelHTTP
import DoppelImaging
import DoppelModel
import Foundation

/// What a request carries, whichever of the three forms it came in: images (multipart file
/// parts, JSON base64 strings, or the raw body) and fields (multipart text parts, JSON
/// members, query parameters). Routes ask for what they need by name; every malformed or
/// missing thing becomes a 4xx with a JSON error naming it.
struct RequestContent {
    /// Images by field name in arrival order (`image`, `image1`, `image2`, `images`).
    private(set) var images: [(name: String, bytes: [UInt8])] = []
    private var fields: [String: Field] = [:]

    enum Field {
        case text(String)
        case json(Any)
    }

    static let imageFields: Set<String> = ["image", "image1", "image2", "images"]

    init(_ request: HTTPRequest, maxParts: Int, maxImages: Int) throws(ServiceError) {
        for (name, value) in request.query where fields[name] == nil { fields[name] = .text(value) }
        let contentType = (request.headers["content-type"] ?? "").lowercased()
        let mediaType = contentType.split(separator: ";").first.map { String($0).trimmingCharacters(in: .whitespaces) } ?? ""
        if request.body.isEmpty {
            if request.method == "POST" && request.headers["content-length"] == nil && request.headers["transfer-encoding"] == nil {
                throw ServiceError(.lengthRequired, "a POST needs a body with Content-Length or chunked encoding")
            }
            return
        }
        switch mediaType {
        case "multipart/form-data":
            try readMultipart(request, maxParts: maxParts)
        case "application/json":
            try readJSON(request.body)
        case _ where mediaType.hasPrefix("image/") || mediaType == "application/octet-stream":
            images.append(("image", request.body))
        case "":
            throw ServiceError(.unsupportedMediaType, "a body needs a Content-Type: multipart/form-data, application/json, image/* or application/octet-stream")
        default:
            throw ServiceError(.unsupportedMediaType, "Content-Type \(mediaType) is not accepted; use multipart/form-data, application/json, image/* or application/octet-stream")
        }
        guard images.count <= maxImages else {
            throw ServiceError(.tooManyImages, "\(images.count) images in one request; the limit is \(maxImages)")
        }
    }

    private mutating func readMultipart(_ request: HTTPRequest, maxParts: Int) throws(ServiceError) {
        var limits = MultipartLimits()
        limits.maxParts = maxParts
        let parts: [MultipartPart]
        do {
            parts = try MultipartParser(contentType: request.headers["content-type"] ?? "", limits: limits).parse(request.body)
        } catch {
            throw ServiceError(.invalidMultipart, error.message)
        }
        for part in parts {
            // Images by field name only: a file part under another name is a field, so a typo or a
            // stray upload is reported instead of being embedded.
            if Self.imageFields.contains(part.name) {
                images.append((part.name, part.body))
            } else {
                guard let text = String(validating: part.body, as: UTF8.self) else {
                    throw ServiceError(.invalidField, "form field \(part.name) is not UTF-8 text")
                }
                guard fields[part.name] == nil else {
                    throw ServiceError(.invalidField, "\(part.name) given twice (in the query or the form)")
                }
                fields[part.name] = .text(text)
            }
        }
    }

    private mutating func readJSON(_ body: [UInt8]) throws(ServiceError) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            throw ServiceError(.invalidJSON, "the body is not a JSON object")
        }
        for (key, value) in object.sorted(by: { $0.key < $1.key }) {
            if Self.imageFields.contains(key) {
                let strings: [Any] = key == "images" ? ((value as? [Any]) ?? [value]) : [value]
                for (i, item) in strings.enumerated() {
                    guard let text = item as? String else {
                        throw ServiceError(.invalidImage, "\(key)\(key == "images" ? "[\(i)]" : "") must be a base64 string")
                    }
                    images.append((key, try Self.base64(text, field: key)))
                }
            } else {
                // One value per field: the query and the body must not both say it.
                guard fields[key] == nil else { throw ServiceError(.invalidField, "\(key) given twice (in the query and the body)") }
                fields[key] = .json(value)
            }
        }
        // Keep image1 before image2 whatever order the JSON had.
        images.sort { Self.order($0.name) < Self.order($1.name) }
    }

    private static func order(_ name: String) -> Int { ["image": 0, "image1": 1, "image2": 2, "images": 3][name] ?? 4 }

    /// Standard base64, with or without a `data:...;base64,` prefix; whitespace tolerated.
    static func base64(_ text: String, field: String) throws(ServiceError) -> [UInt8] {
        var payload = Substring(text)
        if payload.hasPrefix("data:"), let comma = payload.firstIndex(of: ",") { payload = payload[payload.index(after: comma)...] }
        let compact = payload.filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: String(compact)) else {
            throw ServiceError(.invalidBase64, "\(field) is not valid base64")
        }
        return [UInt8](data)
    }

    // MARK: typed fields

    func string(_ name: String) throws(ServiceError) -> String? {
        switch fields[name] {
        case nil: return nil
        case .text(let s): return s
        case .json(let v):
            guard let s = v as? String else { throw ServiceError(.invalidField, "\(name) must be a string") }
            return s
        }
    }

    func number(_ name: String) throws(ServiceError) -> Double? {
        switch fields[name] {
        case nil: return nil
        case .text(let s):
            guard let d = Double(s.trimmingCharacters(in: .whitespaces)) else { throw ServiceError(.invalidField, "\(name) must be a number, got '\(s.prefix(40))'") }
            return d
        case .json(let v):
            guard let n = v as? NSNumber, !n.isJSONBoolean else { throw ServiceError(.invalidField, "\(name) must be a number") }
            return n.doubleValue
        }
    }

    func integer(_ name: String) throws(ServiceError) -> Int? {
        guard let d = try number(name) else { return nil }
        guard d.isFinite, d == d.rounded(), abs(d) < 1e15 else { throw ServiceError(.invalidField, "\(name) must be an integer") }
        return Int(d)
    }

    func bool(_ name: String) throws(ServiceError) -> Bool? {
        switch fields[name] {
        case nil: return nil
        case .text(let s):
            switch s.lowercased() {
            case "true", "1", "yes": return true
            case "false", "0", "no": return false
            default: throw ServiceError(.invalidField, "\(name) must be true or false")
            }
        case .json(let v):
            guard let n = v as? NSNumber, n.isJSONBoolean else { throw ServiceError(.invalidField, "\(name) must be true or false") }
            return n.boolValue
        }
    }

    /// A face selector (`largest`, `single`, a face's place, or a box): text as given, a JSON
    /// string or number, or a box as a JSON array of four numbers or an object with `left`,
    /// `top`, `right`, `bottom`, all as text (`FaceSelector` parses it).
    func faceSelector(_ name: String) throws(ServiceError) -> String? {
        switch fields[name] {
        case nil: return nil
        case .text(let s): return s
        case .json(let v as String): return v
        case .json(let n as NSNumber) where !n.isJSONBoolean: return "\(n)"
        case .json(let list as [NSNumber]) where list.count == 4: return list.map { "\($0)" }.joined(separator: ",")
        case .json(let box as [String: NSNumber]) where Set(box.keys) == ["left", "top", "right", "bottom"]:
            return ["left", "top", "right", "bottom"].map { "\(box[$0]!)" }.joined(separator: ",")
        default:
            throw ServiceError(.invalidFace, "\(name) must be largest, a face's number or a box (left,top,right,bottom)")
        }
    }

    /// A JSON object field, as compact JSON text (multipart sends it as text to be parsed).
    func jsonObject(_ name: String) throws(ServiceError) -> String? {
        let object: Any
        switch fields[name] {
        case nil: return nil
        case .text(let s):
            guard let parsed = try? JSONSerialization.jsonObject(with: Data(s.utf8)) else {
                throw ServiceError(.invalidField, "\(name) must be a JSON object")
            }
            object = parsed
        case .json(let v): object = v
        }
        guard object is [String: Any], let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
            throw ServiceError(.invalidField, "\(name) must be a JSON object")
        }
        guard data.count <= 16384 else { throw ServiceError(.fieldTooLarge, "\(name) is over 16384 bytes") }
        return String(decoding: data, as: UTF8.self)
    }

    /// Fields the route does not know are an error, so a typo (`treshold`) is not silently ignored.
    func rejectUnknownFields(allowed: Set<String>) throws(ServiceError) {
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw ServiceError(.unknownField, "unknown field \(unknown); this route accepts \(allowed.sorted().joined(separator: ", "))")
        }
    }
}

/// Image bytes -> the model's input tensor, with the decoder's limits, errors as 4xx.
enum ImagePreprocessor {
    static func decode(_ bytes: [UInt8], limit: Int) throws(ImageDecodingError) -> Image {
        try ImageDecoder.decode(bytes, limits: DecodingLimits(maxPixels: limit))
    }

    static func imageError(_ error: ImageDecodingError, field: String) -> ServiceError {
        if case .tooManyPixels = error { return ServiceError(.imageTooLarge, "\(field): \(error)") }
        return ServiceError(.invalidImage, "\(field): \(error)")
    }

    /// An image's network input: one tensor per face chosen (one for the whole image without
    /// a face stage), the image's size, and what the face stage found. The memory the work
    /// will hold is reserved from `budget` by the image's header before anything is decoded:
    /// an image that can never fit is 413, one that finds no room in time 503. A face model's
    /// refusals (no face, several where one was asked, a face or box not there) are 422,
    /// naming the image's field.
    static func prepare(_ bytes: [UInt8], field: String, model: ServedModel, choosing choice: FaceChoice, maxPixels: Int,
                        budget: ImageMemoryBudget, waitMilliseconds: Int) throws(ServiceError) -> (prepared: ModelInput.Prepared, width: Int, height: Int) {
        let header: ImageHeader
        do { header = try ImageHeader.read(bytes, limits: DecodingLimits(maxPixels: maxPixels)) } catch { throw imageError(error, field: field) }
        let reservation: ImageMemoryBudget.Reservation
        do {
            let needed = model.input.workingBytes(for: header)
            if let now = try budget.tryReserve(needed) {
                reservation = now
            } else {
                reservation = try HTTPServer.blocking { () throws(ImageMemoryBudget.Refusal) in try budget.reserve(needed, waitingAtMost: waitMilliseconds) }
            }
        } catch let refusal as ImageMemoryBudget.Refusal {
            switch refusal {
            case .tooLarge(let needed, let capacity):
                throw ServiceError(.imageTooLarge, "\(field): a \(header.width)x\(header.height) \(header.format.name) needs \(needed >> 20) MiB to decode and prepare, more than limits.max_decode_mb (\(capacity >> 20))")
            case .busy(let needed, _):
                throw ServiceError(.overloaded, "\(field): other images hold the image memory budget; \(needed >> 20) MiB did not free up in \(waitMilliseconds) ms, retry shortly")
            }
        } catch {
            throw ServiceError(.internalError, "\(field): \(error)")
        }
        defer { reservation.release() }
        let image: Image
        // The decoder may not make more pixels than the header that was paid for declared.
        do { image = try decode(bytes, limit: header.width * header.height) } catch { throw imageError(error, field: field) }
        do {
            return (try model.input.prepare(image, choosing: choice), image.width, image.height)
        } catch let refusal as ModelInputError {
            let size = "\(image.width)x\(image.height)"
            switch refusal {
            case .noFace:
                throw ServiceError(.noFace, "\(field): no face found in the \(size) image")
            case .multipleFaces(let count):
                throw ServiceError(.multipleFaces, "\(field): \(count) faces found in the \(size) image where one is taken; send a photo of one person, or face=largest to use the largest")
            case .noSuchFace(let index, let found):
                throw ServiceError(.noSuchFace, "\(field): face \(index) asked for, \(found) found in the \(size) image (numbered from 0, largest first)")
            case .boxOutsidePhoto:
                throw ServiceError(.boxOutsideImage, "\(field): \(refusal)")
            }
        } catch {
            throw ServiceError(.internalError, "\(field): \(error)")
        }
    }
}
