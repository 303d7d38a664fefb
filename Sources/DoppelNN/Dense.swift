// SPDX-License-Identifier: MIT

/// Fully connected layer.
/// x: [N, in] -> y: [N, out];  y = x W^T + b,  W: [out, in], b: [out]
final class Dense: Layer {
    let inputShape: TensorShape
    let outputShape: TensorShape
    let initializer: Initializer
    /// An activation applied to the output in the same forward (inference plans only).
    var epilogue: ActivationFunction?
    var token: String { "dense(\(outputShape.channels)\(initializer == .glorot ? ",init=glorot" : ""))" }
    private var inFeatures: Int { inputShape.count }
    static let transposedBelow = 64
    private let transposed = FloatBuffer()
    private var outFeatures: Int { outputShape.channels }

    var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "weight", shape: [outFeatures, inFeatures]), ParameterSpec(name: "bias", shape: [outFeatures])]
    }

    init(input: TensorShape, outputs: Int, initializer: Initializer = .he) {
        inputShape = input
        outputShape = TensorShape(channels: outputs)
        self.initializer = initializer
    }

    func initialize(_ parameters: UnsafeMutablePointer<Float>, using generator: inout SeededGenerator) {
        let count = outFeatures * inFeatures
        switch initializer {
        case .he: heNormal(parameters, count: count, fanIn: inFeatures, using: &generator)
        case .glorot: glorotUniform(parameters, count: count, fanIn: inFeatures, fanOut: outFeatures, using: &generator)
        }
        (parameters + count).update(repeating: 0, count: outFeatures)
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        product(x, y, batch: batch, parameters: parameters)
        epilogue?.apply(y, y, count: batch * outFeatures)
    }

    /// y = x W^T + b.
    private func product(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, parameters: UnsafePointer<Float>) {
        let weight = parameters, bias = parameters + outFeatures * inFeatures
        // y = b, broadcast over rows, then y += x W^T.
        for n in 0..<batch { (y + n * outFeatures).update(from: bias, count: outFeatures) }
        if batch == 1 {
            // One sample is a matrix-vector product: sgemv streams W once, where sgemm with
            // m = 1 pays for packing: MLP 784-1024-1024-2 at batch 1, 1,824 -> 14,684 images/s.
            BLAS.gemv(.none, rows: outFeatures, columns: inFeatures, a: weight, lda: inFeatures, x: x, beta: 1, y: y)
            return
        }
        if batch < Self.transposedBelow {
            // Small batches as y^T[out, N] = W x^T: OpenBLAS splits the long output dimension
            // over its threads instead of a 32-row one (784-1024-1024-2 at batch 32:
            // 23,000-28,000 -> 29,700-32,800 images/s).
            let yT = transposed.reserve(outFeatures * batch)
            BLAS.gemm(
                .none, .transposed,
                m: outFeatures, n: batch, k: inFeatures,
                a: weight, lda: inFeatures,
                b: x, ldb: inFeatures,
                beta: 0,
                c: yT, ldc: batch)
            for n in 0..<batch {
                let row = y + n * outFeatures
                for o in 0..<outFeatures { row[o] += yT[o * batch + n] }
            }
            return
        }
        BLAS.gemm(
            .none, .transposed,
            m: batch, n: outFeatures, k: inFeatures,
            a: x, lda: inFeatures,
            b: weight, ldb: inFeatures,
            beta: 1,
            c: y, ldc: outFeatures)
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        precondition(epilogue == nil, "fused epilogues are for inference plans")
        let weight = parameters
        let dWeight = dParameters, dBias = dParameters + outFeatures * inFeatures
        // dW[out, in] += dy^T x
        BLAS.gemm(
            .transposed, .none,
            m: outFeatures, n: inFeatures, k: batch,
            a: dy, lda: outFeatures,
            b: x, ldb: inFeatures,
            beta: 1,
            c: dWeight, ldc: inFeatures)
        // db[out] += sum over the batch of dy
        for n in 0..<batch {
            let row = dy + n * outFeatures
            for o in 0..<outFeatures { dBias[o] += row[o] }
        }
        // dx[N, in] = dy W
        if let dx {
            BLAS.gemm(
                .none, .none,
                m: batch, n: inFeatures, k: outFeatures,
                a: dy, lda: outFeatures,
                b: weight, ldb: inFeatures,
                beta: 0,
                c: dx, ldc: inFeatures)
        }
    }
}
