// SPDX-License-Identifier: MIT
@testable import DoppelNN

/// Generated glyph classes for training tests: each class is a few random strokes on a
/// `side x side` canvas; samples shift it by up to two pixels (so raw pixel distance is a poor judge) and add noise.
struct Glyphs {
    let side: Int
    let templates: [[Float]]

    init(classes: Int, side: Int = 12, seed: UInt64) {
        self.side = side
        var generator = SeededGenerator(seed: seed)
        templates = (0..<classes).map { _ in
            var canvas = [Float](repeating: 0, count: side * side)
            for _ in 0..<3 {
                let (x0, y0) = (Int(generator.next() % UInt64(side)), Int(generator.next() % UInt64(side)))
                let (x1, y1) = (Int(generator.next() % UInt64(side)), Int(generator.next() % UInt64(side)))
                for step in 0...20 {
                    let t = Float(step) / 20
                    let x = Int((Float(x0) + t * Float(x1 - x0)).rounded()), y = Int((Float(y0) + t * Float(y1 - y0)).rounded())
                    canvas[y * side + x] = 1
                }
            }
            return canvas
        }
    }

    func sample(_ label: Int, using generator: inout SeededGenerator) -> [Float] {
        let dx = Int(generator.next() % 5) - 2, dy = Int(generator.next() % 5) - 2
        var out = [Float](repeating: 0, count: side * side)
        for y in 0..<side {
            for x in 0..<side {
                let (sx, sy) = (x - dx, y - dy)
                let ink: Float = sx >= 0 && sx < side && sy >= 0 && sy < side ? templates[label][sy * side + sx] : 0
                out[y * side + x] = ink + 0.15 * generator.nextGaussian()
            }
        }
        return out
    }
}

/// Area under the ROC curve of scores where a higher score means "same": the probability
/// that a random same pair outscores a random different pair (ties count half).
func rocAUC(same: [Float], different: [Float]) -> Double {
    var wins = 0.0
    for s in same {
        for d in different { wins += s > d ? 1 : (s == d ? 0.5 : 0) }
    }
    return wins / Double(same.count * different.count)
}
