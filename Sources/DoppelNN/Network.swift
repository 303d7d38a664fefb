// SPDX-License-Identifier: MIT
// DoppelNN owns the embedder: tensors as flat Float buffers (NCHW), layers with forward and
// backward side by side, the architecture string and the graph it describes, Siamese
// distances and losses, optimizers, and the safetensors model file. Every heavy step is a
// BLAS call. It knows nothing of images, galleries, ONNX files or HTTP.
import Dispatch
import DoppelKernels
import Foundation

/// A network built from an `Architecture` for one input shape: a directed acyclic graph of
/// layers with one input and one output (a chain in the simple case). All parameters live in
/// one flat buffer and their gradients in a second of the same layout (node by node, each
/// node's tensors in `parameterSpecs` order), so an optimizer is one loop.
///
/// Batches are split into one contiguous slice per core, each run through its own replica
/// of the layers (layers hold per-batch scratch) with single-threaded BLAS, so im2col,
/// pooling and activations run on every core and no core spins waiting for another's
/// small GEMM. Weight gradients of the slices are summed at the end of `backward`.
/// Networks without convolutions run unsplit. Batch norm's training statistics span the whole
/// batch, so a training pass runs in stages: the slices in parallel up to a batch norm layer,
/// that layer once over the whole batch, then the slices again.
///
/// Inference runs a plan of its own (`InferencePlan`): batch norm folded into the
/// convolution or dense layer before it, element-wise activations applied in the pass that
/// writes the previous layer's output, and activation buffers reused once no later layer
/// reads them.
///
/// Thread safety: a network holds its activations and scratch; use one instance per thread,
/// or serialise calls.
public final class Network {
    public let architecture: Architecture
    public let inputShape: TensorShape
    public let outputShape: TensorShape
    let graph: NetworkGraph
    /// `replicas[w][i]`: node i's layer for worker w. `replicas[0]` holds the state (batch
    /// norm statistics) that the others copy.
    let replicas: [[Operation]]
    let workspaces: [Workspace]
    /// Extra workers' weight gradients, summed into the main buffer after backward.
    private let workerGradients: [FloatBuffer]
    /// Slices, stages and mode of the last forward, so backward splits the batch the same way.
    private var lastSlices: [Range<Int>] = []
    private var lastStages: [Stage] = []
    private var lastMode = PassMode.inference
    /// A slice smaller than this is not worth a thread.
    static let minimumSliceSamples = 4
    /// Cores used for a batch (1 disables splitting).
    public var workers: Int { replicas.count }
    /// Node ranges run per slice, and single nodes run over the whole batch (batch norm in
    /// training), in order.
    enum Stage {
        case sliced(Range<Int>)
        case wholeBatch(Int)
    }
    private var trainingStages: [Stage] = []
    /// Nodes with state besides parameters (batch norm's running statistics).
    let statefulNodes: [Int]
    private var replicaStateIsStale = true
    /// Start of each node's slice in the parameter buffer.
    let parameterOffsets: [Int]
    public let parameterCount: Int
    /// Nodes before this one keep their parameters and batch norm statistics in training
    /// (`freeze(allButTheLast:)`); their backward is skipped.
    public private(set) var frozenNodes = 0

    let parameterStorage: FloatBuffer
    private let gradientStorage: FloatBuffer
    /// Output of each node for the current training batch.
    private let activations: [FloatBuffer]
    /// dL/d(value) for each value (the input, then each node's output).
    private let valueGradients: [FloatBuffer]
    /// For each node and input slot, whether its dx starts the value's gradient or adds to
    /// what a later reader gave (values read by several nodes), in backward order.
    private let accumulatesGradient: [[Bool]]
    /// Bumped whenever parameters or statistics may have changed, so the inference plan
    /// refolds batch norm before its next run.
    private(set) var parameterVersion = 0
    lazy var inferencePlan = InferencePlan(network: self)
    /// Inference through the fused plan (the default), or node by node as written (the
    /// reference the tests hold the plan to).
    var fusesInference = true

    /// Builds and initialises (He or Glorot, per layer) from `seed`; with no seed the parameters
    /// start at zero, for a caller about to assign them all (loading a file). `workers` defaults
    /// to the machine's cores; results do not depend on it except through dropout's masks.
    public init(architecture: Architecture, input: TensorShape, seed initialSeed: UInt64?,
                workers: Int = ProcessInfo.processInfo.activeProcessorCount) throws(ArchitectureError) {
        self.architecture = architecture
        inputShape = input
        let seed = initialSeed ?? 0
        let graph = try NetworkGraph(architecture, input: input)
        self.graph = graph
        // Only convolutional networks are split: their im2col, pooling and activations are
        // most of the non-GEMM time. An MLP is a few large GEMMs that OpenBLAS threads well
        // (784-1024-1024-2 at batch 32: 24,600 images/s unsplit, 16,800 split).
        let count = architecture.hasConvolution ? max(1, workers) : 1
        var replicas = [[Operation]](), workspaces = [Workspace]()
        for replica in 0..<count {
            let workspace = Workspace()
            var operations = [Operation]()
            for index in graph.nodes.indices {
                operations.append(try graph.makeOperation(index, workspace: workspace, seed: seed &+ UInt64(replica) &* 0x5851_F42D))
            }
            replicas.append(operations)
            workspaces.append(workspace)
        }
        self.replicas = replicas
        self.workspaces = workspaces
        statefulNodes = replicas[0].indices.filter { !replicas[0][$0].stateSpecs.isEmpty }
        outputShape = graph.shapes.last!
        var offsets = [Int](), total = 0
        for operation in replicas[0] {
            offsets.append(total)
            total += operation.parameterCount
        }
        parameterOffsets = offsets
        parameterCount = total
        parameterStorage = FloatBuffer(capacity: total)
        gradientStorage = FloatBuffer(capacity: total)
        activations = graph.nodes.map { _ in FloatBuffer() }
        valueGradients = graph.shapes.map { _ in FloatBuffer() }
        workerGradients = (1..<replicas.count).map { _ in FloatBuffer(capacity: total) }
        var seen = Set<Int>()
        var accumulates = graph.nodes.map { $0.inputs.map { _ in false } }
        for index in graph.nodes.indices.reversed() {
            for (slot, value) in graph.nodes[index].inputs.enumerated() {
                accumulates[index][slot] = !seen.insert(value).inserted
            }
        }
        accumulatesGradient = accumulates
        if initialSeed != nil {
            var generator = SeededGenerator(seed: seed)
            for (index, operation) in replicas[0].enumerated() {
                if case .unary(let layer) = operation { layer.initialize(parameterStorage.pointer + offsets[index], using: &generator) }
            }
        }
        trainingStages = makeTrainingStages()
    }

    /// The node's layer in replica 0, when it has one input.
    func layer(_ index: Int) -> Layer? {
        if case .unary(let layer) = replicas[0][index] { return layer }
        return nil
    }

    /// Batch norm layers train over the whole batch; frozen ones use their running statistics
    /// and split like any other layer.
    private func makeTrainingStages() -> [Stage] {
        let wholeBatch = graph.nodes.indices.filter { index in
            if case .batchNorm = graph.nodes[index].spec { return index >= frozenNodes }
            return false
        }
        var stages = [Stage](), next = 0
        for index in wholeBatch {
            if next < index { stages.append(.sliced(next..<index)) }
            stages.append(.wholeBatch(index))
            next = index + 1
        }
        if next < graph.nodes.count { stages.append(.sliced(next..<graph.nodes.count)) }
        return stages
    }

    /// The parameters, in place (for optimizers and model files). Taking this pointer counts as
    /// changing them: the next inference refolds batch norm from the values then present.
    public var parameters: UnsafeMutableBufferPointer<Float> {
        parameterVersion &+= 1
        return UnsafeMutableBufferPointer(start: parameterStorage.pointer, count: parameterCount)
    }
    /// The gradients, same layout; `backward` accumulates into them.
    public var gradients: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: gradientStorage.pointer, count: parameterCount) }

    /// Where the trained parameters start: everything before belongs to frozen nodes.
    public var trainableOffset: Int { frozenNodes < parameterOffsets.count ? parameterOffsets[frozenNodes] : parameterCount }
    /// The parameters an optimizer updates (all, unless some are frozen) and their gradients.
    public var trainableParameters: ParameterBlock {
        let all = parameters, offset = trainableOffset
        return ParameterBlock(values: UnsafeMutableBufferPointer(rebasing: all[offset...]),
                              gradients: UnsafeMutableBufferPointer(rebasing: gradients[offset...]))
    }

    /// Layers in the graph (a residual block's addition and projection included).
    public var layerCount: Int { graph.nodes.count }

    /// Weight layers (nodes with parameters), in order.
    public var weightLayerCount: Int { replicas[0].filter { $0.parameterCount > 0 }.count }

    /// Freezes every node before the last `count` weight layers: their parameters stay as they
    /// are, batch norm among them keeps its running statistics, and backward stops where the
    /// trained part begins. `count` at or above `weightLayerCount` trains everything.
    public func freeze(allButTheLast count: Int) {
        frozenNodes = firstTrainedNode(lastWeightLayers: count)
        trainingStages = makeTrainingStages()
    }

    /// The first node of the last `count` weight layers (everything for `count` at or above
    /// `weightLayerCount`, nothing at 0).
    private func firstTrainedNode(lastWeightLayers count: Int) -> Int {
        let weightNodes = replicas[0].indices.filter { replicas[0][$0].parameterCount > 0 }
        return count >= weightNodes.count ? 0 : (count <= 0 ? graph.nodes.count : weightNodes[weightNodes.count - count])
    }

    /// Names of the tensors (as `namedTensors` gives them) of the last `count` weight layers:
    /// what `freeze(allButTheLast: count)` leaves to train.
    public func trainableTensorNames(lastWeightLayers count: Int) -> Set<String> {
        let first = firstTrainedNode(lastWeightLayers: count)
        return Set(replicas[0].indices.filter { $0 >= first }.flatMap { index in
            (replicas[0][index].parameterSpecs + replicas[0][index].stateSpecs).map { "\(index).\($0.name)" }
        })
    }

    public func zeroGradients() { gradientStorage.zero(parameterCount) }

    /// Contiguous slices of a batch, one per worker that gets at least `minimumSliceSamples`.
    func slices(of batch: Int) -> [Range<Int>] {
        let parts = min(replicas.count, batch / Self.minimumSliceSamples)
        guard parts > 1 else { return [0..<batch] }
        return (0..<parts).map { share(of: batch, piece: $0, parts: parts) }
    }

    /// Runs `body(worker, slice)` for every slice, in parallel when there are several, with
    /// BLAS single-threaded meanwhile (each worker is already a core).
    func forEachSlice(_ slices: [Range<Int>], _ body: (Int, Range<Int>) -> Void) {
        guard slices.count > 1 else {
            BLASThreads.usingAllCores { body(0, slices[0]) }
            return
        }
        BLASThreads.splitting {
            withoutActuallyEscaping(body) { body in
                nonisolated(unsafe) let body = body
                DispatchQueue.concurrentPerform(iterations: slices.count) { worker in body(worker, slices[worker]) }
            }
        }
    }

    /// Embeds `batch` samples laid out `[batch, inputShape]`. The result points into the
    /// network's own buffer and stays valid until the next call.
    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, batch: Int, mode: PassMode = .inference) -> UnsafeBufferPointer<Float> {
        let slices = slices(of: batch)
        lastMode = mode
        if slices.count > 1 { copyStateToReplicas() }
        if mode == .inference && fusesInference {
            return inferencePlan.run(x, batch: batch, slices: slices)
        }
        let stages = mode == .training ? trainingStages : [.sliced(graph.nodes.indices)]
        if mode == .training {
            parameterVersion &+= 1
            if !statefulNodes.isEmpty { replicaStateIsStale = true }
        }
        // Grow every activation buffer before the workers write their slices of them.
        for index in graph.nodes.indices { activations[index].reserve(batch * graph.nodes[index].outputShape.count) }
        lastSlices = slices
        lastStages = stages
        nonisolated(unsafe) let x = x
        for stage in stages {
            switch stage {
            case .sliced(let range):
                forEachSlice(slices) { worker, slice in
                    for index in range { forwardNode(index, worker: worker, x, slice: slice) }
                }
            case .wholeBatch(let index):
                forwardNode(index, worker: 0, x, slice: 0..<batch)
            }
        }
        return UnsafeBufferPointer(start: activations[graph.nodes.count - 1].pointer, count: batch * outputShape.count)
    }

    /// Value `value` for the samples from `start` on: the network's input `x` or a node's
    /// training activations (both contiguous over the batch).
    private func trainingValue(_ value: Int, _ x: UnsafePointer<Float>, from start: Int) -> UnsafePointer<Float> {
        value == 0 ? x + start * inputShape.count : UnsafePointer(activations[value - 1].pointer + start * graph.shapes[value].count)
    }

    private func forwardNode(_ index: Int, worker: Int, _ x: UnsafePointer<Float>, slice: Range<Int>) {
        let node = graph.nodes[index]
        let y = activations[index].pointer + slice.lowerBound * node.outputShape.count
        switch replicas[worker][index] {
        case .unary(let layer):
            // Frozen batch norm keeps its statistics: it runs as at inference.
            let mode: PassMode = lastMode == .inference || index < frozenNodes ? .inference : .training
            layer.forward(trainingValue(node.inputs[0], x, from: slice.lowerBound), y, batch: slice.count,
                          parameters: parameterStorage.pointer + parameterOffsets[index], mode: mode)
        case .merge(let merge):
            merge.forward(node.inputs.map { trainingValue($0, x, from: slice.lowerBound) }, y, batch: slice.count)
        }
    }

    /// Gives every replica `replicas[0]`'s layer state, once after each change to it (a
    /// training pass or `assign`), not on every batch.
    private func copyStateToReplicas() {
        guard replicaStateIsStale else { return }
        for index in statefulNodes {
            guard case .unary(let source) = replicas[0][index] else { continue }
            let state = source.state
            for replica in replicas.dropFirst() {
                if case .unary(let layer) = replica[index] { layer.state = state }
            }
        }
        replicaStateIsStale = false
    }

    /// Array convenience for `forward` (allocates the result).
    public func forward(_ x: [Float], batch: Int, mode: PassMode = .inference) -> [Float] {
        precondition(x.count == batch * inputShape.count, "input has \(x.count) floats; \(batch) x \(inputShape) needs \(batch * inputShape.count)")
        return x.withUnsafeBufferPointer { Array(forward($0.baseAddress!, batch: batch, mode: mode)) }
    }

    /// Back-propagates `dOutput` (`[batch, outputShape]`) through the last `forward` on `x`,
    /// which must have been a training pass, accumulating parameter gradients. Returns dL/dx
    /// when `wantInputGradient` (and nothing is frozen).
    @discardableResult
    public func backward(_ x: UnsafePointer<Float>, dOutput: UnsafePointer<Float>, batch: Int,
                         wantInputGradient: Bool = false) -> [Float]? {
        let slices = lastSlices
        precondition(lastMode == .training && slices.last?.upperBound == batch, "backward must follow a training forward of the same batch")
        let wantsInput = wantInputGradient && frozenNodes == 0
        // A value needs its gradient when a trained node made it (or it is the input, asked for).
        let needsGradient = graph.shapes.indices.map { value in value == 0 ? wantsInput : value - 1 >= frozenNodes }
        for value in graph.shapes.indices where needsGradient[value] && value < graph.shapes.count - 1 {
            valueGradients[value].reserve(batch * graph.shapes[value].count)
        }
        for worker in 1..<slices.count { workerGradients[worker - 1].zero(parameterCount) }
        nonisolated(unsafe) let (x, dOutput) = (x, dOutput)
        for stage in lastStages.reversed() {
            switch stage {
            case .sliced(let range):
                forEachSlice(slices) { worker, slice in
                    for index in range.reversed() where index >= frozenNodes {
                        backwardNode(index, worker: worker, x, dOutput: dOutput, slice: slice, needsGradient: needsGradient)
                    }
                }
            case .wholeBatch(let index):
                if index >= frozenNodes {
                    backwardNode(index, worker: 0, x, dOutput: dOutput, slice: 0..<batch, needsGradient: needsGradient)
                }
            }
        }
        for worker in 1..<slices.count {
            BLAS.axpy(count: parameterCount, alpha: 1, x: workerGradients[worker - 1].pointer, y: gradientStorage.pointer)
        }
        guard wantsInput else { return nil }
        return Array(UnsafeBufferPointer(start: valueGradients[0].pointer, count: batch * inputShape.count))
    }

    private func backwardNode(_ index: Int, worker: Int, _ x: UnsafePointer<Float>, dOutput: UnsafePointer<Float>,
                              slice: Range<Int>, needsGradient: [Bool]) {
        let node = graph.nodes[index]
        let start = slice.lowerBound
        let last = index == graph.nodes.count - 1
        let dy = last ? dOutput + start * outputShape.count : UnsafePointer(valueGradients[index + 1].pointer + start * node.outputShape.count)
        let y = UnsafePointer(activations[index].pointer + start * node.outputShape.count)
        let dParameters = (worker == 0 ? gradientStorage.pointer : workerGradients[worker - 1].pointer) + parameterOffsets[index]
        // Where each input's dx goes: straight into the value's gradient, or (when a later
        // reader has started it) into scratch that is added afterwards.
        let scratchNeed = node.inputs.indices.reduce(0) { total, slot in
            accumulatesGradient[index][slot] && needsGradient[node.inputs[slot]] ? total + slice.count * node.inputShapes[slot].count : total
        }
        let scratch = workspaces[worker].gradient.reserve(max(scratchNeed, 1))
        var scratchUsed = 0
        var targets = [UnsafeMutablePointer<Float>?]()
        for (slot, value) in node.inputs.enumerated() {
            guard needsGradient[value] else {
                targets.append(nil)
                continue
            }
            if accumulatesGradient[index][slot] {
                targets.append(scratch + scratchUsed)
                scratchUsed += slice.count * node.inputShapes[slot].count
            } else {
                targets.append(valueGradients[value].pointer + start * graph.shapes[value].count)
            }
        }
        switch replicas[worker][index] {
        case .unary(let layer):
            layer.backward(trainingValue(node.inputs[0], x, from: start), y, dy, targets[0], batch: slice.count,
                           parameters: parameterStorage.pointer + parameterOffsets[index], dParameters: dParameters)
        case .merge(let merge):
            merge.backward(node.inputs.map { trainingValue($0, x, from: start) }, y, dy, targets, batch: slice.count)
        }
        for (slot, value) in node.inputs.enumerated() where needsGradient[value] && accumulatesGradient[index][slot] {
            let count = slice.count * node.inputShapes[slot].count
            let target = valueGradients[value].pointer + start * graph.shapes[value].count
            let source = targets[slot]!
            for i in 0..<count { target[i] += source[i] }
        }
    }

    /// Every tensor of the model, named `"<node index>.<name>"` like a PyTorch
    /// `nn.Sequential` state dict, with its shape and values (parameters, then state such as
    /// batch norm's running statistics).
    public func namedTensors() -> [(name: String, shape: [Int], values: [Float])] {
        var result = [(name: String, shape: [Int], values: [Float])]()
        for (index, operation) in replicas[0].enumerated() {
            var offset = parameterOffsets[index]
            for spec in operation.parameterSpecs {
                result.append(("\(index).\(spec.name)", spec.shape, Array(UnsafeBufferPointer(start: parameterStorage.pointer + offset, count: spec.count))))
                offset += spec.count
            }
            guard case .unary(let layer) = operation, !layer.stateSpecs.isEmpty else { continue }
            let state = layer.state
            var stateOffset = 0
            for spec in layer.stateSpecs {
                result.append(("\(index).\(spec.name)", spec.shape, Array(state[stateOffset..<(stateOffset + spec.count)])))
                stateOffset += spec.count
            }
        }
        return result
    }

    /// Names and shapes `namedTensors` produces, without copying values.
    public var tensorSpecs: [(name: String, shape: [Int])] {
        replicas[0].enumerated().flatMap { index, operation in
            (operation.parameterSpecs + operation.stateSpecs).map { ("\(index).\($0.name)", $0.shape) }
        }
    }

    /// Replaces every tensor from `tensors` (name -> values); all must be present with the
    /// right element counts (checked by the caller against `tensorSpecs` shapes).
    func assign(_ tensors: [String: [Float]]) {
        for (index, operation) in replicas[0].enumerated() {
            var offset = parameterOffsets[index]
            for spec in operation.parameterSpecs {
                let values = tensors["\(index).\(spec.name)"]!
                (parameterStorage.pointer + offset).update(from: values, count: spec.count)
                offset += spec.count
            }
            if case .unary(let layer) = operation, !layer.stateSpecs.isEmpty {
                layer.state = layer.stateSpecs.flatMap { tensors["\(index).\($0.name)"]! }
            }
        }
        replicaStateIsStale = true
        parameterVersion &+= 1
    }

    /// Replaces every tensor by name (as `namedTensors` gives them), checking that each is
    /// present with the right number of values.
    public func load(tensors: [String: [Float]]) throws(ModelFileError) {
        for (name, shape) in tensorSpecs {
            guard let values = tensors[name] else { throw .missingTensor(name: name, expectedShape: shape) }
            guard values.count == shape.reduce(1, *) else { throw .shapeMismatch(name: name, expected: shape, found: [values.count]) }
        }
        assign(tensors)
    }

    /// Dropout layers reuse their last mask (for finite-difference checks).
    func freezeDropoutMasks() {
        for case .unary(let layer) in replicas.joined() {
            (layer as? Dropout)?.freezesMask = true
        }
    }

    /// Multiply-adds of one forward pass per sample, times two: FLOPs per image.
    public var forwardFLOPsPerSample: Double {
        replicas[0].reduce(0.0) { total, operation in
            guard case .unary(let layer) = operation else { return total }
            switch layer {
            case let dense as Dense: return total + 2 * Double(dense.inputShape.count * dense.outputShape.count)
            case let conv as Conv2D:
                return total + 2 * Double(conv.outputShape.count * conv.inputShape.channels / conv.groups * conv.kernel * conv.kernel)
            default: return total
            }
        }
    }

    /// The length of the dot products each weight layer computes, in order (a convolution's
    /// C/groups x k x k, a dense layer's inputs), and whether one image may run that layer by
    /// Winograd's F(2x2, 3x3): what a rounding-error estimate of the forward pass needs.
    public var dotProductLengths: [(length: Int, winograd: Bool)] {
        graph.nodes.compactMap { node in
            switch node.spec {
            case .conv(_, let kernel, _, _, let groups, _):
                return (node.inputShapes[0].channels / groups * kernel * kernel, InferencePlan.usesWinograd(node.spec, input: node.inputShapes[0]))
            case .dense: return (node.inputShapes[0].count, false)
            default: return nil
            }
        }
    }

    /// The lengths of the sums a training step's backward pass and batch statistics add for a
    /// batch of `batch`: each weight gradient sums over the batch's output positions, each
    /// input gradient over the layer's filters x k x k (or units), each batch norm over the
    /// batch's positions.
    public func backwardSumLengths(batch: Int) -> [Int] {
        graph.nodes.compactMap { node in
            switch node.spec {
            case .conv(let filters, let kernel, _, _, let groups, _):
                return max(batch * node.outputShape.height * node.outputShape.width, filters / groups * kernel * kernel)
            case .dense(let units, _): return max(batch, units)
            case .batchNorm: return batch * node.outputShape.height * node.outputShape.width
            default: return nil
            }
        }
    }
}
