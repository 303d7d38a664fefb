// SPDX-License-Identifier: MIT

/// How a network infers: the graph's nodes as steps, with
/// - batch norm after a convolution or dense layer (its only reader) folded into that layer's
///   weights and bias: w'[k] = w[k] gamma[k] / sqrt(var[k] + eps), b' = (b - mean) scale + beta,
///   refolded whenever the parameters or statistics have changed;
/// - an element-wise activation after a convolution, dense layer or merge (its only reader)
///   applied in the pass that writes that layer's output;
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
    }

    private unowned let network: Network
    let steps: [Step]
    /// `operations[w][s]`: the layer running step s for worker w (a fused copy, or the
    /// network's own).
    private let operations: [[Operation]]
    private let slotOfValue: [Int]
    private let slotWidths: [Int]
    private let slots: [FloatBuffer]
    private let folded: FloatBuffer
    private var foldedVersion = -1

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
        var foldedFloats = 0
        for index in graph.nodes.indices where !fused.contains(index) {
            let node = graph.nodes[index]
            var output = index + 1, foldedBatchNorm: Int? = nil, epilogue: ActivationFunction? = nil
            let foldable: Bool, takesEpilogue: Bool
            switch node.spec {
            case .conv, .dense: (foldable, takesEpilogue) = (true, true)
            case .add, .multiply, .concat: (foldable, takesEpilogue) = (false, true)
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
            steps.append(Step(node: index, inputs: node.inputs, output: output, foldedBatchNorm: foldedBatchNorm, foldedOffset: foldedFloats))
            epilogues.append(epilogue)
            if foldedBatchNorm != nil { foldedFloats += network.replicas[0][index].parameterCount }
        }
        self.steps = steps
        folded = FloatBuffer(capacity: foldedFloats)

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
    }

    /// Weights and biases of the steps that fold batch norm, from the current parameters and
    /// running statistics.
    private func refold() {
        guard foldedVersion != network.parameterVersion else { return }
        foldedVersion = network.parameterVersion
        let parameters = network.parameterStorage.pointer
        for step in steps {
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
        network.forEachSlice(slices) { worker, slice in
            for (position, step) in steps.enumerated() {
                let y = pointer(step.output, x, slice: slice)
                switch operations[worker][position] {
                case .unary(let layer):
                    let parameters = step.foldedBatchNorm != nil
                        ? UnsafePointer(folded.pointer + step.foldedOffset)
                        : UnsafePointer(network.parameterStorage.pointer + network.parameterOffsets[step.node])
                    layer.forward(pointer(step.inputs[0], x, slice: slice), y, batch: slice.count, parameters: parameters, mode: .inference)
                case .merge(let merge):
                    merge.forward(step.inputs.map { UnsafePointer(pointer($0, x, slice: slice)) }, y, batch: slice.count)
                }
            }
        }
        return UnsafeBufferPointer(start: slots[0].pointer, count: batch * network.outputShape.count)
    }
}
