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

    /// A twin-tower model imports as one tower plus the head; the head's probability on the
    /// two towers' embeddings is onnxruntime's output.
    @Test func siameseExportsImportAsTowerAndHead() throws {
        let input = TensorShape(channels: 1, height: 20, width: 20)
        let (network, imported) = try Self.network("fixture_siamese", input: input)
        let head = try #require(imported.head)
        #expect(head.distance == .l1 && head.weight.count == network.outputShape.count)
        let left = try NumpyArray(contentsOf: Self.path("fixture_siamese.left.npy"))
        let right = try NumpyArray(contentsOf: Self.path("fixture_siamese.right.npy"))
        let expected = try NumpyArray(contentsOf: Self.path("fixture_siamese.output.npy"))
        let batch = left.shape[0], dimension = network.outputShape.count
        let a = network.forward(left.values, batch: batch), b = network.forward(right.values, batch: batch)
        let koch = KochHead(dimension: dimension, seed: 0, distance: head.distance)
        koch.parameters = head.weight + [head.bias]
        // Each tower within the network's rounding e of onnxruntime's; the logit w.|a - b| + c
        // then within sum |w| 2e plus its own sum's rounding, and the sigmoid (slope <= 1/4)
        // carries a quarter of that.
        let towerBound = RoundingBound.forward(network, scale: Double((a + b).map { abs($0) }.max()!))
        let weightSum = head.weight.reduce(0.0) { $0 + abs(Double($1)) }
        var worst: Float = 0, outside = 0
        for i in 0..<batch {
            let p = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
                koch.probability(pa.baseAddress! + i * dimension, pb.baseAddress! + i * dimension)
            } }
            let magnitude = (0..<dimension).reduce(abs(Double(head.bias))) { $0 + abs(Double(head.weight[$1]) * Double(a[i * dimension + $1] - b[i * dimension + $1])) }
            let bound = 0.25 * (weightSum * 2 * towerBound + RoundingBound.reordered(terms: dimension + 1, magnitude: magnitude))
            if Double(abs(p - expected.values[i])) > bound { outside += 1 }
            worst = max(worst, abs(p - expected.values[i]))
        }
        print("siamese: head \(head.distance), max |p - onnxruntime| \(worst)")
        #expect(outside == 0)
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
