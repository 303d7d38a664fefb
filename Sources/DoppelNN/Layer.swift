// SPDX-License-Identifier: MIT

/// Whether a pass trains (batch statistics, dropout) or infers.
public enum PassMode: Sendable {
    case training
    case inference
}

/// A named parameter tensor of a layer, in the order it occupies the layer's slice of the
/// network's flat parameter buffer. Shapes follow PyTorch (`weight` of dense is [out, in],
/// of conv [K, C, kh, kw]) so a saved model maps onto `torch.nn` modules.
public struct ParameterSpec: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public var count: Int { shape.reduce(1, *) }
}

/// One layer: forward and backward over a batch, on raw pointers into buffers the network
/// owns. Conventions, identical for every layer:
/// - `x` is the input `[N, inputShape]`, `y` the output `[N, outputShape]`.
/// - `backward` writes `dx` (overwrites; nil when nobody needs it) and *accumulates* (`+=`)
///   into `dParameters`, the layer's slice of the gradient buffer.
/// - Layers keep their own scratch (im2col columns, argmax, masks) between forward and the
///   following backward, so one layer instance serves one batch at a time.
protocol Layer: AnyObject {
    var token: String { get }
    var inputShape: TensorShape { get }
    var outputShape: TensorShape { get }
    var parameterSpecs: [ParameterSpec] { get }
    /// Non-trainable state saved with the model (batch norm running statistics).
    var stateSpecs: [ParameterSpec] { get }

    func initialize(_ parameters: UnsafeMutablePointer<Float>, using generator: inout SeededGenerator)
    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode)
    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>)
    /// Reads or replaces the state tensors, concatenated in `stateSpecs` order.
    var state: [Float] { get set }
}

extension Layer {
    var parameterCount: Int { parameterSpecs.reduce(0) { $0 + $1.count } }
    var stateSpecs: [ParameterSpec] { [] }
    var state: [Float] {
        get { [] }
        set {}
    }
    func initialize(_ parameters: UnsafeMutablePointer<Float>, using generator: inout SeededGenerator) {}
}

/// He (Kaiming) normal initialisation for layers followed by ReLU: std = sqrt(2 / fanIn).
func heNormal(_ weights: UnsafeMutablePointer<Float>, count: Int, fanIn: Int, using generator: inout SeededGenerator) {
    let std = (2 / Float(fanIn)).squareRoot()
    for i in 0..<count { weights[i] = generator.nextGaussian() * std }
}

/// Glorot (Xavier) uniform initialisation: U(-a, a), a = sqrt(6 / (fanIn + fanOut)).
func glorotUniform(_ weights: UnsafeMutablePointer<Float>, count: Int, fanIn: Int, fanOut: Int,
                   using generator: inout SeededGenerator) {
    let limit = (6 / Float(fanIn + fanOut)).squareRoot()
    for i in 0..<count { weights[i] = (generator.nextUnitFloat() * 2 - 1) * limit }
}

/// How a weight layer is initialised (`init=he` or `init=glorot` in the architecture string).
public enum Initializer: String, Sendable {
    case he, glorot
}

/// A layer that combines the current value with named ones (`add(@a)`, `mul(@a)`,
/// `concat(@a,@b)`): no parameters. `backward` writes (overwrites) every non-nil `dInputs`.
protocol MergeLayer: AnyObject {
    var token: String { get }
    var inputShapes: [TensorShape] { get }
    var outputShape: TensorShape { get }
    /// An activation applied to the output in the same pass (inference plans fuse a
    /// following ReLU into the residual addition).
    var epilogue: ActivationFunction? { get set }
    func forward(_ inputs: [UnsafePointer<Float>], _ y: UnsafeMutablePointer<Float>, batch: Int)
    func backward(_ inputs: [UnsafePointer<Float>], _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dInputs: [UnsafeMutablePointer<Float>?], batch: Int)
}
