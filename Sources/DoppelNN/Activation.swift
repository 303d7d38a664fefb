// SPDX-License-Identifier: MIT
import Foundation

/// An element-wise function and its derivative, shared by the activation layer and by the
/// epilogues that convolutions and merges apply at inference (one pass instead of two).
public enum ActivationFunction: Equatable, Sendable {
    case relu
    case leakyReLU(slope: Float)
    case sigmoid
    case tanh
    /// x sigmoid(x) (swish).
    case silu
    /// x relu6(x + 3) / 6 (MobileNetV3).
    case hardSwish
    /// max(0, min(1, alpha x + beta)); PyTorch's is alpha 1/6, beta 1/2 (ONNX's default alpha is 0.2).
    case hardSigmoid(alpha: Float, beta: Float)
    /// x Phi(x), the exact (erf) form.
    case gelu
    /// min(max(x, min), max); relu6 is clip(0, 6).
    case clip(min: Float, max: Float)
    case abs

    var token: String {
        switch self {
        case .relu: "relu"
        case .leakyReLU(let slope): "leakyrelu(\(slope))"
        case .sigmoid: "sigmoid"
        case .tanh: "tanh"
        case .silu: "silu"
        case .hardSwish: "hardswish"
        case .hardSigmoid(let alpha, let beta): alpha == 1.0 / 6 && beta == 0.5 ? "hardsigmoid" : "hardsigmoid(\(alpha),\(beta))"
        case .gelu: "gelu"
        case .clip(let low, let high): low == 0 && high == 6 ? "relu6" : "clip(\(low),\(high))"
        case .abs: "abs"
        }
    }

    /// y = f(x) over `count` elements (in place when x == y). The piecewise-linear functions run
    /// eight at a time (ResNet-18's fused ReLUs: 2% of its forward scalar).
    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        let zero = Vector(repeating: 0)
        switch self {
        case .relu:
            forEachVector(count, { y.store(x.vector($0).replacing(with: zero, where: x.vector($0) .< zero), $0) }, { y[$0] = max(x[$0], 0) })
        case .clip(let low, let high):
            let (lower, upper) = (Vector(repeating: low), Vector(repeating: high))
            forEachVector(count, { y.store(x.vector($0).clamped(lowerBound: lower, upperBound: upper), $0) }, { y[$0] = min(max(x[$0], low), high) })
        case .hardSwish:
            let (three, six, sixth) = (Vector(repeating: 3), Vector(repeating: 6), Vector(repeating: 1.0 / 6))
            forEachVector(count, { i in
                let v = x.vector(i)
                y.store(v * (v + three).clamped(lowerBound: zero, upperBound: six) * sixth, i)
            }, { y[$0] = x[$0] * min(max(x[$0] + 3, 0), 6) * (1.0 / 6) })
        case .hardSigmoid(let alpha, let beta):
            let (a, b, one) = (Vector(repeating: alpha), Vector(repeating: beta), Vector(repeating: 1))
            forEachVector(count, { y.store((a * x.vector($0) + b).clamped(lowerBound: zero, upperBound: one), $0) },
                          { y[$0] = min(max(alpha * x[$0] + beta, 0), 1) })
        case .leakyReLU(let slope):
            let s = Vector(repeating: slope)
            forEachVector(count, { i in
                let v = x.vector(i)
                y.store(v.replacing(with: v * s, where: v .< zero), i)
            }, { y[$0] = x[$0] > 0 ? x[$0] : slope * x[$0] })
        case .sigmoid: for i in 0..<count { y[i] = 1 / (1 + expf(-x[i])) }
        case .tanh: for i in 0..<count { y[i] = tanhf(x[i]) }
        case .silu: for i in 0..<count { y[i] = x[i] / (1 + expf(-x[i])) }
        case .gelu: for i in 0..<count { y[i] = 0.5 * x[i] * (1 + erff(x[i] * 0.70710678)) }
        case .abs: for i in 0..<count { y[i] = Swift.abs(x[i]) }
        }
    }

    /// dx = dy f'(x), with y = f(x) at hand for the functions whose slope is cheaper from it.
    func derivative(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                    _ dx: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .relu: for i in 0..<count { dx[i] = x[i] > 0 ? dy[i] : 0 }
        case .leakyReLU(let slope): for i in 0..<count { dx[i] = x[i] > 0 ? dy[i] : slope * dy[i] }
        case .sigmoid: for i in 0..<count { dx[i] = dy[i] * y[i] * (1 - y[i]) }
        case .tanh: for i in 0..<count { dx[i] = dy[i] * (1 - y[i] * y[i]) }
        case .silu:
            // d/dx x s(x) = s + x s (1 - s)
            for i in 0..<count {
                let s = 1 / (1 + expf(-x[i]))
                dx[i] = dy[i] * (s + x[i] * s * (1 - s))
            }
        case .hardSwish:
            for i in 0..<count { dx[i] = x[i] <= -3 ? 0 : (x[i] >= 3 ? dy[i] : dy[i] * (2 * x[i] + 3) * (1.0 / 6)) }
        case .hardSigmoid(let alpha, let beta):
            for i in 0..<count {
                let z = alpha * x[i] + beta
                dx[i] = z > 0 && z < 1 ? dy[i] * alpha : 0
            }
        case .gelu:
            // d/dx x Phi(x) = Phi(x) + x phi(x)
            for i in 0..<count {
                let phi = expf(-0.5 * x[i] * x[i]) * 0.39894228
                dx[i] = dy[i] * (0.5 * (1 + erff(x[i] * 0.70710678)) + x[i] * phi)
            }
        case .clip(let low, let high): for i in 0..<count { dx[i] = x[i] > low && x[i] < high ? dy[i] : 0 }
        case .abs: for i in 0..<count { dx[i] = x[i] > 0 ? dy[i] : (x[i] < 0 ? -dy[i] : 0) }
        }
    }
}

/// Element-wise activations. x: [N, ...] -> y: [N, ...] (same shape)
final class Activation: Layer {
    let function: ActivationFunction
    let inputShape: TensorShape
    var outputShape: TensorShape { inputShape }
    var parameterSpecs: [ParameterSpec] { [] }
    var token: String { function.token }

    init(_ function: ActivationFunction, input: TensorShape) {
        self.function = function
        inputShape = input
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        function.apply(x, y, count: batch * inputShape.count)
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        guard let dx else { return }
        function.derivative(x, y, dy, dx, count: batch * inputShape.count)
    }
}

/// Parametric ReLU with one learned slope per channel (PyTorch `nn.PReLU(C)`, ArcFace's
/// IResNet): y = x for x > 0, a[c] x otherwise.
/// x: [N, C, H, W] -> y: [N, C, H, W];  da[c] += sum over x <= 0 of dy x
final class PReLU: Layer {
    let inputShape: TensorShape
    var outputShape: TensorShape { inputShape }
    var token: String { "prelu" }
    var parameterSpecs: [ParameterSpec] { [ParameterSpec(name: "weight", shape: [inputShape.channels])] }

    init(input: TensorShape) { inputShape = input }

    func initialize(_ parameters: UnsafeMutablePointer<Float>, using generator: inout SeededGenerator) {
        parameters.update(repeating: 0.25, count: inputShape.channels)  // PyTorch's default
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        let (channels, spatial) = (inputShape.channels, inputShape.spatial)
        for n in 0..<batch {
            for c in 0..<channels {
                let offset = (n * channels + c) * spatial, slope = parameters[c]
                for i in offset..<(offset + spatial) { y[i] = x[i] > 0 ? x[i] : slope * x[i] }
            }
        }
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        let (channels, spatial) = (inputShape.channels, inputShape.spatial)
        for n in 0..<batch {
            for c in 0..<channels {
                let offset = (n * channels + c) * spatial, slope = parameters[c]
                var dSlope: Float = 0
                for i in offset..<(offset + spatial) where x[i] <= 0 { dSlope += dy[i] * x[i] }
                dParameters[c] += dSlope
                if let dx { for i in offset..<(offset + spatial) { dx[i] = x[i] > 0 ? dy[i] : slope * dy[i] } }
            }
        }
    }
}
