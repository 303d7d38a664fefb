// SPDX-License-Identifier: MIT

/// Layer normalisation over all of a sample's features, with a learned scale and shift per
/// feature (PyTorch `nn.LayerNorm(shape of one sample)`; on a flat [D] vector, the usual
/// `LayerNorm(D)`).
/// x: [N, F] -> y: [N, F];  y = gamma xhat + beta,  xhat = (x - mean) istd
/// dx = istd / F (F g - sum g - xhat sum(g xhat)),  g = dy gamma;  dgamma += dy xhat;  dbeta += dy
final class LayerNorm: Layer {
    static let defaultEpsilon: Float = 1e-5
    let inputShape: TensorShape
    var outputShape: TensorShape { inputShape }
    let epsilon: Float
    var token: String { Architecture.describe(.layerNorm(epsilon: epsilon)) }
    var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "weight", shape: [inputShape.count]), ParameterSpec(name: "bias", shape: [inputShape.count])]
    }
    /// Per sample from the last forward: mean and 1 / sqrt(var + eps).
    private var means: [Float] = [], inverseStds: [Float] = []

    init(input: TensorShape, epsilon: Float) {
        inputShape = input
        self.epsilon = epsilon
    }

    func initialize(_ parameters: UnsafeMutablePointer<Float>, using generator: inout SeededGenerator) {
        parameters.update(repeating: 1, count: inputShape.count)
        (parameters + inputShape.count).update(repeating: 0, count: inputShape.count)
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        let f = inputShape.count
        let gamma = parameters, beta = parameters + f
        if means.count < batch {
            means = Array(repeating: 0, count: batch)
            inverseStds = means
        }
        for n in 0..<batch {
            let row = x + n * f, out = y + n * f
            var sum: Float = 0
            for i in 0..<f { sum += row[i] }
            let mean = sum / Float(f)
            var squares: Float = 0
            for i in 0..<f { squares += (row[i] - mean) * (row[i] - mean) }
            let inverseStd = 1 / (squares / Float(f) + epsilon).squareRoot()
            means[n] = mean
            inverseStds[n] = inverseStd
            for i in 0..<f { out[i] = (row[i] - mean) * inverseStd * gamma[i] + beta[i] }
        }
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        let f = inputShape.count
        let gamma = parameters, dGamma = dParameters, dBeta = dParameters + f
        for n in 0..<batch {
            let row = x + n * f, g = dy + n * f
            let (mean, inverseStd) = (means[n], inverseStds[n])
            var sumG: Float = 0, sumGXhat: Float = 0
            for i in 0..<f {
                let xhat = (row[i] - mean) * inverseStd
                dGamma[i] += g[i] * xhat
                dBeta[i] += g[i]
                sumG += g[i] * gamma[i]
                sumGXhat += g[i] * gamma[i] * xhat
            }
            guard let dx else { continue }
            let out = dx + n * f, scale = inverseStd / Float(f)
            for i in 0..<f {
                let xhat = (row[i] - mean) * inverseStd
                out[i] = scale * (Float(f) * g[i] * gamma[i] - sumG - xhat * sumGXhat)
            }
        }
    }
}
