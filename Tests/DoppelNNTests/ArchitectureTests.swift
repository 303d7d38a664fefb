// SPDX-License-Identifier: MIT
import Testing
@testable import DoppelNN

@Suite struct ArchitectureTests {
    @Test func parsesAndPrintsBack() throws {
        let text = "conv(64,3,pad=1) relu maxpool(2) conv(64, 3, stride=2) lrn(5,alpha=0.0001,beta=0.75,k=2.0) batchnorm dropout(0.25) flatten dense(128,init=glorot) leakyrelu(0.2) l2norm"
        let architecture = try Architecture(parsing: text)
        #expect(architecture.items.count == 11)
        #expect(architecture.items[3] == .layer(.conv(filters: 64, kernel: 3, stride: 2, padding: 0, groups: 1, initializer: .he)))
        #expect(try Architecture(parsing: architecture.description) == architecture)
        #expect(architecture.description.hasPrefix("conv(64,3,pad=1) relu maxpool(2) conv(64,3,stride=2) lrn(5,"))
    }

    /// Residual blocks and named values print back as written, and build the graph they say:
    /// a projection where the block changes the shape, none where it keeps it.
    @Test func graphsParseAndPrintBack() throws {
        let text = "conv(8,3,pad=1) batchnorm relu res(conv(8,3,pad=1) batchnorm relu conv(8,3,pad=1) batchnorm) relu "
            + "res(conv(16,3,stride=2,pad=1,groups=8) hardswish) @x gap dense(4) relu dense(16) hardsigmoid mul(@x) "
            + "@y conv(4,1) @z from(@y) conv(4,3,pad=1) concat(@z) gmp flatten dense(8) prelu layernorm l2norm"
        let architecture = try Architecture(parsing: text)
        #expect(architecture.description == text)
        #expect(try Architecture(parsing: architecture.description) == architecture)
        let network = try Network(architecture: architecture, input: TensorShape(channels: 3, height: 9, width: 9), seed: 1)
        #expect(network.outputShape == TensorShape(channels: 8))
        // 26 tokens' layers, the two blocks' additions and the second block's 1x1 projection.
        let projections = network.graph.nodes.filter { $0.spec == .conv(filters: 16, kernel: 1, stride: 2, padding: 0, groups: 1, initializer: .he) }
        #expect(projections.count == 1)
        #expect(network.graph.nodes.filter { $0.spec == .add("res") }.count == 2)
        #expect(network.graph.nodes.last!.inputs == [network.graph.nodes.count - 1])
        // The concatenation reads the 3x3 branch (current) and the 1x1 branch: 4 + 4 channels.
        let concat = network.graph.nodes.first { if case .concat = $0.spec { true } else { false } }!
        #expect(concat.outputShape == TensorShape(channels: 8, height: 5, width: 5))
    }

    @Test func graphErrorsNameTheToken() throws {
        #expect(throws: ArchitectureError.badArgument(token: 2, text: "add(@a)", detail: "no value is named @a before it")) {
            try Network(architecture: Architecture(parsing: "relu add(@a)"), input: TensorShape(channels: 4), seed: 1)
        }
        #expect(throws: ArchitectureError.badArgument(token: 3, text: "@a", detail: "the name is already given to another value")) {
            try Network(architecture: Architecture(parsing: "@a relu @a"), input: TensorShape(channels: 4), seed: 1)
        }
        #expect(throws: ArchitectureError.badArgument(token: 2, text: "conv(4,1)", detail: "its output is never read (the network's output is the last token's)")) {
            try Network(architecture: Architecture(parsing: "@a conv(4,1) from(@a) conv(4,3)"), input: TensorShape(channels: 1, height: 5, width: 5), seed: 1)
        }
        #expect(throws: ArchitectureError.self) { try Architecture(parsing: "res(relu") }
        #expect(throws: ArchitectureError.self) { try Architecture(parsing: "relu )") }
        #expect(throws: ArchitectureError.badArgument(token: 1, text: "res()", detail: "the block has no layers")) { try Architecture(parsing: "res()") }
        #expect(throws: ArchitectureError.badArgument(token: 1, text: "conv(6,3,groups=4)", detail: "filters 6 must be a multiple of groups 4")) {
            try Architecture(parsing: "conv(6,3,groups=4)")
        }
        // A block whose output no strided 1x1 convolution can match.
        #expect(throws: ArchitectureError.shapeMismatch(token: 1, text: "res(...)",
                                                         detail: "the block turns 1x6x6 into 8x4x4, which no strided 1x1 shortcut gives (it gives 8x3x3)")) {
            try Network(architecture: Architecture(parsing: "res(conv(8,3))"), input: TensorShape(channels: 1, height: 6, width: 6), seed: 1)
        }
        #expect(throws: ArchitectureError.shapeMismatch(token: 3, text: "mul(@a)", detail: "2x4x4 and 3x4x4 differ (one may be per channel: C or Cx1x1)")) {
            try Network(architecture: Architecture(parsing: "@a conv(2,1) mul(@a)"), input: TensorShape(channels: 3, height: 4, width: 4), seed: 1)
        }
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
