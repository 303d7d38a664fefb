// SPDX-License-Identifier: MIT
import DoppelNN

/// A dlib DNN file (`net_type` serialized by dlib/dnn/core.h) read as its parts: the loss, the
/// wrappers from the outside in, the input layer, and the computational layers from the input
/// out. dlib writes each `add_layer` as its version, its sub-network, then its own layer, so
/// the stream holds every wrapper's version first and every layer's details after the input;
/// tag and skip wrappers (version 1) carry no name and no data, so which is which follows
/// from where they stand (`structure`).
struct DlibNetwork {
    enum Loss: Equatable {
        /// loss_metric_: embeddings compared by distance (the face recognition ResNet).
        case metric(margin: Double, distanceThreshold: Double)
        /// loss_mmod_: a sliding-window detector (the CNN face detector).
        case mmod(MMODOptions)
    }

    /// dlib's mmod_options as the detector uses them.
    struct MMODOptions: Equatable {
        var windows: [(width: Int, height: Int)]
        var nmsIOU: Double
        var nmsCovered: Double

        static func == (a: MMODOptions, b: MMODOptions) -> Bool {
            a.windows.map(\.width) == b.windows.map(\.width) && a.windows.map(\.height) == b.windows.map(\.height)
                && a.nmsIOU == b.nmsIOU && a.nmsCovered == b.nmsCovered
        }
    }

    enum Input: Equatable {
        /// input_rgb_image_sized: one size, (pixel - average) / 256 per channel.
        case rgbSized(average: [Double], rows: Int, columns: Int)
        /// input_rgb_image_pyramid<pyramid_down<N>>: an image pyramid tiled into one image.
        case rgbPyramid(average: [Double], padding: Int, outerPadding: Int)
    }

    enum Layer {
        case conv(filters: Int, kernel: (rows: Int, columns: Int), stride: (y: Int, x: Int), padding: (y: Int, x: Int), weights: [Float], bias: [Float]?)
        /// y = gamma x + beta per channel (an affine_, or a bn_ folded with its running statistics).
        case affine(gamma: [Float], beta: [Float])
        case relu
        case maxPool(size: (rows: Int, columns: Int), stride: (y: Int, x: Int), padding: (y: Int, x: Int))
        /// Size 0 x 0: over the whole map.
        case avgPool(size: (rows: Int, columns: Int), stride: (y: Int, x: Int), padding: (y: Int, x: Int))
        case addPrevious
        /// Weights [inputs, outputs] as dlib stores them (output = input x W).
        case fc(outputs: Int, inputs: Int, weights: [Float], bias: [Float]?)
        /// A layer saved disabled (affine_2, relu_2): it passes its input on.
        case identity

        var name: String {
            switch self {
            case .conv: "con"
            case .affine: "affine"
            case .relu: "relu"
            case .maxPool: "max_pool"
            case .avgPool: "avg_pool"
            case .addPrevious: "add_prev"
            case .fc: "fc"
            case .identity: "identity"
            }
        }
    }

    let loss: Loss
    /// Wrapper versions from the outside in: 2 or 3 an add_layer, 1 a tag or a skip.
    let wrappers: [Int]
    let input: Input
    /// The layers from the input out (the add_layers' order reversed).
    let layers: [Layer]

    static let supportedLayers = ["con_4", "con_5", "con_6", "affine_", "affine_2", "bn_con2", "relu_", "relu_2", "max_pool_2", "avg_pool_2",
                                  "add_prev_", "fc_2", "fc_3"]

    init(bytes: [UInt8]) throws(DlibFormatError) {
        var reader = DlibReader(bytes: bytes)
        _ = try reader.version("the loss layer", 1...1)
        loss = try Self.readLoss(&reader)
        // Wrapper versions until the input layer, whose first value is its name: a string of
        // length 21-25 starting with "input_" (a version is 1, 2 or 3 written as 0x01 0x0N).
        var wrappers = [Int]()
        while true {
            guard reader.offset + 2 < bytes.count else { throw .truncated(offset: reader.offset, expected: "the network's input layer") }
            if bytes[reader.offset] == 0x01, bytes[reader.offset + 1] > 3, bytes[reader.offset + 2] == UInt8(ascii: "i") { break }
            wrappers.append(try reader.version("a layer wrapper", 1...3))
        }
        guard let innermost = wrappers.last, innermost >= 2 else {
            throw .unsupportedStructure("the layer next to the input is a tag or skip (\(wrappers.last.map(String.init) ?? "none"))")
        }
        self.wrappers = wrappers
        input = try Self.readInput(&reader)
        var layers = [Layer]()
        for (position, version) in wrappers.reversed().enumerated() where version != 1 {
            layers.append(try Self.readLayer(&reader))
            // What add_layer writes after its layer: three flags and three state tensors (empty in
            // a saved model), and for the layer on the input, from version 3, the sample
            // expansion factor.
            for flag in ["setup", "gradient stale", "disabled"] { _ = try reader.bool("the add_layer's \(flag) flag") }
            for state in ["x_grad", "cached_output", "params_grad"] { _ = try reader.tensor("the add_layer's \(state)") }
            if position == 0 && version == 3 { _ = try reader.unsigned("the sample expansion factor") }
        }
        guard reader.isAtEnd else { throw .malformed(offset: reader.offset, expected: "the end of the network", found: "\(bytes.count - reader.offset) more bytes") }
        self.layers = layers
    }

    private static func readLoss(_ reader: inout DlibReader) throws(DlibFormatError) -> Loss {
        let start = reader.offset
        switch try reader.string("the loss layer's name") {
        case "loss_metric_": return .metric(margin: 0.1, distanceThreshold: 0.75)
        case "loss_metric_2": return .metric(margin: try reader.float("the margin"), distanceThreshold: try reader.float("the distance threshold"))
        case "loss_mmod_":
            let version = try reader.version("mmod_options", 1...4)
            var windows = [(width: Int, height: Int)]()
            if version == 1 {
                windows = [(try reader.unsigned("the detector window's width"), try reader.unsigned("the detector window's height"))]
            } else {
                for _ in 0..<(try reader.count("detector windows", atMost: 64)) {
                    let windowVersion = try reader.version("a detector window", 1...2)
                    windows.append((try reader.unsigned("a window's width"), try reader.unsigned("a window's height")))
                    if windowVersion == 2 { _ = try reader.string("a window's label") }
                }
            }
            for what in ["the loss per false alarm", "the loss per missed target", "the truth match IoU"] { _ = try reader.float(what) }
            let nms = (try reader.float("the NMS IoU threshold"), try reader.float("the NMS covered threshold"))
            for what in ["the ignore IoU threshold", "the ignore covered threshold"] { _ = try reader.float(what) }
            if version >= 3 { _ = try reader.integer("assume_image_pyramid") }
            if version >= 4, try reader.bool("use_bounding_box_regression") {
                throw .unsupportedStructure("a detector with bounding box regression")
            }
            if version >= 4 { _ = try reader.float("bbr_lambda") }
            return .mmod(MMODOptions(windows: windows, nmsIOU: nms.0, nmsCovered: nms.1))
        case let other:
            throw .unsupportedLayer(name: other, offset: start, supported: ["loss_metric_", "loss_metric_2", "loss_mmod_"])
        }
    }

    private static func readInput(_ reader: inout DlibReader) throws(DlibFormatError) -> Input {
        let start = reader.offset
        let name = try reader.string("the input layer's name")
        func averages() throws(DlibFormatError) -> [Double] {
            [try reader.float("the red average"), try reader.float("the green average"), try reader.float("the blue average")]
        }
        switch name {
        case "input_rgb_image_sized":
            let average = try averages()
            return .rgbSized(average: average, rows: try reader.unsigned("the input's rows"), columns: try reader.unsigned("the input's columns"))
        case "input_rgb_image_pyramid", "input_rgb_image_pyramid2":
            let average = try averages()
            if name == "input_rgb_image_pyramid" { return .rgbPyramid(average: average, padding: 10, outerPadding: 11) }
            return .rgbPyramid(average: average, padding: try reader.unsigned("the pyramid padding"), outerPadding: try reader.unsigned("the outer padding"))
        default:
            throw .unsupportedLayer(name: name, offset: start, supported: ["input_rgb_image_sized", "input_rgb_image_pyramid"])
        }
    }

    private static func readLayer(_ reader: inout DlibReader) throws(DlibFormatError) -> Layer {
        let start = reader.offset
        let name = try reader.string("a layer's name")
        func pairs(_ what: String) throws(DlibFormatError) -> (Int, Int) { (try reader.integer("\(what) y"), try reader.integer("\(what) x")) }
        func multipliers(_ count: Int) throws(DlibFormatError) { for _ in 0..<count { _ = try reader.float("a learning-rate or weight-decay multiplier") } }
        switch name {
        case "con_4", "con_5", "con_6":
            let params = try reader.tensor("the convolution's parameters").values
            let filters = try reader.integer("the number of filters")
            let kernel = try pairs("the kernel size")
            let stride = try pairs("the stride"), padding = try pairs("the padding")
            let weightShape = try reader.aliasShape("the filters"), biasShape = try reader.aliasShape("the biases")
            try multipliers(4)
            let useBias = name == "con_4" ? true : try reader.bool("use_bias")
            if name == "con_6", try reader.bool("use_relu") { throw .unsupportedLayer(name: "con_6 with a fused relu", offset: start, supported: supportedLayers) }
            let weightCount = weightShape.reduce(1, *)
            guard weightShape == [filters, weightShape[1], kernel.0, kernel.1], params.count >= weightCount,
                  !useBias || params.count == weightCount + filters, biasShape.reduce(1, *) == filters || !useBias else {
                throw .malformed(offset: start, expected: "a convolution's parameters", found: "\(params.count) values for filters \(weightShape)")
            }
            return .conv(filters: filters, kernel: (kernel.0, kernel.1), stride: (stride.0, stride.1), padding: (padding.0, padding.1),
                         weights: Array(params[0..<weightCount]), bias: useBias ? Array(params[weightCount...]) : nil)
        case "affine_", "affine_2":
            let params = try reader.tensor("the affine layer's parameters").values
            let gammaShape = try reader.aliasShape("gamma")
            _ = try reader.aliasShape("beta")
            _ = try reader.integer("the affine layer's mode")
            if name == "affine_2", try reader.bool("disabled") { return .identity }
            let channels = gammaShape.reduce(1, *)
            guard params.count == 2 * channels else { throw .malformed(offset: start, expected: "gamma and beta", found: "\(params.count) values") }
            return .affine(gamma: Array(params[0..<channels]), beta: Array(params[channels...]))
        case "bn_con2":
            // Batch norm saved by a training net: folded into gamma' = gamma / sqrt(var + eps),
            // beta' = beta - mean gamma', as dlib's affine_(bn_) does when it loads one.
            let params = try reader.tensor("the batch norm's parameters").values
            let gammaShape = try reader.aliasShape("gamma")
            _ = try reader.aliasShape("beta")
            for what in ["means", "invstds"] { _ = try reader.tensor(what) }
            let means = try reader.tensor("running means").values, variances = try reader.tensor("running variances").values
            _ = try reader.unsigned("num_updates")
            _ = try reader.unsigned("running_stats_window_size")
            try multipliers(4)
            let epsilon = try reader.float("epsilon")
            let channels = gammaShape.reduce(1, *)
            guard params.count == 2 * channels, means.count == channels, variances.count == channels else {
                throw .malformed(offset: start, expected: "a batch norm of \(channels) channels", found: "\(params.count), \(means.count), \(variances.count) values")
            }
            let gamma = (0..<channels).map { Float(Double(params[$0]) / (Double(variances[$0]) + epsilon).squareRoot()) }
            let beta = (0..<channels).map { params[channels + $0] - gamma[$0] * means[$0] }
            return .affine(gamma: gamma, beta: beta)
        case "relu_": return .relu
        case "relu_2":
            if try reader.bool("disabled") { return .identity }
            return .relu
        case "max_pool_2", "avg_pool_2":
            let size = try (reader.integer("the pool's rows"), reader.integer("the pool's columns"))
            let stride = try pairs("the pool's stride"), padding = try pairs("the pool's padding")
            if name == "max_pool_2" { return .maxPool(size: (size.0, size.1), stride: (stride.0, stride.1), padding: (padding.0, padding.1)) }
            return .avgPool(size: (size.0, size.1), stride: (stride.0, stride.1), padding: (padding.0, padding.1))
        case "add_prev_": return .addPrevious
        case "fc_2", "fc_3":
            let outputs = try reader.unsigned("the fc layer's outputs"), inputs = try reader.unsigned("the fc layer's inputs")
            let params = try reader.tensor("the fc layer's parameters").values
            _ = try reader.aliasShape("the weights")
            _ = try reader.aliasShape("the biases")
            // fc_bias_mode: 0 FC_HAS_BIAS (the biases follow the weights in the parameters), 1 FC_NO_BIAS.
            let biasMode = try reader.integer("the bias mode")
            try multipliers(4)
            var useBias = biasMode == 0
            if name == "fc_3" { useBias = try reader.bool("use_bias") && biasMode == 0 }
            guard params.count == inputs * outputs + (biasMode == 0 ? outputs : 0) else {
                throw .malformed(offset: start, expected: "\(inputs) x \(outputs) weights", found: "\(params.count) values")
            }
            return .fc(outputs: outputs, inputs: inputs, weights: Array(params[0..<(inputs * outputs)]),
                       bias: useBias ? Array(params[(inputs * outputs)..<(inputs * outputs + outputs)]) : nil)
        default:
            throw .unsupportedLayer(name: name, offset: start, supported: supportedLayers)
        }
    }
}
