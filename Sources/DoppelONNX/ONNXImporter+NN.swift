// SPDX-License-Identifier: MIT
import DoppelNN

/// Convolution, normalisation, pooling and dense layers. Attribute defaults are the ONNX
/// operator definitions' (onnx/defs), written at the call.
extension ONNXImporter {
    static let nnOperators: [String: Builder] = [
        "Conv": conv,
        "BatchNormalization": batchNormalization,
        "MaxPool": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in try pool(&context, node, max: true) },
        "AveragePool": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in try pool(&context, node, max: false) },
        "GlobalAveragePool": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            let x = try context.activation(node)
            guard context.ranks[x] == 4 else { throw .unsupportedInput(node: node.label, opType: node.opType, detail: "needs an NxCxHxW input") }
            context.produce(node, try context.emit(.globalAvgPool, inputs: [x], rank: 4, tensors: [:], node: node.label))
        },
        "GlobalMaxPool": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            let x = try context.activation(node)
            guard context.ranks[x] == 4 else { throw .unsupportedInput(node: node.label, opType: node.opType, detail: "needs an NxCxHxW input") }
            context.produce(node, try context.emit(.globalMaxPool, inputs: [x], rank: 4, tensors: [:], node: node.label))
        },
        "Gemm": gemm,
        "MatMul": matMul,
        "LpNormalization": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            let x = try context.activation(node)
            let axis = try context.axis(node.int("axis", default: -1), rank: context.ranks[x], node)
            guard node.int("p", default: 2) == 2 else { throw node.unsupported("p", "must be 2 (doppel normalises to unit euclidean length)") }
            guard axis == 1, context.shapes[x].isFlat else { throw node.unsupported("axis", "must be the feature axis of an NxD input") }
            context.produce(node, try context.emit(.l2Normalize, inputs: [x], rank: context.ranks[x], tensors: [:], node: node.label))
        },
        "Dropout": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            // Inference: the identity (the mask output, if any, is not read by embedders).
            context.alias(node, to: try context.symbol(node, 0))
        },
        "LayerNormalization": layerNormalization,
    ]

    /// Kernel size, stride and symmetric padding of a pooling or convolution node, with
    /// auto_pad resolved against the input's height and width.
    private static func window(_ node: ONNXNode, kernel: [Int], input: [Int]) throws(ONNXImportError)
        -> (kernel: Int, stride: Int, pads: [Int]) {
        guard kernel.count == 2 else { throw node.unsupported("kernel_shape", "is \(kernel); doppel imports 2-D windows") }
        guard kernel[0] == kernel[1] else { throw node.unsupported("kernel_shape", "is \(kernel[0])x\(kernel[1]); doppel uses square windows") }
        let strides = (node.ints("strides") ?? [1, 1]).map { Int($0) }
        guard strides.count == 2, strides[0] == strides[1], strides[0] >= 1 else {
            throw node.unsupported("strides", "is \(strides); doppel uses the same stride on both axes")
        }
        if let dilations = node.ints("dilations"), dilations.contains(where: { $0 != 1 }) {
            throw node.unsupported("dilations", "is \(dilations); doppel imports dilation 1")
        }
        var pads = (node.ints("pads") ?? [0, 0, 0, 0]).map { Int($0) }
        guard pads.count == 4, pads.allSatisfy({ $0 >= 0 }) else { throw node.unsupported("pads", "is \(pads); expected 4 non-negative values") }
        switch node.string("auto_pad", default: "NOTSET") {
        case "NOTSET": break
        case "VALID": pads = [0, 0, 0, 0]
        case let mode where mode == "SAME_UPPER" || mode == "SAME_LOWER":
            // Output ceil(in / stride); the padding that gives it, split with the odd one at
            // the end (upper) or the start (lower).
            for axis in 0..<2 {
                let size = input[axis + 1]
                let output = (size + strides[0] - 1) / strides[0]
                let total = max((output - 1) * strides[0] + kernel[0] - size, 0)
                let small = total / 2, large = total - small
                pads[axis] = mode == "SAME_UPPER" ? small : large
                pads[axis + 2] = mode == "SAME_UPPER" ? large : small
            }
        case let mode: throw node.unsupported("auto_pad", "is \(mode)")
        }
        return (kernel[0], strides[0], pads)
    }

    static func conv(_ context: inout ImportContext, _ node: ONNXNode) throws(ONNXImportError) {
        var x = try context.activation(node)
        guard context.ranks[x] == 4 else { throw .unsupportedInput(node: node.label, opType: node.opType, detail: "doppel imports 2-D convolutions (NxCxHxW input)") }
        let weight = try context.constant(node, 1, "weight")
        guard weight.dims.count == 4 else { throw .unsupportedInput(node: node.label, opType: node.opType, detail: "weight has shape \(weight.dims), not KxCxkxk") }
        let (filters, channelsPerGroup) = (weight.dims[0], weight.dims[1])
        let kernelShape = node.ints("kernel_shape")?.map { Int($0) } ?? Array(weight.dims[2...])
        let (kernel, stride, pads) = try window(node, kernel: kernelShape, input: context.dims(x))
        let groups = Int(node.int("group", default: 1))
        guard groups >= 1, context.shapes[x].channels == channelsPerGroup * groups, filters % groups == 0 else {
            throw node.unsupported("group", "\(groups) does not fit weight \(weight.dims) on \(context.shapes[x].channels) channels")
        }
        var padding = pads[0]
        if !(pads.allSatisfy { $0 == pads[0] }) || pads[0] >= kernel {
            // Asymmetric (TensorFlow "same" with an even kernel or stride 2): pad first.
            x = try context.emit(.pad(top: pads[0], left: pads[1], bottom: pads[2], right: pads[3]), inputs: [x], rank: 4, tensors: [:], node: node.label)
            padding = 0
        }
        let bias = try context.optionalConstant(node, 2, "bias")?.floatValues ?? [Float](repeating: 0, count: filters)
        let value = try context.emit(.conv(filters: filters, kernel: kernel, stride: stride, padding: padding, groups: groups, initializer: .he),
                                     inputs: [x], rank: 4, tensors: ["weight": weight.floatValues, "bias": bias], node: node.label)
        context.produce(node, value)
    }

    static func batchNormalization(_ context: inout ImportContext, _ node: ONNXNode) throws(ONNXImportError) {
        let x = try context.activation(node)
        guard node.int("training_mode", default: 0) == 0 else { throw node.unsupported("training_mode", "is 1; export the model in eval() mode") }
        let channels = context.shapes[x].channels
        var tensors = [String: [Float]]()
        for (index, name) in [(1, "weight"), (2, "bias"), (3, "running_mean"), (4, "running_var")] {
            let values = try context.constant(node, index, name).floatValues
            guard values.count == channels else {
                throw .unsupportedInput(node: node.label, opType: node.opType, detail: "\(name) has \(values.count) values for \(channels) channels")
            }
            tensors[name] = values
        }
        let epsilon = node.float("epsilon", default: 1e-5)
        guard epsilon > 0 else { throw node.unsupported("epsilon", "must be positive") }
        context.produce(node, try context.emit(.batchNorm(epsilon: epsilon), inputs: [x], rank: context.ranks[x], tensors: tensors, node: node.label))
    }

    static func pool(_ context: inout ImportContext, _ node: ONNXNode, max: Bool) throws(ONNXImportError) {
        let x = try context.activation(node)
        guard context.ranks[x] == 4 else { throw .unsupportedInput(node: node.label, opType: node.opType, detail: "doppel imports 2-D pooling (NxCxHxW input)") }
        guard let kernelShape = node.ints("kernel_shape")?.map({ Int($0) }) else { throw node.unsupported("kernel_shape", "is missing") }
        let (kernel, stride, pads) = try window(node, kernel: kernelShape, input: context.dims(x))
        guard pads.allSatisfy({ $0 == pads[0] }) else { throw node.unsupported("pads", "is \(pads); doppel pools with the same padding on every side") }
        if node.int("ceil_mode", default: 0) != 0 {
            // Ceil mode differs from floor only when a last, partial window exists.
            let dims = context.dims(x)
            let exact = (0..<2).allSatisfy { (dims[$0 + 1] + 2 * pads[0] - kernel) % stride == 0 }
            guard exact else { throw node.unsupported("ceil_mode", "is 1 with a partial last window; doppel pools in floor mode") }
        }
        if node.outputs.count > 1, !node.outputs[1].isEmpty, context.readers[node.outputs[1]] ?? 0 > 0 {
            throw .unsupportedInput(node: node.label, opType: node.opType, detail: "its Indices output is read; doppel imports MaxPool's values only")
        }
        let spec: Architecture.LayerSpec = max
            ? .maxPool(size: kernel, stride: stride, padding: pads[0])
            : .avgPool(size: kernel, stride: stride, padding: pads[0], countPadding: node.int("count_include_pad", default: 0) != 0)
        context.produce(node, try context.emit(spec, inputs: [x], rank: 4, tensors: [:], node: node.label))
    }

    /// Y = alpha A op(B) + beta C with A computed and B, C constant: a dense layer (or, on a
    /// Siamese distance, the head's logit).
    static func gemm(_ context: inout ImportContext, _ node: ONNXNode) throws(ONNXImportError) {
        guard node.int("transA", default: 0) == 0 else { throw node.unsupported("transA", "is 1; doppel imports Gemm on NxK inputs") }
        let b = try context.constant(node, 1, "weight")
        guard b.dims.count == 2 else { throw .unsupportedInput(node: node.label, opType: node.opType, detail: "weight has shape \(b.dims), not 2-D") }
        let alpha = node.float("alpha", default: 1), beta = node.float("beta", default: 1)
        // weight [out, in] = alpha B (transB) or alpha B^T.
        let transposed = node.int("transB", default: 0) != 0
        let (outputs, inputs) = transposed ? (b.dims[0], b.dims[1]) : (b.dims[1], b.dims[0])
        let values = b.floatValues
        var weight = [Float](repeating: 0, count: outputs * inputs)
        for o in 0..<outputs {
            for i in 0..<inputs { weight[o * inputs + i] = alpha * (transposed ? values[o * inputs + i] : values[i * outputs + o]) }
        }
        var bias = [Float](repeating: 0, count: outputs)
        if let c = try context.optionalConstant(node, 2, "bias") {
            let cv = c.floatValues
            guard cv.count == outputs || cv.count == 1 else {
                throw .unsupportedInput(node: node.label, opType: node.opType, detail: "bias has shape \(c.dims) for \(outputs) outputs")
            }
            for o in 0..<outputs { bias[o] = beta * cv[cv.count == 1 ? 0 : o] }
        }
        try dense(&context, node, weight: weight, bias: bias, outputs: outputs, inputs: inputs)
    }

    /// A computed NxK times a constant KxM: a dense layer without bias (a following Add of a
    /// constant becomes its bias).
    static func matMul(_ context: inout ImportContext, _ node: ONNXNode) throws(ONNXImportError) {
        let b = try context.constant(node, 1, "weight")
        guard b.dims.count == 2 else {
            throw .unsupportedInput(node: node.label, opType: node.opType, detail: "weight has shape \(b.dims); doppel imports MatMul of an NxK input by a constant KxM")
        }
        let (inputs, outputs) = (b.dims[0], b.dims[1])
        let values = b.floatValues
        var weight = [Float](repeating: 0, count: outputs * inputs)
        for o in 0..<outputs { for i in 0..<inputs { weight[o * inputs + i] = values[i * outputs + o] } }
        try dense(&context, node, weight: weight, bias: [Float](repeating: 0, count: outputs), outputs: outputs, inputs: inputs)
    }

    private static func dense(_ context: inout ImportContext, _ node: ONNXNode, weight: [Float], bias: [Float],
                              outputs: Int, inputs: Int) throws(ONNXImportError) {
        switch try context.symbol(node, 0) {
        case .towerDistance(let tower, let distance):
            guard inputs == context.shapes[tower].count else {
                throw .unsupportedInput(node: node.label, opType: node.opType, detail: "the Siamese head's first dense layer takes the \(context.shapes[tower].count)-D distance; this one takes \(inputs)")
            }
            context.alias(node, to: .headLayers(tower, distance, [ImportedHead.Layer(weight: weight, bias: bias, relu: false)]))
            return
        case .headLayers(let tower, let distance, let layers):
            guard inputs == layers[layers.count - 1].outputs else {
                throw .unsupportedInput(node: node.label, opType: node.opType, detail: "this Siamese head layer takes \(inputs) values; the layer before gives \(layers[layers.count - 1].outputs)")
            }
            guard layers.count < 8 else { throw .unsupportedInput(node: node.label, opType: node.opType, detail: "a Siamese head of more than 8 dense layers") }
            context.alias(node, to: .headLayers(tower, distance, layers + [ImportedHead.Layer(weight: weight, bias: bias, relu: false)]))
            return
        default:
            break
        }
        let x = try context.activation(node)
        guard context.shapes[x].isFlat, context.shapes[x].count == inputs else {
            throw .unsupportedInput(node: node.label, opType: node.opType, detail: "input is \(context.dims(x)) per sample; the weight needs \(inputs) features")
        }
        let value = try context.emit(.dense(units: outputs, initializer: .he), inputs: [x], rank: 2,
                                     tensors: ["weight": weight, "bias": bias], node: node.label)
        context.produce(node, value)
    }

    /// LayerNormalization over the features of a flat input (the stretch toward
    /// transformer embedders stops at token sequences).
    static func layerNormalization(_ context: inout ImportContext, _ node: ONNXNode) throws(ONNXImportError) {
        let x = try context.activation(node)
        let rank = context.ranks[x]
        let axis = try context.axis(node.int("axis", default: -1), rank: rank, node)
        guard axis == 1 else {
            throw node.unsupported("axis", "is \(axis); doppel normalises over all of a sample's features (axis 1), not per token")
        }
        let count = context.shapes[x].count
        let scale = try context.constant(node, 1, "scale").floatValues
        let bias = try context.optionalConstant(node, 2, "bias")?.floatValues ?? [Float](repeating: 0, count: count)
        guard scale.count == count, bias.count == count else {
            throw .unsupportedInput(node: node.label, opType: node.opType, detail: "scale and bias need \(count) values")
        }
        let epsilon = node.float("epsilon", default: 1e-5)
        context.produce(node, try context.emit(.layerNorm(epsilon: epsilon), inputs: [x], rank: rank, tensors: ["weight": scale, "bias": bias], node: node.label))
    }
}
