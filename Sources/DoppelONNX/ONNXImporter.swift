// SPDX-License-Identifier: MIT
// DoppelONNX owns the import of ONNX files: a protobuf reader, the ONNX model structs, and
// one table of operator builders per family (nn, math, tensor) that turn nodes into
// DoppelNN layers, folding what is constant. It knows nothing of images, galleries or HTTP;
// the input spec (normalisation, channel order) is the caller's business.
import DoppelNN
import Foundation

/// What an ONNX file becomes: a DoppelNN graph with its tensors and, for a Siamese export
/// (two image inputs whose towers meet in a distance head), that head.
public struct ImportedModel {
    public let architecture: Architecture
    public let inputShape: TensorShape
    /// Tensors by model-file name (`"<node>.<name>"`).
    public let tensors: [String: [Float]]
    public let head: ImportedHead?
    public let producer: String
    public let opset: Int
    /// How many ONNX nodes of each operator the file had.
    public let operatorCounts: [String: Int]
}

/// The head of a Siamese export: p(same) = sigmoid(dense_n(...relu?(dense_1(d(a, b))))),
/// d = |a - b| or (a - b)^2, the last dense layer to one logit.
public struct ImportedHead: Equatable, Sendable {
    public struct Layer: Equatable, Sendable {
        /// `[outputs, inputs]`, row-major.
        public var weight: [Float]
        public var bias: [Float]
        public var relu: Bool
        public var outputs: Int { bias.count }
    }

    public let distance: SiameseHead.Distance
    public let layers: [Layer]

    /// The head as Doppel's: its layers and their parameters in `SiameseHead`'s order.
    public func siameseHead(dimension: Int) throws(SiameseHeadError) -> SiameseHead {
        let head = try SiameseHead(dimension: dimension, layers: layers.map { SiameseHead.Layer(outputs: $0.outputs, relu: $0.relu) },
                                   seed: 0, distance: distance)
        head.parameters = layers.flatMap { $0.weight + $0.bias }
        return head
    }
}

public enum ONNXImporter {
    /// Opsets whose operator definitions the builders follow.
    public static let supportedOpsets = 11...21

    /// Every operator type the importer maps, sorted.
    public static var supportedOperators: [String] { registry.keys.sorted() }

    typealias Builder = @Sendable (inout ImportContext, ONNXNode) throws(ONNXImportError) -> Void
    static let registry: [String: Builder] = nnOperators.merging(mathOperators) { a, _ in a }.merging(tensorOperators) { a, _ in a }

    /// Imports the model at `path` for images preprocessed to `input` (C x H x W). A model
    /// whose input is NHWC (Keras, TensorFlow) gets a transpose in front. Nothing is written.
    public static func importModel(path: String, input: TensorShape) throws(ONNXImportError) -> ImportedModel {
        try importModel(ONNXModel(contentsOf: path), input: input)
    }

    /// The same from the file's bytes (external tensor data, if any, relative to `directory`).
    public static func importModel(bytes: [UInt8], directory: String? = nil, input: TensorShape) throws(ONNXImportError) -> ImportedModel {
        try importModel(ONNXModel(bytes: bytes, directory: directory), input: input)
    }

    static func importModel(_ model: ONNXModel, input: TensorShape) throws(ONNXImportError) -> ImportedModel {
        guard supportedOpsets.contains(model.opset) else { throw .unsupportedOpset(found: model.opset, supported: supportedOpsets) }
        guard model.outputs.count >= 1 else { throw .graph(detail: "the graph has no output") }
        var counts = [String: Int]()
        for node in model.nodes { counts[node.opType, default: 0] += 1 }
        switch model.inputs.count {
        case 1:
            let tower = try importTower(model, input: input, boundInput: 0)
            guard case .activation(let output) = tower.output else {
                throw .graph(detail: "the output '\(model.outputs[0].name)' is not an embedding computed from the input")
            }
            let (architecture, tensors) = try tower.context.finish(output: output)
            return ImportedModel(architecture: architecture, inputShape: input, tensors: tensors, head: nil, producer: model.producer,
                                 opset: model.opset, operatorCounts: counts)
        case 2:
            // A Siamese export: each tower imported on its own (the other input's branch
            // skipped), then the two must be the same network with the same weights.
            var towers = [(Architecture, [String: [Float]])](), head: ImportedHead? = nil
            for bound in 0..<2 {
                let tower = try importTower(model, input: input, boundInput: bound)
                guard case .headProbability(let output, let found) = tower.output else {
                    throw .graph(detail: "a model with two inputs imports when its towers meet in a head: sigmoid of dense layers (ReLU between them allowed, the last to one logit) on |a - b| or (a - b)^2; the output '\(model.outputs[0].name)' is not that")
                }
                towers.append(try tower.context.finish(output: output))
                head = found
            }
            guard towers[0].0 == towers[1].0 else {
                throw .graph(detail: "the two towers are different networks (\(towers[0].0.description.prefix(120))... vs \(towers[1].0.description.prefix(120))...); Siamese towers must share their layers")
            }
            guard towers[0].1 == towers[1].1 else { throw .graph(detail: "the two towers have different weights; Siamese towers must share them") }
            return ImportedModel(architecture: towers[0].0, inputShape: input, tensors: towers[0].1, head: head, producer: model.producer,
                                 opset: model.opset, operatorCounts: counts)
        default:
            throw .graph(detail: "the model has \(model.inputs.count) inputs (\(model.inputs.map(\.name).joined(separator: ", "))); doppel imports one image input, or two for a Siamese model")
        }
    }

    /// Runs every node with graph input `boundInput` as the network's input; nodes that
    /// read the other input (a Siamese model's second tower) are skipped.
    private static func importTower(_ model: ONNXModel, input: TensorShape, boundInput: Int) throws(ONNXImportError) -> (context: ImportContext, output: ImportContext.Symbol) {
        var context = ImportContext(model: model, input: input)
        try context.bindInput(model.inputs[boundInput])
        for (index, other) in model.inputs.enumerated() where index != boundInput { context.symbols[other.name] = .foreign }
        for node in model.nodes {
            guard node.domain.isEmpty || node.domain == "ai.onnx" else {
                throw .unsupportedOperator(node: node.label, opType: "\(node.domain).\(node.opType)", supported: supportedOperators)
            }
            // Anything computed from the other tower belongs to it, except where the towers meet.
            let readsForeign = node.inputs.contains { if case .foreign = context.symbols[$0] { true } else { false } }
            if readsForeign && node.opType != "Sub" {
                for output in node.outputs { context.symbols[output] = .foreign }
                continue
            }
            guard let builder = registry[node.opType] else {
                throw .unsupportedOperator(node: node.label, opType: node.opType, supported: supportedOperators)
            }
            try builder(&context, node)
        }
        guard let output = context.symbols[model.outputs[0].name] else {
            throw .graph(detail: "no node computes the output '\(model.outputs[0].name)'")
        }
        return (context, output)
    }
}

/// The state of one import: the DoppelNN nodes made so far, and what each ONNX value is.
struct ImportContext {
    /// What an ONNX value stands for.
    enum Symbol {
        /// A DoppelNN value (0 the input, i + 1 node i's output).
        case activation(Int)
        /// Known at import: an initializer, a Constant, or folded. Integer tensors may hold
        /// `batchDimension` where the batch size goes.
        case constant(ONNXTensor)
        /// Computed from the other input of a Siamese model.
        case foreign
        /// ||x||_2 of a flat activation, per sample (ReduceL2 or Sqrt(ReduceSumSquare)); its
        /// square while `squared`.
        case norm(of: Int, squared: Bool)
        /// A Siamese head in the making: a - b (b from the other tower), then |a - b| or
        /// (a - b)^2, then dense layers (a ReLU may follow any but the last), then sigmoid.
        case towerDifference(Int)
        case towerDistance(Int, SiameseHead.Distance)
        case headLayers(Int, SiameseHead.Distance, [ImportedHead.Layer])
        case headProbability(Int, ImportedHead)
    }

    /// The batch size inside integer shape tensors (`Shape` of an activation): unknown at import.
    static let batchDimension: Int64 = -0x0BA7C4

    struct PendingNode {
        var spec: Architecture.LayerSpec
        var inputs: [Int]
        var tensors: [String: [Float]]
    }

    let opset: Int
    let inputShape: TensorShape
    var nodes: [PendingNode] = []
    /// Shape and ONNX rank (with the batch axis) of each DoppelNN value.
    var shapes: [TensorShape]
    var ranks: [Int]
    var symbols: [String: Symbol] = [:]
    /// How many nodes read each ONNX value (to fold a layer into its only reader's producer).
    let readers: [String: Int]
    /// The ONNX value each DoppelNN value came from, when one did.
    var sources: [Int: String] = [:]
    /// The batch size the file was exported with, when its input fixes one (exporters without
    /// dynamic axes write it into reshape targets, where it stands for the batch).
    var exportedBatch: Int64?

    init(model: ONNXModel, input: TensorShape) {
        opset = model.opset
        inputShape = input
        shapes = [input]
        ranks = [4]
        var readers = [String: Int]()
        for node in model.nodes { for name in node.inputs where !name.isEmpty { readers[name, default: 0] += 1 } }
        for output in model.outputs { readers[output.name, default: 0] += 1 }
        self.readers = readers
        for (name, tensor) in model.initializers { symbols[name] = .constant(tensor) }
    }

    /// Binds the graph input to the network's input, checking its shape against the images'.
    mutating func bindInput(_ info: ONNXValueInfo) throws(ONNXImportError) {
        exportedBatch = info.dims.first.flatMap { $0 }.map(Int64.init)
        let dims = Array(info.dims.dropFirst())
        let known = dims.compactMap { $0 }
        let chw = [inputShape.channels, inputShape.height, inputShape.width]
        let hwc = [inputShape.height, inputShape.width, inputShape.channels]
        if dims.count == 3 && (known.count < 3 || known == chw) {
            symbols[info.name] = .activation(0)
        } else if dims.count == 3 && known == hwc {
            // NHWC (Keras, TensorFlow): the images arrive as CHW, the model reads HWC.
            let value = try emit(.transpose(permutation: [1, 2, 0]), inputs: [0], rank: 4, tensors: [:], node: "input")
            symbols[info.name] = .activation(value)
            sources[value] = info.name
        } else if dims.count == 1, known.first == nil || known.first == inputShape.count {
            let value = try emit(.flatten, inputs: [0], rank: 2, tensors: [:], node: "input")
            symbols[info.name] = .activation(value)
        } else {
            let shown = info.dims.map { $0.map(String.init) ?? "?" }.joined(separator: "x")
            throw .inputShape(detail: "the model's input '\(info.name)' is \(shown); --input \(inputShape) gives \(inputShape.channels)x\(inputShape.height)x\(inputShape.width) images (NCHW, or NHWC for Keras exports)")
        }
    }

    /// Appends a layer reading `inputs`, checking shapes and tensors; returns its value.
    @discardableResult
    mutating func emit(_ spec: Architecture.LayerSpec, inputs: [Int], rank: Int, tensors: [String: [Float]],
                       node: String) throws(ONNXImportError) -> Int {
        let described: (output: TensorShape, tensors: [(name: String, shape: [Int])])
        do { described = try spec.describe(inputs: inputs.map { shapes[$0] }) } catch {
            throw .graph(detail: "node '\(node)': \(error.description.replacingOccurrences(of: " at token 1", with: ""))")
        }
        for (name, shape) in described.tensors {
            guard let values = tensors[name] else { throw .graph(detail: "node '\(node)': internal: no \(name) tensor") }
            guard values.count == shape.reduce(1, *) else {
                throw .graph(detail: "node '\(node)': \(name) has \(values.count) values, \(Architecture.describe(layer: spec)) on \(shapes[inputs[0]]) needs \(shape)")
            }
        }
        nodes.append(PendingNode(spec: spec, inputs: inputs, tensors: tensors))
        shapes.append(described.output)
        ranks.append(rank)
        return shapes.count - 1
    }

    // MARK: reading inputs

    func symbol(_ node: ONNXNode, _ index: Int) throws(ONNXImportError) -> Symbol {
        guard index < node.inputs.count, !node.inputs[index].isEmpty else {
            throw .unsupportedInput(node: node.label, opType: node.opType, detail: "input \(index + 1) is missing")
        }
        guard let symbol = symbols[node.inputs[index]] else {
            throw .graph(detail: "node '\(node.label)' reads '\(node.inputs[index])', which no earlier node computes")
        }
        return symbol
    }

    /// Input `index` as a DoppelNN value, or an error saying what it is instead.
    func activation(_ node: ONNXNode, _ index: Int = 0) throws(ONNXImportError) -> Int {
        switch try symbol(node, index) {
        case .activation(let value): return value
        case .constant: throw .unsupportedInput(node: node.label, opType: node.opType, detail: "input \(index + 1) is a constant; doppel imports \(node.opType) on computed values")
        default: throw .unsupportedInput(node: node.label, opType: node.opType, detail: "input \(index + 1) is part of a pattern doppel imports only as a whole (L2 normalisation, a Siamese head)")
        }
    }

    /// Input `index` as a constant (an initializer or folded), or an error.
    func constant(_ node: ONNXNode, _ index: Int, _ role: String) throws(ONNXImportError) -> ONNXTensor {
        guard case .constant(let tensor) = try symbol(node, index) else {
            throw .unsupportedInput(node: node.label, opType: node.opType, detail: "the \(role) (input \(index + 1)) must be a constant (an initializer)")
        }
        return tensor
    }

    /// Input `index` as a constant when present.
    func optionalConstant(_ node: ONNXNode, _ index: Int, _ role: String) throws(ONNXImportError) -> ONNXTensor? {
        guard index < node.inputs.count, !node.inputs[index].isEmpty else { return nil }
        return try constant(node, index, role)
    }

    /// The value's ONNX dims after the batch axis.
    func dims(_ value: Int) -> [Int] {
        let shape = shapes[value]
        switch ranks[value] {
        case 2: return [shape.channels]
        case 3: return [shape.channels, shape.height]
        default: return [shape.channels, shape.height, shape.width]
        }
    }

    /// An ONNX axis of a rank-`rank` tensor (negative counts from the end), normalised.
    func axis(_ axis: Int64, rank: Int, _ node: ONNXNode, attribute: String = "axis") throws(ONNXImportError) -> Int {
        let normalised = axis < 0 ? Int(axis) + rank : Int(axis)
        guard normalised >= 0, normalised < rank else {
            throw .unsupportedAttribute(node: node.label, opType: node.opType, attribute: attribute, detail: "\(axis) is outside a rank-\(rank) tensor")
        }
        return normalised
    }

    mutating func alias(_ node: ONNXNode, to symbol: Symbol) {
        if let output = node.outputs.first { symbols[output] = symbol }
    }

    mutating func produce(_ node: ONNXNode, _ value: Int) {
        alias(node, to: .activation(value))
        if let output = node.outputs.first { sources[value] = output }
    }

    /// Whether the reader of DoppelNN value `value` at hand is its only reader in the ONNX
    /// graph (so the layer that made it can absorb what follows).
    func hasOneReader(_ value: Int) -> Bool {
        guard value > 0, let name = sources[value] else { return false }
        return readers[name] == 1
    }

    // MARK: finishing

    /// The network computing `output`: nodes nothing reads are dropped, values named where a
    /// later layer reads them out of order, tensors named by node.
    func finish(output: Int) throws(ONNXImportError) -> (Architecture, [String: [Float]]) {
        var needed = Set<Int>()
        var pending = [output]
        while let value = pending.popLast() {
            guard value > 0, needed.insert(value - 1).inserted else { continue }
            pending += nodes[value - 1].inputs
        }
        let kept = nodes.indices.filter { needed.contains($0) }
        var renumbered = [0: 0]
        for (position, index) in kept.enumerated() { renumbered[index + 1] = position + 1 }
        func name(_ value: Int) -> String { value == 0 ? "input" : "v\(value)" }
        // First pass: which values are read out of order (and need a name).
        var named = Set<Int>(), current = 0
        for index in kept {
            let inputs = nodes[index].inputs.map { renumbered[$0]! }
            if inputs[0] != current { named.insert(inputs[0]) }
            named.formUnion(inputs.dropFirst())
            current = renumbered[index + 1]!
        }
        var items = [Architecture.Item](), tensors = [String: [Float]]()
        current = 0
        for (position, index) in kept.enumerated() {
            let node = nodes[index]
            let inputs = node.inputs.map { renumbered[$0]! }
            if inputs[0] != current { items.append(.from(name(inputs[0]))) }
            let spec: Architecture.LayerSpec
            switch node.spec {
            case .add: spec = .add(name(inputs[1]))
            case .multiply: spec = .multiply(name(inputs[1]))
            case .concat: spec = .concat(inputs.dropFirst().map(name))
            default: spec = node.spec
            }
            items.append(.layer(spec))
            current = position + 1
            if named.contains(current) { items.append(.name(name(current))) }
            for (tensor, values) in node.tensors { tensors["\(position).\(tensor)"] = values }
        }
        guard !items.isEmpty else { throw .graph(detail: "the output is the input itself: there is no network to import") }
        return (Architecture(items: items), tensors)
    }
}

extension ONNXNode {
    func attribute(_ name: String) -> ONNXAttribute? { attributes[name] }
    func int(_ name: String, default fallback: Int64) -> Int64 { attributes[name]?.int ?? fallback }
    func float(_ name: String, default fallback: Float) -> Float { attributes[name]?.float ?? fallback }
    func string(_ name: String, default fallback: String) -> String { attributes[name]?.string ?? fallback }
    func ints(_ name: String) -> [Int64]? { attributes[name].map(\.ints) }

    func unsupported(_ attribute: String, _ detail: String) -> ONNXImportError {
        .unsupportedAttribute(node: label, opType: opType, attribute: attribute, detail: detail)
    }
}

extension Architecture {
    /// One layer's token, for messages.
    static func describe(layer spec: LayerSpec) -> String { Architecture(layers: [spec]).description }
}
