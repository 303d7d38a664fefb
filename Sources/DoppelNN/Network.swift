// SPDX-License-Identifier: MIT
// DoppelNN owns the embedder: tensors as flat Float buffers (NCHW), layers with forward and
// backward side by side, the architecture string, Siamese distances and losses, optimizers,
// and the safetensors model file. Every heavy step is a BLAS call. It knows nothing of
// images, galleries or HTTP.
import Dispatch
import Foundation

/// A feed-forward network built from an `Architecture` for one input shape. All parameters
/// live in one flat buffer and their gradients in a second of the same layout (layer by
/// layer, each layer's tensors in `parameterSpecs` order), so an optimizer is one loop.
///
/// Batches are split into one contiguous slice per core, each run through its own replica
/// of the layers (layers hold per-batch scratch) with single-threaded BLAS, so im2col,
/// pooling and activations run on every core and no core spins waiting for another's
/// small GEMM. Weight gradients of the slices are summed at the end of `backward`.
/// Networks without convolutions run unsplit. Batch norm's training statistics span the whole
/// batch, so a training pass runs in stages: the slices in parallel up to a batch norm layer,
/// that layer once over the whole batch, then the slices again. Inference uses its running
/// statistics (copied to every replica), so there it splits like any other layer.
///
/// Thread safety: a network holds its activations and scratch; use one instance per thread,
/// or serialise calls.
public final class Network {
    public let architecture: Architecture
    public let inputShape: TensorShape
    public let outputShape: TensorShape
    let layers: [Layer]
    /// `replicas[0]` is `layers`; one more per extra worker, sharing the parameters.
    private let replicas: [[Layer]]
    /// Extra workers' weight gradients, summed into the main buffer after backward.
    private let workerGradients: [FloatBuffer]
    /// Slices of the last forward, so backward splits the batch the same way.
    private var lastSlices: [Range<Int>] = []
    /// A slice smaller than this is not worth a thread.
    static let minimumSliceSamples = 4
    /// Cores used for a batch (1 disables splitting).
    public var workers: Int { replicas.count }
    /// Layer ranges run per slice, and single layers run over the whole batch (batch norm in
    /// training), in order.
    private enum Stage {
        case sliced(Range<Int>)
        case wholeBatch(Int)
    }
    private let trainingStages: [Stage]
    private let inferenceStages: [Stage]
    /// Layers with state besides parameters (batch norm's running statistics): `replicas[0]`
    /// holds it, and the others get a copy before they next run.
    private let statefulLayers: [Int]
    private var replicaStateIsStale = true
    /// Start of each layer's slice in the parameter buffer.
    let parameterOffsets: [Int]
    public let parameterCount: Int

    private let parameterStorage: FloatBuffer
    private let gradientStorage: FloatBuffer
    /// Output of each layer for the current batch.
    private let activations: [FloatBuffer]
    /// Ping-pong buffers for gradients flowing backward between layers.
    private let gradientA = FloatBuffer(), gradientB = FloatBuffer()
    /// A whole-batch layer's dy and dx, contiguous (the ping-pong buffers hold slices apart).
    private let wholeBatchDy = FloatBuffer(), wholeBatchDx = FloatBuffer()
    /// Stages of the last forward, so backward runs the same ones in reverse.
    private var lastStages: [Stage] = []

    /// Builds and initialises (He or Glorot, per layer) from `seed`. `workers` defaults to the
    /// machine's cores; results do not depend on it except through dropout's masks.
    public init(architecture: Architecture, input: TensorShape, seed: UInt64,
                workers: Int = ProcessInfo.processInfo.activeProcessorCount) throws(ArchitectureError) {
        self.architecture = architecture
        inputShape = input
        // Only convolutional networks are split: their im2col, pooling and activations are
        // most of the non-GEMM time. An MLP is a few large GEMMs that OpenBLAS threads well
        // (784-1024-1024-2 at batch 32: 24,600 images/s unsplit, 16,800 split).
        let hasConvolution = architecture.layers.contains { if case .conv = $0 { return true } else { return false } }
        let wholeBatch = architecture.layers.indices.filter { architecture.layers[$0] == .batchNorm }
        var stages = [Stage](), next = 0
        for index in wholeBatch {
            if next < index { stages.append(.sliced(next..<index)) }
            stages.append(.wholeBatch(index))
            next = index + 1
        }
        if next < architecture.layers.count { stages.append(.sliced(next..<architecture.layers.count)) }
        trainingStages = stages
        inferenceStages = [.sliced(0..<architecture.layers.count)]
        var replicas = [[Layer]]()
        for replica in 0..<(hasConvolution ? max(1, workers) : 1) {
            var layers = [Layer]()
            var shape = input
            for (index, spec) in architecture.layers.enumerated() {
                let layer = try Self.makeLayer(spec, input: shape, token: index + 1, previous: layers.last,
                                               seed: seed &+ UInt64(replica) &* 0x5851_F42D)
                layers.append(layer)
                shape = layer.outputShape
            }
            replicas.append(layers)
        }
        self.replicas = replicas
        layers = replicas[0]
        statefulLayers = replicas[0].indices.filter { !replicas[0][$0].stateSpecs.isEmpty }
        outputShape = layers.last!.outputShape
        var offsets = [Int](), total = 0
        for layer in layers {
            offsets.append(total)
            total += layer.parameterCount
        }
        parameterOffsets = offsets
        parameterCount = total
        parameterStorage = FloatBuffer(capacity: total)
        gradientStorage = FloatBuffer(capacity: total)
        activations = layers.map { _ in FloatBuffer() }
        workerGradients = (1..<replicas.count).map { _ in FloatBuffer(capacity: total) }
        var generator = SeededGenerator(seed: seed)
        for (layer, offset) in zip(layers, offsets) { layer.initialize(parameterStorage.pointer + offset, using: &generator) }
    }

    /// The parameters, in place (for optimizers and model files).
    public var parameters: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: parameterStorage.pointer, count: parameterCount) }
    /// The gradients, same layout; `backward` accumulates into them.
    public var gradients: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: gradientStorage.pointer, count: parameterCount) }

    public func zeroGradients() { gradientStorage.zero(parameterCount) }

    /// Contiguous slices of a batch, one per worker that gets at least `minimumSliceSamples`.
    private func slices(of batch: Int) -> [Range<Int>] {
        let parts = min(replicas.count, batch / Self.minimumSliceSamples)
        guard parts > 1 else { return [0..<batch] }
        return (0..<parts).map { part in (part * batch / parts)..<((part + 1) * batch / parts) }
    }

    /// Runs `body(worker, slice)` for every slice, in parallel when there are several, with
    /// BLAS single-threaded meanwhile (each worker is already a core).
    private func forEachSlice(_ slices: [Range<Int>], _ body: (Int, Range<Int>) -> Void) {
        guard slices.count > 1 else {
            BLAS.setThreads(ProcessInfo.processInfo.activeProcessorCount)
            body(0, slices[0])
            return
        }
        BLAS.setThreads(1)
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: slices.count) { worker in body(worker, slices[worker]) }
        }
    }

    /// Embeds `batch` samples laid out `[batch, inputShape]`. The result points into the
    /// network's own buffer and stays valid until the next call.
    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, batch: Int, mode: PassMode = .inference) -> UnsafeBufferPointer<Float> {
        // Grow every activation buffer before the workers write their slices of them.
        for (index, layer) in layers.enumerated() { activations[index].reserve(batch * layer.outputShape.count) }
        let slices = slices(of: batch)
        let stages = mode == .training ? trainingStages : inferenceStages
        lastSlices = slices
        lastStages = stages
        if slices.count > 1 { copyStateToReplicas() }
        if mode == .training && !statefulLayers.isEmpty { replicaStateIsStale = true }
        nonisolated(unsafe) let x = x
        for stage in stages {
            switch stage {
            case .sliced(let range):
                forEachSlice(slices) { worker, slice in
                    for index in range {
                        let layer = replicas[worker][index]
                        layer.forward(input(of: index, x, from: slice.lowerBound), activations[index].pointer + slice.lowerBound * layer.outputShape.count,
                                      batch: slice.count, parameters: parameterStorage.pointer + parameterOffsets[index], mode: mode)
                    }
                }
            case .wholeBatch(let index):
                layers[index].forward(input(of: index, x, from: 0), activations[index].pointer, batch: batch,
                                      parameters: parameterStorage.pointer + parameterOffsets[index], mode: mode)
            }
        }
        return UnsafeBufferPointer(start: activations[layers.count - 1].pointer, count: batch * outputShape.count)
    }

    /// Layer `index`'s input for the samples from `start` on: the network's input `x` or the
    /// previous layer's activations (both contiguous over the batch).
    private func input(of index: Int, _ x: UnsafePointer<Float>, from start: Int) -> UnsafePointer<Float> {
        index == 0 ? x + start * inputShape.count : UnsafePointer(activations[index - 1].pointer + start * layers[index].inputShape.count)
    }

    /// Gives every replica `replicas[0]`'s layer state, once after each change to it (a
    /// training pass or `assign`), not on every batch.
    private func copyStateToReplicas() {
        guard replicaStateIsStale else { return }
        for index in statefulLayers {
            let state = layers[index].state
            for replica in replicas.dropFirst() { replica[index].state = state }
        }
        replicaStateIsStale = false
    }

    /// Array convenience for `forward` (allocates the result).
    public func forward(_ x: [Float], batch: Int, mode: PassMode = .inference) -> [Float] {
        precondition(x.count == batch * inputShape.count, "input has \(x.count) floats; \(batch) x \(inputShape) needs \(batch * inputShape.count)")
        return x.withUnsafeBufferPointer { Array(forward($0.baseAddress!, batch: batch, mode: mode)) }
    }

    /// Back-propagates `dOutput` (`[batch, outputShape]`) through the last `forward` on `x`,
    /// accumulating parameter gradients. Returns dL/dx when `wantInputGradient`.
    @discardableResult
    public func backward(_ x: UnsafePointer<Float>, dOutput: UnsafePointer<Float>, batch: Int,
                         wantInputGradient: Bool = false) -> [Float]? {
        let slices = lastSlices
        precondition(slices.last?.upperBound == batch, "backward must follow a forward of the same batch")
        let widest = layers.map(\.inputShape.count).max()!
        gradientA.reserve(batch * widest)
        gradientB.reserve(batch * widest)
        for worker in 1..<slices.count { workerGradients[worker - 1].zero(parameterCount) }
        nonisolated(unsafe) let (x, dOutput) = (x, dOutput)
        // Layer `index`'s dx goes to one of two ping-pong buffers by parity, each sample's
        // slice `widest` floats per sample from the start, so a worker on one layer never
        // overlaps another worker on a wider layer. Layer `index` reads its dy from where
        // layer `index + 1` wrote its dx (the last layer from `dOutput`).
        func dxBuffer(of index: Int) -> UnsafeMutablePointer<Float> { (index % 2 == 0 ? gradientA : gradientB).pointer }
        for stage in lastStages.reversed() {
            switch stage {
            case .sliced(let range):
                forEachSlice(slices) { worker, slice in
                    let gradients = worker == 0 ? gradientStorage.pointer : workerGradients[worker - 1].pointer
                    let start = slice.lowerBound
                    var dy = range.upperBound == layers.count ? dOutput + start * outputShape.count : UnsafePointer(dxBuffer(of: range.upperBound) + start * widest)
                    for index in range.reversed() {
                        let layer = replicas[worker][index]
                        let needsDx = index > 0 || wantInputGradient
                        let dx = needsDx ? dxBuffer(of: index) + start * widest : nil
                        layer.backward(input(of: index, x, from: start), activations[index].pointer + start * layer.outputShape.count, dy, dx,
                                       batch: slice.count, parameters: parameterStorage.pointer + parameterOffsets[index],
                                       dParameters: gradients + parameterOffsets[index])
                        if let dx { dy = UnsafePointer(dx) }
                    }
                }
            case .wholeBatch(let index):
                // The ping-pong buffers hold the slices `widest` apart: gather dy into one
                // contiguous batch, and scatter dx back (with one slice they are already so).
                let layer = layers[index]
                let (inCount, outCount) = (layer.inputShape.count, layer.outputShape.count)
                let dy: UnsafePointer<Float>
                if index + 1 == layers.count {
                    dy = dOutput
                } else if slices.count == 1 {
                    dy = UnsafePointer(dxBuffer(of: index + 1))
                } else {
                    wholeBatchDy.reserve(batch * outCount)
                    for slice in slices {
                        (wholeBatchDy.pointer + slice.lowerBound * outCount)
                            .update(from: dxBuffer(of: index + 1) + slice.lowerBound * widest, count: slice.count * outCount)
                    }
                    dy = UnsafePointer(wholeBatchDy.pointer)
                }
                let needsDx = index > 0 || wantInputGradient
                let scatter = needsDx && slices.count > 1
                if scatter { wholeBatchDx.reserve(batch * inCount) }
                let dx = needsDx ? (scatter ? wholeBatchDx.pointer : dxBuffer(of: index)) : nil
                layer.backward(input(of: index, x, from: 0), activations[index].pointer, dy, dx, batch: batch,
                               parameters: parameterStorage.pointer + parameterOffsets[index],
                               dParameters: gradientStorage.pointer + parameterOffsets[index])
                if scatter {
                    for slice in slices {
                        (dxBuffer(of: index) + slice.lowerBound * widest)
                            .update(from: wholeBatchDx.pointer + slice.lowerBound * inCount, count: slice.count * inCount)
                    }
                }
            }
        }
        for worker in 1..<slices.count {
            BLAS.axpy(count: parameterCount, alpha: 1, x: workerGradients[worker - 1].pointer, y: gradientStorage.pointer)
        }
        guard wantInputGradient else { return nil }
        var dx = [Float](repeating: 0, count: batch * inputShape.count)
        dx.withUnsafeMutableBufferPointer { out in
            for slice in slices {
                (out.baseAddress! + slice.lowerBound * inputShape.count)
                    .update(from: gradientA.pointer + slice.lowerBound * widest, count: slice.count * inputShape.count)
            }
        }
        return dx
    }

    /// Every tensor of the model, named `"<layer index>.<name>"` like a PyTorch
    /// `nn.Sequential` state dict, with its shape and values (parameters, then state such as
    /// batch norm's running statistics).
    public func namedTensors() -> [(name: String, shape: [Int], values: [Float])] {
        var result = [(name: String, shape: [Int], values: [Float])]()
        for (index, layer) in layers.enumerated() {
            var offset = parameterOffsets[index]
            for spec in layer.parameterSpecs {
                result.append(("\(index).\(spec.name)", spec.shape, Array(UnsafeBufferPointer(start: parameterStorage.pointer + offset, count: spec.count))))
                offset += spec.count
            }
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
        layers.enumerated().flatMap { index, layer in
            (layer.parameterSpecs + layer.stateSpecs).map { ("\(index).\($0.name)", $0.shape) }
        }
    }

    /// Replaces every tensor from `tensors` (name -> values); all must be present with the
    /// right element counts (checked by the caller against `tensorSpecs` shapes).
    func assign(_ tensors: [String: [Float]]) {
        for (index, layer) in layers.enumerated() {
            var offset = parameterOffsets[index]
            for spec in layer.parameterSpecs {
                let values = tensors["\(index).\(spec.name)"]!
                (parameterStorage.pointer + offset).update(from: values, count: spec.count)
                offset += spec.count
            }
            if !layer.stateSpecs.isEmpty {
                layer.state = layer.stateSpecs.flatMap { tensors["\(index).\($0.name)"]! }
            }
        }
        replicaStateIsStale = true
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
        for case let dropout as Dropout in replicas.joined() { dropout.freezesMask = true }
    }

    /// Multiply-adds of one forward pass per sample, times two: FLOPs per image.
    public var forwardFLOPsPerSample: Double {
        layers.reduce(0.0) { total, layer in
            switch layer {
            case let dense as Dense: return total + 2 * Double(dense.inputShape.count * dense.outputShape.count)
            case let conv as Conv2D:
                return total + 2 * Double(conv.outputShape.count * conv.inputShape.channels * conv.kernel * conv.kernel)
            default: return total
            }
        }
    }

    private static func makeLayer(_ spec: Architecture.LayerSpec, input: TensorShape, token: Int, previous: Layer?,
                                  seed: UInt64) throws(ArchitectureError) -> Layer {
        let text = Architecture(layers: [spec]).description
        let after = previous.map { " after \($0.token) at token \(token - 1)" } ?? " (the model input)"
        switch spec {
        case .conv(let filters, let kernel, let stride, let padding, let initializer):
            guard input.height + 2 * padding >= kernel, input.width + 2 * padding >= kernel else {
                throw .shapeMismatch(token: token, text: text,
                                     detail: "input is \(input.channels)x\(input.height)x\(input.width)\(after), smaller than the \(kernel)x\(kernel) kernel with pad \(padding)")
            }
            guard padding < kernel else {
                throw .badArgument(token: token, text: text, detail: "pad \(padding) must be smaller than the kernel \(kernel)")
            }
            return Conv2D(input: input, filters: filters, kernel: kernel, stride: stride, padding: padding, initializer: initializer)
        case .dense(let units, let initializer):
            guard input.isFlat else {
                throw .shapeMismatch(token: token, text: text, detail: "input is \(input.channels)x\(input.height)x\(input.width)\(after); add flatten (or gap) before it")
            }
            return Dense(input: input, outputs: units, initializer: initializer)
        case .maxPool(let size, let stride), .avgPool(let size, let stride):
            guard input.height >= size, input.width >= size else {
                throw .shapeMismatch(token: token, text: text, detail: "input is \(input.channels)x\(input.height)x\(input.width)\(after), smaller than the \(size)x\(size) window")
            }
            if case .maxPool = spec { return MaxPool(input: input, size: size, stride: stride) }
            return AvgPool(input: input, size: size, stride: stride)
        case .globalAvgPool: return GlobalAvgPool(input: input)
        case .flatten: return Flatten(input: input)
        case .relu: return Activation(.relu, input: input)
        case .leakyReLU(let slope): return Activation(.leakyReLU(slope: slope), input: input)
        case .sigmoid: return Activation(.sigmoid, input: input)
        case .tanh: return Activation(.tanh, input: input)
        case .dropout(let p): return Dropout(input: input, probability: p, seed: seed &+ UInt64(token) &* 0x9E37_79B9)
        case .batchNorm: return BatchNorm(input: input)
        case .lrn(let size, let alpha, let beta, let k): return LocalResponseNorm(input: input, size: size, alpha: alpha, beta: beta, k: k)
        case .l2Normalize:
            guard input.isFlat else {
                throw .shapeMismatch(token: token, text: text, detail: "input is \(input.channels)x\(input.height)x\(input.width)\(after); l2norm needs a flat vector (add flatten)")
            }
            return L2Normalize(input: input)
        }
    }
}
