// SPDX-License-Identifier: MIT
// DoppelNN owns the embedder: tensors as flat Float buffers (NCHW), layers with forward and
// backward side by side, the architecture string, Siamese distances and losses, optimizers,
// and the safetensors model file. Every heavy step is a BLAS call. It knows nothing of
// images, galleries or HTTP.

/// A feed-forward network built from an `Architecture` for one input shape. All parameters
/// live in one flat buffer and their gradients in a second of the same layout (layer by
/// layer, each layer's tensors in `parameterSpecs` order), so an optimizer is one loop.
///
/// Thread safety: a network holds its activations and scratch; use one instance per thread
/// (copies share nothing), or serialise calls.
public final class Network {
    public let architecture: Architecture
    public let inputShape: TensorShape
    public let outputShape: TensorShape
    let layers: [Layer]
    /// Start of each layer's slice in the parameter buffer.
    let parameterOffsets: [Int]
    public let parameterCount: Int

    private let parameterStorage: FloatBuffer
    private let gradientStorage: FloatBuffer
    /// Output of each layer for the current batch.
    private let activations: [FloatBuffer]
    /// Ping-pong buffers for gradients flowing backward between layers.
    private let gradientA = FloatBuffer(), gradientB = FloatBuffer()

    /// Builds and initialises (He or Glorot, per layer) from `seed`.
    public init(architecture: Architecture, input: TensorShape, seed: UInt64) throws(ArchitectureError) {
        self.architecture = architecture
        inputShape = input
        var layers = [Layer]()
        var shape = input
        for (index, spec) in architecture.layers.enumerated() {
            let layer = try Self.makeLayer(spec, input: shape, token: index + 1, previous: layers.last, seed: seed)
            layers.append(layer)
            shape = layer.outputShape
        }
        self.layers = layers
        outputShape = shape
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
        var generator = SeededGenerator(seed: seed)
        for (layer, offset) in zip(layers, offsets) { layer.initialize(parameterStorage.pointer + offset, using: &generator) }
    }

    /// The parameters, in place (for optimizers and model files).
    public var parameters: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: parameterStorage.pointer, count: parameterCount) }
    /// The gradients, same layout; `backward` accumulates into them.
    public var gradients: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: gradientStorage.pointer, count: parameterCount) }

    public func zeroGradients() { gradientStorage.zero(parameterCount) }

    /// Embeds `batch` samples laid out `[batch, inputShape]`. The result points into the
    /// network's own buffer and stays valid until the next call.
    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, batch: Int, mode: PassMode = .inference) -> UnsafeBufferPointer<Float> {
        var input = x
        for (index, layer) in layers.enumerated() {
            let output = activations[index].reserve(batch * layer.outputShape.count)
            layer.forward(input, output, batch: batch, parameters: parameterStorage.pointer + parameterOffsets[index], mode: mode)
            input = UnsafePointer(output)
        }
        return UnsafeBufferPointer(start: input, count: batch * outputShape.count)
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
        var dy = dOutput
        var result: [Float]? = nil
        for index in layers.indices.reversed() {
            let layer = layers[index]
            let layerInput = index == 0 ? x : UnsafePointer(activations[index - 1].pointer)
            let needsDx = index > 0 || wantInputGradient
            let dxBuffer = index % 2 == 0 ? gradientA : gradientB
            let dx = needsDx ? dxBuffer.reserve(batch * layer.inputShape.count) : nil
            layer.backward(layerInput, activations[index].pointer, dy, dx, batch: batch,
                           parameters: parameterStorage.pointer + parameterOffsets[index],
                           dParameters: gradientStorage.pointer + parameterOffsets[index])
            if let dx {
                if index == 0 { result = Array(UnsafeBufferPointer(start: dx, count: batch * layer.inputShape.count)) }
                dy = UnsafePointer(dx)
            }
        }
        return result
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
    }

    /// Dropout layers reuse their last mask (for finite-difference checks).
    func freezeDropoutMasks() {
        for case let dropout as Dropout in layers { dropout.freezesMask = true }
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
