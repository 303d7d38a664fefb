// SPDX-License-Identifier: MIT
import DoppelNN
import Foundation

/// Element-wise functions, arithmetic with constants (folded into per-channel affine layers,
/// or into the constants themselves), reductions, and the two patterns doppel imports whole:
/// L2 normalisation (x / ReduceL2(x)) and a Siamese head (sigmoid(dense(|a - b|))).
extension ONNXImporter {
    static let mathOperators: [String: Builder] = [
        "Relu": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            if case .headLayers(let tower, let distance, var layers) = try context.symbol(node, 0) {
                guard !layers[layers.count - 1].relu else { throw .unsupportedInput(node: node.label, opType: node.opType, detail: "a second ReLU in a row in the Siamese head") }
                layers[layers.count - 1].relu = true
                context.alias(node, to: .headLayers(tower, distance, layers))
                return
            }
            try applyActivation(&context, node, .relu)
        },
        "Sigmoid": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            if case .headLayers(let tower, let distance, let layers) = try context.symbol(node, 0) {
                guard let last = layers.last, last.outputs == 1, !last.relu else {
                    throw .unsupportedInput(node: node.label, opType: node.opType, detail: "the Siamese head's sigmoid must follow a dense layer to one logit; its last layer has \(layers.last?.outputs ?? 0) outputs\(layers.last?.relu == true ? " and a ReLU" : "")")
                }
                context.alias(node, to: .headProbability(tower, ImportedHead(distance: distance, layers: layers)))
                return
            }
            try applyActivation(&context, node, .sigmoid)
        },
        "Tanh": activation(.tanh),
        "HardSwish": activation(.hardSwish),
        "LeakyRelu": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            try applyActivation(&context, node, .leakyReLU(slope: node.float("alpha", default: 0.01)))
        },
        "HardSigmoid": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            try applyActivation(&context, node, .hardSigmoid(alpha: node.float("alpha", default: 0.2), beta: node.float("beta", default: 0.5)))
        },
        "Gelu": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            guard node.string("approximate", default: "none") == "none" else { throw node.unsupported("approximate", "is tanh; doppel computes the exact (erf) GELU") }
            try applyActivation(&context, node, .gelu)
        },
        "Abs": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            if case .towerDifference(let tower) = try context.symbol(node, 0) {
                context.alias(node, to: .towerDistance(tower, .l1))
                return
            }
            try applyActivation(&context, node, .abs)
        },
        "Clip": clip,
        "PRelu": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            let x = try context.activation(node)
            let slope = try context.constant(node, 1, "slope")
            guard let perChannel = perChannel(slope, on: x, context) else {
                throw .unsupportedInput(node: node.label, opType: node.opType, detail: "slope of shape \(slope.dims) is not one value per channel")
            }
            context.produce(node, try context.emit(.prelu, inputs: [x], rank: context.ranks[x], tensors: ["weight": perChannel], node: node.label))
        },
        "Add": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in try arithmetic(&context, node, .add) },
        "Sub": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in try arithmetic(&context, node, .subtract) },
        "Mul": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in try arithmetic(&context, node, .multiply) },
        "Div": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in try arithmetic(&context, node, .divide) },
        "Pow": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            let exponent = try context.constant(node, 1, "exponent").floatValues
            guard exponent == [2] else { throw .unsupportedInput(node: node.label, opType: node.opType, detail: "doppel imports Pow only as a square (exponent 2)") }
            switch try context.symbol(node, 0) {
            case .towerDifference(let tower): context.alias(node, to: .towerDistance(tower, .squared))
            case .constant(let tensor): context.alias(node, to: .constant(ONNXTensor(dims: tensor.dims, floats: tensor.floatValues.map { $0 * $0 })))
            default: throw .unsupportedInput(node: node.label, opType: node.opType, detail: "doppel imports Pow(x, 2) as a Siamese head's (a - b)^2 or on constants")
            }
        },
        "Sqrt": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            switch try context.symbol(node, 0) {
            case .norm(let value, true): context.alias(node, to: .norm(of: value, squared: false))
            case .constant(let tensor): context.alias(node, to: .constant(ONNXTensor(dims: tensor.dims, floats: tensor.floatValues.map { $0.squareRoot() })))
            default: throw .unsupportedInput(node: node.label, opType: node.opType, detail: "doppel imports Sqrt of a sum of squares (L2 normalisation) or of constants")
            }
        },
        "Max": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            // max(||x||, eps): the clamp of F.normalize; doppel's l2norm clamps at 1e-12.
            if case .norm = try context.symbol(node, 0), node.inputs.count == 2, case .constant = try context.symbol(node, 1) {
                context.alias(node, to: try context.symbol(node, 0))
                return
            }
            throw .unsupportedInput(node: node.label, opType: node.opType, detail: "doppel imports Max only as the clamp of an L2 norm")
        },
        "ReduceMean": reduceMean,
        "ReduceL2": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in try reduceNorm(&context, node, squared: false) },
        "ReduceSumSquare": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in try reduceNorm(&context, node, squared: true) },
    ]

    static func activation(_ function: ActivationFunction) -> Builder {
        { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in try applyActivation(&context, node, function) }
    }

    static func applyActivation(_ context: inout ImportContext, _ node: ONNXNode, _ function: ActivationFunction) throws(ONNXImportError) {
        let x = try context.activation(node)
        context.produce(node, try context.emit(.activation(function), inputs: [x], rank: context.ranks[x], tensors: [:], node: node.label))
    }

    /// min(max(x, low), high): relu6 and friends; on an L2 norm, its epsilon clamp.
    static func clip(_ context: inout ImportContext, _ node: ONNXNode) throws(ONNXImportError) {
        if case .norm = try context.symbol(node, 0) {
            context.alias(node, to: try context.symbol(node, 0))
            return
        }
        var low = -Float.greatestFiniteMagnitude, high = Float.greatestFiniteMagnitude
        if context.opset < 11 {
            low = node.float("min", default: low)
            high = node.float("max", default: high)
        } else {
            if let bound = try context.optionalConstant(node, 1, "min") { low = bound.floatValues.first ?? low }
            if let bound = try context.optionalConstant(node, 2, "max") { high = bound.floatValues.first ?? high }
        }
        try applyActivation(&context, node, .clip(min: low, max: high))
    }

    /// The constant as one value per channel of activation `value` (ONNX broadcasting aligns
    /// trailing axes: for NxCxHxW that is a Cx1x1 or 1xCx1x1 constant, or a scalar), or nil.
    static func perChannel(_ constant: ONNXTensor, on value: Int, _ context: ImportContext) -> [Float]? {
        let rank = context.ranks[value]
        let channels = context.shapes[value].channels
        var dims = constant.dims
        guard dims.count <= rank else { return nil }
        dims = [Int](repeating: 1, count: rank - dims.count) + dims
        let values = constant.floatValues
        guard dims[0] == 1, dims.dropFirst(2).allSatisfy({ $0 == 1 }) else { return nil }
        if dims.count > 1 && dims[1] == channels && values.count == channels { return values }
        if values.count == 1 { return [Float](repeating: values[0], count: channels) }
        return nil
    }

    enum Arithmetic { case add, subtract, multiply, divide }

    static func arithmetic(_ context: inout ImportContext, _ node: ONNXNode, _ operation: Arithmetic) throws(ONNXImportError) {
        guard node.inputs.count == 2 else { throw .unsupportedInput(node: node.label, opType: node.opType, detail: "needs two inputs") }
        let (a, b) = (try context.symbol(node, 0), try context.symbol(node, 1))
        // Where a Siamese model's towers meet: a - b, with b from the other tower.
        switch (a, b) {
        case (.activation(let x), .foreign), (.foreign, .activation(let x)):
            context.alias(node, to: operation == .subtract ? .towerDifference(x) : .foreign)
            return
        case (.foreign, _), (_, .foreign):
            context.alias(node, to: .foreign)
            return
        default: break
        }
        switch (a, b) {
        case (.constant(let left), .constant(let right)):
            context.alias(node, to: .constant(try fold(left, right, operation, node)))
        case (.activation(let left), .activation(let right)):
            switch operation {
            case .add: context.produce(node, try context.emit(.add(""), inputs: [left, right], rank: max(context.ranks[left], context.ranks[right]), tensors: [:], node: node.label))
            case .multiply:
                let rank = context.shapes[left].count >= context.shapes[right].count ? context.ranks[left] : context.ranks[right]
                context.produce(node, try context.emit(.multiply(""), inputs: [left, right], rank: rank, tensors: [:], node: node.label))
            case .subtract, .divide:
                throw .unsupportedInput(node: node.label, opType: node.opType, detail: "\(node.opType) of two computed values is imported only as a Siamese model's a - b or an L2 normalisation")
            }
        case (.activation(let x), .constant(let c)), (.constant(let c), .activation(let x)):
            let constantFirst = if case .constant = a { true } else { false }
            guard let values = perChannel(c, on: x, context) else {
                throw .unsupportedInput(node: node.label, opType: node.opType, detail: "the constant of shape \(c.dims) is not a scalar or one value per channel of the \(context.dims(x)) input")
            }
            var scale = [Float](repeating: 1, count: values.count), shift = [Float](repeating: 0, count: values.count)
            switch (operation, constantFirst) {
            case (.add, _): shift = values
            case (.subtract, false): shift = values.map { -$0 }
            case (.subtract, true): (scale, shift) = (scale.map { _ in -1 }, values)
            case (.multiply, _): scale = values
            case (.divide, false):
                guard values.allSatisfy({ $0 != 0 }) else { throw .unsupportedInput(node: node.label, opType: node.opType, detail: "division by zero") }
                scale = values.map { 1 / $0 }
            case (.divide, true): throw .unsupportedInput(node: node.label, opType: node.opType, detail: "doppel imports Div by a constant, not of one")
            }
            try affine(&context, node, x, scale: scale, shift: shift)
        case (.activation(let x), .norm(let of, false)) where operation == .divide && x == of:
            context.produce(node, try context.emit(.l2Normalize, inputs: [x], rank: context.ranks[x], tensors: [:], node: node.label))
        case (.towerDifference(let left), .towerDifference(let right)) where operation == .multiply && left == right:
            context.alias(node, to: .towerDistance(left, .squared))
        case (.headLayers(let tower, let distance, var layers), .constant(let c))
            where operation == .add && !layers[layers.count - 1].relu && (c.count == 1 || c.count == layers[layers.count - 1].outputs):
            // A bias added after MatMul (Keras exports dense layers so).
            let values = c.floatValues
            for o in layers[layers.count - 1].bias.indices { layers[layers.count - 1].bias[o] += values[c.count == 1 ? 0 : o] }
            context.alias(node, to: .headLayers(tower, distance, layers))
        default:
            throw .unsupportedInput(node: node.label, opType: node.opType, detail: "doppel imports \(node.opType) of computed values and constants, a residual or squeeze-and-excitation merge, or the L2-normalisation and Siamese-head patterns")
        }
    }

    /// y = scale x + shift per channel; merged into the affine layer before it when that
    /// layer's output has no other reader (input normalisation: (x - mean) / std).
    private static func affine(_ context: inout ImportContext, _ node: ONNXNode, _ x: Int, scale: [Float], shift: [Float]) throws(ONNXImportError) {
        if context.hasOneReader(x), case .affine = context.nodes[x - 1].spec {
            var previous = context.nodes[x - 1]
            let (oldScale, oldShift) = (previous.tensors["weight"]!, previous.tensors["bias"]!)
            previous.tensors["weight"] = zip(scale, oldScale).map { $0 * $1 }
            previous.tensors["bias"] = (0..<scale.count).map { scale[$0] * oldShift[$0] + shift[$0] }
            context.nodes[x - 1] = previous
            context.produce(node, x)
            return
        }
        context.produce(node, try context.emit(.affine, inputs: [x], rank: context.ranks[x], tensors: ["weight": scale, "bias": shift], node: node.label))
    }

    /// Element-wise arithmetic on two constants, broadcasting a scalar or equal shapes
    /// (integers stay integers, for shape computations; the batch placeholder stays itself).
    static func fold(_ a: ONNXTensor, _ b: ONNXTensor, _ operation: Arithmetic, _ node: ONNXNode) throws(ONNXImportError) -> ONNXTensor {
        let dims = a.count >= b.count ? a.dims : b.dims
        guard a.count == b.count || a.count == 1 || b.count == 1 else {
            throw .unsupportedInput(node: node.label, opType: node.opType, detail: "constants of shapes \(a.dims) and \(b.dims) do not broadcast simply")
        }
        let count = max(a.count, b.count)
        if a.isInteger && b.isInteger {
            let (x, y) = (a.intValues, b.intValues)
            let values = (0..<count).map { i -> Int64 in
                let (p, q) = (x[a.count == 1 ? 0 : i], y[b.count == 1 ? 0 : i])
                if p == ImportContext.batchDimension || q == ImportContext.batchDimension { return ImportContext.batchDimension }
                switch operation {
                case .add: return p + q
                case .subtract: return p - q
                case .multiply: return p * q
                case .divide: return q == 0 ? 0 : p / q
                }
            }
            return ONNXTensor(dims: dims, ints: values)
        }
        let (x, y) = (a.floatValues, b.floatValues)
        let values = (0..<count).map { i -> Float in
            let (p, q) = (x[a.count == 1 ? 0 : i], y[b.count == 1 ? 0 : i])
            switch operation {
            case .add: return p + q
            case .subtract: return p - q
            case .multiply: return p * q
            case .divide: return p / q
            }
        }
        return ONNXTensor(dims: dims, floats: values)
    }

    /// Reduction axes: the attribute before opset 18, the second input from it.
    static func reductionAxes(_ context: ImportContext, _ node: ONNXNode, rank: Int) throws(ONNXImportError) -> Set<Int> {
        let raw: [Int64]
        if let attribute = node.ints("axes") {
            raw = attribute
        } else if let input = try context.optionalConstant(node, 1, "axes") {
            raw = input.intValues
        } else {
            raw = Array(0..<Int64(rank))
        }
        var axes = Set<Int>()
        for axis in raw { axes.insert(try context.axis(axis, rank: rank, node, attribute: "axes")) }
        return axes
    }

    /// ReduceMean over height and width: global average pooling.
    static func reduceMean(_ context: inout ImportContext, _ node: ONNXNode) throws(ONNXImportError) {
        let x = try context.activation(node)
        let rank = context.ranks[x]
        let axes = try reductionAxes(context, node, rank: rank)
        guard rank == 4, axes == [2, 3] else {
            throw node.unsupported("axes", "reduce \(axes.sorted()) of a rank-\(rank) tensor; doppel imports ReduceMean over height and width (global average pooling)")
        }
        let keep = node.int("keepdims", default: 1) != 0
        context.produce(node, try context.emit(.globalAvgPool, inputs: [x], rank: keep ? 4 : 2, tensors: [:], node: node.label))
    }

    /// The per-sample L2 norm (or its square) over the features of a flat activation, kept
    /// as a symbol until the division that makes it an l2norm layer.
    static func reduceNorm(_ context: inout ImportContext, _ node: ONNXNode, squared: Bool) throws(ONNXImportError) {
        let x = try context.activation(node)
        let rank = context.ranks[x]
        let axes = try reductionAxes(context, node, rank: rank)
        let features = rank == 2 ? Set([1]) : Set(1..<rank)
        guard context.shapes[x].isFlat, axes == [1] || axes == features else {
            throw node.unsupported("axes", "reduce \(axes.sorted()); doppel imports \(node.opType) over the features of an NxD embedding (L2 normalisation)")
        }
        context.alias(node, to: .norm(of: x, squared: squared))
    }
}
