// SPDX-License-Identifier: MIT
import Testing
@testable import DoppelNN

/// Finite-difference checks of every layer, on odd shapes and stride/padding combinations.
@Suite struct LayerGradientTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let architecture: String
        let input: TensorShape
        var testDescription: String { "\(architecture) on \(input)" }
    }

    static let cases: [Case] = [
        Case(architecture: "dense(7) tanh dense(5)", input: TensorShape(channels: 11)),
        Case(architecture: "dense(6,init=glorot) sigmoid", input: TensorShape(channels: 9)),
        Case(architecture: "leakyrelu(0.1) dense(4)", input: TensorShape(channels: 5)),
        // ReLU directly on the random input: a weight perturbation upstream of a ReLU moves many
        // pre-activations and can cross its kink, which finite differences cannot see past.
        Case(architecture: "relu dense(3)", input: TensorShape(channels: 8)),
        Case(architecture: "conv(4,3,pad=1) tanh", input: TensorShape(channels: 2, height: 7, width: 9)),
        Case(architecture: "conv(3,3,stride=2,pad=1) tanh", input: TensorShape(channels: 2, height: 9, width: 8)),
        Case(architecture: "conv(5,2,stride=3) sigmoid", input: TensorShape(channels: 3, height: 11, width: 10)),
        Case(architecture: "conv(2,5,pad=2,init=glorot) tanh flatten dense(3)", input: TensorShape(channels: 1, height: 6, width: 5)),
        Case(architecture: "tanh maxpool(2)", input: TensorShape(channels: 3, height: 7, width: 6)),
        Case(architecture: "tanh maxpool(3,stride=2)", input: TensorShape(channels: 2, height: 9, width: 7)),
        Case(architecture: "avgpool(2)", input: TensorShape(channels: 2, height: 5, width: 7)),
        Case(architecture: "avgpool(3,stride=1)", input: TensorShape(channels: 2, height: 5, width: 4)),
        Case(architecture: "gap tanh", input: TensorShape(channels: 4, height: 3, width: 5)),
        Case(architecture: "batchnorm tanh", input: TensorShape(channels: 3, height: 4, width: 5)),
        Case(architecture: "dense(6) batchnorm tanh", input: TensorShape(channels: 7)),
        Case(architecture: "lrn(3) tanh", input: TensorShape(channels: 5, height: 2, width: 3)),
        Case(architecture: "lrn(4,alpha=0.5,beta=0.75,k=1) tanh", input: TensorShape(channels: 6, height: 2, width: 2)),
        Case(architecture: "lrn(5,alpha=0.3,beta=0.6,k=1.5) tanh", input: TensorShape(channels: 7, height: 3, width: 2)),  // beta other than 0.75: powf
        Case(architecture: "dropout(0.3) dense(4)", input: TensorShape(channels: 9)),
        Case(architecture: "flatten dense(5) l2norm", input: TensorShape(channels: 2, height: 3, width: 2)),
    ]

    @Test(arguments: cases)
    func finiteDifferences(_ testCase: Case) throws {
        let network = try Network(architecture: Architecture(parsing: testCase.architecture), input: testCase.input, seed: 3)
        let (input, parameters) = GradientCheck.check(network, batch: 3)
        print("gradient check \(testCase.testDescription): dx \(input); dparams \(parameters)")
        #expect(input.checked > 0)
        #expect(input.maxRelativeError < 2 * GradientCheck.tolerance, "dx: \(input)")
        if network.parameterCount > 0 {
            #expect(parameters.maxRelativeError < 2 * GradientCheck.tolerance, "dparameters: \(parameters)")
        }
    }
}

/// Finite-difference checks of the layers graph networks and imported models use, and of
/// the graph itself: residual additions, values read by several layers, broadcasting
/// multiplication, concatenation.
@Suite struct GraphGradientTests {
    static let cases: [LayerGradientTests.Case] = [
        .init(architecture: "conv(6,3,pad=1,groups=2) tanh", input: TensorShape(channels: 4, height: 5, width: 6)),
        .init(architecture: "conv(4,3,stride=2,pad=1,groups=4) tanh", input: TensorShape(channels: 4, height: 7, width: 6)),
        .init(architecture: "conv(8,3,pad=1,groups=4) tanh flatten dense(3)", input: TensorShape(channels: 4, height: 5, width: 5)),
        .init(architecture: "conv(6,1,groups=3) tanh", input: TensorShape(channels: 6, height: 3, width: 4)),
        .init(architecture: "prelu flatten dense(3)", input: TensorShape(channels: 2, height: 3, width: 2)),
        .init(architecture: "silu dense(3)", input: TensorShape(channels: 7)),
        .init(architecture: "hardswish dense(3)", input: TensorShape(channels: 7)),
        .init(architecture: "hardsigmoid dense(3)", input: TensorShape(channels: 7)),
        .init(architecture: "hardsigmoid(0.2,0.5) dense(3)", input: TensorShape(channels: 7)),
        .init(architecture: "gelu dense(3)", input: TensorShape(channels: 7)),
        .init(architecture: "abs dense(3)", input: TensorShape(channels: 7)),
        .init(architecture: "clip(-1,1) dense(3)", input: TensorShape(channels: 7)),
        .init(architecture: "pad(1,2,0,1) conv(2,3) tanh", input: TensorShape(channels: 2, height: 4, width: 5)),
        .init(architecture: "transpose(1,2,0) conv(2,2) tanh", input: TensorShape(channels: 3, height: 4, width: 5)),
        .init(architecture: "affine tanh", input: TensorShape(channels: 3, height: 2, width: 2)),
        .init(architecture: "layernorm tanh", input: TensorShape(channels: 3, height: 2, width: 2)),
        .init(architecture: "dense(6) layernorm tanh", input: TensorShape(channels: 5)),
        .init(architecture: "gmp tanh", input: TensorShape(channels: 3, height: 3, width: 4)),
        .init(architecture: "tanh maxpool(3,stride=2,pad=1)", input: TensorShape(channels: 2, height: 7, width: 6)),
        .init(architecture: "avgpool(3,stride=1,pad=1)", input: TensorShape(channels: 2, height: 4, width: 5)),
        .init(architecture: "avgpool(3,stride=2,pad=1,countpad=1)", input: TensorShape(channels: 2, height: 5, width: 5)),
        .init(architecture: "conv(4,3,pad=1) tanh res(conv(4,3,pad=1) tanh conv(4,3,pad=1)) tanh res(conv(6,3,stride=2,pad=1) tanh) gap dense(3)",
              input: TensorShape(channels: 2, height: 6, width: 5)),
        .init(architecture: "conv(4,3,pad=1) batchnorm tanh res(conv(4,3,pad=1) batchnorm tanh) gap dense(3)",
              input: TensorShape(channels: 2, height: 5, width: 5)),
        .init(architecture: "conv(4,3,pad=1) tanh @x gap dense(2) tanh dense(4) sigmoid mul(@x) flatten dense(3)",
              input: TensorShape(channels: 2, height: 4, width: 4)),
        .init(architecture: "conv(3,3,pad=1) tanh @a conv(2,1) tanh @b from(@a) conv(2,3,pad=1) tanh concat(@b,@a) conv(2,1)",
              input: TensorShape(channels: 2, height: 4, width: 3)),
        // dlib's residual shortcut: a map with fewer channels and more rows and columns.
        .init(architecture: "conv(4,3,pad=1) tanh @a conv(6,3,stride=2) tanh addpad(@a) tanh flatten dense(3)",
              input: TensorShape(channels: 2, height: 5, width: 5)),
        .init(architecture: "tanh @a mul(@a) dense(3)", input: TensorShape(channels: 5)),
        .init(architecture: "dense(4) @a tanh add(@a) @b from(@input) dense(4) add(@b)", input: TensorShape(channels: 5)),
    ]

    @Test(arguments: cases)
    func finiteDifferences(_ testCase: LayerGradientTests.Case) throws {
        let network = try Network(architecture: Architecture(parsing: testCase.architecture), input: testCase.input, seed: 3)
        // Deeper graphs sum more float32 rounding into the loss: a step of 3e-3 keeps the
        // numeric derivative's noise (rounding / step) well under the tolerance.
        let (input, parameters) = GradientCheck.check(network, batch: 3, epsilon: 3e-3)
        print("gradient check \(testCase.testDescription): dx \(input); dparams \(parameters)")
        #expect(input.checked > 0)
        #expect(input.maxRelativeError < 2 * GradientCheck.tolerance, "dx: \(input)")
        if network.parameterCount > 0 {
            #expect(parameters.maxRelativeError < 2 * GradientCheck.tolerance, "dparameters: \(parameters)")
        }
    }
}
