// SPDX-License-Identifier: MIT

/// Batch normalisation per channel (over N, H, W), or per feature for flat inputs.
/// x: [N, C, H, W] -> y: [N, C, H, W];  y = gamma (x - mean) / sqrt(var + eps) + beta
/// Training uses the batch's statistics and updates the running ones (momentum 0.1, as
/// PyTorch); inference uses the running ones.
final class BatchNorm: Layer {
    static let defaultEpsilon: Float = 1e-5
    static let momentum: Float = 0.1
    let inputShape: TensorShape
    var outputShape: TensorShape { inputShape }
    let epsilon: Float
    var token: String { Architecture.describe(.batchNorm(epsilon: epsilon)) }
    private var channels: Int { inputShape.channels }

    var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "weight", shape: [channels]), ParameterSpec(name: "bias", shape: [channels])]
    }
    var stateSpecs: [ParameterSpec] {
        [ParameterSpec(name: "running_mean", shape: [channels]), ParameterSpec(name: "running_var", shape: [channels])]
    }

    private var runningMean: [Float]
    private var runningVariance: [Float]
    /// Per channel, from the last training forward: mean and 1 / sqrt(var + eps).
    private var batchMean: [Float]
    private var batchInverseStd: [Float]

    var state: [Float] {
        get { runningMean + runningVariance }
        set {
            precondition(newValue.count == 2 * channels)
            runningMean = Array(newValue[0..<channels])
            runningVariance = Array(newValue[channels...])
        }
    }

    init(input: TensorShape, epsilon: Float = BatchNorm.defaultEpsilon) {
        inputShape = input
        self.epsilon = epsilon
        runningMean = Array(repeating: 0, count: input.channels)
        runningVariance = Array(repeating: 1, count: input.channels)
        batchMean = runningMean
        batchInverseStd = runningVariance
    }

    /// The inference transform as y = scale[c] x + shift[c], from the running statistics: what
    /// folds into a preceding convolution's weights and bias.
    func inferenceScaleAndShift(parameters: UnsafePointer<Float>) -> (scale: [Float], shift: [Float]) {
        var scale = [Float](repeating: 0, count: channels), shift = scale
        for c in 0..<channels {
            scale[c] = parameters[c] / (runningVariance[c] + epsilon).squareRoot()
            shift[c] = parameters[channels + c] - runningMean[c] * scale[c]
        }
        return (scale, shift)
    }

    func initialize(_ parameters: UnsafeMutablePointer<Float>, using generator: inout SeededGenerator) {
        parameters.update(repeating: 1, count: channels)
        (parameters + channels).update(repeating: 0, count: channels)
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        let gamma = parameters, beta = parameters + channels
        let spatial = inputShape.spatial, stride = inputShape.count
        let m = Float(batch * spatial)
        for c in 0..<channels {
            var mean: Float, inverseStd: Float
            if mode == .training {
                var sum: Double = 0, sumSquares: Double = 0
                for n in 0..<batch {
                    let plane = x + n * stride + c * spatial
                    for i in 0..<spatial {
                        sum += Double(plane[i])
                        sumSquares += Double(plane[i]) * Double(plane[i])
                    }
                }
                mean = Float(sum / Double(m))
                let variance = max(Float(sumSquares / Double(m)) - mean * mean, 0)
                inverseStd = 1 / (variance + epsilon).squareRoot()
                batchMean[c] = mean
                batchInverseStd[c] = inverseStd
                // Running variance is unbiased, as in PyTorch.
                let unbiased = m > 1 ? variance * m / (m - 1) : variance
                runningMean[c] += Self.momentum * (mean - runningMean[c])
                runningVariance[c] += Self.momentum * (unbiased - runningVariance[c])
            } else {
                mean = runningMean[c]
                inverseStd = 1 / (runningVariance[c] + epsilon).squareRoot()
            }
            let scale = gamma[c] * inverseStd, shift = beta[c] - mean * scale
            for n in 0..<batch {
                let from = x + n * stride + c * spatial, to = y + n * stride + c * spatial
                for i in 0..<spatial { to[i] = from[i] * scale + shift }
            }
        }
    }

    /// Training-mode backward: with xhat = (x - mean) * istd and g = dy * gamma,
    /// dx = istd / M * (M g - sum(g) - xhat sum(g xhat)); dgamma += sum(dy xhat); dbeta += sum(dy).
    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        let gamma = parameters
        let dGamma = dParameters, dBeta = dParameters + channels
        let spatial = inputShape.spatial, stride = inputShape.count
        let m = Float(batch * spatial)
        for c in 0..<channels {
            let mean = batchMean[c], inverseStd = batchInverseStd[c]
            var sumDy: Float = 0, sumDyXhat: Float = 0
            for n in 0..<batch {
                let xs = x + n * stride + c * spatial, dys = dy + n * stride + c * spatial
                for i in 0..<spatial {
                    sumDy += dys[i]
                    sumDyXhat += dys[i] * (xs[i] - mean) * inverseStd
                }
            }
            dGamma[c] += sumDyXhat
            dBeta[c] += sumDy
            guard let dx else { continue }
            let factor = gamma[c] * inverseStd / m
            for n in 0..<batch {
                let xs = x + n * stride + c * spatial, dys = dy + n * stride + c * spatial
                let dxs = dx + n * stride + c * spatial
                for i in 0..<spatial {
                    let xhat = (xs[i] - mean) * inverseStd
                    dxs[i] = factor * (m * dys[i] - sumDy - xhat * sumDyXhat)
                }
            }
        }
    }
}
