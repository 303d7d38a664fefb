// SPDX-License-Identifier: MIT
import Testing
import TestSupport
@testable import DoppelNN

/// Winograd F(2x2, 3x3) against the direct (im2col) convolution it replaces at inference, on
/// odd and even sizes, paddings 0-2, batches that chunk, with a fused activation.
@Suite struct WinogradConv2DTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let channels: Int, filters: Int, height: Int, width: Int, padding: Int, batch: Int
        var testDescription: String { "\(channels)->\(filters) on \(height)x\(width) pad \(padding), batch \(batch)" }
    }

    static let cases: [Case] = [
        Case(channels: 16, filters: 16, height: 8, width: 8, padding: 1, batch: 3),
        Case(channels: 17, filters: 20, height: 7, width: 9, padding: 1, batch: 2),
        Case(channels: 16, filters: 24, height: 6, width: 5, padding: 0, batch: 4),
        Case(channels: 32, filters: 16, height: 5, width: 7, padding: 2, batch: 1),
        Case(channels: 16, filters: 16, height: 2, width: 3, padding: 1, batch: 5),
        Case(channels: 512, filters: 64, height: 4, width: 4, padding: 1, batch: 40),  // chunks of the batch
    ]

    @Test(arguments: cases)
    func matchesTheDirectConvolution(_ c: Case) {
        let input = TensorShape(channels: c.channels, height: c.height, width: c.width)
        let direct = Conv2D(input: input, filters: c.filters, kernel: 3, stride: 1, padding: c.padding)
        let winograd = WinogradConv2D(input: input, filters: c.filters, padding: c.padding, workspace: Workspace())
        #expect(winograd.outputShape == direct.outputShape)
        var generator = SeededGenerator(seed: 5)
        var parameters = [Float](repeating: 0, count: direct.parameterCount)
        parameters.withUnsafeMutableBufferPointer { direct.initialize($0.baseAddress!, using: &generator) }
        for k in 0..<c.filters { parameters[c.filters * c.channels * 9 + k] = generator.nextGaussian() }
        var transformed = [Float](repeating: 0, count: 16 * c.filters * c.channels + c.filters)
        parameters.withUnsafeBufferPointer { p in
            transformed.withUnsafeMutableBufferPointer { t in
                WinogradConv2D.transformWeights(p.baseAddress!, filters: c.filters, channels: c.channels, into: t.baseAddress!)
            }
        }
        transformed.replaceSubrange((16 * c.filters * c.channels)..., with: parameters[(c.filters * c.channels * 9)...])
        let x = (0..<(c.batch * input.count)).map { _ in generator.nextGaussian() }
        let count = c.batch * direct.outputShape.count
        var expected = [Float](repeating: 0, count: count), actual = [Float](repeating: .nan, count: count)
        direct.forward(x, &expected, batch: c.batch, parameters: parameters, mode: .inference)
        for i in expected.indices { expected[i] = max(expected[i], 0) }
        winograd.epilogue = .relu
        winograd.forward(x, &actual, batch: c.batch, parameters: transformed, mode: .inference)
        let scale = Double(expected.map { abs($0) }.max()!)
        let difference = Double(zip(actual, expected).map { abs($0 - $1) }.max()!)
        // C x 9 products a value, and Winograd's transforms four more sums on each side.
        let bound = RoundingBound.chain(sumLengths: [4 * c.channels * 9], scale: scale)
        print("winograd \(c.testDescription): max difference \(difference) of \(scale) (bound \(bound))")
        #expect(!actual.contains { $0.isNaN })
        #expect(difference <= bound)
    }
}
