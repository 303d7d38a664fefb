// SPDX-License-Identifier: MIT
import Testing
@testable import DoppelNN

@Suite struct ArchitectureTests {
    @Test func parsesAndPrintsBack() throws {
        let text = "conv(64,3,pad=1) relu maxpool(2) conv(64, 3, stride=2) lrn(5,alpha=0.0001,beta=0.75,k=2.0) batchnorm dropout(0.25) flatten dense(128,init=glorot) leakyrelu(0.2) l2norm"
        let architecture = try Architecture(parsing: text)
        #expect(architecture.layers.count == 11)
        #expect(architecture.layers[3] == .conv(filters: 64, kernel: 3, stride: 2, padding: 0, initializer: .he))
        #expect(try Architecture(parsing: architecture.description) == architecture)
        #expect(architecture.description.hasPrefix("conv(64,3,pad=1) relu maxpool(2) conv(64,3,stride=2) lrn(5,"))
    }

    @Test func syntaxErrorsNameTheToken() {
        #expect(throws: ArchitectureError.empty) { try Architecture(parsing: "  ") }
        #expect(throws: ArchitectureError.unknownLayer(token: 2, text: "softmax", known: Architecture.layerNames)) {
            try Architecture(parsing: "dense(3) softmax")
        }
        #expect(throws: ArchitectureError.badArgument(token: 1, text: "conv(64)", detail: "missing kernel")) { try Architecture(parsing: "conv(64)") }
        #expect(throws: ArchitectureError.badArgument(token: 1, text: "dense(0)", detail: "units must be an integer >= 1, not '0'")) {
            try Architecture(parsing: "dense(0)")
        }
        #expect(throws: ArchitectureError.badArgument(token: 1, text: "conv(4,3,padding=1)", detail: "unknown argument 'padding'")) {
            try Architecture(parsing: "conv(4,3,padding=1)")
        }
        #expect(throws: ArchitectureError.self) { try Architecture(parsing: "dropout(1.5)") }
        #expect(throws: ArchitectureError.self) { try Architecture(parsing: "relu(3)") }
    }

    @Test func shapeErrorsSayWhatDisagrees() throws {
        let tooSmall = try Architecture(parsing: "conv(8,3) maxpool(2) conv(8,3)")
        #expect(throws: ArchitectureError.shapeMismatch(token: 3, text: "conv(8,3)",
                                                         detail: "input is 8x2x2 after maxpool(2) at token 2, smaller than the 3x3 kernel with pad 0")) {
            try Network(architecture: tooSmall, input: TensorShape(channels: 1, height: 6, width: 6), seed: 1)
        }
        #expect(throws: ArchitectureError.shapeMismatch(token: 2, text: "dense(10)", detail: "input is 4x5x5 after conv(4,3) at token 1; add flatten (or gap) before it")) {
            try Network(architecture: Architecture(parsing: "conv(4,3) dense(10)"), input: TensorShape(channels: 1, height: 7, width: 7), seed: 1)
        }
    }

    @Test func referenceNetworksHaveTheExpectedShapes() throws {
        let mlp = try Network(architecture: Architecture(parsing: "flatten dense(1024) relu dense(1024) relu dense(2)"),
                              input: TensorShape(channels: 1, height: 28, width: 28), seed: 1)
        #expect(mlp.outputShape == TensorShape(channels: 2))
        #expect(mlp.parameterCount == 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 2 + 2)
        let cnn = try Network(architecture: Architecture(parsing: String(repeating: "conv(64,3,pad=1) relu maxpool(2) ", count: 4) + "flatten dense(64)"),
                              input: TensorShape(channels: 1, height: 28, width: 28), seed: 1)
        #expect(cnn.outputShape == TensorShape(channels: 64))
        let faces = try Network(architecture: Architecture(parsing: "conv(16,5,pad=2) relu maxpool(2) conv(32,5,pad=2) relu maxpool(2) flatten dense(128) l2norm"),
                                input: TensorShape(channels: 1, height: 56, width: 46), seed: 1)
        #expect(faces.outputShape == TensorShape(channels: 128))
    }
}
