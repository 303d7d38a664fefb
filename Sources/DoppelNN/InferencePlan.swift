// SPDX-License-Identifier: MIT

import Dispatch
import DoppelKernels

/// How a network infers: the graph's nodes as steps, with
/// - batch norm after a convolution or dense layer (its only reader) folded into that layer's
///   weights and bias: w'[k] = w[k] gamma[k] / sqrt(var[k] + eps), b' = (b - mean) scale + beta,
///   refolded whenever the parameters or statistics have changed;
/// - an element-wise activation after a convolution, dense layer or merge (its only reader)
///   applied in the pass that writes that layer's output;
/// - 3x3 stride-1 convolutions by Winograd's F(2x2, 3x3) (`WinogradConv2D`), their weights
///   transformed once per change;
/// - one image (`runOneImage`) on both cores at once, its ungrouped convolutions on weights
///   packed once per change for `CGEMMKernels` (a second copy of those weights) where BLAS would
///   repack them per call: `Conv2D.forwardPacked`, or `WinogradConv2D.forwardPacked` on the
///   packed transformed weights for 3x3 maps of `minimumPackedWinogradTiles` tiles or more;
/// - activation buffers ("slots") reused once no later step reads them, so a ResNet's memory
///   is a few feature maps, not all of them.
/// Each worker owns `[lo * width, hi * width)` of every slot for its slice `lo..<hi`, so
/// workers never touch each other's floats even when a slot holds values of different sizes
/// over time.
final class InferencePlan {
    struct Step {
        let node: Int
        /// Values read (graph numbering: 0 the input, i + 1 node i's output).
        let inputs: [Int]
        /// The value written: node's output, or the last fused node's.
        let output: Int
        /// The batch norm node folded into this step, and where its folded weights live.
        let foldedBatchNorm: Int?
        let foldedOffset: Int
        /// Where the Winograd-transformed weights (and bias) live, for a step that uses them.
        let transformedOffset: Int?
        /// Where the packed weights live, for a convolution the packed kernel runs on one image:
        /// the direct weights, or the 16 Winograd matrices when `packsWinograd`.
        let packedOffset: Int?
        let packsWinograd: Bool
    }

    private unowned let network: Network
    let steps: [Step]
    /// `operations[w][s]`: the layer running step s for worker w (a fused copy, or the
    /// network's own).
    private let operations: [[Operation]]
    /// `winogradOperations[w][s]`: step s by Winograd, for the steps that may use it.
    private let winogradOperations: [[WinogradConv2D?]]
    /// Below this many tiles in a call, Winograd's weights (16/9 of the direct ones) cost more
    /// to stream than its multiplications save, and its 16 GEMMs more thread hand-offs: the
    /// direct convolution runs. ResNet-18 at 3x112x112 (2 cores, OpenBLAS Cooperlake kernels),
    /// images/s at batch 1 / 32: direct everywhere 147 / 276; Winograd from 16 tiles 87 / 318,
    /// from 48 tiles 90 / 310, from 128 tiles 137 / 290. A batch split over cores runs
    /// single-threaded GEMMs, which pay from 16 tiles; one slice on threaded BLAS needs many more.
    static func minimumWinogradTiles(split: Bool) -> Int { split ? 16 : 1024 }
    /// One image on packed weights (`runOneImage`) takes Winograd from this many tiles.
    static let minimumPackedWinogradTiles = 16
    private let slotOfValue: [Int]
    private let slotWidths: [Int]
    private let slots: [FloatBuffer]
    private let folded: FloatBuffer
    private let transformed: FloatBuffer
    /// The packed weights, made on the first image that runs alone after a change (a network
    /// that only ever sees batches never pays their memory or their packing).
    private let packed = FloatBuffer()
    private let packedFloats: Int
    private var foldedVersion = -1, packedVersion = -1

    /// Whether a convolution runs by Winograd's F(2x2, 3x3): 3x3, stride 1, ungrouped, with
    /// enough channels for its 16 GEMMs to be worth their transforms.
    static func usesWinograd(_ spec: Architecture.LayerSpec, input: TensorShape) -> Bool {
        guard case .conv(let filters, 3, 1, let padding, 1, _) = spec else { return false }
        return padding <= 2 && input.channels >= 16 && filters >= 16 && input.height + 2 * padding >= 4 && input.width + 2 * padding >= 4
    }

    init(network: Network) {
        self.network = network
        let graph = network.graph
        let consumers = graph.consumers
        let outputValue = graph.shapes.count - 1
        /// The node reading `value` when it is its only reader, reads nothing else, and the
        /// value is not the network's output.
        func soleReader(of value: Int) -> Int? {
            guard value != outputValue, consumers[value].count == 1 else { return nil }
            let reader = consumers[value][0].node
            return graph.nodes[reader].inputs == [value] ? reader : nil
        }
        var fused = Set<Int>()
        var steps = [Step](), epilogues = [ActivationFunction?]()
        var foldedFloats = 0, transformedFloats = 0, packedFloats = 0
        for index in graph.nodes.indices where !fused.contains(index) {
            let node = graph.nodes[index]
            var output = index + 1, foldedBatchNorm: Int? = nil, epilogue: ActivationFunction? = nil
            let foldable: Bool, takesEpilogue: Bool
            switch node.spec {
            case .conv, .dense: (foldable, takesEpilogue) = (true, true)
            case .add, .addPadded, .multiply, .concat: (foldable, takesEpilogue) = (false, true)
            default: (foldable, takesEpilogue) = (false, false)
            }
            if foldable, let reader = soleReader(of: output), case .batchNorm = graph.nodes[reader].spec {
                foldedBatchNorm = reader
                fused.insert(reader)
                output = reader + 1
            }
            if takesEpilogue, let reader = soleReader(of: output), case .activation(let function) = graph.nodes[reader].spec {
                epilogue = function
                fused.insert(reader)
                output = reader + 1
            }
            let winograd = Self.usesWinograd(node.spec, input: node.inputShapes[0])
            let imageTiles = ((node.outputShape.height + 1) / 2) * ((node.outputShape.width + 1) / 2)
            let packsWinograd = Conv2D.packedKernelAvailable && winograd && imageTiles >= Self.minimumPackedWinogradTiles
            let packedSize = !Conv2D.packedKernelAvailable ? nil
                : packsWinograd ? WinogradConv2D.packedTransformedFloats(filters: node.outputShape.channels, channels: node.inputShapes[0].channels)
                : (network.layer(index) as? Conv2D)?.packedWeightFloats
            steps.append(Step(node: index, inputs: node.inputs, output: output, foldedBatchNorm: foldedBatchNorm, foldedOffset: foldedFloats,
                              transformedOffset: winograd ? transformedFloats : nil, packedOffset: packedSize.map { _ in packedFloats },
                              packsWinograd: packsWinograd))
            packedFloats += packedSize ?? 0
            epilogues.append(epilogue)
            if foldedBatchNorm != nil { foldedFloats += network.replicas[0][index].parameterCount }
            if winograd { transformedFloats += 16 * node.outputShape.channels * node.inputShapes[0].channels + node.outputShape.channels }
        }
        self.steps = steps
        folded = FloatBuffer(capacity: foldedFloats)
        transformed = FloatBuffer(capacity: transformedFloats)
        self.packedFloats = packedFloats

        // Slots: a value's slot is free again after the last step that reads it.
        var lastRead = [Int](repeating: -1, count: graph.shapes.count)
        for (position, step) in steps.enumerated() { for value in step.inputs { lastRead[value] = position } }
        var slotOfValue = [Int](repeating: -1, count: graph.shapes.count)
        var widths = [graph.shapes[outputValue].count]  // slot 0: the output, never shared
        var free = [Int]()
        var releasedAt = [Int: [Int]]()
        for (value, position) in lastRead.enumerated() where value != 0 && position >= 0 { releasedAt[position, default: []].append(value) }
        for (position, step) in steps.enumerated() {
            if position > 0 { for value in releasedAt[position - 1] ?? [] { free.append(slotOfValue[value]) } }
            guard step.output != outputValue else {
                slotOfValue[step.output] = 0
                continue
            }
            let slot = free.popLast() ?? widths.count
            if slot == widths.count { widths.append(0) }
            widths[slot] = max(widths[slot], graph.shapes[step.output].count)
            slotOfValue[step.output] = slot
        }
        self.slotOfValue = slotOfValue
        slotWidths = widths
        slots = widths.map { _ in FloatBuffer() }

        operations = network.replicas.indices.map { worker in
            zip(steps, epilogues).map { step, epilogue in
                let own = network.replicas[worker][step.node]
                guard let epilogue else { return own }
                // A copy with the epilogue; the training layer stays as it is. The network made
                // the same layer from the same shapes, so this cannot fail.
                guard let copy = try? graph.makeOperation(step.node, workspace: network.workspaces[worker], seed: 0) else {
                    preconditionFailure("node \(step.node) was built once and cannot fail to build again")
                }
                switch copy {
                case .unary(let layer):
                    if let conv = layer as? Conv2D { conv.epilogue = epilogue } else if let dense = layer as? Dense { dense.epilogue = epilogue }
                case .merge(let merge): merge.epilogue = epilogue
                }
                return copy
            }
        }
        winogradOperations = network.replicas.indices.map { worker in
            zip(steps, epilogues).map { step, epilogue in
                guard step.transformedOffset != nil, case .conv(let filters, _, _, let padding, _, _) = graph.nodes[step.node].spec else { return nil }
                let winograd = WinogradConv2D(input: graph.nodes[step.node].inputShapes[0], filters: filters, padding: padding,
                                              workspace: network.workspaces[worker])
                winograd.epilogue = epilogue
                return winograd
            }
        }
    }

    /// Weights and biases of the steps that fold batch norm, from the current parameters and
    /// running statistics.
    private func refold() {
        guard foldedVersion != network.parameterVersion else { return }
        foldedVersion = network.parameterVersion
        let parameters = network.parameterStorage.pointer
        for step in steps {
            defer { transform(step) }
            guard let batchNormNode = step.foldedBatchNorm, let batchNorm = network.layer(batchNormNode) as? BatchNorm,
                  let layer = network.layer(step.node) else { continue }
            let (scale, shift) = batchNorm.inferenceScaleAndShift(parameters: parameters + network.parameterOffsets[batchNormNode])
            let outputs = scale.count
            let rowLength = (layer.parameterSpecs[0].count) / outputs
            let source = parameters + network.parameterOffsets[step.node]
            let target = folded.pointer + step.foldedOffset
            for k in 0..<outputs {
                for i in 0..<rowLength { target[k * rowLength + i] = source[k * rowLength + i] * scale[k] }
                let bias = outputs * rowLength + k
                target[bias] = source[bias] * scale[k] + shift[k]
            }
        }
    }

    /// The Winograd weights of a step that uses them, from its (folded) weights and bias.
    private func transform(_ step: Step) {
        guard let offset = step.transformedOffset, let conv = network.layer(step.node) as? Conv2D else { return }
        let weights = sourceParameters(step)
        let (filters, channels) = (conv.filters, conv.inputShape.channels)
        let target = transformed.pointer + offset
        WinogradConv2D.transformWeights(weights, filters: filters, channels: channels, into: target)
        (target + 16 * filters * channels).update(from: weights + filters * channels * 9, count: filters)
    }

    /// The packed weights of every step that has them, from the folded (or Winograd-transformed)
    /// weights, once per change of the parameters; `refold` must have run.
    private func repack() {
        guard packedVersion != network.parameterVersion else { return }
        packedVersion = network.parameterVersion
        packed.reserve(packedFloats)
        for step in steps { pack(step) }
    }

    /// The packed weights of a step that has them, from its (folded, or Winograd-transformed) weights.
    private func pack(_ step: Step) {
        guard let offset = step.packedOffset, let conv = network.layer(step.node) as? Conv2D else { return }
        if step.packsWinograd, let transformedOffset = step.transformedOffset {
            WinogradConv2D.packTransformed(transformed.pointer + transformedOffset, filters: conv.filters, channels: conv.inputShape.channels,
                                           into: packed.pointer + offset)
        } else {
            conv.packWeights(sourceParameters(step), into: packed.pointer + offset)
        }
    }

    /// A step's weights as trained, or with batch norm folded in.
    private func sourceParameters(_ step: Step) -> UnsafePointer<Float> {
        step.foldedBatchNorm != nil
            ? UnsafePointer(folded.pointer + step.foldedOffset)
            : UnsafePointer(network.parameterStorage.pointer + network.parameterOffsets[step.node])
    }

    /// Value `value` for worker slice `slice`.
    @inline(__always)
    private func pointer(_ value: Int, _ x: UnsafePointer<Float>, slice: Range<Int>) -> UnsafeMutablePointer<Float> {
        if value == 0 { return UnsafeMutablePointer(mutating: x + slice.lowerBound * network.inputShape.count) }
        let slot = slotOfValue[value]
        return slots[slot].pointer + slice.lowerBound * slotWidths[slot]
    }

    func run(_ x: UnsafePointer<Float>, batch: Int, slices: [Range<Int>]) -> UnsafeBufferPointer<Float> {
        refold()
        for (slot, width) in slotWidths.enumerated() { slots[slot].reserve(batch * width) }
        nonisolated(unsafe) let x = x
        if batch == 1 && hasPackedSteps {
            runOneImage(x)
        } else {
            network.forEachSlice(slices) { worker, slice in
                for position in steps.indices { runStep(position, worker: worker, x, slice: slice, split: slices.count > 1) }
            }
        }
        return UnsafeBufferPointer(start: slots[0].pointer, count: batch * network.outputShape.count)
    }

    private lazy var hasPackedSteps = steps.contains { $0.packedOffset != nil }

    /// One image's steps as phases of pieces, worked out once: `phases[i]` is a step, the
    /// phase within it and its pieces (`parts` for a packed convolution's phases, else 1);
    /// `starts[i]` the number of its first piece; `total` the pieces in all.
    private lazy var oneImagePhases: (phases: [(position: Int, phase: Int, pieces: Int)], starts: [Int], total: Int) = {
        let parts = network.replicas.count
        var phases = [(position: Int, phase: Int, pieces: Int)]()
        for position in steps.indices {
            if steps[position].packsWinograd {
                for phase in 0..<WinogradConv2D.packedPhases { phases.append((position, phase, parts)) }
            } else if let conv = packedConvolution(position) {
                for phase in 0..<conv.packedPhases(parts: parts) { phases.append((position, phase, parts)) }
            } else {
                phases.append((position, 0, 1))
            }
        }
        var starts = [Int](), total = 0
        for phase in phases {
            starts.append(total)
            total += phase.pieces
        }
        return (phases, starts, total)
    }()

    /// One image on every core at once. The steps become pieces in order (a packed
    /// convolution's phases `parts` pieces each, any other step one piece), which the threads
    /// claim from a shared counter and run once every piece of the phases before has finished.
    /// A thread only ever waits for pieces already claimed, that is, being run by a thread that
    /// is running, so one image never deadlocks even when the second thread is late or never
    /// comes (a busy dispatch pool runs the iterations of `concurrentPerform` one after the
    /// other); and there is no thread hand-off per layer (ResNet-18 has twenty convolutions).
    private func runOneImage(_ x: UnsafePointer<Float>) {
        repack()
        let parts = network.replicas.count
        let (phases, starts, total) = oneImagePhases
        for position in steps.indices {
            if steps[position].packsWinograd {
                winogradOperations[0][position]?.reserveForOneImage()
            } else {
                packedConvolution(position)?.reserveColumnsForOneImage(parts: parts)
            }
        }
        let counters = PieceCounters()
        nonisolated(unsafe) let x = x
        let body = { (_: Int) in
            var current = 0
            while true {
                let piece = counters.claim()
                guard piece < total else { return }
                while current + 1 < phases.count && starts[current + 1] <= piece { current += 1 }
                counters.waitUntilFinished(starts[current])
                let (position, phase, _) = phases[current]
                let step = self.steps[position]
                if step.packsWinograd, let offset = step.packedOffset, let transformedOffset = step.transformedOffset,
                   let winograd = self.winogradOperations[0][position] {
                    winograd.forwardPacked(self.pointer(step.inputs[0], x, slice: 0..<1), self.pointer(step.output, x, slice: 0..<1),
                                           packed: self.packed.pointer + offset,
                                           bias: self.transformed.pointer + transformedOffset + 16 * winograd.filters * winograd.inputShape.channels,
                                           phase: phase, piece: piece - starts[current], parts: parts)
                } else if let offset = step.packedOffset, let conv = self.packedConvolution(position) {
                    let weights = self.sourceParameters(step)
                    conv.forwardPacked(self.pointer(step.inputs[0], x, slice: 0..<1), self.pointer(step.output, x, slice: 0..<1),
                                       packed: self.packed.pointer + offset,
                                       bias: weights + conv.filters * conv.inputShape.channels * conv.kernel * conv.kernel,
                                       phase: phase, piece: piece - starts[current], parts: parts)
                } else {
                    self.runStep(position, worker: 0, x, slice: 0..<1, split: false)
                }
                counters.finish()
            }
        }
        // The other cores are this region's; OpenBLAS's threads would spin against them.
        BLASThreads.splitting {
            if parts == 1 {
                body(0)
            } else {
                nonisolated(unsafe) let body = body
                DispatchQueue.concurrentPerform(iterations: parts) { body($0) }
            }
            counters.waitUntilFinished(total)
        }
    }

    /// Step `position`'s convolution (worker 0's, with its fused epilogue) when the packed
    /// kernel runs it.
    private func packedConvolution(_ position: Int) -> Conv2D? {
        guard steps[position].packedOffset != nil, case .unary(let layer) = operations[0][position] else { return nil }
        return layer as? Conv2D
    }

    /// Step `position` for worker `worker`'s slice, by Winograd when it pays, else by the layer.
    private func runStep(_ position: Int, worker: Int, _ x: UnsafePointer<Float>, slice: Range<Int>, split: Bool) {
        let step = steps[position]
        let y = pointer(step.output, x, slice: slice)
        if let winograd = winogradOperations[worker][position], let offset = step.transformedOffset,
           winograd.tiles(batch: slice.count) >= Self.minimumWinogradTiles(split: split) {
            winograd.forward(pointer(step.inputs[0], x, slice: slice), y, batch: slice.count,
                             parameters: transformed.pointer + offset, mode: .inference)
            return
        }
        switch operations[worker][position] {
        case .unary(let layer):
            layer.forward(pointer(step.inputs[0], x, slice: slice), y, batch: slice.count, parameters: sourceParameters(step), mode: .inference)
        case .merge(let merge):
            merge.forward(step.inputs.map { UnsafePointer(pointer($0, x, slice: slice)) }, y, batch: slice.count)
        }
    }
}
