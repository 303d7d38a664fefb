// SPDX-License-Identifier: MIT
import Foundation
import Testing
import TestSupport
@testable import DoppelNN

/// The engine against PyTorch: a model built and run in PyTorch (conv with stride and
/// padding, batch norm in eval mode, ReLU, tanh, max and average pooling, LRN, leaky ReLU,
/// flatten, dense, sigmoid, l2norm), saved in Doppel's model format by
/// `scripts/compare/make_torch_fixture.py` together with an input batch and PyTorch's outputs.
@Suite struct TorchReferenceTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    @Test func doppelComputesWhatPyTorchComputed() throws {
        let model = try ModelFile.load(path: Self.fixtures.appendingPathComponent("torch_reference.safetensors").path)
        let probe = try SafeTensors(bytes: [UInt8](Data(contentsOf: Self.fixtures.appendingPathComponent("torch_reference_probe.safetensors"))))
        let input = probe.tensors["input"]!, expected = probe.tensors["output"]!
        #expect(input.shape == [5, 2, 13, 11] && expected.shape == [5, 3])
        let output = model.network.forward(input.values, batch: 5, mode: .inference)
        let maxDifference = zip(output, expected.values).map { abs($0 - $1) }.max()!
        // PyTorch sums in its own order: the two differ by rounding of the network's sums.
        let bound = RoundingBound.forward(model.network, scale: Double(expected.values.map { abs($0) }.max()!))
        print("PyTorch reference (\(probe.metadata["made_by"] ?? "")): max |doppel - torch| = \(maxDifference) (bound \(bound))")
        #expect(Double(maxDifference) <= bound)
    }
}
