// SPDX-License-Identifier: MIT

/// Zero padding of the spatial axes (ONNX `Pad` in constant mode, Keras "same" padding
/// written out before a convolution).
/// x: [N, C, H, W] -> y: [N, C, top + H + bottom, left + W + right]; dx is dy's inner window
final class Padding: Layer {
    let inputShape: TensorShape
    let outputShape: TensorShape
    let top: Int, left: Int, bottom: Int, right: Int
    var token: String { Architecture.describe(.pad(top: top, left: left, bottom: bottom, right: right)) }
    var parameterSpecs: [ParameterSpec] { [] }

    init(input: TensorShape, top: Int, left: Int, bottom: Int, right: Int) {
        inputShape = input
        (self.top, self.left, self.bottom, self.right) = (top, left, bottom, right)
        outputShape = TensorShape(channels: input.channels, height: top + input.height + bottom, width: left + input.width + right)
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        let (h, w, ow) = (inputShape.height, inputShape.width, outputShape.width)
        y.update(repeating: 0, count: batch * outputShape.count)
        for p in 0..<(batch * inputShape.channels) {
            let source = x + p * inputShape.spatial, target = y + p * outputShape.spatial
            for row in 0..<h { (target + (row + top) * ow + left).update(from: source + row * w, count: w) }
        }
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        guard let dx else { return }
        let (h, w, ow) = (inputShape.height, inputShape.width, outputShape.width)
        for p in 0..<(batch * inputShape.channels) {
            let source = dy + p * outputShape.spatial, target = dx + p * inputShape.spatial
            for row in 0..<h { (target + row * w).update(from: source + (row + top) * ow + left, count: w) }
        }
    }
}

/// A permutation of the per-sample axes (C, H, W) = (0, 1, 2): `transpose(1,2,0)` turns CHW
/// into HWC. Models exported from Keras or TensorFlow take NHWC and transpose to NCHW first.
/// x: [N, d0, d1, d2] -> y: [N, d_p0, d_p1, d_p2]; dx is dy permuted back
final class Transpose: Layer {
    let inputShape: TensorShape
    let outputShape: TensorShape
    let permutation: [Int]
    var token: String { Architecture.describe(.transpose(permutation: permutation)) }
    var parameterSpecs: [ParameterSpec] { [] }
    /// Input strides of the output's axes.
    private let strides: [Int]

    init(input: TensorShape, permutation: [Int]) {
        inputShape = input
        self.permutation = permutation
        let dims = [input.channels, input.height, input.width]
        let inputStrides = [input.height * input.width, input.width, 1]
        outputShape = TensorShape(channels: dims[permutation[0]], height: dims[permutation[1]], width: dims[permutation[2]])
        strides = permutation.map { inputStrides[$0] }
    }

    /// y[i, j, k] = x at i s0 + j s1 + k s2 (forward), or its adjoint (backward).
    private func permute(_ from: UnsafePointer<Float>, _ to: UnsafeMutablePointer<Float>, batch: Int, adjoint: Bool) {
        let (d0, d1, d2) = (outputShape.channels, outputShape.height, outputShape.width)
        let count = inputShape.count
        for n in 0..<batch {
            let source = from + n * count, target = to + n * count
            var o = 0
            for i in 0..<d0 {
                for j in 0..<d1 {
                    let base = i * strides[0] + j * strides[1]
                    if adjoint {
                        for k in 0..<d2 { target[base + k * strides[2]] = source[o + k] }
                    } else {
                        for k in 0..<d2 { target[o + k] = source[base + k * strides[2]] }
                    }
                    o += d2
                }
            }
        }
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        permute(x, y, batch: batch, adjoint: false)
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        guard let dx else { return }
        permute(dy, dx, batch: batch, adjoint: true)
    }
}

/// A learned scale and shift per channel: y = weight[c] x + bias[c]. Imported models use it
/// for Mul / Add / Sub / Div by constants (input normalisation written into the graph).
/// x: [N, C, H, W] -> y: [N, C, H, W];  dweight[c] += sum dy x, dbias[c] += sum dy, dx = dy weight
final class Affine: Layer {
    let inputShape: TensorShape
    var outputShape: TensorShape { inputShape }
    var token: String { "affine" }
    var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "weight", shape: [inputShape.channels]), ParameterSpec(name: "bias", shape: [inputShape.channels])]
    }

    init(input: TensorShape) { inputShape = input }

    func initialize(_ parameters: UnsafeMutablePointer<Float>, using generator: inout SeededGenerator) {
        parameters.update(repeating: 1, count: inputShape.channels)
        (parameters + inputShape.channels).update(repeating: 0, count: inputShape.channels)
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        let (channels, spatial) = (inputShape.channels, inputShape.spatial)
        for n in 0..<batch {
            for c in 0..<channels {
                let offset = (n * channels + c) * spatial, scale = parameters[c], shift = parameters[channels + c]
                for i in offset..<(offset + spatial) { y[i] = x[i] * scale + shift }
            }
        }
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        let (channels, spatial) = (inputShape.channels, inputShape.spatial)
        for n in 0..<batch {
            for c in 0..<channels {
                let offset = (n * channels + c) * spatial, scale = parameters[c]
                var dScale: Float = 0, dShift: Float = 0
                for i in offset..<(offset + spatial) {
                    dScale += dy[i] * x[i]
                    dShift += dy[i]
                }
                dParameters[c] += dScale
                dParameters[channels + c] += dShift
                if let dx { for i in offset..<(offset + spatial) { dx[i] = dy[i] * scale } }
            }
        }
    }
}
