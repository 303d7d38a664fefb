// SPDX-License-Identifier: MIT
import Foundation

/// Why a model file cannot be used; each case says what to do about it.
public enum ModelFileError: Error, Equatable, Sendable, CustomStringConvertible {
    case unreadable(path: String, detail: String)
    case container(SafeTensorsError)
    case notADoppelModel(missing: String)
    case newerFormat(found: Int, supported: Int)
    case badMetadata(key: String, detail: String)
    case architecture(ArchitectureError)
    case missingTensor(name: String, expectedShape: [Int])
    case shapeMismatch(name: String, expected: [Int], found: [Int])
    case unexpectedTensor(name: String)
    case modelIDMismatch(recorded: String, computed: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let detail): "cannot read model file \(path): \(detail)"
        case .container(let error): "model file is not valid safetensors: \(error)"
        case .notADoppelModel(let missing): "not a Doppel model: metadata has no '\(missing)'"
        case .newerFormat(let found, let supported):
            "model file format version \(found) is newer than this build reads (\(supported)); upgrade doppel"
        case .badMetadata(let key, let detail): "model metadata '\(key)' is invalid: \(detail)"
        case .architecture(let error): "model architecture is invalid: \(error)"
        case .missingTensor(let name, let shape): "model file lacks tensor '\(name)' of shape \(shape)"
        case .shapeMismatch(let name, let expected, let found):
            "tensor '\(name)' has shape \(found); the architecture needs \(expected)"
        case .unexpectedTensor(let name): "model file has tensor '\(name)', which the architecture does not use"
        case .modelIDMismatch(let recorded, let computed):
            "model id in the metadata (\(recorded)) does not match the weights (\(computed)); the file was altered"
        }
    }
}

/// Everything serving needs to know about a model besides its weights. Values that belong to
/// other modules (the image input spec, calibration, recipe, metrics) are JSON strings here.
public struct ModelMetadata: Sendable, Equatable {
    public static let formatVersion = 1

    public var architecture: Architecture
    public var inputShape: TensorShape
    public var objective: String
    public var metric: Metric
    /// JSON of DoppelImaging's `InputSpec`.
    public var inputSpec: String
    public var threshold: Float?
    /// How the threshold was chosen (e.g. "eer on 3 held-out identities, 6000 pairs").
    public var thresholdMethod: String?
    /// JSON: distance -> probability of the same identity.
    public var calibration: String?
    public var recipe: String?
    public var metrics: String?
    /// JSON: where an imported model came from (file, producer, opset).
    public var origin: String?
    /// Set when saving: the first 16 hex digits of SHA-256 over the architecture, input spec
    /// and tensors, i.e. over everything that decides the embeddings.
    public internal(set) var modelID: String = ""

    public init(architecture: Architecture, inputShape: TensorShape, objective: String, metric: Metric, inputSpec: String,
                threshold: Float? = nil, thresholdMethod: String? = nil, calibration: String? = nil,
                recipe: String? = nil, metrics: String? = nil) {
        self.architecture = architecture
        self.inputShape = inputShape
        self.objective = objective
        self.metric = metric
        self.inputSpec = inputSpec
        self.threshold = threshold
        self.thresholdMethod = thresholdMethod
        self.calibration = calibration
        self.recipe = recipe
        self.metrics = metrics
    }
}

/// A network with its optional Koch head and metadata, as saved in one safetensors file.
public struct ModelFile {
    public var network: Network
    public var head: SiameseHead?
    public var metadata: ModelMetadata
    /// Tensors of a stage that runs before the network (a face detector's weights, a landmark
    /// model's trees), named under `attachmentPrefix`; the input spec says what they are.
    public var attachments: [(name: String, tensor: SafeTensors.Tensor)]

    /// Names of attached tensors start with this.
    public static let attachmentPrefix = "face."

    public init(network: Network, head: SiameseHead?, metadata: ModelMetadata, attachments: [(name: String, tensor: SafeTensors.Tensor)] = []) {
        precondition(attachments.allSatisfy { $0.name.hasPrefix(Self.attachmentPrefix) }, "attachments are named face.*")
        self.network = network
        self.head = head
        self.metadata = metadata
        self.attachments = attachments
    }

    static let layoutNote = "PyTorch nn.Sequential state dict order and shapes: dense weight [out, in], conv weight [K, C, kh, kw]; NCHW activations; flatten in C, H, W order; head.* is nn.Linear(D, 1) on |e1 - e2|, or head.0.*, head.1.*, ... the layers of head_layers (e.g. 512,relu,1)"

    private var tensors: [(String, SafeTensors.Tensor)] {
        var list = network.namedTensors().map { ($0.name, SafeTensors.Tensor(shape: $0.shape, values: $0.values)) }
        if let head { list += Self.headTensors(head) }
        return list + attachments.map { ($0.name, $0.tensor) }
    }

    /// A head's tensors: Koch's one layer as `head.weight` [1, D] and `head.bias` [1], a deeper
    /// head's layers as `head.I.weight` [out, in] and `head.I.bias` [out].
    static func headTensors(_ head: SiameseHead) -> [(String, SafeTensors.Tensor)] {
        headShapes(head.layers, dimension: head.dimension).enumerated().flatMap { index, entry in
            let (w, b, _) = head.offsets(index)
            let out = head.layers[index].outputs
            return [(entry.weight.name, SafeTensors.Tensor(shape: entry.weight.shape, values: Array(head.parameters[w..<b]))),
                    (entry.bias.name, SafeTensors.Tensor(shape: entry.bias.shape, values: Array(head.parameters[b..<(b + out)])))]
        }
    }

    static func headShapes(_ layers: [SiameseHead.Layer], dimension: Int) -> [(weight: (name: String, shape: [Int]), bias: (name: String, shape: [Int]))] {
        var inputs = dimension
        return layers.enumerated().map { index, layer in
            defer { inputs = layer.outputs }
            let prefix = layers.count == 1 ? "head" : "head.\(index)"
            return ((prefix + ".weight", [layer.outputs, inputs]), (prefix + ".bias", [layer.outputs]))
        }
    }

    static func computeID(architecture: Architecture, inputSpec: String, tensors: [(String, SafeTensors.Tensor)],
                          headDistance: SiameseHead.Distance? = nil, headLayers: [SiameseHead.Layer]? = nil) -> String {
        var hash = SHA256()
        hash.update(Array(architecture.description.utf8))
        hash.update(Array(inputSpec.utf8))
        // The L1 head is the original; another distance changes the decisions, so the id.
        if let headDistance, headDistance != .l1 { hash.update(Array("head_distance=\(headDistance.rawValue)".utf8)) }
        // ReLUs between a deeper head's layers change its function without changing a tensor.
        if let headLayers, headLayers.count > 1 { hash.update(Array("head_layers=\(SiameseHead.describe(headLayers))".utf8)) }
        for (name, tensor) in tensors {
            hash.update(Array(name.utf8))
            tensor.values.withUnsafeBytes { hash.update($0) }
        }
        return hash.finalize().prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// The file's bytes; sets `metadata.modelID`.
    public mutating func serialized() -> [UInt8] {
        let tensors = self.tensors
        metadata.modelID = Self.computeID(architecture: network.architecture, inputSpec: metadata.inputSpec, tensors: tensors,
                                          headDistance: head?.distance, headLayers: head?.layers)
        var entries: [String: String] = [
            "format": "doppel-embedder",
            "format_version": String(ModelMetadata.formatVersion),
            "architecture": network.architecture.description,
            "input_shape": "\(network.inputShape.channels)x\(network.inputShape.height)x\(network.inputShape.width)",
            "input_spec": metadata.inputSpec,
            "objective": metadata.objective,
            "metric": metadata.metric.rawValue,
            "embedding_dim": String(network.outputShape.count),
            "model_id": metadata.modelID,
            "tensor_layout": Self.layoutNote,
        ]
        if let threshold = metadata.threshold { entries["threshold"] = String(threshold) }
        entries["threshold_method"] = metadata.thresholdMethod
        entries["calibration"] = metadata.calibration
        entries["recipe"] = metadata.recipe
        entries["metrics"] = metadata.metrics
        entries["origin"] = metadata.origin
        if let head, head.distance != .l1 { entries["head_distance"] = head.distance.rawValue }
        if let head, head.layers.count > 1 { entries["head_layers"] = head.layerDescription }
        return SafeTensors(metadata: entries, tensors: tensors).serialized()
    }

    /// Writes atomically (temporary file, then rename), so a crash never leaves half a model.
    public mutating func save(to path: String) throws {
        try Data(serialized()).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    public static func load(path: String) throws(ModelFileError) -> ModelFile {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .unreadable(path: path, detail: (error as NSError).localizedDescription)
        }
        return try load(bytes: [UInt8](data))
    }

    public static func load(bytes: [UInt8]) throws(ModelFileError) -> ModelFile {
        let file: SafeTensors
        do { file = try SafeTensors(bytes: bytes) } catch { throw .container(error) }
        let meta = file.metadata
        func required(_ key: String) throws(ModelFileError) -> String {
            guard let value = meta[key] else { throw .notADoppelModel(missing: key) }
            return value
        }
        guard try required("format") == "doppel-embedder" else { throw .badMetadata(key: "format", detail: "expected doppel-embedder") }
        guard let version = Int(try required("format_version")) else { throw .badMetadata(key: "format_version", detail: "not an integer") }
        guard version <= ModelMetadata.formatVersion else { throw .newerFormat(found: version, supported: ModelMetadata.formatVersion) }

        let architectureText = try required("architecture")
        let architecture: Architecture
        do throws(ArchitectureError) { architecture = try Architecture(parsing: architectureText) } catch { throw .architecture(error) }
        let shapeText = try required("input_shape")
        let dims = shapeText.split(separator: "x").compactMap { Int($0) }
        guard dims.count == 3, dims.allSatisfy({ $0 > 0 && $0 <= 4096 }) else {
            throw .badMetadata(key: "input_shape", detail: "'\(shapeText)' is not CxHxW")
        }
        let inputShape = TensorShape(channels: dims[0], height: dims[1], width: dims[2])
        guard let metric = Metric(rawValue: try required("metric")) else {
            throw .badMetadata(key: "metric", detail: "must be \(Metric.allCases.map(\.rawValue).joined(separator: " or "))")
        }
        let network: Network
        do { network = try Network(architecture: architecture, input: inputShape, seed: nil) } catch { throw .architecture(error) }
        guard Int(try required("embedding_dim")) == network.outputShape.count else {
            throw .badMetadata(key: "embedding_dim", detail: "says \(meta["embedding_dim"]!), the architecture gives \(network.outputShape.count)")
        }

        var expected = network.tensorSpecs
        let objective = try required("objective")
        let dimension = network.outputShape.count
        var headLayers = [SiameseHead.Layer(outputs: 1, relu: false)]
        if let text = meta["head_layers"] {
            do { headLayers = try SiameseHead.parseLayers(text) } catch { throw .badMetadata(key: "head_layers", detail: error.description) }
        }
        if objective == "koch" { expected += Self.headShapes(headLayers, dimension: dimension).flatMap { [$0.weight, $0.bias] } }
        var values = [String: [Float]]()
        for (name, shape) in expected {
            guard let tensor = file.tensors[name] else { throw .missingTensor(name: name, expectedShape: shape) }
            guard tensor.shape == shape else { throw .shapeMismatch(name: name, expected: shape, found: tensor.shape) }
            values[name] = tensor.values
        }
        let known = Set(expected.map(\.name))
        if let extra = file.names.first(where: { !known.contains($0) && !$0.hasPrefix(attachmentPrefix) }) { throw .unexpectedTensor(name: extra) }
        let attachments = file.names.filter { $0.hasPrefix(attachmentPrefix) }.map { ($0, file.tensors[$0]!) }
        network.assign(values)
        var head: SiameseHead? = nil
        if objective == "koch" {
            let distanceText = meta["head_distance"] ?? SiameseHead.Distance.l1.rawValue
            guard let distance = SiameseHead.Distance(rawValue: distanceText) else {
                throw .badMetadata(key: "head_distance", detail: "must be \(SiameseHead.Distance.allCases.map(\.rawValue).joined(separator: " or "))")
            }
            let loaded: SiameseHead
            do { loaded = try SiameseHead(dimension: dimension, layers: headLayers, seed: 0, distance: distance) } catch {
                throw .badMetadata(key: "head_layers", detail: error.description)
            }
            loaded.parameters = Self.headShapes(headLayers, dimension: dimension).flatMap { values[$0.weight.name]! + values[$0.bias.name]! }
            head = loaded
        }

        var metadata = ModelMetadata(architecture: architecture, inputShape: inputShape, objective: objective, metric: metric,
                                     inputSpec: try required("input_spec"), thresholdMethod: meta["threshold_method"],
                                     calibration: meta["calibration"], recipe: meta["recipe"], metrics: meta["metrics"])
        metadata.origin = meta["origin"]
        if let text = meta["threshold"] {
            guard let threshold = Float(text), threshold.isFinite else { throw .badMetadata(key: "threshold", detail: "'\(text)' is not a number") }
            metadata.threshold = threshold
        }
        let recorded = try required("model_id")
        var model = ModelFile(network: network, head: head, metadata: metadata, attachments: attachments)
        let computed = computeID(architecture: architecture, inputSpec: metadata.inputSpec, tensors: model.tensors, headDistance: head?.distance,
                                 headLayers: head?.layers)
        guard computed == recorded else { throw .modelIDMismatch(recorded: recorded, computed: computed) }
        model.metadata.modelID = computed
        return model
    }
}
