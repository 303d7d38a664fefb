// SPDX-License-Identifier: MIT
// libFuzzer target for the image decoders (PNG through libpng, JPEG through TurboJPEG, PGM/PPM
// in Swift), built by scripts/fuzz with DoppelImaging's sources. Every input must decode or
// throw; a decoded image must respect the pixel limit, agree with what its header promised
// (the size the server reserves memory by), and convert to a model input in every resize mode.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImageDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let limits = DecodingLimits(maxPixels: 1 << 20)
    let header = try? ImageHeader.read(bytes, limits: limits)
    guard let image = try? ImageDecoder.decode(bytes, limits: limits) else { return 0 }
    precondition(image.width * image.height <= limits.maxPixels, "decoded past the pixel limit")
    guard let header else { preconditionFailure("decoded an image whose header could not be read") }
    precondition(header.width == image.width && header.height == image.height, "header \(header) but decoded \(image.shapeDescription)")
    precondition(header.decodingBytes >= image.pixels.count, "decoding made more than the header promised")
    for mode in [InputSpec.ResizeMode.stretch, .fit, .crop] {
        let spec = InputSpec(channels: 1, height: 8, width: 8, resize: mode)
        precondition(spec.tensor(from: image).count == 64)
    }
    return 0
}
