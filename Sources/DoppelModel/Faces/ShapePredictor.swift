// SPDX-License-Identifier: MIT
import DoppelImaging
import Foundation

/// dlib's ensemble of regression trees (Kazemi and Sullivan, 2014; dlib/image_processing/
/// shape_predictor.h): from a face box, a cascade of forests moves an initial shape (the
/// mean, in box-relative coordinates) towards the landmarks. Each cascade reads the
/// intensities of a fixed set of pixels, placed relative to the current shape's nearest
/// landmark; each tree compares pairs of them against thresholds down to a leaf holding a
/// shape update.
public struct ShapePredictor: Sendable, Equatable {
    struct Split: Sendable, Equatable {
        var first: Int
        var second: Int
        var threshold: Float
    }

    struct Tree: Sendable, Equatable {
        /// Complete binary tree in breadth-first order (node i's children are 2i+1 and 2i+2).
        var splits: [Split]
        /// splits.count + 1 leaves, each a shape update of 2 x parts values.
        var leaves: [[Float]]
    }

    /// The mean shape, box-relative: x0 y0 x1 y1 ...
    let initialShape: [Float]
    /// forests[cascade][tree].
    let forests: [[Tree]]
    /// Per cascade and feature pixel: the landmark it is placed from and its offset from it
    /// in the initial shape's coordinates.
    let anchors: [[Int]]
    let deltas: [[(x: Float, y: Float)]]

    public var parts: Int { initialShape.count / 2 }

    public static func == (a: ShapePredictor, b: ShapePredictor) -> Bool {
        a.initialShape == b.initialShape && a.forests == b.forests && a.anchors == b.anchors
            && a.deltas.map { $0.map(\.x) } == b.deltas.map { $0.map(\.x) } && a.deltas.map { $0.map(\.y) } == b.deltas.map { $0.map(\.y) }
    }

    init(initialShape: [Float], forests: [[Tree]], anchors: [[Int]], deltas: [[(x: Float, y: Float)]]) {
        self.initialShape = initialShape
        self.forests = forests
        self.anchors = anchors
        self.deltas = deltas
    }

    /// Reads a shape predictor serialized by dlib (version 1).
    init(dlibBytes bytes: [UInt8]) throws(DlibFormatError) {
        var reader = DlibReader(bytes: bytes)
        _ = try reader.version("the shape predictor", 1...1)
        let initial = try reader.matrix("the initial shape")
        guard initial.columns == 1, initial.rows >= 2, initial.rows % 2 == 0 else {
            throw .malformed(offset: reader.offset, expected: "an initial shape of 2 x parts values", found: "\(initial.rows)x\(initial.columns)")
        }
        let shapeSize = initial.rows
        var forests = [[Tree]]()
        for _ in 0..<(try reader.count("cascades", atMost: 100)) {
            var forest = [Tree]()
            for _ in 0..<(try reader.count("trees", atMost: 10_000)) {
                var splits = [Split]()
                for _ in 0..<(try reader.count("splits", atMost: 1 << 16)) {
                    splits.append(Split(first: try reader.unsigned("a split's first pixel"), second: try reader.unsigned("a split's second pixel"),
                                        threshold: Float(try reader.float("a split's threshold"))))
                }
                var leaves = [[Float]]()
                for _ in 0..<(try reader.count("leaves", atMost: 1 << 17)) {
                    let leaf = try reader.matrix("a leaf")
                    guard leaf.rows * leaf.columns == shapeSize else {
                        throw .malformed(offset: reader.offset, expected: "a leaf of \(shapeSize) values", found: "\(leaf.rows * leaf.columns)")
                    }
                    leaves.append(leaf.values)
                }
                guard leaves.count == splits.count + 1 else {
                    throw .malformed(offset: reader.offset, expected: "\(splits.count + 1) leaves", found: "\(leaves.count)")
                }
                forest.append(Tree(splits: splits, leaves: leaves))
            }
            forests.append(forest)
        }
        var anchors = [[Int]]()
        for _ in 0..<(try reader.count("anchor lists", atMost: 100)) {
            anchors.append(try (0..<(try reader.count("anchors"))).map { _ throws(DlibFormatError) in try reader.unsigned("an anchor") })
        }
        var deltas = [[(x: Float, y: Float)]]()
        for _ in 0..<(try reader.count("delta lists", atMost: 100)) {
            deltas.append(try (0..<(try reader.count("deltas"))).map { _ throws(DlibFormatError) in
                (Float(try reader.float("a delta's x")), Float(try reader.float("a delta's y")))
            })
        }
        guard reader.isAtEnd else { throw .malformed(offset: reader.offset, expected: "the end of the shape predictor", found: "more bytes") }
        guard anchors.count == forests.count, deltas.count == forests.count, zip(anchors, deltas).allSatisfy({ $0.count == $1.count }) else {
            throw .malformed(offset: reader.offset, expected: "one anchor and delta list per cascade", found: "\(anchors.count), \(deltas.count)")
        }
        let parts = shapeSize / 2
        for (cascade, forest) in forests.enumerated() {
            let pixels = anchors[cascade].count
            guard anchors[cascade].allSatisfy({ $0 < parts }),
                  forest.allSatisfy({ $0.splits.allSatisfy { $0.first < pixels && $0.second < pixels } }) else {
                throw .malformed(offset: reader.offset, expected: "feature indices below \(pixels) and anchors below \(parts)", found: "larger ones")
            }
        }
        self.init(initialShape: initial.values, forests: forests, anchors: anchors, deltas: deltas)
    }

    /// The landmarks of the face in `box`, in image pixels (rounded to whole pixels, as dlib
    /// returns them). `intensity` is the image's gray level per pixel, row by row, as dlib's
    /// get_pixel_intensity gives it ((r + g + b) / 3 for colour).
    public func landmarks(intensity: [UInt8], width: Int, height: Int, box: FaceBox) -> [FacePoint] {
        var shape = initialShape
        let toImage = AffineTransform.unnormalizing(box)
        var features = [Float]()
        for (cascade, forest) in forests.enumerated() {
            // The similarity taking the initial shape to the current one, in Float as dlib
            // applies it (matrix_cast<float>), places each feature pixel.
            let tform = AffineTransform.similarity(from: Self.points(initialShape), to: Self.points(shape))
            let (a, b, c, d) = (Float(tform.m.a), Float(tform.m.b), Float(tform.m.c), Float(tform.m.d))
            features.removeAll(keepingCapacity: true)
            for (anchor, delta) in zip(anchors[cascade], deltas[cascade]) {
                let x = a * delta.x + b * delta.y + shape[2 * anchor], y = c * delta.x + d * delta.y + shape[2 * anchor + 1]
                let p = toImage(FacePoint(x: Double(x), y: Double(y))).rounded
                if p.x >= 0, p.y >= 0, p.x < Double(width), p.y < Double(height) {
                    features.append(Float(intensity[Int(p.y) * width + Int(p.x)]))
                } else {
                    features.append(0)
                }
            }
            for tree in forest {
                var node = 0
                while node < tree.splits.count {
                    let split = tree.splits[node]
                    node = features[split.first] - features[split.second] > split.threshold ? 2 * node + 1 : 2 * node + 2
                }
                let leaf = tree.leaves[node - tree.splits.count]
                for i in 0..<shape.count { shape[i] += leaf[i] }
            }
        }
        return Self.points(shape).map { toImage($0).rounded }
    }

    private static func points(_ shape: [Float]) -> [FacePoint] {
        stride(from: 0, to: shape.count, by: 2).map { FacePoint(x: Double(shape[$0]), y: Double(shape[$0 + 1])) }
    }

    /// dlib's gray level of an image: the sample itself, or (r + g + b) / 3 rounded down.
    public static func intensity(of image: Image) -> [UInt8] {
        let rgb = image.layout == .rgb ? image : image.converted(to: image.layout.isColor ? .rgb : .gray)
        guard rgb.layout == .rgb else { return rgb.pixels }
        var out = [UInt8](repeating: 0, count: rgb.pixelCount)
        rgb.pixels.withUnsafeBufferPointer { p in
            for i in 0..<out.count {
                let sum = Int(p[3 * i]) + Int(p[3 * i + 1]) + Int(p[3 * i + 2])
                out[i] = UInt8(sum / 3)
            }
        }
        return out
    }
}
