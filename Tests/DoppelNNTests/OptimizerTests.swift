// SPDX-License-Identifier: MIT
import Foundation
import Testing
import TestSupport
@testable import DoppelNN

@Suite struct OptimizerTests {
    static func step(_ config: OptimizerConfig, values: inout [Float], gradients: [Float], times: Int = 1) -> Optimizer {
        let optimizer = Optimizer(config: config, parameterCount: values.count)
        var g = gradients
        for _ in 0..<times {
            _ = values.withUnsafeMutableBufferPointer { v in
                g.withUnsafeMutableBufferPointer { optimizer.update([ParameterBlock(values: v, gradients: $0)]) }
            }
        }
        return optimizer
    }

    @Test func adamFirstStepMovesByTheLearningRate() {
        // With bias correction, Adam's first step is lr * g / (|g| + eps) = lr * sign(g).
        var values: [Float] = [1, -2, 0.5]
        _ = Self.step(.adam(learningRate: 1e-4, beta1: 0.9, beta2: 0.99), values: &values, gradients: [3, -0.1, 0])
        // About eight Float roundings (moments, corrections, root, division, step) of values up to 2.
        let bound = Float(RoundingBound.operations(8, magnitude: 2))
        #expect(abs(values[0] - (1 - 1e-4)) <= bound && abs(values[1] - (-2 + 1e-4)) <= bound && values[2] == 0.5)
    }

    @Test func sgdMomentumAndWeightDecay() {
        var values: [Float] = [1]
        var config = OptimizerConfig.sgd(learningRate: 0.1, momentum: 0.5)
        config.weightDecay = 0.1
        _ = Self.step(config, values: &values, gradients: [1], times: 2)
        // step 1: g = 1 + 0.1*1 = 1.1; v = 1.1; w = 1 - 0.11 = 0.89
        // step 2: g = 1 + 0.089 = 1.089; v = 0.55 + 1.089 = 1.639; w = 0.89 - 0.1639 = 0.7261
        #expect(abs(values[0] - 0.7261) <= Float(RoundingBound.operations(10, magnitude: 2)), "ten roundings of values up to 2")
    }

    /// PyTorch's SGD with nesterov=True: v = momentum v + g, then w -= lr (g + momentum v).
    @Test func sgdNesterov() {
        var values: [Float] = [1]
        var config = OptimizerConfig.sgd(learningRate: 0.1, momentum: 0.5)
        config.nesterov = true
        _ = Self.step(config, values: &values, gradients: [1], times: 2)
        // step 1: v = 1; w = 1 - 0.1 (1 + 0.5) = 0.85
        // step 2: v = 0.5 + 1 = 1.5; w = 0.85 - 0.1 (1 + 0.75) = 0.675
        #expect(abs(values[0] - 0.675) <= Float(RoundingBound.operations(10, magnitude: 2)), "ten roundings of values up to 2")
    }

    /// SGD over a block that is not a multiple of the eight lanes (the tail goes through the
    /// padded copy) updates every value the same way, and writes nowhere else: it once passed
    /// the address of its empty second-moment buffer on (AddressSanitizer's run catches a
    /// write through it).
    @Test func sgdTailsUpdateLikeTheRest() {
        var values = [Float](repeating: 1, count: 13)
        _ = Self.step(.sgd(learningRate: 0.1, momentum: 0.5), values: &values, gradients: [Float](repeating: 1, count: 13), times: 2)
        // v = 1, w = 0.9; v = 1.5, w = 0.75.
        #expect(values.allSatisfy { abs($0 - 0.75) <= Float(RoundingBound.operations(6, magnitude: 2)) })
        let empty = [Float]()
        #expect(empty.isEmpty)
    }

    @Test func rmspropStep() {
        var values: [Float] = [0]
        _ = Self.step(.rmsprop(learningRate: 0.01, rho: 0.9), values: &values, gradients: [2])
        // v = 0.1 * 4 = 0.4; w = -0.01 * 2 / sqrt(0.4)
        #expect(abs(values[0] - (-0.01 * 2 / Float(0.4).squareRoot())) <= Float(RoundingBound.operations(10, magnitude: 4)), "ten roundings of values up to 4")
    }

    @Test func clippingScalesTheGlobalNorm() {
        var values: [Float] = [0, 0]
        var config = OptimizerConfig.sgd(learningRate: 1, momentum: 0)
        config.clipNorm = 1
        let optimizer = Self.step(config, values: &values, gradients: [3, 4])
        #expect(optimizer.step == 1)
        let bound = Float(RoundingBound.operations(8, magnitude: 25))  // the norm's squares, root and scaling
        #expect(abs(values[0] + 0.6) <= bound && abs(values[1] + 0.8) <= bound)
    }

    @Test func schedules() {
        var config = OptimizerConfig.adam(learningRate: 1)
        config.schedule = .step(every: 10, gamma: 0.5)
        #expect(config.learningRate(at: 9) == 1 && config.learningRate(at: 10) == 0.5 && config.learningRate(at: 25) == 0.25)
        config.schedule = .cosine(total: 100, minimum: 0.1)
        let bound = Float(RoundingBound.operations(8, magnitude: 1))  // a cosine and a few products of values up to 1
        #expect(config.learningRate(at: 0) == 1 && abs(config.learningRate(at: 50) - 0.55) <= bound && abs(config.learningRate(at: 100) - 0.1) <= bound)
        let encoded = try! JSONEncoder().encode(config)
        #expect(try! JSONDecoder().decode(OptimizerConfig.self, from: encoded) == config)
    }
}
