// SPDX-License-Identifier: MIT
// libFuzzer target for the image decoders (PNG through libpng, JPEG through TurboJPEG, PGM/PPM
// in Swift), built by scripts/fuzz with DoppelImaging's sources. Every input must decode or
// throw; a decoded image must respect the pixel limit and convert to a model input.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImageDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let limits = DecodingLimits(maxPixels: 1 << 20)
    guard let image = try? ImageDecoder.decode(bytes, limits: limits) else { return 0 }
    precondition(image.width * image.height <= limits.maxPixels, "decoded past the pixel limit")
    let spec = InputSpec(channels: 1, height: 8, width: 8)
    precondition(spec.tensor(from: image).count == 64)
    return 0
}
