// SPDX-License-Identifier: MIT

/// How any decoded image becomes a model's input tensor. It travels in the model file's
/// metadata, so training and serving preprocess identically.
public struct InputSpec: Codable, Sendable, Equatable, CustomStringConvertible {
    /// How the image's aspect ratio is reconciled with the model's.
    public enum ResizeMode: String, Codable, Sendable, CaseIterable {
        /// Scale each axis independently to the target size.
        case stretch
        /// Scale to fit inside the target, keeping the aspect ratio (letterbox), and pad with
        /// `pad` (black unless set; white when `invert` is set and `pad` is not).
        case fit
        /// Scale to cover the target, keeping the aspect ratio, and cut the centre.
        case crop
    }

    /// 1 (gray) or 3 (RGB).
    public var channels: Int
    public var height: Int
    public var width: Int
    public var resize: ResizeMode
    /// Map dark-on-light to light-on-dark (Omniglot strokes, signatures) so ink is the signal.
    public var invert: Bool
    /// Per-channel mean and standard deviation applied after scaling samples to 0...1.
    public var mean: [Float]
    public var std: [Float]
    /// The order a 3-channel model reads colours in: RGB (nil, the default) or BGR (models
    /// from OpenCV pipelines, InsightFace). Optional so older model files decode unchanged.
    public var channelOrder: ChannelOrder?

    public enum ChannelOrder: String, Codable, Sendable, CaseIterable {
        case rgb, bgr
    }

    /// Test-time augmentation: embed each image and its mirror image (flipped left to right)
    /// and average the two, in every path that embeds (serve, eval, gallery import and
    /// reindex, embed). For classes that look alike mirrored (faces); not for characters.
    /// Optional so older model files decode unchanged.
    public var mirrorAverage: Bool?

    /// Test-time augmentation: also embed copies moved this many pixels up, down, left and
    /// right (the edge rows and columns repeated), of the image and of its mirror when
    /// `mirrorAverage` is set, and average them all, in every path that embeds. Optional so
    /// older model files decode unchanged.
    public var shiftAverage: Int?

    /// How pixels are resampled to the input size: area averaging when shrinking and bilinear
    /// when growing (nil, the default), or Pillow's bicubic (Siamese-pytorch's letterbox).
    /// Optional so older model files decode unchanged.
    public var resampling: Resampling?

    public enum Resampling: String, Codable, Sendable, CaseIterable {
        case area, bicubic
    }

    /// The grey level `fit` pads with, as a pixel of the image (0-255; inverted and normalised
    /// with the rest): 128 is the grey of Siamese-pytorch's letterbox. Optional so older model
    /// files decode unchanged.
    public var pad: Int?

    /// A face stage before the network (`doppel import` of dlib's face models): faces are found
    /// in the photo, their landmarks placed, and each face's aligned chip is what this spec
    /// then turns into the network's input. Optional so older model files decode unchanged.
    public var face: FaceStage?

    /// What the face stage runs (DoppelModel's FaceStage executes it; its weights travel in the
    /// model file as `face.*` tensors).
    public struct FaceStage: Codable, Sendable, Equatable {
        /// dlib's CNN face detector over an image pyramid.
        public struct Detector: Codable, Sendable, Equatable {
            /// The network on the tiled pyramid (a chain of convolutions, affine layers and ReLUs).
            public var architecture: String
            /// The per-channel averages subtracted before dividing by 256.
            public var average: [Float]
            /// Pixels between pyramid levels and around the tiled image.
            public var padding: Int
            public var outerPadding: Int
            /// Each level is (rate - 1) / rate of the one before (pyramid_down<rate>).
            public var pyramidRate: Int
            public var windowWidth: Int
            public var windowHeight: Int
            /// Non-maximum suppression: a window is dropped when its overlap with a kept one
            /// passes this intersection over the union's bounding box, or it covers this share
            /// of either.
            public var nmsOverlap: Double
            public var nmsCovered: Double
            /// Times the photo is doubled before detection (finds faces down to about 40 px
            /// once, 20 px twice; each costs 4x).
            public var upsample: Int
            /// Scores above this are faces.
            public var threshold: Double

            public init(architecture: String, average: [Float], padding: Int, outerPadding: Int, pyramidRate: Int, windowWidth: Int,
                        windowHeight: Int, nmsOverlap: Double, nmsCovered: Double, upsample: Int, threshold: Double) {
                self.architecture = architecture
                self.average = average
                self.padding = padding
                self.outerPadding = outerPadding
                self.pyramidRate = pyramidRate
                self.windowWidth = windowWidth
                self.windowHeight = windowHeight
                self.nmsOverlap = nmsOverlap
                self.nmsCovered = nmsCovered
                self.upsample = upsample
                self.threshold = threshold
            }
        }

        public var detector: Detector
        /// Landmarks the shape predictor places (5: the eyes' corners and the nose).
        public var landmarks: Int
        /// The aligned chip's side in pixels and the share of the face's size around it.
        public var chipSize: Int
        public var chipPadding: Double

        public init(detector: Detector, landmarks: Int, chipSize: Int, chipPadding: Double) {
            self.detector = detector
            self.landmarks = landmarks
            self.chipSize = chipSize
            self.chipPadding = chipPadding
        }
    }

    /// The views test-time augmentation averages, in the order they are summed: the image,
    /// its mirror, then each of those moved by (dx, dy).
    public var testViews: [(mirrored: Bool, dx: Int, dy: Int)] {
        var views: [(mirrored: Bool, dx: Int, dy: Int)] = [(false, 0, 0)]
        if mirrorAverage == true { views.append((true, 0, 0)) }
        if let shift = shiftAverage, shift > 0 {
            for mirrored in views.map(\.mirrored) {
                for (dx, dy) in [(shift, 0), (-shift, 0), (0, shift), (0, -shift)] { views.append((mirrored, dx, dy)) }
            }
        }
        return views
    }

    public init(channels: Int, height: Int, width: Int, resize: ResizeMode = .stretch, invert: Bool = false,
                mean: [Float]? = nil, std: [Float]? = nil) {
        self.channels = channels
        self.height = height
        self.width = width
        self.resize = resize
        self.invert = invert
        self.mean = mean ?? Array(repeating: 0, count: channels)
        self.std = std ?? Array(repeating: 1, count: channels)
    }

    /// Elements of one preprocessed image (`channels * height * width`).
    public var elementCount: Int { channels * height * width }

    /// "1x28x28 stretch": the compact form used in messages and the architecture string.
    public var description: String {
        "\(face.map { _ in "faces -> " } ?? "")\(channels)x\(height)x\(width) \(resize.rawValue)\(pad.map { " pad\($0)" } ?? "")\(resampling == .bicubic ? " bicubic" : "")\(invert ? " invert" : "")\(channelOrder == .bgr ? " bgr" : "")\(mirrorAverage == true ? " +mirror" : "")\((shiftAverage ?? 0) > 0 ? " +shift\(shiftAverage!)" : "")"
    }

    /// Problems with the spec itself, in words, or nil when it is usable.
    public func validationError() -> String? {
        guard channels == 1 || channels == 3 else { return "input channels must be 1 or 3, not \(channels)" }
        guard height > 0, width > 0, height <= 4096, width <= 4096 else {
            return "input size \(height)x\(width) must be between 1 and 4096 on each side"
        }
        guard mean.count == channels, std.count == channels else {
            return "mean and std need \(channels) values each (got \(mean.count) and \(std.count))"
        }
        guard std.allSatisfy({ $0 > 0 && $0.isFinite }), mean.allSatisfy(\.isFinite) else {
            return "std must be positive and mean finite"
        }
        if let pad, !(0...255).contains(pad) { return "pad must be a grey level in 0...255, not \(pad)" }
        if let shift = shiftAverage, shift < 0 || (shift > 0 && shift >= min(height, width) / 2) {
            return "shiftAverage must be between 0 and \(min(height, width) / 2 - 1) pixels, not \(shift)"
        }
        return nil
    }

    /// The image as a `[channels, height, width]` Float tensor.
    public func tensor(from image: Image) -> [Float] {
        var out = [Float](repeating: 0, count: elementCount)
        out.withUnsafeMutableBufferPointer { write(image, into: $0) }
        return out
    }

    /// Mirrors `count` preprocessed images (`[count, channels, height, width]`) left to right
    /// into `destination`.
    public func writeMirrored(_ source: UnsafePointer<Float>, count: Int, into destination: UnsafeMutablePointer<Float>) {
        for row in 0..<(count * channels * height) {
            let from = source + row * width, to = destination + row * width
            for x in 0..<width { to[x] = from[width - 1 - x] }
        }
    }

    /// Writes `count` preprocessed images moved by `dx` pixels right and `dy` down into
    /// `destination`, repeating the edge rows and columns where the move uncovers them.
    public func writeShifted(_ source: UnsafePointer<Float>, count: Int, dx: Int, dy: Int, into destination: UnsafeMutablePointer<Float>) {
        for plane in 0..<(count * channels) {
            let from = source + plane * height * width, to = destination + plane * height * width
            for y in 0..<height {
                let sourceRow = from + min(max(y - dy, 0), height - 1) * width, row = to + y * width
                for x in 0..<width { row[x] = sourceRow[min(max(x - dx, 0), width - 1)] }
            }
        }
    }

    /// Where a `sourceWidth x sourceHeight` picture lands in the target: its scaled size, the
    /// offsets of the scaled picture in the target (positive: padding; negative: cropping),
    /// and the part of it inside the target, the only part resampling computes.
    func placement(width sourceWidth: Int, height sourceHeight: Int)
        -> (scaledWidth: Int, scaledHeight: Int, offsetX: Int, offsetY: Int, columns: Range<Int>, rows: Range<Int>) {
        var scaledWidth = width, scaledHeight = height
        switch resize {
        case .stretch:
            break
        case .fit, .crop:
            let scaleX = Double(width) / Double(sourceWidth), scaleY = Double(height) / Double(sourceHeight)
            let scale = resize == .fit ? min(scaleX, scaleY) : max(scaleX, scaleY)
            scaledWidth = max(1, Int((Double(sourceWidth) * scale).rounded()))
            scaledHeight = max(1, Int((Double(sourceHeight) * scale).rounded()))
        }
        let offsetX = (width - scaledWidth) / 2, offsetY = (height - scaledHeight) / 2
        let columns = max(0, -offsetX)..<min(scaledWidth, width - offsetX)
        let rows = max(0, -offsetY)..<min(scaledHeight, height - offsetY)
        return (scaledWidth, scaledHeight, offsetX, offsetY, columns, rows)
    }

    /// Bytes turning a decoded `width x height` image into this spec's tensor holds at its
    /// peak: the image converted to the spec's channels, the resampler's tap tables (each
    /// source pixel of an axis is in at most two outputs' taps, 16 bytes a tap, plus an array
    /// per output), its intermediate and result, and the tensor of every view averaged.
    public func preprocessingBytes(width sourceWidth: Int, height sourceHeight: Int) -> Int {
        let place = placement(width: sourceWidth, height: sourceHeight)
        let between = Resampler.passOrder(width: sourceWidth, height: sourceHeight, outWidth: place.columns.count,
                                          outHeight: place.rows.count, rowsWhenBounded: resampling == .bicubic).floatsPerChannel
        let views = 1 + (mirrorAverage == true ? 1 : 0) + ((shiftAverage ?? 0) > 0 ? 4 : 0)
        let taps = 32 * (sourceWidth + sourceHeight + place.columns.count + place.rows.count) + 64 * (place.columns.count + place.rows.count)
        return channels * sourceWidth * sourceHeight + taps + 4 * channels * (between + place.columns.count * place.rows.count)
            + 4 * elementCount * (views + 1)
    }

    /// Writes the preprocessed image into `destination` (exactly `elementCount` floats), so a
    /// batch can be filled in place.
    public func write(_ image: Image, into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(destination.count == elementCount, "destination holds \(destination.count) floats, spec needs \(elementCount)")
        let layout: PixelLayout = channels == 1 ? .gray : .rgb
        let source = image.converted(to: layout)
        // The padding's grey level as it would be in the image (inverted below with the rest).
        let background: Float = pad.map(Float.init) ?? (invert ? 255 : 0)

        let (scaledWidth, scaledHeight, offsetX, offsetY, columns, rows) = placement(width: source.width, height: source.height)
        let scaled = Resampler.resize(source, width: scaledWidth, height: scaledHeight, columns: columns, rows: rows, filter: resampling ?? .area)

        for c in 0..<channels {
            let scale = 1 / (255 * std[c])
            let shift = mean[c] / std[c]
            let sourceChannel = channelOrder == .bgr && channels == 3 ? 2 - c : c
            for y in 0..<height {
                let sy = y - offsetY
                for x in 0..<width {
                    let sx = x - offsetX
                    var value = background
                    if rows.contains(sy), columns.contains(sx) {
                        value = scaled[(sourceChannel * rows.count + sy - rows.lowerBound) * columns.count + sx - columns.lowerBound]
                    }
                    if invert { value = 255 - value }
                    destination[(c * height + y) * width + x] = value * scale - shift
                }
            }
        }
    }
}
