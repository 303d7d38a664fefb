// SPDX-License-Identifier: MIT

/// How an operand of an element-wise merge lines up with the output [C, H, W].
enum Broadcast: Equatable {
    /// Same shape as the output.
    case full
    /// One value per channel ([C] or [C, 1, 1]), repeated over H x W (squeeze-and-excitation).
    case perChannel
    /// One value per sample.
    case scalar

    init?(_ operand: TensorShape, output: TensorShape) {
        if operand == output { self = .full } else if operand.count == output.channels && operand.channels == output.channels {
            self = .perChannel
        } else if operand.count == 1 { self = .scalar } else { return nil }
    }
}

/// y = a + b or y = a * b, element by element, either operand broadcast per channel or per
/// sample. x: a [N, C, H, W] (or broadcast), b likewise -> y: [N, C, H, W]
/// Backward: da = dy (add) or dy b (mul), summed over the positions a was broadcast to; db alike.
final class ElementwiseMerge: MergeLayer {
    enum Operation { case add, multiply }
    let operation: Operation
    let inputShapes: [TensorShape]
    let outputShape: TensorShape
    let name: String
    var epilogue: ActivationFunction?
    private let broadcasts: [Broadcast]
    var token: String { operation == .add ? "add(@\(name))" : "mul(@\(name))" }

    /// Nil when the shapes cannot be broadcast together.
    init?(_ operation: Operation, inputs: [TensorShape], name: String) {
        precondition(inputs.count == 2)
        let output = inputs[0].count >= inputs[1].count ? inputs[0] : inputs[1]
        guard let a = Broadcast(inputs[0], output: output), let b = Broadcast(inputs[1], output: output) else { return nil }
        self.operation = operation
        inputShapes = inputs
        outputShape = output
        self.name = name
        broadcasts = [a, b]
    }

    /// The operand's values for sample n, channel c: a pointer and the step between positions
    /// (0 when broadcast over H x W).
    @inline(__always)
    private func operand<P>(_ base: P, _ index: Int, n: Int, c: Int, advance: (P, Int) -> P) -> (P, Int) {
        let (channels, spatial) = (outputShape.channels, outputShape.spatial)
        switch broadcasts[index] {
        case .full: return (advance(base, (n * channels + c) * spatial), 1)
        case .perChannel: return (advance(base, n * channels + c), 0)
        case .scalar: return (advance(base, n), 0)
        }
    }

    func forward(_ inputs: [UnsafePointer<Float>], _ y: UnsafeMutablePointer<Float>, batch: Int) {
        let (channels, spatial) = (outputShape.channels, outputShape.spatial)
        for n in 0..<batch {
            for c in 0..<channels {
                let (a, strideA) = operand(inputs[0], 0, n: n, c: c, advance: +)
                let (b, strideB) = operand(inputs[1], 1, n: n, c: c, advance: +)
                let out = y + (n * channels + c) * spatial
                switch (operation, strideA, strideB) {
                case (.add, 1, 1): for i in 0..<spatial { out[i] = a[i] + b[i] }
                case (.multiply, 1, 1): for i in 0..<spatial { out[i] = a[i] * b[i] }
                case (.multiply, 1, 0): let s = b[0]; for i in 0..<spatial { out[i] = a[i] * s }
                case (.multiply, 0, 1): let s = a[0]; for i in 0..<spatial { out[i] = s * b[i] }
                case (.add, _, _): for i in 0..<spatial { out[i] = a[i * strideA] + b[i * strideB] }
                case (.multiply, _, _): for i in 0..<spatial { out[i] = a[i * strideA] * b[i * strideB] }
                }
            }
        }
        if let epilogue { epilogue.apply(y, y, count: batch * outputShape.count) }
    }

    func backward(_ inputs: [UnsafePointer<Float>], _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dInputs: [UnsafeMutablePointer<Float>?], batch: Int) {
        precondition(epilogue == nil, "fused epilogues are for inference plans")
        let (channels, spatial) = (outputShape.channels, outputShape.spatial)
        for index in 0..<2 {
            guard let d = dInputs[index] else { continue }
            let other = 1 - index
            if broadcasts[index] != .full { d.update(repeating: 0, count: batch * inputShapes[index].count) }
            for n in 0..<batch {
                for c in 0..<channels {
                    let g = dy + (n * channels + c) * spatial
                    let (target, strideTarget) = operand(d, index, n: n, c: c, advance: +)
                    switch (operation, strideTarget) {
                    case (.add, 1): target.update(from: g, count: spatial)
                    case (.add, _):
                        var sum: Float = 0
                        for i in 0..<spatial { sum += g[i] }
                        target[0] += sum
                    case (.multiply, _):
                        let (b, strideB) = operand(inputs[other], other, n: n, c: c, advance: +)
                        if strideTarget == 1 {
                            for i in 0..<spatial { target[i] = g[i] * b[i * strideB] }
                        } else {
                            var sum: Float = 0
                            for i in 0..<spatial { sum += g[i] * b[i * strideB] }
                            target[0] += sum
                        }
                    }
                }
            }
        }
    }
}

/// y = a + b where the two may differ in channels, height and width: each is zero-padded to
/// the larger of each (at the end of the channels, the bottom and the right), as dlib's
/// add_prev does. x: a [N, Ca, Ha, Wa], b [N, Cb, Hb, Wb] -> y: [N, max C, max H, max W]
/// Backward: da (db) is dy cut to a's (b's) channels, rows and columns.
final class PaddedAdd: MergeLayer {
    let inputShapes: [TensorShape]
    let outputShape: TensorShape
    let name: String
    var epilogue: ActivationFunction?
    var token: String { "addpad(@\(name))" }

    init(inputs: [TensorShape], name: String) {
        precondition(inputs.count == 2)
        inputShapes = inputs
        outputShape = TensorShape(channels: max(inputs[0].channels, inputs[1].channels), height: max(inputs[0].height, inputs[1].height),
                                  width: max(inputs[0].width, inputs[1].width))
        self.name = name
    }

    func forward(_ inputs: [UnsafePointer<Float>], _ y: UnsafeMutablePointer<Float>, batch: Int) {
        let (height, width) = (outputShape.height, outputShape.width)
        y.update(repeating: 0, count: batch * outputShape.count)
        for n in 0..<batch {
            for (x, shape) in zip(inputs, inputShapes) {
                for c in 0..<shape.channels {
                    for row in 0..<shape.height {
                        let source = x + ((n * shape.channels + c) * shape.height + row) * shape.width
                        let target = y + ((n * outputShape.channels + c) * height + row) * width
                        for column in 0..<shape.width { target[column] += source[column] }
                    }
                }
            }
        }
        if let epilogue { epilogue.apply(y, y, count: batch * outputShape.count) }
    }

    func backward(_ inputs: [UnsafePointer<Float>], _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dInputs: [UnsafeMutablePointer<Float>?], batch: Int) {
        precondition(epilogue == nil, "fused epilogues are for inference plans")
        let (height, width) = (outputShape.height, outputShape.width)
        for (d, shape) in zip(dInputs, inputShapes) {
            guard let d else { continue }
            for n in 0..<batch {
                for c in 0..<shape.channels {
                    for row in 0..<shape.height {
                        let source = dy + ((n * outputShape.channels + c) * height + row) * width
                        (d + ((n * shape.channels + c) * shape.height + row) * shape.width).update(from: source, count: shape.width)
                    }
                }
            }
        }
    }
}

/// Concatenation along channels of inputs with the same height and width.
/// x_i: [N, C_i, H, W] -> y: [N, sum C_i, H, W]; dx_i is y's channel block of input i.
final class Concat: MergeLayer {
    let inputShapes: [TensorShape]
    let outputShape: TensorShape
    let names: [String]
    var epilogue: ActivationFunction?
    var token: String { "concat(\(names.map { "@\($0)" }.joined(separator: ",")))" }

    /// Nil when the inputs' heights or widths differ.
    init?(inputs: [TensorShape], names: [String]) {
        guard let first = inputs.first, inputs.allSatisfy({ $0.height == first.height && $0.width == first.width }) else { return nil }
        inputShapes = inputs
        outputShape = TensorShape(channels: inputs.reduce(0) { $0 + $1.channels }, height: first.height, width: first.width)
        self.names = names
    }

    func forward(_ inputs: [UnsafePointer<Float>], _ y: UnsafeMutablePointer<Float>, batch: Int) {
        for n in 0..<batch {
            var out = y + n * outputShape.count
            for (input, shape) in zip(inputs, inputShapes) {
                out.update(from: input + n * shape.count, count: shape.count)
                out += shape.count
            }
        }
        if let epilogue { epilogue.apply(y, y, count: batch * outputShape.count) }
    }

    func backward(_ inputs: [UnsafePointer<Float>], _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dInputs: [UnsafeMutablePointer<Float>?], batch: Int) {
        precondition(epilogue == nil, "fused epilogues are for inference plans")
        for n in 0..<batch {
            var offset = n * outputShape.count
            for (d, shape) in zip(dInputs, inputShapes) {
                d?.advanced(by: n * shape.count).update(from: dy + offset, count: shape.count)
                offset += shape.count
            }
        }
    }
}
