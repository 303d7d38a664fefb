// SPDX-License-Identifier: MIT
import DoppelNN

extension DlibNetwork {
    /// The layers as a Doppel network for inputs of `input`'s shape, weights loaded.
    ///
    /// Tags and skips come back from where they stand, for dlib's residual templates: walking
    /// from the input out, a tag names the current value; a wrapper right after a tag (two
    /// version-1 wrappers in a row) is a skip, which continues from the tag before it
    /// (`residual_down`'s `skip1<tag2<block<tag1<...>>>>`); add_prev adds the newest tag,
    /// zero-padded as dlib pads (`addpad`). Anything else is refused with what stood where.
    func doppelNetwork(input: TensorShape) throws(DlibFormatError) -> Network {
        var items = [Architecture.Item]()
        var parameters = [[Float]]()
        var tags = [String]()
        var layerIterator = layers.makeIterator()
        let order = Array(wrappers.reversed())
        var position = 0
        func square(_ pair: (Int, Int), _ what: String, _ layer: String) throws(DlibFormatError) -> Int {
            guard pair.0 == pair.1 else { throw .unsupportedStructure("\(layer) with \(what) \(pair.0) x \(pair.1): doppel's layers are square") }
            return pair.0
        }
        var flat = false
        while position < order.count {
            if order[position] == 1 {
                let tag = "t\(tags.count)"
                tags.append(tag)
                items.append(.name(tag))
                if position + 1 < order.count, order[position + 1] == 1 {
                    guard tags.count >= 2 else { throw .unsupportedStructure("a skip with no earlier tag to go back to") }
                    items.append(.from(tags[tags.count - 2]))
                    position += 1
                }
                position += 1
                continue
            }
            position += 1
            guard let layer = layerIterator.next() else { throw .unsupportedStructure("fewer layers than wrappers") }
            switch layer {
            case .conv(let filters, let kernel, let stride, let padding, let weights, let bias):
                let size = try square(kernel, "kernel", "a convolution")
                let step = try square(stride, "stride", "a convolution"), pad = try square(padding, "padding", "a convolution")
                items.append(.layer(.conv(filters: filters, kernel: size, stride: step, padding: pad, groups: 1, initializer: .he)))
                parameters += [weights, bias ?? [Float](repeating: 0, count: filters)]
            case .affine(let gamma, let beta):
                items.append(.layer(.affine))
                parameters += [gamma, beta]
            case .relu: items.append(.layer(.activation(.relu)))
            case .maxPool(let size, let stride, let padding):
                items.append(.layer(.maxPool(size: try square(size, "size", "a max pool"), stride: try square(stride, "stride", "a max pool"),
                                             padding: try square(padding, "padding", "a max pool"))))
            case .avgPool(let size, let stride, let padding):
                if size == (0, 0) {
                    items.append(.layer(.globalAvgPool))
                    flat = true
                } else {
                    items.append(.layer(.avgPool(size: try square(size, "size", "an average pool"), stride: try square(stride, "stride", "an average pool"),
                                                 padding: try square(padding, "padding", "an average pool"), countPadding: false)))
                }
            case .addPrevious:
                guard let tag = tags.last else { throw .unsupportedStructure("add_prev with no tag before it") }
                items.append(.layer(.addPadded(tag)))
            case .fc(let outputs, let inputs, let weights, let bias):
                if !flat { items.append(.layer(.flatten)) }
                flat = true
                items.append(.layer(.dense(units: outputs, initializer: .glorot)))
                // dlib keeps W as [inputs, outputs] (y = x W); Doppel's dense weight is [outputs, inputs].
                var transposed = [Float](repeating: 0, count: weights.count)
                for i in 0..<inputs { for o in 0..<outputs { transposed[o * inputs + i] = weights[i * outputs + o] } }
                parameters += [transposed, bias ?? [Float](repeating: 0, count: outputs)]
            case .identity: break
            }
        }
        guard layerIterator.next() == nil else { throw .unsupportedStructure("more layers than wrappers") }
        let network: Network
        do { network = try Network(architecture: Architecture(items: items), input: input, seed: 0) } catch {
            throw .unsupportedStructure("the layers do not fit a \(input) input: \(error)")
        }
        let specs = network.tensorSpecs
        guard specs.count == parameters.count else {
            throw .unsupportedStructure("\(parameters.count) parameter tensors for a network of \(specs.count)")
        }
        var tensors = [String: [Float]]()
        for (spec, values) in zip(specs, parameters) {
            guard spec.shape.reduce(1, *) == values.count else {
                throw .unsupportedStructure("\(spec.name) takes \(spec.shape) but the file has \(values.count) values")
            }
            tensors[spec.name] = values
        }
        do { try network.load(tensors: tensors) } catch { throw .unsupportedStructure("\(error)") }
        return network
    }
}
