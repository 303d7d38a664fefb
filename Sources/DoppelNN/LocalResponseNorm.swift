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
    /// s_c for every element of the last forward.
    private var scale: [Float] = []

    init(input: TensorShape, size: Int, alpha: Float, beta: Float, k: Float) {
        inputShape = input
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k
    }

    /// Channels j whose window covers c, and the window of c: [c - size/2, c + (size-1)/2],
    /// PyTorch's padding of the channel axis.
    private func window(_ c: Int) -> ClosedRange<Int> {
        max(0, c - size / 2)...min(inputShape.channels - 1, c + (size - 1) / 2)
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        let (channels, spatial) = (inputShape.channels, inputShape.spatial)
        let count = batch * inputShape.count
        if scale.count < count { scale = Array(repeating: 0, count: count) }
        for n in 0..<batch {
            let base = n * inputShape.count
            for c in 0..<channels {
                for i in 0..<spatial {
                    var sum: Float = 0
                    for j in window(c) {
                        let v = x[base + j * spatial + i]
                        sum += v * v
                    }
                    let s = k + alpha / Float(size) * sum
                    scale[base + c * spatial + i] = s
                    y[base + c * spatial + i] = x[base + c * spatial + i] * powf(s, -beta)
                }
            }
        }
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        guard let dx else { return }
        let (channels, spatial) = (inputShape.channels, inputShape.spatial)
        let coefficient = 2 * alpha * beta / Float(size)
        for n in 0..<batch {
            let base = n * inputShape.count
            for c in 0..<channels {
                for i in 0..<spatial {
                    let at = base + c * spatial + i
                    var cross: Float = 0
                    // Channels j whose window contains c: the same range, by symmetry of the
                    // padding only when size is odd, so compute it directly.
                    for j in max(0, c - (size - 1) / 2)...min(channels - 1, c + size / 2) {
                        let aj = base + j * spatial + i
                        cross += dy[aj] * x[aj] * powf(scale[aj], -beta - 1)
                    }
                    dx[at] = dy[at] * powf(scale[at], -beta) - coefficient * x[at] * cross
                }
            }
        }
    }
}
