// SPDX-License-Identifier: MIT
import Foundation

/// Element-wise activations. x: [N, ...] -> y: [N, ...] (same shape)
final class Activation: Layer {
    enum Function: Equatable {
        case relu
        case leakyReLU(slope: Float)
        case sigmoid
        case tanh
    }

    let function: Function
    let inputShape: TensorShape
    var outputShape: TensorShape { inputShape }
    var parameterSpecs: [ParameterSpec] { [] }

    var token: String {
        switch function {
        case .relu: "relu"
        case .leakyReLU(let slope): "leakyrelu(\(slope))"
        case .sigmoid: "sigmoid"
        case .tanh: "tanh"
        }
    }

    init(_ function: Function, input: TensorShape) {
        self.function = function
        inputShape = input
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        let count = batch * inputShape.count
        switch function {
        case .relu: for i in 0..<count { y[i] = max(x[i], 0) }
        case .leakyReLU(let slope): for i in 0..<count { y[i] = x[i] > 0 ? x[i] : slope * x[i] }
        case .sigmoid: for i in 0..<count { y[i] = 1 / (1 + expf(-x[i])) }
        case .tanh: for i in 0..<count { y[i] = tanhf(x[i]) }
        }
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        guard let dx else { return }
        let count = batch * inputShape.count
        switch function {
        case .relu: for i in 0..<count { dx[i] = x[i] > 0 ? dy[i] : 0 }
        case .leakyReLU(let slope): for i in 0..<count { dx[i] = x[i] > 0 ? dy[i] : slope * dy[i] }
        case .sigmoid: for i in 0..<count { dx[i] = dy[i] * y[i] * (1 - y[i]) }
        case .tanh: for i in 0..<count { dx[i] = dy[i] * (1 - y[i] * y[i]) }
        }
    }
}
