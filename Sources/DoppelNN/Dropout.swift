// SPDX-License-Identifier: MIT

/// Inverted dropout: in training each element is kept with probability 1 - p and scaled by
/// 1 / (1 - p); in inference it is the identity.
/// x: [N, ...] -> y: [N, ...]
final class Dropout: Layer {
    let inputShape: TensorShape
    var outputShape: TensorShape { inputShape }
    let probability: Float
    var token: String { "dropout(\(probability))" }
    var parameterSpecs: [ParameterSpec] { [] }

    private var generator: SeededGenerator
    private var mask: [Float] = []
    /// Reuse the last mask instead of drawing a new one (finite-difference checks need the
    /// same function on every evaluation).
    var freezesMask = false

    init(input: TensorShape, probability: Float, seed: UInt64) {
        inputShape = input
        self.probability = probability
        generator = SeededGenerator(seed: seed)
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        let count = batch * inputShape.count
        guard mode == .training, probability > 0 else {
            y.update(from: x, count: count)
            return
        }
        if !(freezesMask && mask.count == count) {
            let scale = 1 / (1 - probability)
            if mask.count != count { mask = Array(repeating: 0, count: count) }
            for i in 0..<count { mask[i] = generator.nextUnitFloat() >= probability ? scale : 0 }
        }
        for i in 0..<count { y[i] = x[i] * mask[i] }
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        guard let dx else { return }
        let count = batch * inputShape.count
        if mask.count == count {
            for i in 0..<count { dx[i] = dy[i] * mask[i] }
        } else {
            dx.update(from: dy, count: count)
        }
    }
}
