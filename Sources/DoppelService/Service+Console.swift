// SPDX-License-Identifier: MIT
import DoppelGallery
import DoppelHTTP
import DoppelImaging
import Foundation

/// The web console (one page, its script and style, compiled into the binary) and the admin
/// route that serves a stored sample's image for its thumbnails.
extension Service {
    /// The page's headers: its script and style come from this server only, nothing inline, no
    /// framing, no referrer; the API's JSON is only ever inserted as text by the script.
    static let consoleHeaders: [(String, String)] = [
        ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
            + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Cache-Control", "no-cache"),
    ]

    func addConsoleRoutes() {
        add("GET", "/v1/identities/{id}/samples/{sample}/image", access: .admin, needsReady: false) { service, request, parameters, _ in
            try service.sampleImage(request, id: parameters["id"]!, sample: parameters["sample"]!)
        }
        guard configuration.console else { return }
        for (path, type, body) in [("/", "text/html; charset=utf-8", ConsoleAssets.page),
                                   ("/console.js", "text/javascript; charset=utf-8", ConsoleAssets.script),
                                   ("/console.css", "text/css; charset=utf-8", ConsoleAssets.style),
                                   ("/favicon.svg", "image/svg+xml", ConsoleAssets.icon)] {
            let bytes = body
            add("GET", path, access: .open, needsReady: false) { _, _, _, _ in
                HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", type)] + Self.consoleHeaders), body: bytes)
            }
        }
    }

    /// `GET /v1/identities/{id}/samples/{sample}/image`: the stored bytes with their media type,
    /// or with `max_side=N` (16-1024) a PNG no larger than N pixels on its longer side, or with
    /// `format=png` the whole image as PNG (for formats browsers do not show, such as PGM).
    func sampleImage(_ request: HTTPRequest, id: String, sample: String) throws(ServiceError) -> HTTPResponse {
        try Self.checkIdentifier(id, as: .id)
        guard let sampleID = Int64(sample), sampleID > 0 else { throw ServiceError(.invalidSample, "sample must be a positive integer id") }
        let content = try content(request, allowed: ["gallery", "max_side", "format"])
        let gallery = try gallery(content)
        let maxSide = try content.integer("max_side")
        if let maxSide, !(16...1024).contains(maxSide) { throw ServiceError(.invalidMaxSide, "max_side must be an integer in 16...1024") }
        let format = try content.string("format") ?? "original"
        guard ["original", "png"].contains(format) else { throw ServiceError(.invalidFormat, "format must be original or png") }
        let stored = try galleries.storeCall { store throws(GalleryError) in try store.sampleImage(gallery: gallery, externalID: id, sample: sampleID) }
        guard let bytes = stored else {
            throw ServiceError(.imageNotStored, "sample \(sampleID) of '\(id)' was enrolled with store_images off; only its embedding is kept")
        }
        // Sample ids are never reused, so what a sample id names never changes.
        let caching = ("Cache-Control", "private, max-age=86400, immutable")
        if maxSide == nil && format == "original" {
            let type = ImageFormat.sniff(bytes)?.mimeType ?? "application/octet-stream"
            return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", type), caching]), body: bytes)
        }
        var image: Image
        do { image = try ImageDecoder.decode(bytes, limits: DecodingLimits(maxPixels: configuration.maxImagePixels)) } catch {
            throw ServiceError(.unusableImage, "the stored image cannot be decoded: \(error)")
        }
        if let maxSide, max(image.width, image.height) > maxSide {
            let scale = Double(maxSide) / Double(max(image.width, image.height))
            image = image.resized(width: max(1, Int((Double(image.width) * scale).rounded())), height: max(1, Int((Double(image.height) * scale).rounded())))
        }
        return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "image/png"), caching]), body: PNGEncoder.encode(image, compressionLevel: 3))
    }
}
