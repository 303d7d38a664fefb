// SPDX-License-Identifier: MIT

/// Why an architecture string cannot become a network. Tokens are numbered from 1 as a user
/// counts them in the string (a `res(...)` block is one token, then its inner tokens).
public enum ArchitectureError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case unknownLayer(token: Int, text: String, known: [String])
    case badArgument(token: Int, text: String, detail: String)
    case shapeMismatch(token: Int, text: String, detail: String)

    public var description: String {
        switch self {
        case .empty: "the architecture string has no layers"
        case .unknownLayer(let token, let text, let known):
            "'\(text)' at token \(token) is not a layer; known: \(known.joined(separator: ", "))"
        case .badArgument(let token, let text, let detail): "\(text) at token \(token): \(detail)"
        case .shapeMismatch(let token, let text, let detail): "\(text) at token \(token): \(detail)"
        }
    }
}

/// A network written one layer per token, e.g.
/// `conv(64,3,pad=1) relu maxpool(2) conv(64,3,pad=1) relu maxpool(2) flatten dense(128) l2norm`.
///
/// Each token applies to the value the previous one produced (the input at first). Beyond a
/// chain of layers the string writes any graph with one input and one output:
/// - `res(A B C)`: a residual block, the output of `A B C` added to its input (through a 1x1
///   convolution with the right stride when the shapes differ), as in ResNet.
/// - `@name` names the current value; `add(@a)`, `mul(@a)` and `concat(@a,@b)` combine the
///   current value with named ones (`mul` broadcasts a per-channel `C` vector over `CxHxW`,
///   as squeeze-and-excitation blocks do; `addpad(@a)` adds two values of different sizes,
///   each zero-padded to the larger channels, height and width, as dlib's residuals do);
///   `from(@a)` continues from a named value. `@input` is the network's input.
///
/// Layers: `conv(K,k[,stride=S][,pad=P][,groups=G][,init=he|glorot])`, `dense(N[,init=..])`,
/// `maxpool(k[,stride=S][,pad=P])`, `avgpool(k[,stride=S][,pad=P][,countpad=1])`, `gap`,
/// `gmp`, `flatten`, `relu`, `leakyrelu([slope])`, `prelu`, `sigmoid`, `tanh`, `silu`,
/// `hardswish`, `hardsigmoid([alpha][,beta])`, `gelu`, `clip(min,max)`, `relu6`, `abs`,
/// `dropout(p)`, `batchnorm([eps=E])`, `layernorm([eps=E])`, `lrn([size][,alpha=A][,beta=B][,k=K])`,
/// `pad(P)` or `pad(top,left,bottom,right)`, `transpose(a,b,c)`, `affine`, `l2norm`.
public struct Architecture: Equatable, Sendable, CustomStringConvertible {
    public enum LayerSpec: Equatable, Sendable {
        case conv(filters: Int, kernel: Int, stride: Int, padding: Int, groups: Int, initializer: Initializer)
        case dense(units: Int, initializer: Initializer)
        case maxPool(size: Int, stride: Int, padding: Int)
        /// `countPadding`: padded positions count in the divisor (PyTorch's default), or not (ONNX's).
        case avgPool(size: Int, stride: Int, padding: Int, countPadding: Bool)
        case globalAvgPool
        case globalMaxPool
        case flatten
        case activation(ActivationFunction)
        case prelu
        case dropout(probability: Float)
        case batchNorm(epsilon: Float)
        case layerNorm(epsilon: Float)
        case lrn(size: Int, alpha: Float, beta: Float, k: Float)
        /// Zero padding of the spatial axes.
        case pad(top: Int, left: Int, bottom: Int, right: Int)
        /// A permutation of the three per-sample axes (C, H, W) = (0, 1, 2).
        case transpose(permutation: [Int])
        /// y = weight[c] x + bias[c], per channel (constant scales and shifts of imported models).
        case affine
        case l2Normalize
        /// The current value combined with named ones.
        case add(String)
        /// The current value plus a named one, each zero-padded to the larger channel count,
        /// height and width (dlib's add_prev: a residual whose shortcut has fewer channels or
        /// one row more).
        case addPadded(String)
        case multiply(String)
        case concat([String])

        /// Whether the layer combines several values.
        var isMerge: Bool {
            switch self {
            case .add, .addPadded, .multiply, .concat: true
            default: false
            }
        }
    }

    /// One token of the string.
    public indirect enum Item: Equatable, Sendable {
        case layer(LayerSpec)
        /// `res(...)`: the block's output plus its input.
        case residual([Item])
        /// `@name`: names the current value.
        case name(String)
        /// `from(@name)`: continues from a named value.
        case from(String)
    }

    public static let layerNames = ["conv", "dense", "maxpool", "avgpool", "gap", "gmp", "flatten", "relu", "leakyrelu", "prelu",
                                    "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid", "gelu", "clip", "relu6", "abs", "dropout",
                                    "batchnorm", "layernorm", "lrn", "pad", "transpose", "affine", "l2norm", "add", "addpad", "mul", "concat",
                                    "res", "from", "@name"]

    public let items: [Item]

    public init(items: [Item]) { self.items = items }

    /// A plain chain of layers.
    public init(layers: [LayerSpec]) { items = layers.map { .layer($0) } }

    public init(parsing text: String) throws(ArchitectureError) {
        var parser = Parser(text: Array(text))
        let items = try parser.parseItems(closing: false)
        guard !items.isEmpty else { throw .empty }
        self.items = items
    }

    /// The canonical string; parsing it gives back an equal architecture.
    public var description: String { Self.describe(items) }

    /// Whether the network ends in `l2norm` (unit-length embeddings).
    public var endsInL2Normalize: Bool { items.last == .layer(.l2Normalize) }

    /// Whether any layer is a convolution (the network then splits batches over cores).
    var hasConvolution: Bool {
        func search(_ items: [Item]) -> Bool {
            items.contains { item in
                switch item {
                case .layer(.conv): true
                case .residual(let body): search(body)
                default: false
                }
            }
        }
        return search(items)
    }

    static func describe(_ items: [Item]) -> String {
        items.map { item in
            switch item {
            case .layer(let spec): describe(spec)
            case .residual(let body): "res(\(describe(body)))"
            case .name(let name): "@\(name)"
            case .from(let name): "from(@\(name))"
            }
        }.joined(separator: " ")
    }

    static func describe(_ spec: LayerSpec) -> String {
        func initSuffix(_ initializer: Initializer) -> String { initializer == .he ? "" : ",init=\(initializer.rawValue)" }
        switch spec {
        case .conv(let filters, let kernel, let stride, let padding, let groups, let initializer):
            var text = "conv(\(filters),\(kernel)"
            if stride != 1 { text += ",stride=\(stride)" }
            if padding != 0 { text += ",pad=\(padding)" }
            if groups != 1 { text += ",groups=\(groups)" }
            return text + initSuffix(initializer) + ")"
        case .dense(let units, let initializer): return "dense(\(units)\(initSuffix(initializer)))"
        case .maxPool(let size, let stride, let padding):
            return "maxpool(\(size)\(stride != size ? ",stride=\(stride)" : "")\(padding != 0 ? ",pad=\(padding)" : ""))"
        case .avgPool(let size, let stride, let padding, let countPadding):
            return "avgpool(\(size)\(stride != size ? ",stride=\(stride)" : "")\(padding != 0 ? ",pad=\(padding)" : "")\(countPadding && padding != 0 ? ",countpad=1" : ""))"
        case .globalAvgPool: return "gap"
        case .globalMaxPool: return "gmp"
        case .flatten: return "flatten"
        case .activation(let function): return function.token
        case .prelu: return "prelu"
        case .dropout(let p): return "dropout(\(p))"
        case .batchNorm(let epsilon): return epsilon == BatchNorm.defaultEpsilon ? "batchnorm" : "batchnorm(eps=\(epsilon))"
        case .layerNorm(let epsilon): return epsilon == LayerNorm.defaultEpsilon ? "layernorm" : "layernorm(eps=\(epsilon))"
        case .lrn(let size, let alpha, let beta, let k): return "lrn(\(size),alpha=\(alpha),beta=\(beta),k=\(k))"
        case .pad(let top, let left, let bottom, let right):
            return top == left && left == bottom && bottom == right ? "pad(\(top))" : "pad(\(top),\(left),\(bottom),\(right))"
        case .transpose(let permutation): return "transpose(\(permutation.map(String.init).joined(separator: ",")))"
        case .affine: return "affine"
        case .l2Normalize: return "l2norm"
        case .add(let name): return "add(@\(name))"
        case .addPadded(let name): return "addpad(@\(name))"
        case .multiply(let name): return "mul(@\(name))"
        case .concat(let names): return "concat(\(names.map { "@\($0)" }.joined(separator: ",")))"
        }
    }

    /// A recursive-descent reader of the token string: a `res(...)` body is a nested list of
    /// tokens; any other token's arguments are a comma-separated list without parentheses.
    private struct Parser {
        let text: [Character]
        var position = 0
        var tokenNumber = 0

        mutating func skipWhitespace() {
            while position < text.count, text[position].isWhitespace { position += 1 }
        }

        mutating func parseItems(closing: Bool) throws(ArchitectureError) -> [Item] {
            var items = [Item]()
            while true {
                skipWhitespace()
                guard position < text.count else {
                    if closing { throw .badArgument(token: tokenNumber, text: "res(", detail: "missing ')' closing the block") }
                    return items
                }
                if text[position] == ")" {
                    guard closing else { throw .badArgument(token: tokenNumber + 1, text: ")", detail: "')' without a block to close") }
                    position += 1
                    return items
                }
                items.append(try parseItem())
            }
        }

        mutating func parseItem() throws(ArchitectureError) -> Item {
            tokenNumber += 1
            let number = tokenNumber
            let start = position
            while position < text.count, !text[position].isWhitespace, text[position] != "(", text[position] != ")" { position += 1 }
            let name = String(text[start..<position])
            if name.hasPrefix("@") {
                let label = String(name.dropFirst())
                guard Self.isValidName(label) else { throw .badArgument(token: number, text: name, detail: "a name is letters, digits and _") }
                guard label != "input" else { throw .badArgument(token: number, text: name, detail: "@input names the network's input already") }
                return .name(label)
            }
            let lowered = name.lowercased()
            guard position < text.count, text[position] == "(" else {
                return .layer(try Self.parseLayer(name: lowered, token: name, positional: [], named: [:], number: number))
            }
            position += 1
            if lowered == "res" {
                let body = try parseItems(closing: true)
                guard !body.isEmpty else { throw .badArgument(token: number, text: "res()", detail: "the block has no layers") }
                return .residual(body)
            }
            // Arguments: up to the matching ')', whitespace removed.
            var inner = ""
            while position < text.count, text[position] != ")" {
                if text[position] == "(" { throw .badArgument(token: number, text: name + "(" + inner, detail: "unexpected '('") }
                if !text[position].isWhitespace { inner.append(text[position]) }
                position += 1
            }
            let token = name + "(" + inner + ")"
            guard position < text.count else { throw .badArgument(token: number, text: token.dropLast() + "", detail: "missing ')'") }
            position += 1
            var positional = [String](), named = [String: String]()
            for part in inner.split(separator: ",", omittingEmptySubsequences: false) {
                let argument = String(part)
                guard !argument.isEmpty else { throw .badArgument(token: number, text: token, detail: "empty argument") }
                if let equals = argument.firstIndex(of: "=") {
                    named[String(argument[..<equals]).lowercased()] = String(argument[argument.index(after: equals)...])
                } else {
                    guard named.isEmpty else {
                        throw .badArgument(token: number, text: token, detail: "positional argument '\(argument)' after a named one")
                    }
                    positional.append(argument)
                }
            }
            if lowered == "from" {
                guard positional.count == 1, named.isEmpty, let label = Self.reference(positional[0]) else {
                    throw .badArgument(token: number, text: token, detail: "from takes one @name")
                }
                return .from(label)
            }
            return .layer(try Self.parseLayer(name: lowered, token: token, positional: positional, named: named, number: number))
        }

        static func isValidName(_ name: String) -> Bool {
            !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        }

        /// `@name` -> `name`.
        static func reference(_ argument: String) -> String? {
            guard argument.hasPrefix("@") else { return nil }
            let name = String(argument.dropFirst())
            return isValidName(name) ? name : nil
        }

        static func parseLayer(name: String, token: String, positional: [String], named: [String: String],
                               number: Int) throws(ArchitectureError) -> LayerSpec {
            var arguments = Arguments(token: token, number: number, positional: positional, named: named)
            let spec: LayerSpec
            switch name {
            case "conv", "conv2d":
                let filters = try arguments.int(0, "filters", min: 1)
                let kernel = try arguments.int(1, "kernel", min: 1)
                let stride = try arguments.int(nil, "stride", min: 1, default: 1)
                let padding = try arguments.int(nil, "pad", min: 0, default: 0)
                let groups = try arguments.int(nil, "groups", min: 1, default: 1)
                guard filters % groups == 0 else {
                    throw .badArgument(token: number, text: token, detail: "filters \(filters) must be a multiple of groups \(groups)")
                }
                spec = .conv(filters: filters, kernel: kernel, stride: stride, padding: padding, groups: groups,
                             initializer: try arguments.initializer())
            case "dense", "linear":
                spec = .dense(units: try arguments.int(0, "units", min: 1), initializer: try arguments.initializer())
            case "maxpool":
                let size = try arguments.int(0, "size", min: 1)
                spec = .maxPool(size: size, stride: try arguments.int(nil, "stride", min: 1, default: size),
                                padding: try arguments.int(nil, "pad", min: 0, default: 0))
            case "avgpool":
                let size = try arguments.int(0, "size", min: 1)
                spec = .avgPool(size: size, stride: try arguments.int(nil, "stride", min: 1, default: size),
                                padding: try arguments.int(nil, "pad", min: 0, default: 0),
                                countPadding: try arguments.int(nil, "countpad", min: 0, default: 0) != 0)
            case "gap": spec = .globalAvgPool
            case "gmp": spec = .globalMaxPool
            case "flatten": spec = .flatten
            case "relu": spec = .activation(.relu)
            case "relu6": spec = .activation(.clip(min: 0, max: 6))
            case "leakyrelu", "lrelu": spec = .activation(.leakyReLU(slope: try arguments.float(0, "slope", default: 0.01)))
            case "prelu": spec = .prelu
            case "sigmoid": spec = .activation(.sigmoid)
            case "tanh": spec = .activation(.tanh)
            case "silu", "swish": spec = .activation(.silu)
            case "hardswish": spec = .activation(.hardSwish)
            case "hardsigmoid":
                spec = .activation(.hardSigmoid(alpha: try arguments.float(0, "alpha", default: 1.0 / 6),
                                                beta: try arguments.float(1, "beta", default: 0.5)))
            case "gelu": spec = .activation(.gelu)
            case "abs": spec = .activation(.abs)
            case "clip":
                let low = try arguments.float(0, "min", default: -.greatestFiniteMagnitude)
                let high = try arguments.float(1, "max", default: .greatestFiniteMagnitude)
                guard low <= high else { throw .badArgument(token: number, text: token, detail: "min must not exceed max") }
                spec = .activation(.clip(min: low, max: high))
            case "dropout":
                let p = try arguments.float(0, "p", default: 0.5)
                guard p >= 0, p < 1 else { throw .badArgument(token: number, text: token, detail: "p must be in [0, 1)") }
                spec = .dropout(probability: p)
            case "batchnorm", "bn": spec = .batchNorm(epsilon: try arguments.positiveFloat("eps", default: BatchNorm.defaultEpsilon))
            case "layernorm": spec = .layerNorm(epsilon: try arguments.positiveFloat("eps", default: LayerNorm.defaultEpsilon))
            case "lrn":
                spec = .lrn(size: try arguments.int(0, "size", min: 1, default: 5), alpha: try arguments.float(nil, "alpha", default: 1e-4),
                            beta: try arguments.float(nil, "beta", default: 0.75), k: try arguments.float(nil, "k", default: 2))
            case "pad":
                let top = try arguments.int(0, "top", min: 0)
                if positional.count == 1 {
                    spec = .pad(top: top, left: top, bottom: top, right: top)
                } else {
                    spec = .pad(top: top, left: try arguments.int(1, "left", min: 0), bottom: try arguments.int(2, "bottom", min: 0),
                                right: try arguments.int(3, "right", min: 0))
                }
            case "transpose":
                let permutation = [try arguments.int(0, "a", min: 0), try arguments.int(1, "b", min: 0), try arguments.int(2, "c", min: 0)]
                guard permutation.sorted() == [0, 1, 2] else {
                    throw .badArgument(token: number, text: token, detail: "a permutation of 0,1,2 (channels, height, width)")
                }
                spec = .transpose(permutation: permutation)
            case "affine": spec = .affine
            case "l2norm", "l2normalize": spec = .l2Normalize
            case "add", "addpad", "mul":
                guard let text = arguments.raw(0, "from"), let label = reference(text) else {
                    throw .badArgument(token: number, text: token, detail: "\(name) takes one @name")
                }
                spec = name == "add" ? .add(label) : name == "addpad" ? .addPadded(label) : .multiply(label)
            case "concat":
                var labels = [String]()
                while let text = arguments.raw(labels.count, "from") {
                    guard let label = reference(text) else { throw .badArgument(token: number, text: token, detail: "concat takes @names") }
                    labels.append(label)
                }
                guard !labels.isEmpty else { throw .badArgument(token: number, text: token, detail: "concat takes one or more @names") }
                spec = .concat(labels)
            default:
                throw .unknownLayer(token: number, text: token, known: layerNames)
            }
            try arguments.checkAllUsed()
            return spec
        }
    }

    /// Arguments of one token, consumed by the parser; leftovers are an error.
    private struct Arguments {
        let token: String, number: Int
        var positional: [String], named: [String: String]
        var usedPositional = 0

        mutating func raw(_ position: Int?, _ name: String) -> String? {
            if let value = named.removeValue(forKey: name) { return value }
            if let position, position < positional.count {
                usedPositional = max(usedPositional, position + 1)
                return positional[position]
            }
            return nil
        }

        mutating func int(_ position: Int?, _ name: String, min: Int, default fallback: Int? = nil) throws(ArchitectureError) -> Int {
            guard let text = raw(position, name) else {
                if let fallback { return fallback }
                throw .badArgument(token: number, text: token, detail: "missing \(name)")
            }
            guard let value = Int(text), value >= min, value <= 1 << 20 else {
                throw .badArgument(token: number, text: token, detail: "\(name) must be an integer >= \(min), not '\(text)'")
            }
            return value
        }

        mutating func float(_ position: Int?, _ name: String, default fallback: Float) throws(ArchitectureError) -> Float {
            guard let text = raw(position, name) else { return fallback }
            guard let value = Float(text), value.isFinite else {
                throw .badArgument(token: number, text: token, detail: "\(name) must be a number, not '\(text)'")
            }
            return value
        }

        mutating func positiveFloat(_ name: String, default fallback: Float) throws(ArchitectureError) -> Float {
            let value = try float(nil, name, default: fallback)
            guard value > 0 else { throw .badArgument(token: number, text: token, detail: "\(name) must be positive") }
            return value
        }

        mutating func initializer() throws(ArchitectureError) -> Initializer {
            guard let text = raw(nil, "init") else { return .he }
            guard let value = Initializer(rawValue: text.lowercased()) else {
                throw .badArgument(token: number, text: token, detail: "init must be he or glorot, not '\(text)'")
            }
            return value
        }

        func checkAllUsed() throws(ArchitectureError) {
            if let extra = named.keys.sorted().first {
                throw .badArgument(token: number, text: token, detail: "unknown argument '\(extra)'")
            }
            if usedPositional < positional.count {
                throw .badArgument(token: number, text: token, detail: "too many arguments")
            }
        }
    }
}
