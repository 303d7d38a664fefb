// SPDX-License-Identifier: MIT
import Foundation

/// How parameters are updated from gradients; serialisable so a model's recipe records it.
public struct OptimizerConfig: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case adam, rmsprop, sgd }

    public enum Schedule: Codable, Sendable, Equatable {
        case constant
        /// Multiply the rate by `gamma` every `every` steps.
        case step(every: Int, gamma: Float)
        /// Cosine from the base rate down to `minimum` over `total` steps.
        case cosine(total: Int, minimum: Float)
    }

    public var kind: Kind
    public var learningRate: Float
    /// Adam's first-moment decay; SGD's momentum.
    public var beta1: Float
    /// Adam's second-moment decay; RMSprop's squared-gradient decay.
    public var beta2: Float
    public var epsilon: Float
    /// L2 penalty added to the gradient (`g += weightDecay * w`) before the update.
    public var weightDecay: Float
    public var schedule: Schedule
    /// Rescale all gradients together when their global L2 norm exceeds this.
    public var clipNorm: Float?

    public init(kind: Kind = .adam, learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-8, weightDecay: Float = 0, schedule: Schedule = .constant, clipNorm: Float? = nil) {
        self.kind = kind
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.schedule = schedule
        self.clipNorm = clipNorm
    }

    /// The digits reference: Adam 1e-4, 0.9, 0.99.
    public static func adam(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999) -> OptimizerConfig {
        OptimizerConfig(kind: .adam, learningRate: learningRate, beta1: beta1, beta2: beta2)
    }

    /// RMSprop with decay `rho` (Keras's default 0.9), as the ORL faces reference trained.
    public static func rmsprop(learningRate: Float = 1e-3, rho: Float = 0.9) -> OptimizerConfig {
        OptimizerConfig(kind: .rmsprop, learningRate: learningRate, beta1: 0, beta2: rho, epsilon: 1e-7)
    }

    public static func sgd(learningRate: Float = 1e-2, momentum: Float = 0.9) -> OptimizerConfig {
        OptimizerConfig(kind: .sgd, learningRate: learningRate, beta1: momentum)
    }

    /// The learning rate at `step` (0-based).
    public func learningRate(at step: Int) -> Float {
        switch schedule {
        case .constant: return learningRate
        case .step(let every, let gamma): return learningRate * powf(gamma, Float(step / max(every, 1)))
        case .cosine(let total, let minimum):
            let progress = min(Float(step) / Float(max(total, 1)), 1)
            return minimum + (learningRate - minimum) * (1 + cosf(.pi * progress)) / 2
        }
    }
}

/// One set of trainable values and their gradients (the network's flat buffers, a head's).
public struct ParameterBlock {
    public let values: UnsafeMutableBufferPointer<Float>
    public let gradients: UnsafeMutableBufferPointer<Float>

    public init(values: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>) {
        precondition(values.count == gradients.count)
        self.values = values
        self.gradients = gradients
    }
}

/// Applies `OptimizerConfig` updates to parameter blocks, keeping one moment buffer per
/// kind laid out like the concatenated blocks, so each update is one flat loop.
public final class Optimizer {
    public let config: OptimizerConfig
    public private(set) var step = 0
    private var firstMoment: [Float]
    private var secondMoment: [Float]

    public init(config: OptimizerConfig, parameterCount: Int) {
        self.config = config
        firstMoment = Array(repeating: 0, count: parameterCount)
        secondMoment = Array(repeating: 0, count: config.kind == .sgd ? 0 : parameterCount)
    }

    /// The moments, for checkpoints (`[first, second]`).
    public var state: [[Float]] {
        get { [firstMoment, secondMoment] }
        set {
            precondition(newValue.count == 2 && newValue[0].count == firstMoment.count && newValue[1].count == secondMoment.count)
            firstMoment = newValue[0]
            secondMoment = newValue[1]
        }
    }

    public func restore(step: Int) { self.step = step }

    /// Updates the blocks in place from their gradients (which are left as they were, but
    /// scaled by clipping). Returns the global gradient norm before clipping.
    @discardableResult
    public func update(_ blocks: [ParameterBlock]) -> Float {
        let total = blocks.reduce(0) { $0 + $1.values.count }
        precondition(total == firstMoment.count, "optimizer was made for \(firstMoment.count) parameters, given \(total)")
        var squares: Double = 0
        for block in blocks { for g in block.gradients { squares += Double(g) * Double(g) } }
        let norm = Float(squares.squareRoot())
        var clipScale: Float = 1
        if let clip = config.clipNorm, norm > clip, norm > 0 { clipScale = clip / norm }

        let rate = config.learningRate(at: step)
        step += 1
        let (beta1, beta2, epsilon, decay) = (config.beta1, config.beta2, config.epsilon, config.weightDecay)
        // Adam's bias corrections, folded into the step size (Kingma & Ba, Algorithm 1 note).
        let correction1 = 1 - powf(beta1, Float(step)), correction2 = 1 - powf(beta2, Float(step))
        var offset = 0
        firstMoment.withUnsafeMutableBufferPointer { m in
            secondMoment.withUnsafeMutableBufferPointer { v in
                for block in blocks {
                    let w = block.values, grad = block.gradients
                    for i in 0..<w.count {
                        let g = grad[i] * clipScale + decay * w[i]
                        let j = offset + i
                        switch config.kind {
                        case .adam:
                            m[j] = beta1 * m[j] + (1 - beta1) * g  // first moment: mean of g
                            v[j] = beta2 * v[j] + (1 - beta2) * g * g  // second moment: mean of g^2
                            w[i] -= rate * (m[j] / correction1) / ((v[j] / correction2).squareRoot() + epsilon)
                        case .rmsprop:
                            v[j] = beta2 * v[j] + (1 - beta2) * g * g  // running mean of g^2
                            w[i] -= rate * g / (v[j].squareRoot() + epsilon)
                        case .sgd:
                            m[j] = beta1 * m[j] + g  // velocity
                            w[i] -= rate * m[j]
                        }
                    }
                    offset += w.count
                }
            }
        }
        return norm
    }
}
