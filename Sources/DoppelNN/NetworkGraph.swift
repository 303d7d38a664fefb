// SPDX-License-Identifier: MIT

/// One layer of a network's graph, as it runs: value 0 is the network's input and value
/// i + 1 is node i's output; nodes are in topological order (the order of the string).
enum Operation {
    case unary(Layer)
    case merge(MergeLayer)

    var token: String {
        switch self {
        case .unary(let layer): layer.token
        case .merge(let layer): layer.token
        }
    }

    var outputShape: TensorShape {
        switch self {
        case .unary(let layer): layer.outputShape
        case .merge(let layer): layer.outputShape
        }
    }

    var parameterSpecs: [ParameterSpec] {
        if case .unary(let layer) = self { return layer.parameterSpecs }
        return []
    }

    var stateSpecs: [ParameterSpec] {
        if case .unary(let layer) = self { return layer.stateSpecs }
        return []
    }

    var parameterCount: Int { parameterSpecs.reduce(0) { $0 + $1.count } }
}

/// The graph an `Architecture` describes for one input shape: what each node computes and
/// which values it reads. Residual blocks become their layers, a 1x1 projection when the
/// shapes differ, and an addition.
struct NetworkGraph {
    struct Node {
        let spec: Architecture.LayerSpec
        /// Values read: the current value first, then named ones.
        let inputs: [Int]
        let inputShapes: [TensorShape]
        let outputShape: TensorShape
        /// The token of the string it comes from (numbered from 1), for error messages.
        let token: Int
    }

    private(set) var nodes: [Node] = []
    /// Shape of each value (the input, then each node's output).
    private(set) var shapes: [TensorShape]

    /// Builds the graph and checks every shape, throwing an error that names the token.
    init(_ architecture: Architecture, input: TensorShape) throws(ArchitectureError) {
        shapes = [input]
        var builder = Builder(graph: self)
        try builder.add(architecture.items)
        self = builder.graph
        // A value nobody reads is a branch that was meant to go somewhere.
        let consumers = self.consumers
        if let unread = nodes.indices.dropLast().first(where: { consumers[$0 + 1].isEmpty }) {
            throw .badArgument(token: nodes[unread].token, text: Architecture.describe(nodes[unread].spec),
                               detail: "its output is never read (the network's output is the last token's)")
        }
    }

    /// The consumers of each value, as (node, input slot), in node order.
    var consumers: [[(node: Int, slot: Int)]] {
        var result = [[(node: Int, slot: Int)]](repeating: [], count: shapes.count)
        for (index, node) in nodes.enumerated() {
            for (slot, value) in node.inputs.enumerated() { result[value].append((index, slot)) }
        }
        return result
    }

    /// A new layer for node `index` (each replica gets its own: layers keep per-batch scratch).
    func makeOperation(_ index: Int, workspace: Workspace, seed: UInt64) throws(ArchitectureError) -> Operation {
        let node = nodes[index]
        return try Self.makeOperation(node.spec, inputs: node.inputShapes, token: node.token, previous: "", workspace: workspace, seed: seed)
    }

    private struct Builder {
        var graph: NetworkGraph
        var current = 0
        var names = ["input": 0]
        var tokenNumber = 0

        mutating func add(_ items: [Architecture.Item]) throws(ArchitectureError) {
            for item in items {
                tokenNumber += 1
                let token = tokenNumber
                switch item {
                case .layer(let spec):
                    var inputs = [current]
                    switch spec {
                    case .add(let name), .addPadded(let name), .multiply(let name): inputs.append(try value(named: name, token: token, spec: spec))
                    case .concat(let list):
                        for name in list { inputs.append(try value(named: name, token: token, spec: spec)) }
                    default: break
                    }
                    current = try append(spec, inputs: inputs, token: token)
                case .name(let name):
                    guard names[name] == nil else {
                        throw .badArgument(token: token, text: "@\(name)", detail: "the name is already given to another value")
                    }
                    names[name] = current
                case .from(let name):
                    current = try value(named: name, token: token, spec: nil, text: "from(@\(name))")
                case .residual(let body):
                    let blockInput = current
                    try add(body)
                    var shortcut = blockInput
                    let (inShape, outShape) = (graph.shapes[blockInput], graph.shapes[current])
                    if inShape != outShape {
                        // The shortcut is a 1x1 convolution whose stride matches the body's
                        // downsampling (ResNet's option B).
                        guard !inShape.isFlat || outShape.isFlat, outShape.height > 0, inShape.height >= outShape.height else {
                            throw .shapeMismatch(token: token, text: "res(...)",
                                                 detail: "the block turns \(inShape) into \(outShape); a shortcut cannot make that shape")
                        }
                        let stride = max(1, (inShape.height + outShape.height - 1) / outShape.height)
                        let projection = Architecture.LayerSpec.conv(filters: outShape.channels, kernel: 1, stride: stride, padding: 0, groups: 1,
                                                                     initializer: .he)
                        shortcut = try append(projection, inputs: [blockInput], token: token)
                        guard graph.shapes[shortcut] == outShape else {
                            throw .shapeMismatch(token: token, text: "res(...)",
                                                 detail: "the block turns \(inShape) into \(outShape), which no strided 1x1 shortcut gives (it gives \(graph.shapes[shortcut]))")
                        }
                    }
                    current = try append(.add("res"), inputs: [current, shortcut], token: token)
                }
            }
        }

        func value(named name: String, token: Int, spec: Architecture.LayerSpec?, text: String? = nil) throws(ArchitectureError) -> Int {
            guard let value = names[name] else {
                throw .badArgument(token: token, text: text ?? spec.map(Architecture.describe) ?? name,
                                   detail: "no value is named @\(name) before it")
            }
            return value
        }

        mutating func append(_ spec: Architecture.LayerSpec, inputs: [Int], token: Int) throws(ArchitectureError) -> Int {
            let inputShapes = inputs.map { graph.shapes[$0] }
            let previous: String
            if inputs[0] > 0 {
                let producer = graph.nodes[inputs[0] - 1]
                previous = " after \(Architecture.describe(producer.spec)) at token \(producer.token)"
            } else {
                previous = " (the model input)"
            }
            let operation = try NetworkGraph.makeOperation(spec, inputs: inputShapes, token: token, previous: previous,
                                                           workspace: Workspace(), seed: 0)
            graph.nodes.append(Node(spec: spec, inputs: inputs, inputShapes: inputShapes, outputShape: operation.outputShape, token: token))
            graph.shapes.append(operation.outputShape)
            return graph.shapes.count - 1
        }
    }

    /// The layer for `spec` on inputs of these shapes, or an error naming the token.
    static func makeOperation(_ spec: Architecture.LayerSpec, inputs: [TensorShape], token: Int, previous after: String,
                              workspace: Workspace, seed: UInt64) throws(ArchitectureError) -> Operation {
        let text = Architecture.describe(spec)
        let input = inputs[0]
        let shape = "\(input.channels)x\(input.height)x\(input.width)"
        switch spec {
        case .conv(let filters, let kernel, let stride, let padding, let groups, let initializer):
            guard input.height + 2 * padding >= kernel, input.width + 2 * padding >= kernel else {
                throw .shapeMismatch(token: token, text: text,
                                     detail: "input is \(shape)\(after), smaller than the \(kernel)x\(kernel) kernel with pad \(padding)")
            }
            guard padding < kernel else {
                throw .badArgument(token: token, text: text, detail: "pad \(padding) must be smaller than the kernel \(kernel)")
            }
            guard input.channels % groups == 0 else {
                throw .shapeMismatch(token: token, text: text, detail: "input has \(input.channels) channels\(after), not a multiple of groups \(groups)")
            }
            return .unary(Conv2D(input: input, filters: filters, kernel: kernel, stride: stride, padding: padding, groups: groups,
                                 initializer: initializer, workspace: workspace))
        case .dense(let units, let initializer):
            guard input.isFlat else {
                throw .shapeMismatch(token: token, text: text, detail: "input is \(shape)\(after); add flatten (or gap) before it")
            }
            return .unary(Dense(input: input, outputs: units, initializer: initializer))
        case .maxPool(let size, let stride, let padding), .avgPool(let size, let stride, let padding, _):
            guard input.height + 2 * padding >= size, input.width + 2 * padding >= size else {
                throw .shapeMismatch(token: token, text: text, detail: "input is \(shape)\(after), smaller than the \(size)x\(size) window")
            }
            guard 2 * padding <= size else {
                throw .badArgument(token: token, text: text, detail: "pad \(padding) must be at most half the window \(size)")
            }
            if case .avgPool(_, _, _, let countPadding) = spec {
                return .unary(AvgPool(input: input, size: size, stride: stride, padding: padding, countPadding: countPadding))
            }
            return .unary(MaxPool(input: input, size: size, stride: stride, padding: padding))
        case .globalAvgPool: return .unary(GlobalAvgPool(input: input))
        case .globalMaxPool: return .unary(GlobalMaxPool(input: input))
        case .flatten: return .unary(Flatten(input: input))
        case .activation(let function): return .unary(Activation(function, input: input))
        case .prelu: return .unary(PReLU(input: input))
        case .dropout(let p): return .unary(Dropout(input: input, probability: p, seed: seed &+ UInt64(token) &* 0x9E37_79B9))
        case .batchNorm(let epsilon): return .unary(BatchNorm(input: input, epsilon: epsilon))
        case .layerNorm(let epsilon): return .unary(LayerNorm(input: input, epsilon: epsilon))
        case .lrn(let size, let alpha, let beta, let k): return .unary(LocalResponseNorm(input: input, size: size, alpha: alpha, beta: beta, k: k))
        case .pad(let top, let left, let bottom, let right): return .unary(Padding(input: input, top: top, left: left, bottom: bottom, right: right))
        case .transpose(let permutation): return .unary(Transpose(input: input, permutation: permutation))
        case .affine: return .unary(Affine(input: input))
        case .l2Normalize:
            guard input.isFlat else {
                throw .shapeMismatch(token: token, text: text, detail: "input is \(shape)\(after); l2norm needs a flat vector (add flatten)")
            }
            return .unary(L2Normalize(input: input))
        case .add(let name), .multiply(let name):
            let operation: ElementwiseMerge.Operation = if case .add = spec { .add } else { .multiply }
            guard let merge = ElementwiseMerge(operation, inputs: inputs, name: name) else {
                throw .shapeMismatch(token: token, text: name == "res" ? "res(...)" : text,
                                     detail: "\(inputs[0]) and \(inputs[1]) differ (one may be per channel: C or Cx1x1)")
            }
            return .merge(merge)
        case .addPadded(let name):
            return .merge(PaddedAdd(inputs: inputs, name: name))
        case .concat(let names):
            guard let merge = Concat(inputs: inputs, names: names) else {
                throw .shapeMismatch(token: token, text: text, detail: "inputs \(inputs.map(\.description).joined(separator: ", ")) differ in height or width")
            }
            return .merge(merge)
        }
    }
}

extension Architecture.LayerSpec {
    /// What this layer makes of inputs of these shapes: its output shape and the tensors it
    /// holds (parameters, then state), named and shaped as a model file stores them. Throws
    /// the error a network would (token 1), for builders of graphs such as the ONNX importer.
    public func describe(inputs: [TensorShape]) throws(ArchitectureError) -> (output: TensorShape, tensors: [(name: String, shape: [Int])]) {
        let operation = try NetworkGraph.makeOperation(self, inputs: inputs, token: 1, previous: "", workspace: Workspace(), seed: 0)
        return (operation.outputShape, (operation.parameterSpecs + operation.stateSpecs).map { ($0.name, $0.shape) })
    }
}
