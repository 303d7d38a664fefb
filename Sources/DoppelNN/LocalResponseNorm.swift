// SPDX-License-Identifier: MIT
import Foundation

/// Local response normalisation across channels (Krizhevsky et al. 2012; PyTorch's
/// `LocalResponseNorm`): y_c = x_c / s_c^beta, s_c = k + alpha / size * sum of x_j^2 over the
/// `size` channels centred on c.
/// x: [N, C, H, W] -> y: [N, C, H, W]
/// dx_c = dy_c / s_c^beta - 2 alpha beta / size * x_c * sum_{j: c in window(j)} dy_j x_j / s_j^(beta+1)
final class LocalResponseNorm: Layer {
    let inputShape: TensorShape
    var outputShape: TensorShape { inputShape }
    let size: Int, alpha: Float, beta: Float, k: Float
    var token: String { "lrn(\(size),alpha=\(alpha),beta=\(beta),k=\(k))" }
    var parameterSpecs: [ParameterSpec] { [] }
    /// From the last forward, per element: s, and s^-beta (the one power a forward takes).
    private var scale: [Float] = []
    private var inverseScale: [Float] = []
    /// One sample's x^2 (forward) or dy x s^(-beta-1) (backward), summed over channel windows.
    private var channelTerms: [Float] = []

    init(input: TensorShape, size: Int, alpha: Float, beta: Float, k: Float) {
        inputShape = input
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k
    }

    /// The channels summed into s_c: [c - size/2, c + (size-1)/2], PyTorch's padding of the
    /// channel axis.
    private func window(_ c: Int) -> ClosedRange<Int> {
        max(0, c - size / 2)...min(inputShape.channels - 1, c + (size - 1) / 2)
    }

    /// The channels j whose window contains c (the mirror image of `window`, which differs
    /// from it when size is even).
    private func coveringChannels(_ c: Int) -> ClosedRange<Int> {
        max(0, c - (size - 1) / 2)...min(inputShape.channels - 1, c + size / 2)
    }

    // Both passes work plane by plane (a channel's H*W values are contiguous), so the inner
    // loops run over contiguous memory and vectorise; per element the forward takes one power
    // and the backward none (s^(-beta-1) = s^-beta / s).

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        let (channels, spatial, perSample) = (inputShape.channels, inputShape.spatial, inputShape.count)
        let count = batch * perSample
        if scale.count < count {
            scale = Array(repeating: 0, count: count)
            inverseScale = Array(repeating: 0, count: count)
        }
        if channelTerms.count < perSample { channelTerms = Array(repeating: 0, count: perSample) }
        let weight = alpha / Float(size)
        scale.withUnsafeMutableBufferPointer { scale in
            inverseScale.withUnsafeMutableBufferPointer { inverse in
                channelTerms.withUnsafeMutableBufferPointer { squares in
                    for n in 0..<batch {
                        let sample = x + n * perSample
                        for i in 0..<perSample { squares[i] = sample[i] * sample[i] }
                        for c in 0..<channels {
                            let plane = n * perSample + c * spatial
                            for i in 0..<spatial { scale[plane + i] = 0 }
                            for j in window(c) {
                                for i in 0..<spatial { scale[plane + i] += squares[j * spatial + i] }
                            }
                            for i in 0..<spatial {
                                scale[plane + i] = k + weight * scale[plane + i]
                                let value = scale[plane + i]
                                // s^-0.75 (the default, AlexNet's) as square roots: no powf call.
                                inverse[plane + i] = beta == 0.75 ? 1 / (sqrtf(value) * sqrtf(sqrtf(value))) : powf(value, -beta)
                                y[plane + i] = x[plane + i] * inverse[plane + i]
                            }
                        }
                    }
                }
            }
        }
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        guard let dx else { return }
        let (channels, spatial, perSample) = (inputShape.channels, inputShape.spatial, inputShape.count)
        let coefficient = 2 * alpha * beta / Float(size)
        scale.withUnsafeBufferPointer { scale in
            inverseScale.withUnsafeBufferPointer { inverse in
                channelTerms.withUnsafeMutableBufferPointer { terms in
                    for n in 0..<batch {
                        let base = n * perSample
                        // terms_j = dy_j x_j s_j^(-beta-1)
                        for i in 0..<perSample { terms[i] = dy[base + i] * x[base + i] * inverse[base + i] / scale[base + i] }
                        for c in 0..<channels {
                            let plane = base + c * spatial
                            for i in 0..<spatial { dx[plane + i] = 0 }
                            // dx temporarily holds the cross term: the sum of terms_j over the
                            // channels j whose window contains c.
                            for j in coveringChannels(c) {
                                for i in 0..<spatial { dx[plane + i] += terms[j * spatial + i] }
                            }
                            for i in 0..<spatial {
                                dx[plane + i] = dy[plane + i] * inverse[plane + i] - coefficient * x[plane + i] * dx[plane + i]
                            }
                        }
                    }
                }
            }
        }
    }
}
