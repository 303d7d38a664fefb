// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelNN
import Foundation

/// dlib's CNN face detector (MMOD, dlib/dnn/loss.h loss_mmod_ with input_rgb_image_pyramid):
/// the photo is upsampled (face_recognition's default: once), its image pyramid (each level
/// 5/6 of the one before) tiled into one image, one forward pass of a small convolutional
/// network scores every position of every level, and each position scoring above the
/// threshold is a detection window (80 x 80 in the pyramid level) mapped back to the photo;
/// overlapping windows are suppressed in order of score.
public final class FaceDetector: @unchecked Sendable {
    /// What the detector runs with, as the model file keeps it.
    public typealias Settings = InputSpec.FaceStage.Detector

    /// A face found: its box in the photo's pixels (dlib's integer rectangle) and its score.
    public struct Detection: Sendable, Equatable {
        public var box: FaceBox
        public var confidence: Double
    }

    public let settings: Settings
    private let architecture: Architecture
    /// The network's tensors by name, and their names and shapes in the network's order.
    let tensorValues: [String: [Float]]
    let tensorOrder: [(name: String, shape: [Int])]
    /// Per convolution, from the output back: kernel, stride, padding (dlib's
    /// output_tensor_to_input_tensor walks them to place a window).
    private let geometry: [(kernel: Int, stride: Int, padding: Int)]
    /// Networks by input shape (a detection's size depends on the photo's), the most recent
    /// last; one detection at a time.
    private var networks: [(shape: TensorShape, network: Network)] = []
    private let lock = NSLock()

    public init(settings: Settings, tensors: [String: [Float]]) throws {
        self.settings = settings
        architecture = try Architecture(parsing: settings.architecture)
        tensorValues = tensors
        var geometry = [(kernel: Int, stride: Int, padding: Int)]()
        for item in architecture.items {
            switch item {
            case .layer(.conv(_, let kernel, let stride, let padding, _, _)): geometry.append((kernel, stride, padding))
            case .layer(.affine), .layer(.activation(.relu)): break
            default: throw DlibFormatError.unsupportedStructure("a detector layer other than conv, affine or relu: \(item)")
            }
        }
        self.geometry = geometry.reversed()
        // Built once at a small size to check the tensors against the architecture.
        let probe = try Network(architecture: architecture, input: TensorShape(channels: 3, height: 64, width: 64), seed: 0)
        try probe.load(tensors: tensors)
        tensorOrder = probe.tensorSpecs
    }

    private func network(for shape: TensorShape) throws -> Network {
        if let index = networks.firstIndex(where: { $0.shape == shape }) {
            let found = networks.remove(at: index)
            networks.append(found)
            return found.network
        }
        let network = try Network(architecture: architecture, input: shape, seed: 0)
        try network.load(tensors: tensorValues)
        networks.append((shape, network))
        if networks.count > 4 { networks.removeFirst() }
        return network
    }

    /// Where one detection's time went, in seconds (`doppel bench faces`).
    public struct Timing: Sendable {
        /// Upsampling the photo, then laying out and filling the tiled pyramid.
        public var upsample = 0.0, pyramid = 0.0
        /// The network's forward pass over the tiled image, and turning its scores into boxes.
        public var network = 0.0, windows = 0.0
        /// The tiled image's size, the network's input.
        public var tiledRows = 0, tiledColumns = 0
        public init() {}
    }

    /// The smallest tiled image side for which the network has one output position: from one
    /// output back through each convolution.
    var smallestInputSide: Int {
        geometry.reduce(1) { side, layer in (side - 1) * layer.stride + layer.kernel - 2 * layer.padding }
    }

    /// The faces in an RGB photo, highest score first.
    public func detect(_ photo: Image) throws -> [Detection] {
        var timing = Timing()
        return try detect(photo, timing: &timing)
    }

    public func detect(_ photo: Image, timing: inout Timing) throws -> [Detection] {
        var clock = ContinuousClock.now
        func lap() -> Double {
            let now = ContinuousClock.now, elapsed = now - clock
            clock = now
            return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        }
        var image = photo.layout == .rgb ? photo : photo.converted(to: .rgb)
        for _ in 0..<settings.upsample { image = DlibResampling.pyramidUp(image) }
        timing.upsample = lap()
        let pyramid = TiledPyramid(rows: image.height, columns: image.width, rate: settings.pyramidRate,
                                   padding: settings.padding, outerPadding: settings.outerPadding)
        // A photo so small (a 1 x 1 image) that the network has no output position holds no face.
        guard !pyramid.levels.isEmpty, min(pyramid.rows, pyramid.columns) >= smallestInputSide else { return [] }
        let input = pyramid.tensor(of: image, average: settings.average)
        let shape = TensorShape(channels: 3, height: pyramid.rows, width: pyramid.columns)
        (timing.tiledRows, timing.tiledColumns) = (pyramid.rows, pyramid.columns)
        timing.pyramid = lap()
        let (scores, outShape): ([Float], TensorShape) = try lock.withLock {
            let network = try network(for: shape)
            return (Array(network.forward(input, batch: 1, mode: .inference)), network.outputShape)
        }
        timing.network = lap()
        defer { timing.windows = lap() }
        var candidates = [Detection]()
        for r in 0..<outShape.height {
            for c in 0..<outShape.width {
                let score = Double(scores[r * outShape.width + c])
                guard score > settings.threshold else { continue }
                var p = FacePoint(x: Double(c), y: Double(r))
                for layer in geometry {
                    p = FacePoint(x: p.x * Double(layer.stride) - Double(layer.padding) + Double(layer.kernel / 2),
                                  y: p.y * Double(layer.stride) - Double(layer.padding) + Double(layer.kernel / 2))
                }
                let window = FaceBox.centered(at: p, width: Double(settings.windowWidth), height: Double(settings.windowHeight))
                candidates.append(Detection(box: pyramid.imageBox(window).rounded, confidence: score))
            }
        }
        candidates.sort { $0.confidence > $1.confidence }
        var kept = [Detection]()
        for candidate in candidates where !kept.contains(where: { overlaps($0.box, candidate.box) }) { kept.append(candidate) }
        // Back to the photo's pixels through the upsampling (pyramid_down<2>'s rect_down).
        return kept.map { detection in
            var box = detection.box
            for _ in 0..<settings.upsample {
                box = FaceBox(left: box.left / 2 - 1.25, top: box.top / 2 - 0.75, right: box.right / 2 - 1.25, bottom: box.bottom / 2 - 0.75)
            }
            return Detection(box: box.rounded, confidence: detection.confidence)
        }
    }

    /// dlib's test_box_overlap on whole-pixel boxes.
    private func overlaps(_ a: FaceBox, _ b: FaceBox) -> Bool {
        let inner = a.intersection(b).area
        guard inner > 0 else { return false }
        return inner / a.union(b).area > settings.nmsOverlap || inner / a.area > settings.nmsCovered || inner / b.area > settings.nmsCovered
    }
}

/// dlib's tiled image pyramid (compute_tiled_image_pyramid_details): the levels of an image
/// pyramid laid out in one image, down a first column until the next one fits beside it, then
/// up a second column from the bottom; every level is the one before resized bilinearly.
struct TiledPyramid {
    /// Where each level lies in the tiled image (whole pixels).
    let levels: [FaceBox]
    let rows: Int
    let columns: Int
    let rate: Int

    init(rows imageRows: Int, columns imageColumns: Int, rate: Int, padding: Int, outerPadding: Int) {
        self.rate = rate
        var sizes = [(columns: imageColumns, rows: imageRows)]
        var (nr, nc) = (imageRows, imageColumns)
        let shrink = Double(rate - 1) / Double(rate)
        while true {
            nr = Int((shrink * Double(nr)).rounded(.down))
            nc = Int((shrink * Double(nc)).rounded(.down))
            if nr * nc == 0 || nr < 5 { break }
            sizes.append((nc, nr))
        }
        guard imageRows * imageColumns > 0 else {
            (levels, rows, columns) = ([], 0, 0)
            return
        }
        let total = sizes.reduce(0) { $0 + $1.rows + padding } - 2 * padding
        var height = 0, previousWidth = 0
        for size in sizes {
            if size.columns <= sizes[0].columns - previousWidth - padding && (height - sizes[0].rows) * 2 >= total - sizes[0].rows { break }
            height += size.rows + padding
            previousWidth = size.columns
        }
        height -= padding
        let width = sizes[0].columns
        rows = height + 2 * outerPadding
        columns = width + 2 * outerPadding
        var placed = [FaceBox]()
        var y = outerPadding, i = 0
        while y < height + outerPadding && i < sizes.count {
            placed.append(FaceBox(left: Double(outerPadding), top: Double(y), right: Double(outerPadding + sizes[i].columns - 1),
                                  bottom: Double(y + sizes[i].rows - 1)))
            y += sizes[i].rows + padding
            i += 1
        }
        y -= padding
        while i < sizes.count {
            let corner = (x: outerPadding + width - 1, y: y - 1)
            let box = FaceBox(left: Double(corner.x - (sizes[i].columns - 1)), top: Double(corner.y - (sizes[i].rows - 1)),
                              right: Double(corner.x), bottom: Double(corner.y))
            if !placed[0].intersection(box).isEmpty { break }
            placed.append(box)
            y -= sizes[i].rows + padding
            i += 1
        }
        levels = placed
    }

    /// The tiled image as the network's input: (pixel - average) / 256 per channel in the
    /// first level, each later level resized from the one before, zero between.
    func tensor(of image: Image, average: [Float]) -> [Float] {
        var x = [Float](repeating: 0, count: 3 * rows * columns)
        let plane = rows * columns
        x.withUnsafeMutableBufferPointer { x in
            let first = levels[0]
            for channel in 0..<3 {
                let base = x.baseAddress! + channel * plane
                image.pixels.withUnsafeBufferPointer { pixels in
                    for r in 0..<image.height {
                        let row = base + (Int(first.top) + r) * columns + Int(first.left)
                        let source = pixels.baseAddress! + r * image.width * 3 + channel
                        for c in 0..<image.width { row[c] = (Float(source[c * 3]) - average[channel]) / 256 }
                    }
                }
                for i in 1..<max(1, levels.count) {
                    let (from, to) = (levels[i - 1], levels[i])
                    DlibResampling.resizePlane(base + Int(from.top) * columns + Int(from.left), rows: Int(from.height), columns: Int(from.width),
                                               rowStride: columns, into: base + Int(to.top) * columns + Int(to.left),
                                               rows: Int(to.height), columns: Int(to.width), rowStride: columns)
                }
            }
        }
        return x
    }

    /// A box in the tiled image back in the original image's pixels (tiled_pyramid_to_image):
    /// the level nearest its centre, then pyramid_down<rate>'s point_up once per level.
    func imageBox(_ box: FaceBox) -> FaceBox {
        let center = box.center.rounded
        var level = 0, best = Double.infinity
        for (i, rect) in levels.enumerated() {
            if center.x >= rect.left, center.x <= rect.right, center.y >= rect.top, center.y <= rect.bottom {
                level = i
                best = -1
                break
            }
            let nearest = FacePoint(x: min(max(center.x, rect.left), rect.right), y: min(max(center.y, rect.top), rect.bottom))
            let distance = ((nearest.x - center.x) * (nearest.x - center.x) + (nearest.y - center.y) * (nearest.y - center.y)).squareRoot()
            if distance < best {
                best = distance
                level = i
            }
        }
        let origin = levels[level].topLeft
        var p = box.topLeft - origin, q = box.bottomRight - origin
        let up = Double(rate) / Double(rate - 1)
        for _ in 0..<level {
            p = FacePoint(x: p.x * up + 0.3, y: p.y * up + 0.3)
            q = FacePoint(x: q.x * up + 0.3, y: q.y * up + 0.3)
        }
        return FaceBox(left: p.x, top: p.y, right: q.x, bottom: q.y)
    }
}
