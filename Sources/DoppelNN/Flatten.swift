// SPDX-License-Identifier: MIT

/// Reinterprets [N, C, H, W] as [N, C H W] (PyTorch's flatten order).
final class Flatten: Layer {
    let inputShape: TensorShape
    let outputShape: TensorShape
    var token: String { "flatten" }
    var parameterSpecs: [ParameterSpec] { [] }

    init(input: TensorShape) {
        inputShape = input
        outputShape = TensorShape(channels: input.count)
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        y.update(from: x, count: batch * inputShape.count)
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        dx?.update(from: dy, count: batch * inputShape.count)
    }
}

/// Scales each sample to unit euclidean norm.
/// x: [N, D] -> y: [N, D],  y = x / max(|x|, eps);  dx = (dy - y (y . dy)) / |x|
final class L2Normalize: Layer {
    static let epsilon: Float = 1e-12
    let inputShape: TensorShape
    var outputShape: TensorShape { inputShape }
    var token: String { "l2norm" }
    var parameterSpecs: [ParameterSpec] { [] }
    private var norms: [Float] = []

    init(input: TensorShape) { inputShape = input }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        let d = inputShape.count
        if norms.count < batch { norms = Array(repeating: 0, count: batch) }
        for n in 0..<batch {
            var sum: Float = 0
            for i in 0..<d { sum += x[n * d + i] * x[n * d + i] }
            let norm = max(sum.squareRoot(), Self.epsilon)
            norms[n] = norm
            for i in 0..<d { y[n * d + i] = x[n * d + i] / norm }
        }
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        guard let dx else { return }
        let d = inputShape.count
        for n in 0..<batch {
            var dot: Float = 0
            for i in 0..<d { dot += y[n * d + i] * dy[n * d + i] }
            for i in 0..<d { dx[n * d + i] = (dy[n * d + i] - y[n * d + i] * dot) / norms[n] }
        }
    }
}
