// SPDX-License-Identifier: MIT
import Testing
import TestSupport
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
        func check(_ a: some Collection<Float>, _ b: some Collection<Float>, _ what: String) {
            let scale = Double(a.map { abs($0) }.max() ?? 0)
            let bound = RoundingBound.training(single, batch: batch, scale: scale)
            let difference = Double(zip(a, b).map { abs($0 - $1) }.max() ?? 0)
            print("split vs unsplit \(what): \(difference) (bound \(bound), largest \(scale))")
            #expect(difference <= bound, "\(what) differ by \(difference), bound \(bound)")
        }
        check(ySingle, ySplit, "embeddings")
        single.zeroGradients()
        split.zeroGradients()
        let dxSingle = single.backward(x, dOutput: dOutput, batch: batch, wantInputGradient: true)!
        let dxSplit = split.backward(x, dOutput: dOutput, batch: batch, wantInputGradient: true)!
        check(dxSingle, dxSplit, "input gradients")
        check(single.gradients, split.gradients, "weight gradients")
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
            let difference = Double(zip(a, b).map { abs($0 - $1) }.max()!)
            let bound = RoundingBound.forward(single, scale: Double(a.map { abs($0) }.max()!))
            #expect(difference <= bound, "\(when): split inference differs by \(difference), bound \(bound)")
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

    /// Inference takes shortcuts (max pooling without argmax, pointwise convolutions without
    /// im2col); the outputs must not change.
    @Test(arguments: ["conv(3,3,pad=1) relu maxpool(2) conv(4,3) relu maxpool(2) flatten dense(5)",
                      "conv(3,3,pad=1) relu maxpool(3,stride=2,pad=1) conv(16,1) relu maxpool(2,stride=1) conv(4,1,groups=2) flatten dense(5)"])
    func inferenceGivesTheTrainingForwardOutputs(_ text: String) throws {
        let architecture = try Architecture(parsing: text)
        let input = TensorShape(channels: 1, height: 13, width: 11)  // odd sizes: floor-mode pooling drops a row and a column
        let network = try Network(architecture: architecture, input: input, seed: 2, workers: 1)
        var generator = SeededGenerator(seed: 3)
        let x = (0..<(3 * input.count)).map { _ in generator.nextGaussian() }
        let training = Array(network.forward(x, batch: 3, mode: .training))
        let inference = Array(network.forward(x, batch: 3, mode: .inference))
        #expect(training == inference)
    }
}

/// The inference plan (batch norm folded, activations fused, buffers reused) against the
/// graph run node by node, and freezing for fine-tuning.
@Suite struct InferencePlanTests {
    static let graphs = [
        "conv(8,3,pad=1) batchnorm relu res(conv(8,3,pad=1) batchnorm relu conv(8,3,pad=1) batchnorm) relu "
            + "res(conv(16,3,stride=2,pad=1) batchnorm relu conv(16,3,pad=1) batchnorm) relu gap flatten dense(16) batchnorm relu dense(6)",
        "conv(8,3,stride=2,pad=1) batchnorm hardswish conv(8,3,pad=1,groups=8) batchnorm relu @x gap conv(4,1) relu conv(8,1) hardsigmoid mul(@x) "
            + "conv(12,1) batchnorm @y conv(12,3,pad=1,groups=12) batchnorm silu add(@y) @z conv(6,1) @w from(@z) conv(6,3,pad=1) concat(@w) prelu gmp dense(5) l2norm",
    ]

    @Test(arguments: graphs, [1, 2])
    func fusedInferenceGivesTheNodeByNodeOutputs(architecture text: String, workers: Int) throws {
        let input = TensorShape(channels: 3, height: 11, width: 10)
        let network = try Network(architecture: Architecture(parsing: text), input: input, seed: 9, workers: workers)
        var generator = SeededGenerator(seed: 2)
        let batch = 13
        // Training passes move the running statistics away from 0 and 1, so folding matters.
        for shift in [0.5, -0.3, 1.2] as [Float] {
            _ = network.forward((0..<(batch * input.count)).map { _ in generator.nextGaussian() * 1.5 + shift }, batch: batch, mode: .training)
        }
        let x = (0..<(batch * input.count)).map { _ in generator.nextGaussian() }
        let fused = network.forward(x, batch: batch, mode: .inference)
        network.fusesInference = false
        let reference = network.forward(x, batch: batch, mode: .inference)
        network.fusesInference = true
        let scale = Double(reference.map { abs($0) }.max()!)
        let difference = Double(zip(fused, reference).map { abs($0 - $1) }.max()!)
        let bound = RoundingBound.forward(network, scale: scale)
        print("fused vs node-by-node inference (\(workers) workers): \(difference) (bound \(bound)) with the largest output \(scale)")
        #expect(scale > 0)
        #expect(difference <= bound)
        // The plan fused what it could: fewer steps than nodes.
        #expect(network.inferencePlan.steps.count < network.graph.nodes.count)
        // A parameter change reaches the folded weights.
        network.parameters[0] += 0.5
        let changed = network.forward(x, batch: batch, mode: .inference)
        network.fusesInference = false
        let changedReference = network.forward(x, batch: batch, mode: .inference)
        let changedBound = RoundingBound.forward(network, scale: Double(changedReference.map { abs($0) }.max()!))
        #expect(Double(zip(changed, changedReference).map { abs($0 - $1) }.max()!) <= changedBound)
        #expect(changed != fused)
    }

    /// One image at a time (a replica serving single requests): the convolutions run on weights
    /// packed once (`CGEMMKernels`), split over the cores by output rows (wide maps) or filters
    /// (thin ones). Same outputs as the graph node by node, the same bits on one core as on
    /// two, and a parameter change reaches the packed copy.
    /// 16 and 24 channels at 24x20 and 12x10: three 3x3 convolutions that one image runs by Winograd on
    /// packed transformed weights (120 and 30 tiles); 6x5 and 3x3 maps at the end stay direct.
    static let winogradGraph = "conv(16,3,pad=1) batchnorm relu res(conv(16,3,pad=1) batchnorm relu conv(16,3,pad=1) batchnorm) relu "
        + "conv(24,3,stride=2,pad=1) batchnorm relu conv(24,3,pad=1) relu conv(32,3,stride=2,pad=1) relu conv(32,3,pad=1) relu "
        + "conv(32,3,stride=2,pad=1) gap flatten dense(8)"

    @Test(arguments: graphs + [winogradGraph])
    func oneImageOnPackedWeightsGivesTheNodeByNodeOutputs(architecture text: String) throws {
        // 24x20: the first maps are wide (480 and 120 columns), the last ones thin (30, 6).
        let input = TensorShape(channels: 3, height: 24, width: 20)
        let networks = try [1, 2].map { try Network(architecture: Architecture(parsing: text), input: input, seed: 9, workers: $0) }
        var generator = SeededGenerator(seed: 4)
        let batch = 5
        let warmUp = (0..<(batch * input.count)).map { _ in generator.nextGaussian() * 1.5 + 0.4 }
        _ = networks[1].forward(warmUp, batch: batch, mode: .training)
        // The same parameters and statistics in both (a split training pass may round its batch
        // statistics differently from an unsplit one; that is not what this compares).
        try networks[0].load(tensors: Dictionary(uniqueKeysWithValues: networks[1].namedTensors().map { ($0.name, $0.values) }))
        let x = (0..<input.count).map { _ in generator.nextGaussian() }
        if Conv2D.packedKernelAvailable {
            #expect(networks[1].inferencePlan.steps.contains { $0.packedOffset != nil }, "no convolution took the packed path")
            if text == Self.winogradGraph {
                let winograd = networks[1].inferencePlan.steps.filter(\.packsWinograd).count
                #expect(winograd == 3, "steps by Winograd on packed weights: \(winograd)")
                #expect(networks[1].inferencePlan.steps.contains { $0.packedOffset != nil && !$0.packsWinograd })
            }
        }
        let outputs = networks.map { Array($0.forward(x, batch: 1, mode: .inference)) }
        let network = networks[1]
        network.fusesInference = false
        let reference = Array(network.forward(x, batch: 1, mode: .inference))
        network.fusesInference = true
        let scale = Double(reference.map { abs($0) }.max()!)
        let bound = RoundingBound.forward(network, scale: scale)
        if Conv2D.packedKernelAvailable {
            // Each output of the packed kernel is summed by the same code whichever piece
            // computes it, so the split cannot change a bit.
            #expect(outputs[0] == outputs[1], "one core and two differ")
        } else {
            // BLAS splits the work its own way for one thread and two: only the order differs.
            #expect(zip(outputs[0], outputs[1]).allSatisfy { Double(abs($0 - $1)) <= bound }, "one core and two differ beyond rounding")
        }
        let difference = Double(zip(outputs[1], reference).map { abs($0 - $1) }.max()!)
        print("one image, packed weights vs node-by-node: \(difference) (bound \(bound)) with the largest output \(scale)")
        #expect(scale > 0)
        #expect(difference <= bound)
        network.parameters[0] += 0.5
        let changed = Array(network.forward(x, batch: 1, mode: .inference))
        network.fusesInference = false
        let changedReference = Array(network.forward(x, batch: 1, mode: .inference))
        let changedScale = Double(changedReference.map { abs($0) }.max()!)
        #expect(Double(zip(changed, changedReference).map { abs($0 - $1) }.max()!) <= RoundingBound.forward(network, scale: changedScale))
        #expect(changed != outputs[1])
    }

    /// Freezing all but the last weight layers: their gradients stay zero, their batch norm
    /// statistics stay put, and the trained layers' gradients are the derivatives of the
    /// network as it then computes (frozen batch norm on its running statistics).
    @Test func freezingTrainsOnlyTheLastLayers() throws {
        let text = "conv(4,3,pad=1) batchnorm relu res(conv(4,3,pad=1) batchnorm relu) gap dense(6) tanh dense(3)"
        let input = TensorShape(channels: 2, height: 6, width: 6)
        let frozen = try Network(architecture: Architecture(parsing: text), input: input, seed: 3, workers: 2)
        #expect(frozen.weightLayerCount == 6)
        frozen.freeze(allButTheLast: 2)
        let statistics = frozen.namedTensors().filter { $0.name.contains("running") }.map(\.values)
        var generator = SeededGenerator(seed: 4)
        let batch = 8
        let x = (0..<(batch * input.count)).map { _ in generator.nextGaussian() + 0.3 }
        let dOutput = (0..<(batch * 3)).map { _ in generator.nextGaussian() }
        frozen.zeroGradients()
        _ = frozen.forward(x, batch: batch, mode: .training)
        x.withUnsafeBufferPointer { xp in dOutput.withUnsafeBufferPointer { _ = frozen.backward(xp.baseAddress!, dOutput: $0.baseAddress!, batch: batch) } }
        #expect(frozen.namedTensors().filter { $0.name.contains("running") }.map(\.values) == statistics)
        let offset = frozen.trainableOffset
        #expect(offset == frozen.parameterCount - (6 * 4 + 6 + 3 * 6 + 3))
        #expect(frozen.gradients[..<offset].allSatisfy { $0 == 0 })
        #expect(frozen.trainableParameters.values.count == frozen.parameterCount - offset)
        let analytic = Array(frozen.gradients)
        let parameters = frozen.parameters.baseAddress!
        var report = GradientCheck.Report()
        for index in stride(from: offset, to: frozen.parameterCount, by: 3) {
            let numeric = GradientCheck.derivative(parameters, at: index, epsilon: 1e-3) {
                zip(frozen.forward(x, batch: batch, mode: .training), dOutput).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            }
            report.compare(numeric: numeric, analytic: Double(analytic[index]), label: "parameter[\(index)]")
        }
        #expect(report.maxRelativeError < GradientCheck.tolerance, "\(report)")
        #expect(analytic[offset...].contains { $0 != 0 })
        frozen.freeze(allButTheLast: 6)
        #expect(frozen.frozenNodes == 0 && frozen.trainableOffset == 0)
        frozen.freeze(allButTheLast: 0)
        #expect(frozen.trainableOffset == frozen.parameterCount)
    }
}

/// Maps whose columns would pass `Conv2D.maxBandFloats` (a detector's image pyramid) are
/// convolved band by band: the same outputs as the direct sum, alone (packed kernel, pieces
/// in bands) and in a batch (BLAS, bands per sample).
@Suite struct BandedConvolutionTests {
    /// A convolution's direct sums in Double, and the sums of their terms' magnitudes.
    static func conv(_ x: [Double], channels: Int, height: Int, width: Int, weight: [Float], bias: [Float], filters: Int, kernel: Int,
              stride: Int, pad: Int) -> (values: [Double], magnitude: [Double], height: Int, width: Int) {
        let (oh, ow) = ((height + 2 * pad - kernel) / stride + 1, (width + 2 * pad - kernel) / stride + 1)
        var out = [Double](repeating: 0, count: filters * oh * ow), magnitude = out
        for k in 0..<filters {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var sum = Double(bias[k]), size = abs(Double(bias[k]))
                    for c in 0..<channels {
                        for ki in 0..<kernel {
                            let iy = oy * stride - pad + ki
                            guard iy >= 0, iy < height else { continue }
                            for kj in 0..<kernel {
                                let ix = ox * stride - pad + kj
                                guard ix >= 0, ix < width else { continue }
                                let term = Double(weight[((k * channels + c) * kernel + ki) * kernel + kj]) * x[(c * height + iy) * width + ix]
                                sum += term
                                size += abs(term)
                            }
                        }
                    }
                    out[(k * oh + oy) * ow + ox] = sum
                    magnitude[(k * oh + oy) * ow + ox] = size
                }
            }
        }
        return (out, magnitude, oh, ow)
    }
    @Test func bigMapsGiveTheDirectConvolution() throws {
        let input = TensorShape(channels: 3, height: 250, width: 240)
        // 75 column rows x 250 x 240 outputs = 4.5 M floats: past the 4 Mi band limit.
        let network = try Network(architecture: Architecture(parsing: "conv(4,5,pad=2) relu conv(2,3,stride=2)"), input: input, seed: 3, workers: 2)
        var generator = SeededGenerator(seed: 4)
        let x = (0..<(2 * input.count)).map { _ in generator.nextGaussian() }
        let tensors = Dictionary(uniqueKeysWithValues: network.namedTensors().map { ($0.name, $0.values) })
        let (w1, b1, w2, b2) = (tensors["0.weight"]!, tensors["0.bias"]!, tensors["2.weight"]!, tensors["2.bias"]!)
        let first = Self.conv(x[0..<input.count].map(Double.init), channels: 3, height: 250, width: 240, weight: w1, bias: b1, filters: 4, kernel: 5, stride: 1, pad: 2)
        let second = Self.conv(first.values.map { max($0, 0) }, channels: 4, height: 250, width: 240, weight: w2, bias: b2, filters: 2, kernel: 3, stride: 2, pad: 0)
        let alone = Array(network.forward(Array(x[0..<input.count]), batch: 1, mode: .inference))
        let batched = Array(network.forward(x, batch: 2, mode: .inference))
        // Each output sums 36 products of values carrying the first layer's rounding (75 terms):
        // bounded by the sums' gamma times their magnitudes, the first layer's error carried
        // through |weights| (at most 36 of them below 1).
        let firstError = first.magnitude.map { RoundingBound.sum(terms: 76, magnitude: $0) }.max()!
        for (name, got) in [("alone", alone), ("batched", Array(batched[0..<alone.count]))] {
            var outside = 0
            for i in 0..<second.values.count {
                let bound = RoundingBound.sum(terms: 37, magnitude: second.magnitude[i]) + 36 * firstError
                if abs(Double(got[i]) - second.values[i]) > bound { outside += 1 }
            }
            #expect(outside == 0, "\(name): \(outside) of \(second.values.count) outputs beyond their bound")
        }
    }

    /// A filter or two at stride 1 (a detector's score map) is convolved directly by shifted
    /// rows, not by im2col: against the Double sums, alone and in a batch, with the fused ReLU.
    @Test func thinConvolutionsGiveTheDirectSums() throws {
        let input = TensorShape(channels: 5, height: 23, width: 37)
        for (architecture, filters, kernel) in [("conv(1,9,pad=4) relu", 1, 9), ("conv(2,3,pad=1) relu", 2, 3), ("conv(1,4)", 1, 4)] {
            let network = try Network(architecture: Architecture(parsing: architecture), input: input, seed: 5, workers: 2)
            var generator = SeededGenerator(seed: 6)
            let x = (0..<(3 * input.count)).map { _ in generator.nextGaussian() }
            let tensors = Dictionary(uniqueKeysWithValues: network.namedTensors().map { ($0.name, $0.values) })
            let pad = kernel == 4 ? 0 : kernel / 2
            let batched = Array(network.forward(x, batch: 3, mode: .inference))
            for image in 0..<3 {
                let expected = Self.conv(x[(image * input.count)..<((image + 1) * input.count)].map(Double.init), channels: 5, height: 23, width: 37,
                                         weight: tensors["0.weight"]!, bias: tensors["0.bias"]!, filters: filters, kernel: kernel, stride: 1, pad: pad)
                let alone = Array(network.forward(Array(x[(image * input.count)..<((image + 1) * input.count)]), batch: 1, mode: .inference))
                let count = expected.values.count
                #expect(alone.count == count)
                for (name, got) in [("alone", alone), ("batched", Array(batched[(image * count)..<((image + 1) * count)]))] {
                    var outside = 0
                    for i in 0..<count {
                        let value = architecture.hasSuffix("relu") ? max(expected.values[i], 0) : expected.values[i]
                        if abs(Double(got[i]) - value) > RoundingBound.sum(terms: 5 * kernel * kernel + 1, magnitude: expected.magnitude[i]) { outside += 1 }
                    }
                    #expect(outside == 0, "\(architecture) image \(image) \(name): \(outside) of \(count) outputs beyond their bound")
                }
            }
        }
    }
}
