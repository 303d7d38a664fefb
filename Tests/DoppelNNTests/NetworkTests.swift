// SPDX-License-Identifier: MIT
import Testing
@testable import DoppelNN

@Suite struct NetworkTests {
    /// A batch split over workers gives the embeddings and gradients of the unsplit batch; with
    /// batch norm (first, between convs, after a dense layer) its training statistics are
    /// still those of the whole batch.
    @Test(arguments: [9, 32], [
        "conv(6,3,pad=1) relu maxpool(2) conv(5,3,stride=2) tanh flatten dense(7) l2norm",
        "batchnorm conv(6,3,pad=1) batchnorm relu maxpool(2) conv(5,3,stride=2) tanh flatten dense(7) batchnorm l2norm",
    ])
    func splitBatchesMatchTheUnsplitComputation(batch: Int, layers: String) throws {
        let architecture = try Architecture(parsing: layers)
        let input = TensorShape(channels: 2, height: 11, width: 9)
        let single = try Network(architecture: architecture, input: input, seed: 4, workers: 1)
        let split = try Network(architecture: architecture, input: input, seed: 4, workers: 3)
        #expect(split.workers == 3 && single.workers == 1)
        var generator = SeededGenerator(seed: 8)
        let x = (0..<(batch * input.count)).map { _ in generator.nextGaussian() }
        let dOutput = (0..<(batch * 7)).map { _ in generator.nextGaussian() }
        let ySingle = single.forward(x, batch: batch, mode: .training)
        let ySplit = split.forward(x, batch: batch, mode: .training)
        // GEMMs of other widths block the sums differently: equal to rounding, not bit for bit.
        // Rounding scales with the tensor's magnitude, not each element's: an element near zero
        // (an l2-normalised component of 1e-3, say) carries the absolute error of its neighbours.
        func maxDifference(_ a: some Collection<Float>, _ b: some Collection<Float>) -> Float {
            let scale = max(a.map { abs($0) }.max() ?? 0, 1e-6)
            return zip(a, b).map { abs($0 - $1) / scale }.max() ?? 0
        }
        let yDifference = maxDifference(ySingle, ySplit)
        #expect(yDifference < 1e-5, "embeddings differ by \(yDifference)")
        single.zeroGradients()
        split.zeroGradients()
        let dxSingle = single.backward(x, dOutput: dOutput, batch: batch, wantInputGradient: true)!
        let dxSplit = split.backward(x, dOutput: dOutput, batch: batch, wantInputGradient: true)!
        let dxDifference = maxDifference(dxSingle, dxSplit)
        let dWeightDifference = maxDifference(single.gradients, split.gradients)
        print("split vs unsplit: embeddings \(yDifference), dx \(dxDifference), weight gradients \(dWeightDifference)")
        #expect(dxDifference < 1e-4 && dWeightDifference < 1e-4, "dx \(dxDifference), dW \(dWeightDifference)")
    }

    @Test func mlpsRunUnsplit() throws {
        let input = TensorShape(channels: 1, height: 8, width: 8)
        #expect(try Network(architecture: Architecture(parsing: "flatten dense(8) relu dense(3)"), input: input, seed: 1, workers: 2).workers == 1)
    }

    /// Batch norm infers split, every replica using the running statistics the training passes
    /// or a loaded model left.
    @Test func batchNormInfersSplitWithTheRunningStatistics() throws {
        let architecture = try Architecture(parsing: "conv(4,3,pad=1) batchnorm relu maxpool(2) flatten dense(5)")
        let input = TensorShape(channels: 2, height: 6, width: 6)
        let single = try Network(architecture: architecture, input: input, seed: 5, workers: 1)
        let split = try Network(architecture: architecture, input: input, seed: 5, workers: 2)
        #expect(split.workers == 2)
        var generator = SeededGenerator(seed: 6)
        let batch = 16
        func sample(shift: Float) -> [Float] { (0..<(batch * input.count)).map { _ in generator.nextGaussian() * 2 + shift } }
        func expectSameInference(_ x: [Float], _ when: Comment) {
            let a = single.forward(x, batch: batch, mode: .inference), b = split.forward(x, batch: batch, mode: .inference)
            let difference = zip(a, b).map { abs($0 - $1) }.max()!
            #expect(difference < 1e-5, "\(when): split inference differs by \(difference)")
        }
        for step in 0..<3 {
            let x = sample(shift: Float(step))
            _ = single.forward(x, batch: batch, mode: .training)
            _ = split.forward(x, batch: batch, mode: .training)
        }
        let x = sample(shift: 0.5)
        expectSameInference(x, "after training passes")
        // A loaded model's statistics reach every replica too.
        var tensors = [String: [Float]]()
        for tensor in single.namedTensors() {
            tensors[tensor.name] = tensor.name.hasSuffix("running_mean") ? tensor.values.map { $0 + 0.7 } : tensor.values
        }
        try single.load(tensors: tensors)
        try split.load(tensors: tensors)
        expectSameInference(x, "after a load")
        // And the running statistics matter: the inference output moved with them.
        let before = try Network(architecture: architecture, input: input, seed: 5, workers: 2)
        #expect(before.forward(x, batch: batch, mode: .inference) != split.forward(x, batch: batch, mode: .inference))
    }

    /// Inference takes shortcuts (max pooling without argmax); the outputs must not change.
    @Test func inferenceGivesTheTrainingForwardOutputs() throws {
        let architecture = try Architecture(parsing: "conv(3,3,pad=1) relu maxpool(2) conv(4,3) relu maxpool(2) flatten dense(5)")
        let input = TensorShape(channels: 1, height: 13, width: 11)  // odd sizes: floor-mode pooling drops a row and a column
        let network = try Network(architecture: architecture, input: input, seed: 2, workers: 1)
        var generator = SeededGenerator(seed: 3)
        let x = (0..<(3 * input.count)).map { _ in generator.nextGaussian() }
        let training = Array(network.forward(x, batch: 3, mode: .training))
        let inference = Array(network.forward(x, batch: 3, mode: .inference))
        #expect(training == inference)
    }
}
