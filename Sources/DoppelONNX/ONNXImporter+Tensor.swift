// SPDX-License-Identifier: MIT
import DoppelNN

/// Shape and layout operators: flatten and reshape (to NxD, or the identity), transpose,
/// concatenation along channels, padding; and the integer arithmetic exporters use to
/// compute reshape targets (Shape, Gather, Concat, ...), folded at import.
extension ONNXImporter {
    static let tensorOperators: [String: Builder] = [
        "Identity": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in context.alias(node, to: try context.symbol(node, 0)) },
        "Flatten": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            if case .constant(let tensor) = try context.symbol(node, 0) {
                context.alias(node, to: .constant(ONNXTensor(dims: [tensor.dims.first ?? 1, tensor.count / max(tensor.dims.first ?? 1, 1)], floats: tensor.floatValues)))
                return
            }
            let x = try context.activation(node)
            let axis = try context.axis(node.int("axis", default: 1), rank: context.ranks[x], node)
            guard axis == 1 else { throw node.unsupported("axis", "is \(axis); doppel flattens everything after the batch axis") }
            try reshape(&context, node, x, to: [context.shapes[x].count])
        },
        "Reshape": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            let target = try context.constant(node, 1, "shape").intValues
            if case .constant(let tensor) = try context.symbol(node, 0) {
                context.alias(node, to: .constant(try reshapeConstant(tensor, target, node)))
                return
            }
            let x = try context.activation(node)
            // Resolve 0 (copy), -1 (infer) and the batch placeholder; the first axis is the batch.
            let current = [ImportContext.batchDimension] + context.dims(x).map(Int64.init)
            var dims = [Int]()
            var inferred: Int? = nil
            for (index, value) in target.enumerated() {
                if index == 0 {
                    guard value == 0 || value == -1 || value == 1 || value == ImportContext.batchDimension || value == context.exportedBatch else {
                        throw .unsupportedInput(node: node.label, opType: node.opType, detail: "target \(target) changes the batch axis")
                    }
                    continue
                }
                switch value {
                case 0 where node.int("allowzero", default: 0) == 0:
                    guard index < current.count else { throw .unsupportedInput(node: node.label, opType: node.opType, detail: "target \(target) copies an axis the input lacks") }
                    dims.append(Int(current[index]))
                case -1: inferred = dims.count; dims.append(1)
                case ImportContext.batchDimension: throw .unsupportedInput(node: node.label, opType: node.opType, detail: "target \(target) moves the batch axis")
                default: dims.append(Int(value))
                }
            }
            if let inferred {
                let known = dims.enumerated().filter { $0.offset != inferred }.reduce(1) { $0 * $1.element }
                guard known > 0, context.shapes[x].count % known == 0 else {
                    throw .unsupportedInput(node: node.label, opType: node.opType, detail: "target \(target) does not divide \(context.shapes[x].count) features")
                }
                dims[inferred] = context.shapes[x].count / known
            }
            try reshape(&context, node, x, to: dims)
        },
        "Squeeze": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in try squeeze(&context, node, unsqueeze: false) },
        "Unsqueeze": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in try squeeze(&context, node, unsqueeze: true) },
        "Transpose": transpose,
        "Concat": concat,
        "Pad": pad,
        "Cast": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            let to = node.int("to", default: 1)
            switch try context.symbol(node, 0) {
            case .constant(let tensor):
                let integer = ![1, 10, 11].contains(to)
                context.alias(node, to: .constant(integer ? ONNXTensor(dims: tensor.dims, ints: tensor.intValues) : ONNXTensor(dims: tensor.dims, floats: tensor.floatValues)))
            case let symbol:
                guard to == 1 else { throw node.unsupported("to", "casts a computed value to type \(to); doppel computes in float32") }
                context.alias(node, to: symbol)
            }
        },
        "Shape": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            let x = try context.activation(node)
            var dims = [ImportContext.batchDimension] + context.dims(x).map(Int64.init)
            let rank = dims.count
            let start = Int(node.int("start", default: 0)), end = Int(node.int("end", default: Int64(rank)))
            let from = max(0, start < 0 ? start + rank : start), to = min(rank, end < 0 ? end + rank : end)
            dims = from < to ? Array(dims[from..<to]) : []
            context.alias(node, to: .constant(ONNXTensor(dims: [dims.count], ints: dims)))
        },
        "Constant": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            if let tensor = node.attribute("value")?.tensor {
                context.alias(node, to: .constant(tensor))
            } else if let value = node.attribute("value_float")?.float {
                context.alias(node, to: .constant(ONNXTensor(dims: [], floats: [value])))
            } else if let value = node.attribute("value_int")?.int {
                context.alias(node, to: .constant(ONNXTensor(dims: [], ints: [value])))
            } else if let values = node.attribute("value_floats")?.floats, node.attribute("value_floats") != nil {
                context.alias(node, to: .constant(ONNXTensor(dims: [values.count], floats: values)))
            } else if let values = node.attribute("value_ints")?.ints, node.attribute("value_ints") != nil {
                context.alias(node, to: .constant(ONNXTensor(dims: [values.count], ints: values)))
            } else {
                throw node.unsupported("value", "is missing or of a kind doppel does not read (sparse, strings)")
            }
        },
        "ConstantOfShape": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            let shape = try context.constant(node, 0, "shape").intValues
            guard !shape.contains(ImportContext.batchDimension), shape.allSatisfy({ $0 >= 0 }) else {
                throw .unsupportedInput(node: node.label, opType: node.opType, detail: "the shape depends on the batch size")
            }
            let fill = node.attribute("value")?.tensor ?? ONNXTensor(dims: [1], floats: [0])
            let dims = shape.map { Int($0) }, count = dims.reduce(1, *)
            context.alias(node, to: .constant(fill.isInteger
                ? ONNXTensor(dims: dims, ints: [Int64](repeating: fill.intValues.first ?? 0, count: count))
                : ONNXTensor(dims: dims, floats: [Float](repeating: fill.floatValues.first ?? 0, count: count))))
        },
        "Gather": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            let data = try context.constant(node, 0, "data"), indices = try context.constant(node, 1, "indices")
            guard data.dims.count <= 1, node.int("axis", default: 0) == 0 else {
                throw .unsupportedInput(node: node.label, opType: node.opType, detail: "doppel imports Gather on 1-D constants (shape arithmetic)")
            }
            let picked = try indices.intValues.map { (index) throws(ONNXImportError) -> Int in
                let position = index < 0 ? Int(index) + data.count : Int(index)
                guard position >= 0, position < data.count else { throw .unsupportedInput(node: node.label, opType: node.opType, detail: "index \(index) out of range") }
                return position
            }
            let dims = indices.dims
            context.alias(node, to: .constant(data.isInteger
                ? ONNXTensor(dims: dims, ints: picked.map { data.intValues[$0] })
                : ONNXTensor(dims: dims, floats: picked.map { data.floatValues[$0] })))
        },
        "Slice": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            let data = try context.constant(node, 0, "data")
            let starts = try context.constant(node, 1, "starts").intValues, ends = try context.constant(node, 2, "ends").intValues
            let axes = try context.optionalConstant(node, 3, "axes")?.intValues ?? (0..<Int64(starts.count)).map { $0 }
            let steps = try context.optionalConstant(node, 4, "steps")?.intValues ?? [Int64](repeating: 1, count: starts.count)
            guard starts.count == ends.count, axes.count == starts.count, steps.count == starts.count, !steps.contains(0) else {
                throw .unsupportedInput(node: node.label, opType: node.opType, detail: "starts, ends, axes and steps differ in length")
            }
            // Per axis, the indices kept (ONNX clamps starts and ends to the axis, by direction).
            var picks = data.dims.map { Array(0..<$0) }
            for (i, raw) in axes.enumerated() {
                let axis = try context.axis(raw, rank: data.dims.count, node, attribute: "axes")
                let n = Int64(data.dims[axis]), step = steps[i]
                func normalise(_ v: Int64) -> Int64 { v < 0 ? v + n : v }
                var index = normalise(starts[i]), end = normalise(ends[i])
                if step > 0 { index = min(max(index, 0), n); end = min(max(end, 0), n) } else { index = min(max(index, -1), n - 1); end = min(max(end, -1), n - 1) }
                var kept = [Int]()
                while step > 0 ? index < end : index > end { kept.append(Int(index)); index += step }
                picks[axis] = kept
            }
            context.alias(node, to: .constant(gather(data, picks: picks)))
        },
        "Expand": { (context: inout ImportContext, node: ONNXNode) throws(ONNXImportError) in
            // Broadcasting an L2 norm to the embedding's shape before the division.
            guard case .norm = try context.symbol(node, 0) else {
                throw .unsupportedInput(node: node.label, opType: node.opType, detail: "doppel imports Expand only within L2 normalisation")
            }
            context.alias(node, to: try context.symbol(node, 0))
        },
    ]

    /// A computed value reshaped to `dims` (after the batch axis). The memory layout never
    /// changes; a flatten layer is added where the shape DoppelNN sees changes.
    private static func reshape(_ context: inout ImportContext, _ node: ONNXNode, _ x: Int, to dims: [Int]) throws(ONNXImportError) {
        let shape = context.shapes[x]
        guard dims.reduce(1, *) == shape.count else {
            throw .unsupportedInput(node: node.label, opType: node.opType, detail: "reshapes \(context.dims(x)) (\(shape.count) features) to \(dims)")
        }
        let rank = dims.count + 1
        let target: TensorShape
        switch dims.count {
        case 1: target = TensorShape(channels: dims[0])
        case 2: target = TensorShape(channels: dims[0], height: dims[1])
        case 3: target = TensorShape(channels: dims[0], height: dims[1], width: dims[2])
        default: throw .unsupportedInput(node: node.label, opType: node.opType, detail: "reshapes to rank \(rank); doppel works with ranks 2 to 4")
        }
        if target == shape {
            context.ranks.append(0)  // keep ranks and shapes aligned for a renamed value
            context.ranks.removeLast()
            if context.ranks[x] == rank {
                context.produce(node, x)
            } else {
                // Same floats, another rank: an NxC value seen as NxCx1x1 or back.
                context.produce(node, try context.emit(.flatten, inputs: [x], rank: rank, tensors: [:], node: node.label))
                if target.isFlat { return }
            }
            return
        }
        guard target.isFlat else {
            throw .unsupportedInput(node: node.label, opType: node.opType, detail: "reshapes \(context.dims(x)) to \(dims); doppel imports reshapes to NxD (flatten) and the identity")
        }
        context.produce(node, try context.emit(.flatten, inputs: [x], rank: rank, tensors: [:], node: node.label))
    }

    private static func reshapeConstant(_ tensor: ONNXTensor, _ target: [Int64], _ node: ONNXNode) throws(ONNXImportError) -> ONNXTensor {
        var dims = target.enumerated().map { index, value in value == 0 && index < tensor.dims.count ? tensor.dims[index] : Int(value) }
        if let inferred = dims.firstIndex(of: -1) {
            let known = dims.enumerated().filter { $0.offset != inferred }.reduce(1) { $0 * $1.element }
            dims[inferred] = known == 0 ? 0 : tensor.count / known
        }
        guard dims.reduce(1, *) == tensor.count else { throw .unsupportedInput(node: node.label, opType: node.opType, detail: "reshapes a constant of \(tensor.count) values to \(target)") }
        var result = tensor
        result.dims = dims
        return result
    }

    /// Squeeze / Unsqueeze: axes from the attribute before opset 13, the second input from it.
    private static func squeeze(_ context: inout ImportContext, _ node: ONNXNode, unsqueeze: Bool) throws(ONNXImportError) {
        var axes = node.ints("axes") ?? []
        if axes.isEmpty, let input = try context.optionalConstant(node, 1, "axes") { axes = input.intValues }
        switch try context.symbol(node, 0) {
        case .constant(var tensor):
            if unsqueeze {
                let rank = tensor.dims.count + axes.count
                for axis in axes.map({ $0 < 0 ? Int($0) + rank : Int($0) }).sorted() { tensor.dims.insert(1, at: min(axis, tensor.dims.count)) }
            } else {
                let rank = tensor.dims.count
                let drop = Set(axes.isEmpty ? tensor.dims.indices.filter { tensor.dims[$0] == 1 } : axes.map { $0 < 0 ? Int($0) + rank : Int($0) })
                tensor.dims = tensor.dims.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
            }
            context.alias(node, to: .constant(tensor))
        case .norm:
            context.alias(node, to: try context.symbol(node, 0))
        default:
            let x = try context.activation(node)
            var dims = [1] + context.dims(x)  // with the batch axis, as ONNX numbers them
            if unsqueeze {
                let rank = dims.count + axes.count
                for axis in axes.map({ $0 < 0 ? Int($0) + rank : Int($0) }).sorted() { dims.insert(1, at: min(axis, dims.count)) }
            } else {
                let rank = dims.count
                let drop = Set(axes.isEmpty ? dims.indices.dropFirst().filter { dims[$0] == 1 } : axes.map { $0 < 0 ? Int($0) + rank : Int($0) })
                guard !drop.contains(0) else { throw node.unsupported("axes", "removes the batch axis") }
                dims = dims.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
            }
            try reshape(&context, node, x, to: Array(dims.dropFirst()))
        }
    }

    /// A permutation of the axes after the batch (NHWC <-> NCHW); consecutive transposes
    /// compose, and one that undoes the last disappears.
    static func transpose(_ context: inout ImportContext, _ node: ONNXNode) throws(ONNXImportError) {
        if case .constant(let tensor) = try context.symbol(node, 0) {
            let perm = (node.ints("perm") ?? (0..<Int64(tensor.dims.count)).reversed().map { $0 }).map { Int($0) }
            guard Set(perm) == Set(tensor.dims.indices) else { throw node.unsupported("perm", "is \(perm) for a rank-\(tensor.dims.count) constant") }
            context.alias(node, to: .constant(permute(tensor, perm)))
            return
        }
        let x = try context.activation(node)
        let rank = context.ranks[x]
        let perm = (node.ints("perm") ?? (0..<Int64(rank)).reversed().map { $0 }).map { Int($0) }
        guard perm.count == rank, perm.first == 0, Set(perm) == Set(0..<rank) else {
            throw node.unsupported("perm", "is \(perm); doppel imports permutations that keep the batch axis first")
        }
        if rank == 2 { context.produce(node, x); return }
        guard rank == 4 else { throw node.unsupported("perm", "is \(perm) on a rank-\(rank) tensor; doppel imports transposes of NxCxHxW") }
        var permutation = perm.dropFirst().map { $0 - 1 }
        var source = x
        if context.hasOneReader(x), case .transpose(let previous) = context.nodes[x - 1].spec {
            // y = T2(T1(x)): output axis i is T1's axis permutation[i], i.e. x's previous[permutation[i]].
            permutation = permutation.map { previous[$0] }
            source = context.nodes[x - 1].inputs[0]
        }
        if permutation == [0, 1, 2] && source != x {
            context.produce(node, source)
            return
        }
        context.produce(node, try context.emit(.transpose(permutation: permutation), inputs: [source], rank: 4, tensors: [:], node: node.label))
    }

    static func concat(_ context: inout ImportContext, _ node: ONNXNode) throws(ONNXImportError) {
        let symbols = try node.inputs.indices.map { (index) throws(ONNXImportError) in try context.symbol(node, index) }
        let constants = symbols.compactMap { if case .constant(let tensor) = $0 { tensor } else { nil } }
        if constants.count == symbols.count {
            // Shape arithmetic: 1-D constants end to end.
            if constants.allSatisfy(\.isInteger) {
                let values = constants.flatMap(\.intValues)
                context.alias(node, to: .constant(ONNXTensor(dims: [values.count], ints: values)))
            } else {
                let values = constants.flatMap(\.floatValues)
                context.alias(node, to: .constant(ONNXTensor(dims: [values.count], floats: values)))
            }
            return
        }
        let values = try node.inputs.indices.map { (index) throws(ONNXImportError) in try context.activation(node, index) }
        let rank = context.ranks[values[0]]
        let axis = try context.axis(node.int("axis", default: 1), rank: rank, node)
        guard axis == 1, values.allSatisfy({ context.ranks[$0] == rank }) else {
            throw node.unsupported("axis", "is \(axis); doppel concatenates along channels (axis 1)")
        }
        context.produce(node, try context.emit(.concat([]), inputs: values, rank: rank, tensors: [:], node: node.label))
    }

    /// Constant zero padding of height and width.
    static func pad(_ context: inout ImportContext, _ node: ONNXNode) throws(ONNXImportError) {
        let x = try context.activation(node)
        guard node.string("mode", default: "constant") == "constant" else { throw node.unsupported("mode", "is \(node.string("mode", default: "")); doppel pads with zeros") }
        let rank = context.ranks[x]
        var pads: [Int64]
        if context.opset < 11 {
            pads = node.ints("pads") ?? []
        } else {
            pads = try context.constant(node, 1, "pads").intValues
            if let value = try context.optionalConstant(node, 2, "constant_value"), value.floatValues.contains(where: { $0 != 0 }) {
                throw .unsupportedInput(node: node.label, opType: node.opType, detail: "pads with \(value.floatValues[0]); doppel pads with zeros")
            }
            if let axes = try context.optionalConstant(node, 3, "axes") {
                // Opset 18: pads for the listed axes only; spread them over every axis.
                var full = [Int64](repeating: 0, count: 2 * rank)
                for (index, axis) in axes.intValues.enumerated() {
                    let a = try context.axis(axis, rank: rank, node, attribute: "axes")
                    full[a] = pads[index]
                    full[a + rank] = pads[index + axes.count]
                }
                pads = full
            }
        }
        guard rank == 4, pads.count == 8, pads[0] == 0, pads[1] == 0, pads[4] == 0, pads[5] == 0, pads.allSatisfy({ $0 >= 0 }) else {
            throw node.unsupported("pads", "is \(pads); doppel pads height and width of NxCxHxW by non-negative amounts")
        }
        context.produce(node, try context.emit(.pad(top: Int(pads[2]), left: Int(pads[3]), bottom: Int(pads[6]), right: Int(pads[7])),
                                               inputs: [x], rank: 4, tensors: [:], node: node.label))
    }
}

extension ONNXImporter {
    /// The constant's elements at the given indices of each axis (row-major), for Slice.
    static func gather(_ tensor: ONNXTensor, picks: [[Int]]) -> ONNXTensor {
        var strides = [Int](repeating: 1, count: tensor.dims.count)
        for axis in stride(from: tensor.dims.count - 2, through: 0, by: -1) { strides[axis] = strides[axis + 1] * tensor.dims[axis + 1] }
        var offsets = [0]
        for (axis, indices) in picks.enumerated() { offsets = offsets.flatMap { base in indices.map { base + $0 * strides[axis] } } }
        let dims = picks.map(\.count)
        return tensor.isInteger ? ONNXTensor(dims: dims, ints: offsets.map { tensor.ints[$0] }) : ONNXTensor(dims: dims, floats: offsets.map { tensor.floats[$0] })
    }

    /// The constant with its axes permuted (output axis i is input axis perm[i]).
    static func permute(_ tensor: ONNXTensor, _ perm: [Int]) -> ONNXTensor {
        var strides = [Int](repeating: 1, count: tensor.dims.count)
        for axis in stride(from: tensor.dims.count - 2, through: 0, by: -1) { strides[axis] = strides[axis + 1] * tensor.dims[axis + 1] }
        var offsets = [0]
        for axis in perm { offsets = offsets.flatMap { base in (0..<tensor.dims[axis]).map { base + $0 * strides[axis] } } }
        let dims = perm.map { tensor.dims[$0] }
        return tensor.isInteger ? ONNXTensor(dims: dims, ints: offsets.map { tensor.ints[$0] }) : ONNXTensor(dims: dims, floats: offsets.map { tensor.floats[$0] })
    }
}
