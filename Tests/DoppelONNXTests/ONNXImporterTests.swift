// SPDX-License-Identifier: MIT
@testable import DoppelNN
import Foundation
import Testing
import TestSupport
@testable import DoppelONNX

/// Imported networks against onnxruntime: fixtures made by `scripts/compare/onnx_models.py`
/// (PyTorch with fixed seeds, exported with torch.onnx.export, run by onnxruntime on random
/// inputs saved beside them).
@Suite struct ONNXImporterTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func path(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    /// The imported network and the input shape it takes.
    static func network(_ name: String, input: TensorShape) throws -> (Network, ImportedModel) {
        let imported = try ONNXImporter.importModel(path: path("\(name).onnx"), input: input)
        let network = try Network(architecture: imported.architecture, input: input, seed: 0)
        try network.load(tensors: imported.tensors)
        return (network, imported)
    }

    /// Max |doppel - onnxruntime| over the batch, and the largest difference relative to its
    /// row's norm.
    static func compare(_ output: [Float], _ expected: NumpyArray) -> (absolute: Float, relative: Float) {
        let width = expected.shape.dropFirst().reduce(1, *)
        var absolute: Float = 0, relative: Float = 0
        for row in 0..<(expected.values.count / width) {
            let range = (row * width)..<((row + 1) * width)
            let norm = expected.values[range].reduce(0) { $0 + $1 * $1 }.squareRoot()
            let difference = zip(output[range], expected.values[range]).map { abs($0 - $1) }.max()!
            absolute = max(absolute, difference)
            relative = max(relative, difference / max(norm, 1e-12))
        }
        return (absolute, relative)
    }

    @Test(arguments: [("fixture", TensorShape(channels: 3, height: 24, width: 24)), ("fixture_nhwc", TensorShape(channels: 1, height: 20, width: 16))])
    func importedNetworksMatchOnnxruntime(name: String, input: TensorShape) throws {
        let (network, imported) = try Self.network(name, input: input)
        var x = try NumpyArray(contentsOf: Self.path("\(name).input.npy"))
        if name == "fixture_nhwc" {
            // The file holds NHWC (what the Keras-style model reads); doppel takes CHW images.
            let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            var chw = [Float](repeating: 0, count: x.values.count)
            for b in 0..<n { for y in 0..<h { for i in 0..<w { for k in 0..<c { chw[((b * c + k) * h + y) * w + i] = x.values[((b * h + y) * w + i) * c + k] } } } }
            x = NumpyArray(shape: [n, c, h, w], values: chw)
        }
        let expected = try NumpyArray(contentsOf: Self.path("\(name).output.npy"))
        let output = network.forward(x.values, batch: x.shape[0], mode: .inference)
        let (absolute, relative) = Self.compare(output, expected)
        print("\(name): \(imported.architecture)\n  max |doppel - onnxruntime| \(absolute), relative to the row norm \(relative); operators \(imported.operatorCounts.keys.sorted())")
        // onnxruntime sums in its own order: the network's rounding at the outputs' scale.
        let bound = Float(RoundingBound.forward(network, scale: Double(expected.values.map { abs($0) }.max()!)))
        print("  bound \(bound)")
        #expect(output.count == expected.values.count)
        #expect(absolute <= bound)
        // And node by node, without the inference plan's folding and fusing.
        network.fusesInference = false
        let unfused = network.forward(x.values, batch: x.shape[0], mode: .inference)
        #expect(Self.compare(unfused, expected).absolute <= bound)
    }

    /// NHWC batches (what a Keras export reads) as the CHW images doppel takes.
    static func channelsFirst(_ x: NumpyArray) -> NumpyArray {
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var chw = [Float](repeating: 0, count: x.values.count)
        for b in 0..<n { for y in 0..<h { for i in 0..<w { for k in 0..<c { chw[((b * c + k) * h + y) * w + i] = x.values[((b * h + y) * w + i) * c + k] } } } }
        return NumpyArray(shape: [n, c, h, w], values: chw)
    }

    /// Twin-tower models import as one tower plus the head, whatever its depth: Koch's one
    /// layer; Siamese-pytorch's two Linear layers without activation between (Gemm, Gemm); its
    /// Keras twin as tf2onnx exports it (NHWC inputs, the towers transposed and reshaped
    /// before the difference, MatMul + Add, Relu, MatMul + Add). On every pair of the batch the
    /// head's probability is onnxruntime's.
    @Test(arguments: [("fixture_siamese", TensorShape(channels: 1, height: 20, width: 20), ["left", "right"], "1"),
                      ("fixture_siamese_torch", TensorShape(channels: 3, height: 12, width: 12), ["left", "right"], "16,1"),
                      ("fixture_siamese_keras", TensorShape(channels: 3, height: 12, width: 12), ["input_1", "input_2"], "16,relu,1")])
    func siameseExportsImportAsTowerAndHead(name: String, input: TensorShape, inputs: [String], layers: String) throws {
        let (network, imported) = try Self.network(name, input: input)
        let found = try #require(imported.head)
        let head = try found.siameseHead(dimension: network.outputShape.count)
        #expect(head.distance == .l1 && head.layerDescription == layers)
        var left = try NumpyArray(contentsOf: Self.path("\(name).\(inputs[0]).npy"))
        var right = try NumpyArray(contentsOf: Self.path("\(name).\(inputs[1]).npy"))
        if left.shape.count == 4, left.shape[3] == input.channels, left.shape[1] != input.channels {
            (left, right) = (Self.channelsFirst(left), Self.channelsFirst(right))
        }
        let expected = try NumpyArray(contentsOf: Self.path("\(name).output.npy"))
        let batch = left.shape[0], dimension = network.outputShape.count
        let a = network.forward(left.values, batch: batch), b = network.forward(right.values, batch: batch)
        // Each tower is within the network's rounding e of onnxruntime's, so |a - b| within 2e.
        // Each dense layer multiplies an input error by at most its largest row sum of |W|
        // (ReLU never enlarges a difference) and adds its own sums' rounding; the sigmoid
        // (slope <= 1/4) carries a quarter of the logit's error.
        let towerBound = RoundingBound.forward(network, scale: Double((a + b).map { abs($0) }.max()!))
        var worst: Float = 0, outside = 0
        for i in 0..<batch {
            let (pa, pb) = (Array(a[(i * dimension)..<((i + 1) * dimension)]), Array(b[(i * dimension)..<((i + 1) * dimension)]))
            let p = pa.withUnsafeBufferPointer { x in pb.withUnsafeBufferPointer { y in head.probability(x.baseAddress!, y.baseAddress!) } }
            var error = 2 * towerBound
            var values = zip(pa, pb).map { Double(abs($0 - $1)) }
            for (index, layer) in found.layers.enumerated() {
                let inputs = values.count
                var next = [Double](), largestRowSum = 0.0, roundings = 0.0
                for o in 0..<layer.outputs {
                    let row = layer.weight[(o * inputs)..<((o + 1) * inputs)]
                    let rowSum = row.reduce(0.0) { $0 + abs(Double($1)) }
                    largestRowSum = max(largestRowSum, rowSum)
                    let magnitude = zip(row, values).reduce(abs(Double(layer.bias[o]))) { $0 + abs(Double($1.0) * $1.1) }
                    roundings = max(roundings, RoundingBound.reordered(terms: inputs + 1, magnitude: magnitude))
                    let sum = zip(row, values).reduce(Double(layer.bias[o])) { $0 + Double($1.0) * $1.1 }
                    next.append(layer.relu ? max(sum, 0) : sum)
                }
                error = largestRowSum * error + roundings
                values = next
                _ = index
            }
            let bound = 0.25 * error
            if Double(abs(p - expected.values[i])) > bound { outside += 1 }
            worst = max(worst, abs(p - expected.values[i]))
        }
        print("\(name): head \(head.layerDescription) on \(head.distance), max |p - onnxruntime| \(worst) over \(batch) pairs")
        #expect(outside == 0 && worst <= 1e-4)
    }

    /// Heads that are not a Siamese head: refused with the node and what was expected.
    @Test func headsThatAreNotSiameseHeadsAreRefused() throws {
        // A last layer to more than one logit is not a probability.
        #expect(throws: SiameseHeadError.self) { _ = try SiameseHead.parseLayers("16,relu,2") }
        #expect(throws: SiameseHeadError.self) { _ = try SiameseHead.parseLayers("relu,1") }
        #expect(throws: SiameseHeadError.self) { _ = try SiameseHead.parseLayers("16,relu,relu,1") }
        #expect(try SiameseHead.parseLayers("512,relu,1") == [SiameseHead.Layer(outputs: 512, relu: true), SiameseHead.Layer(outputs: 1, relu: false)])
    }

    @Test func unsupportedOperatorsAreNamed() throws {
        #expect {
            _ = try ONNXImporter.importModel(path: Self.path("unsupported.onnx"), input: TensorShape(channels: 1, height: 8, width: 8))
        } throws: { error in
            guard case ONNXImportError.unsupportedOperator(let node, let opType, let supported) = error else { return false }
            let message = "\(error)"
            print(message)
            return opType == "CumSum" && !node.isEmpty && supported.contains("Conv") && message.contains("CumSum") && message.contains("supported operators: ")
        }
    }

    @Test func inputShapesMustMatchTheImages() throws {
        #expect(throws: ONNXImportError.self) {
            _ = try ONNXImporter.importModel(path: Self.path("fixture.onnx"), input: TensorShape(channels: 3, height: 32, width: 32))
        }
    }

    @Test func damagedFilesAreRefused() throws {
        let bytes = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent("fixture.onnx")))
        #expect(throws: ONNXImportError.self) { _ = try ONNXImporter.importModel(bytes: Array(bytes.prefix(bytes.count / 2)), input: TensorShape(channels: 3, height: 24, width: 24)) }
        #expect(throws: ONNXImportError.self) { _ = try ONNXImporter.importModel(bytes: Array("not a model at all".utf8), input: TensorShape(channels: 3, height: 24, width: 24)) }
        #expect(throws: ONNXImportError.self) { _ = try ONNXImporter.importModel(bytes: [], input: TensorShape(channels: 3, height: 24, width: 24)) }
    }
}
