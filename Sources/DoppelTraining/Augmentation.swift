// SPDX-License-Identifier: MIT
import DoppelNN
import Foundation

/// Random affine distortions of preprocessed inputs, as Koch et al. used on Omniglot
/// (rotation, shift, scale, shear), and horizontal flips where the data allows. Applied to
/// `[C, H, W]` tensors by inverse mapping with bilinear sampling; uncovered pixels take the
/// blank value (what a blank image preprocesses to). Off unless a recipe enables it.
public struct Augmentation: Codable, Sendable, Equatable {
    /// Maximum rotation in degrees, either way.
    public var rotation: Float = 10
    /// Maximum shift as a fraction of the side.
    public var shift: Float = 0.1
    /// Maximum relative scale change (0.1: 0.9x to 1.1x).
    public var scale: Float = 0.1
    /// Maximum shear in degrees.
    public var shear: Float = 10
    public var horizontalFlip = false
    /// Probability that a sample is distorted at all.
    public var probability: Float = 0.8
    /// Photometric jitter after the geometry: a brightness shift of up to this much (in the
    /// input's units, 1 = full range for mean 0, std 1), and a contrast change about the
    /// sample's mean of up to this fraction (0.2: 0.8x to 1.2x). Optional so recipes from
    /// before them still load.
    public var brightness: Float?
    public var contrast: Float?

    public init(rotation: Float = 10, shift: Float = 0.1, scale: Float = 0.1, shear: Float = 10, horizontalFlip: Bool = false,
                probability: Float = 0.8) {
        self.rotation = rotation
        self.shift = shift
        self.scale = scale
        self.shear = shear
        self.horizontalFlip = horizontalFlip
        self.probability = probability
    }

    /// Parses `rotation=10,shift=0.1,scale=0.1,shear=10,flip=1,brightness=0.1,contrast=0.2,p=0.8`
    /// (any subset; the rest keep their defaults; `none` is no distortion at all).
    public init(parsing text: String) throws {
        self.init()
        guard text != "none" else {
            probability = 0
            return
        }
        for part in text.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, let value = Float(pair[1]), value.isFinite, value >= 0 else {
                throw DatasetError.cannotSplit(detail: "augmentation '\(part)' is not key=number (keys: rotation, shift, scale, shear, flip, brightness, contrast, p)")
            }
            switch pair[0] {
            case "rotation": rotation = value
            case "shift": shift = value
            case "scale": scale = value
            case "shear": shear = value
            case "flip": horizontalFlip = value != 0
            case "brightness": brightness = value
            case "contrast": contrast = value
            case "p":
                guard value <= 1 else { throw DatasetError.cannotSplit(detail: "augmentation p is a probability, at most 1") }
                probability = value
            default:
                throw DatasetError.cannotSplit(detail: "augmentation key '\(pair[0])' is not one of rotation, shift, scale, shear, flip, brightness, contrast, p")
            }
        }
    }

    /// Distorts `count` tensors of `shape` in place; `blank[c]` fills uncovered pixels.
    public func apply(_ x: UnsafeMutablePointer<Float>, count: Int, shape: TensorShape, blank: [Float],
                      using generator: inout SeededGenerator) {
        let (channels, height, width) = (shape.channels, shape.height, shape.width)
        var source = [Float](repeating: 0, count: shape.count)
        for n in 0..<count {
            guard generator.nextUnitFloat() < probability else { continue }
            func uniform(_ limit: Float) -> Float { (generator.nextUnitFloat() * 2 - 1) * limit }
            let angle = uniform(rotation) * .pi / 180, shearAngle = uniform(shear) * .pi / 180
            let zoom = 1 + uniform(scale)
            let dx = uniform(shift) * Float(width), dy = uniform(shift) * Float(height)
            let flip: Float = horizontalFlip && generator.nextUnitFloat() < 0.5 ? -1 : 1
            // Forward map about the centre: M = R(angle) * Shear(shearAngle) * zoom * flip; the
            // sampler needs the inverse, from output pixel to source pixel.
            let (c, s) = (cosf(angle), sinf(angle)), t = tanf(shearAngle)
            let m00 = zoom * c * flip, m01 = zoom * (c * t - s), m10 = zoom * s * flip, m11 = zoom * (s * t + c)
            let det = m00 * m11 - m01 * m10
            guard abs(det) > 1e-6 else { continue }
            let (i00, i01, i10, i11) = (m11 / det, -m01 / det, -m10 / det, m00 / det)
            let cx = Float(width - 1) / 2, cy = Float(height - 1) / 2
            let sample = x + n * shape.count
            source.withUnsafeMutableBufferPointer { src in
                src.baseAddress!.update(from: sample, count: shape.count)
                for ch in 0..<channels {
                    let plane = src.baseAddress! + ch * height * width, out = sample + ch * height * width
                    for oy in 0..<height {
                        for ox in 0..<width {
                            let u = Float(ox) - cx - dx, v = Float(oy) - cy - dy
                            let sx = i00 * u + i01 * v + cx, sy = i10 * u + i11 * v + cy
                            let x0 = Int(floorf(sx)), y0 = Int(floorf(sy))
                            let fx = sx - Float(x0), fy = sy - Float(y0)
                            func at(_ yy: Int, _ xx: Int) -> Float {
                                yy >= 0 && yy < height && xx >= 0 && xx < width ? plane[yy * width + xx] : blank[ch]
                            }
                            let top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
                            let bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
                            out[oy * width + ox] = top * (1 - fy) + bottom * fy
                        }
                    }
                }
            }
            if brightness != nil || contrast != nil {
                let shiftBy = uniform(brightness ?? 0), gain = 1 + uniform(contrast ?? 0)
                var mean: Float = 0
                for i in 0..<shape.count { mean += sample[i] }
                mean /= Float(shape.count)
                for i in 0..<shape.count { sample[i] = (sample[i] - mean) * gain + mean + shiftBy }
            }
        }
    }
}
