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
        #expect(input.maxRelativeError < 2e-2, "dx: \(input)")
        if network.parameterCount > 0 {
            #expect(parameters.maxRelativeError < 2e-2, "dparameters: \(parameters)")
        }
    }
}
