// SPDX-License-Identifier: MIT
import Foundation

/// A point in image coordinates (x to the right, y down), in pixels.
public struct FacePoint: Sendable, Equatable, Codable {
    public var x: Double
    public var y: Double
    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }

    static func + (a: FacePoint, b: FacePoint) -> FacePoint { FacePoint(x: a.x + b.x, y: a.y + b.y) }
    static func - (a: FacePoint, b: FacePoint) -> FacePoint { FacePoint(x: a.x - b.x, y: a.y - b.y) }
    static func * (p: FacePoint, s: Double) -> FacePoint { FacePoint(x: p.x * s, y: p.y * s) }

    /// Rounded to whole pixels as dlib rounds a point: floor(v + 0.5).
    var rounded: FacePoint { FacePoint(x: (x + 0.5).rounded(.down), y: (y + 0.5).rounded(.down)) }
}

/// A rectangle as dlib draws one: left, top, right and bottom all inside it, so a box of
/// whole pixels from 10 to 19 is 10 wide.
public struct FaceBox: Sendable, Equatable, Codable {
    public var left: Double
    public var top: Double
    public var right: Double
    public var bottom: Double

    public init(left: Double, top: Double, right: Double, bottom: Double) {
        self.left = left
        self.top = top
        self.right = right
        self.bottom = bottom
    }

    public var width: Double { isEmpty ? 0 : right - left + 1 }
    public var height: Double { isEmpty ? 0 : bottom - top + 1 }
    public var area: Double { width * height }
    var isEmpty: Bool { top > bottom || left > right }
    var center: FacePoint { FacePoint(x: (left + right) / 2, y: (top + bottom) / 2) }
    var topLeft: FacePoint { FacePoint(x: left, y: top) }
    var topRight: FacePoint { FacePoint(x: right, y: top) }
    var bottomLeft: FacePoint { FacePoint(x: left, y: bottom) }
    var bottomRight: FacePoint { FacePoint(x: right, y: bottom) }

    /// A box of `width` x `height` around `p` (dlib's centered_drect).
    static func centered(at p: FacePoint, width: Double, height: Double) -> FaceBox {
        let (w, h) = (width - 1, height - 1)
        return FaceBox(left: p.x - w / 2, top: p.y - h / 2, right: p.x + w / 2, bottom: p.y + h / 2)
    }

    /// Each side rounded to the nearest whole pixel, halves away from zero (dlib's conversion
    /// of a drectangle to a rectangle: lround).
    var rounded: FaceBox { FaceBox(left: left.rounded(), top: top.rounded(), right: right.rounded(), bottom: bottom.rounded()) }

    func intersection(_ other: FaceBox) -> FaceBox {
        FaceBox(left: max(left, other.left), top: max(top, other.top), right: min(right, other.right), bottom: min(bottom, other.bottom))
    }

    /// The smallest box holding both (an empty box holds nothing).
    func union(_ other: FaceBox) -> FaceBox {
        if isEmpty { return other }
        if other.isEmpty { return self }
        return FaceBox(left: min(left, other.left), top: min(top, other.top), right: max(right, other.right), bottom: max(bottom, other.bottom))
    }

    func translated(by p: FacePoint) -> FaceBox { FaceBox(left: left + p.x, top: top + p.y, right: right + p.x, bottom: bottom + p.y) }

    func grown(by amount: Double) -> FaceBox { FaceBox(left: left - amount, top: top - amount, right: right + amount, bottom: bottom + amount) }

    static let empty = FaceBox(left: 0, top: 0, right: -1, bottom: -1)

    /// Intersection over union.
    func overlap(_ other: FaceBox) -> Double {
        let inner = intersection(other).area
        let outer = union(other).area
        return outer == 0 ? 0 : inner / (area + other.area - inner)
    }
}

/// p -> m p + b.
struct AffineTransform: Equatable {
    var m: (a: Double, b: Double, c: Double, d: Double)
    var offset: FacePoint

    func callAsFunction(_ p: FacePoint) -> FacePoint {
        FacePoint(x: m.a * p.x + m.b * p.y + offset.x, y: m.c * p.x + m.d * p.y + offset.y)
    }

    static func == (l: AffineTransform, r: AffineTransform) -> Bool {
        l.m.a == r.m.a && l.m.b == r.m.b && l.m.c == r.m.c && l.m.d == r.m.d && l.offset == r.offset
    }

    /// The least-squares similarity (rotation, uniform scale, translation) taking `from` onto
    /// `to`: Umeyama's solution, which in the plane is z = sum conj(p) q / sum |p|^2 over the
    /// centred points, a complex number holding the scale and the rotation.
    static func similarity(from: [FacePoint], to: [FacePoint]) -> AffineTransform {
        precondition(from.count == to.count && from.count >= 2)
        let n = Double(from.count)
        let meanFrom = from.reduce(FacePoint(x: 0, y: 0), +) * (1 / n), meanTo = to.reduce(FacePoint(x: 0, y: 0), +) * (1 / n)
        var re = 0.0, im = 0.0, norm = 0.0
        for (p, q) in zip(from, to) {
            let (px, py, qx, qy) = (p.x - meanFrom.x, p.y - meanFrom.y, q.x - meanTo.x, q.y - meanTo.y)
            re += px * qx + py * qy
            im += px * qy - py * qx
            norm += px * px + py * py
        }
        let (a, b) = norm > 0 ? (re / norm, im / norm) : (1, 0)
        let m = (a: a, b: -b, c: b, d: a)
        let t = FacePoint(x: meanTo.x - (m.a * meanFrom.x + m.b * meanFrom.y), y: meanTo.y - (m.c * meanFrom.x + m.d * meanFrom.y))
        return AffineTransform(m: m, offset: t)
    }

    /// The affine transform taking three points onto three (exact; dlib's
    /// find_affine_transform on three points).
    static func affine(from: [FacePoint], to: [FacePoint]) -> AffineTransform {
        precondition(from.count == 3 && to.count == 3)
        // Solve [x y 1] [a c; b d; e f] = [x' y'] for the three points by Cramer's rule.
        let (p0, p1, p2) = (from[0], from[1], from[2])
        let det = p0.x * (p1.y - p2.y) - p0.y * (p1.x - p2.x) + (p1.x * p2.y - p2.x * p1.y)
        func solve(_ v0: Double, _ v1: Double, _ v2: Double) -> (Double, Double, Double) {
            let a = (v0 * (p1.y - p2.y) - p0.y * (v1 - v2) + (v1 * p2.y - v2 * p1.y)) / det
            let b = (p0.x * (v1 - v2) - v0 * (p1.x - p2.x) + (p1.x * v2 - p2.x * v1)) / det
            let c = (p0.x * (p1.y * v2 - p2.y * v1) - p0.y * (p1.x * v2 - p2.x * v1) + v0 * (p1.x * p2.y - p2.x * p1.y)) / det
            return (a, b, c)
        }
        let x = solve(to[0].x, to[1].x, to[2].x), y = solve(to[0].y, to[1].y, to[2].y)
        return AffineTransform(m: (a: x.0, b: x.1, c: y.0, d: y.1), offset: FacePoint(x: x.2, y: y.2))
    }

    /// (0, 0) -> the box's top left corner, (1, 1) -> its bottom right (dlib's
    /// unnormalizing_tform).
    static func unnormalizing(_ box: FaceBox) -> AffineTransform {
        affine(from: [FacePoint(x: 0, y: 0), FacePoint(x: 1, y: 0), FacePoint(x: 1, y: 1)],
               to: [box.topLeft, box.topRight, box.bottomRight])
    }
}

/// p turned by `angle` radians about `center`.
func rotate(_ p: FacePoint, about center: FacePoint, by angle: Double) -> FacePoint {
    let (c, s) = (cos(angle), sin(angle)), d = p - center
    return FacePoint(x: c * d.x - s * d.y + center.x, y: s * d.x + c * d.y + center.y)
}
