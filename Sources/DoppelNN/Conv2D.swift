// SPDX-License-Identifier: MIT

/// 2-D convolution by im2col + sgemm over chunks of the batch.
/// x: [N, C, H, W] -> y: [N, K, H', W'],  H' = (H + 2 pad - k) / stride + 1
/// W: [K, C, k, k] (= [K, C k k] row-major), b: [K]
///
/// For a chunk of B samples the columns are cols[C k k, B H' W'] and one GEMM gives
/// tmp[K, B H' W'] = W cols, which is then scattered to NCHW. Chunking keeps the columns
/// within `maxColumnFloats` while making late, small feature maps (3x3) one big GEMM
/// instead of many tiny ones.
final class Conv2D: Layer {
    let inputShape: TensorShape
    let outputShape: TensorShape
    let filters: Int, kernel: Int, stride: Int, padding: Int
    let initializer: Initializer
    /// 4 Mi floats (16 MB) of columns: large enough for full-width GEMMs, small enough to stay
    /// out of the way of the activations.
    static let maxColumnFloats = 1 << 22

    private let columns = FloatBuffer()
    private let product = FloatBuffer()

    var token: String {
        var parts = ["\(filters)", "\(kernel)"]
        if stride != 1 { parts.append("stride=\(stride)") }
        if padding != 0 { parts.append("pad=\(padding)") }
        if initializer == .glorot { parts.append("init=glorot") }
        return "conv(\(parts.joined(separator: ",")))"
    }

    private var patch: Int { inputShape.channels * kernel * kernel }
    /// Large feature maps make one GEMM per sample big enough and let it write NCHW directly;
    /// small ones (7x7, 3x3) are batched into one GEMM per chunk and scattered. The 4-layer
    /// 64-channel CNN on 28x28 at batch 256: (see the issue note for the measured gain).
    private var writesPerSample: Bool { outSpatial >= 128 }
    private var outSpatial: Int { outputShape.spatial }

    var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "weight", shape: [filters, inputShape.channels, kernel, kernel]),
         ParameterSpec(name: "bias", shape: [filters])]
    }

    /// The caller (the architecture builder) has checked that the output is at least 1x1.
    init(input: TensorShape, filters: Int, kernel: Int, stride: Int, padding: Int, initializer: Initializer = .he) {
        inputShape = input
        self.filters = filters
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.initializer = initializer
        outputShape = TensorShape(channels: filters,
                                  height: (input.height + 2 * padding - kernel) / stride + 1,
                                  width: (input.width + 2 * padding - kernel) / stride + 1)
    }

    func initialize(_ parameters: UnsafeMutablePointer<Float>, using generator: inout SeededGenerator) {
        let count = filters * patch
        switch initializer {
        case .he: heNormal(parameters, count: count, fanIn: patch, using: &generator)
        case .glorot:
            glorotUniform(parameters, count: count, fanIn: patch, fanOut: filters * kernel * kernel, using: &generator)
        }
        (parameters + count).update(repeating: 0, count: filters)
    }

    private func chunkSize(batch: Int) -> Int {
        max(1, min(batch, Self.maxColumnFloats / max(1, patch * outSpatial)))
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        let weight = parameters, bias = parameters + filters * patch
        let chunk = chunkSize(batch: batch)
        let cols = columns.reserve(patch * chunk * outSpatial)
        let tmp = product.reserve(filters * chunk * outSpatial)
        var start = 0
        while start < batch {
            let count = min(chunk, batch - start)
            let width = count * outSpatial
            im2col(x + start * inputShape.count, samples: count, into: cols)
            if writesPerSample {
                // y_b[K, H'W'] = b + W[K, Ckk] cols_b[Ckk, H'W'], straight into NCHW.
                for b in 0..<count {
                    let out = y + (start + b) * outputShape.count
                    for k in 0..<filters { (out + k * outSpatial).update(repeating: bias[k], count: outSpatial) }
                    BLAS.gemm(
                        .none, .none,
                        m: filters, n: outSpatial, k: patch,
                        a: weight, lda: patch,
                        b: cols + b * outSpatial, ldb: width,
                        beta: 1,
                        c: out, ldc: outSpatial)
                }
            } else {
                // tmp[K, B H'W'] = W[K, Ckk] cols[Ckk, B H'W'], then scattered to NCHW with the bias.
                BLAS.gemm(
                    .none, .none,
                    m: filters, n: width, k: patch,
                    a: weight, lda: patch,
                    b: cols, ldb: width,
                    beta: 0,
                    c: tmp, ldc: width)
                for b in 0..<count {
                    let out = y + (start + b) * outputShape.count
                    for k in 0..<filters {
                        let source = tmp + k * width + b * outSpatial
                        let destination = out + k * outSpatial
                        let bk = bias[k]
                        for i in 0..<outSpatial { destination[i] = source[i] + bk }
                    }
                }
            }
            start += count
        }
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        let weight = parameters
        let dWeight = dParameters, dBias = dParameters + filters * patch
        let chunk = chunkSize(batch: batch)
        let cols = columns.reserve(patch * chunk * outSpatial)
        let dyT = product.reserve(filters * chunk * outSpatial)
        if let dx { dx.update(repeating: 0, count: batch * inputShape.count) }
        var start = 0
        while start < batch {
            let count = min(chunk, batch - start)
            let width = count * outSpatial
            // Columns are recomputed rather than kept from forward: cheap next to the GEMMs,
            // and training memory stays one chunk's worth.
            im2col(x + start * inputShape.count, samples: count, into: cols)
            for b in 0..<count {
                let source = dy + (start + b) * outputShape.count
                for k in 0..<filters {
                    var sum: Float = 0
                    for i in 0..<outSpatial { sum += source[k * outSpatial + i] }
                    dBias[k] += sum
                }
            }
            if writesPerSample {
                for b in 0..<count {
                    let dyB = dy + (start + b) * outputShape.count
                    // dW[K, Ckk] += dy_b[K, H'W'] cols_b^T[H'W', Ckk]
                    BLAS.gemm(
                        .none, .transposed,
                        m: filters, n: patch, k: outSpatial,
                        a: dyB, lda: outSpatial,
                        b: cols + b * outSpatial, ldb: width,
                        beta: 1,
                        c: dWeight, ldc: patch)
                }
                if dx != nil {
                    for b in 0..<count {
                        let dyB = dy + (start + b) * outputShape.count
                        // dcols_b[Ckk, H'W'] = W^T[Ckk, K] dy_b[K, H'W'] (into the columns buffer,
                        // whose sample b has been used by the dW product above)
                        BLAS.gemm(
                            .transposed, .none,
                            m: patch, n: outSpatial, k: filters,
                            a: weight, lda: patch,
                            b: dyB, ldb: outSpatial,
                            beta: 0,
                            c: cols + b * outSpatial, ldc: width)
                    }
                }
            } else {
                // Gather dy to dyT[K, B H'W'] so each product is one wide GEMM.
                for b in 0..<count {
                    let source = dy + (start + b) * outputShape.count
                    for k in 0..<filters {
                        (dyT + k * width + b * outSpatial).update(from: source + k * outSpatial, count: outSpatial)
                    }
                }
                // dW[K, Ckk] += dyT[K, B H'W'] cols^T[B H'W', Ckk]
                BLAS.gemm(
                    .none, .transposed,
                    m: filters, n: patch, k: width,
                    a: dyT, lda: width,
                    b: cols, ldb: width,
                    beta: 1,
                    c: dWeight, ldc: patch)
                if dx != nil {
                    // dcols[Ckk, B H'W'] = W^T[Ckk, K] dyT[K, B H'W'] (reusing the columns buffer)
                    BLAS.gemm(
                        .transposed, .none,
                        m: patch, n: width, k: filters,
                        a: weight, lda: patch,
                        b: dyT, ldb: width,
                        beta: 0,
                        c: cols, ldc: width)
                }
            }
            if let dx { col2im(cols, samples: count, into: dx + start * inputShape.count) }
            start += count
        }
    }

    /// Output columns ox in [first, last] whose input column ox*stride - pad + kj lies inside
    /// the image; empty when first > last. One definition for `im2col` and its adjoint.
    private func insideColumns(_ kj: Int) -> (first: Int, last: Int) {
        (max(0, (padding - kj + stride - 1) / stride), min(outputShape.width - 1, (inputShape.width - 1 + padding - kj) / stride))
    }

    /// cols[(c, ki, kj), (b, oy, ox)] = x[b, c, oy*stride - pad + ki, ox*stride - pad + kj], 0 outside.
    private func im2col(_ x: UnsafePointer<Float>, samples: Int, into cols: UnsafeMutablePointer<Float>) {
        let (channels, height, width) = (inputShape.channels, inputShape.height, inputShape.width)
        let (outH, outW) = (outputShape.height, outputShape.width)
        let rowLength = samples * outSpatial
        for c in 0..<channels {
            for ki in 0..<kernel {
                for kj in 0..<kernel {
                    let row = cols + ((c * kernel + ki) * kernel + kj) * rowLength
                    let (first, last) = insideColumns(kj)
                    for b in 0..<samples {
                        let plane = x + (b * channels + c) * height * width
                        let out = row + b * outSpatial
                        for oy in 0..<outH {
                            let iy = oy * stride - padding + ki
                            let dest = out + oy * outW
                            guard iy >= 0, iy < height, first <= last else {
                                dest.update(repeating: 0, count: outW)
                                continue
                            }
                            if first > 0 { dest.update(repeating: 0, count: first) }
                            if last < outW - 1 { (dest + last + 1).update(repeating: 0, count: outW - 1 - last) }
                            let source = plane + iy * width - padding + kj
                            if stride == 1 {
                                (dest + first).update(from: source + first, count: last - first + 1)
                            } else {
                                for ox in first...last { dest[ox] = source[ox * stride] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `im2col`: dx[b, c, iy, ix] += dcols[(c, ki, kj), (b, oy, ox)].
    private func col2im(_ cols: UnsafePointer<Float>, samples: Int, into dx: UnsafeMutablePointer<Float>) {
        let (channels, height, width) = (inputShape.channels, inputShape.height, inputShape.width)
        let (outH, outW) = (outputShape.height, outputShape.width)
        let rowLength = samples * outSpatial
        for c in 0..<channels {
            for ki in 0..<kernel {
                for kj in 0..<kernel {
                    let row = cols + ((c * kernel + ki) * kernel + kj) * rowLength
                    let (first, last) = insideColumns(kj)
                    guard first <= last else { continue }
                    for b in 0..<samples {
                        let plane = dx + (b * channels + c) * height * width
                        let source = row + b * outSpatial
                        for oy in 0..<outH {
                            let iy = oy * stride - padding + ki
                            guard iy >= 0, iy < height else { continue }
                            let target = plane + iy * width - padding + kj
                            let from = source + oy * outW
                            for ox in first...last { target[ox * stride] += from[ox] }
                        }
                    }
                }
            }
        }
    }
}
