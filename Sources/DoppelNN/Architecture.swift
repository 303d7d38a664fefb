// SPDX-License-Identifier: MIT

/// Why an architecture string cannot become a network. Tokens are numbered from 1 as a user
/// counts them in the string.
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
/// Layers: `conv(K,k[,stride=S][,pad=P][,init=he|glorot])`, `dense(N[,init=..])`,
/// `maxpool(k[,stride=S])`, `avgpool(k[,stride=S])`, `gap`, `flatten`, `relu`,
/// `leakyrelu([slope])`, `sigmoid`, `tanh`, `dropout(p)`, `batchnorm`,
/// `lrn([size][,alpha=A][,beta=B][,k=K])`, `l2norm`.
public struct Architecture: Equatable, Sendable, CustomStringConvertible {
    public enum LayerSpec: Equatable, Sendable {
        case conv(filters: Int, kernel: Int, stride: Int, padding: Int, initializer: Initializer)
        case dense(units: Int, initializer: Initializer)
        case maxPool(size: Int, stride: Int)
        case avgPool(size: Int, stride: Int)
        case globalAvgPool
        case flatten
        case relu
        case leakyReLU(slope: Float)
        case sigmoid
        case tanh
        case dropout(probability: Float)
        case batchNorm
        case lrn(size: Int, alpha: Float, beta: Float, k: Float)
        case l2Normalize
    }

    public static let layerNames = ["conv", "dense", "maxpool", "avgpool", "gap", "flatten", "relu", "leakyrelu",
                                    "sigmoid", "tanh", "dropout", "batchnorm", "lrn", "l2norm"]

    public let layers: [LayerSpec]

    public init(layers: [LayerSpec]) { self.layers = layers }

    public init(parsing text: String) throws(ArchitectureError) {
        let tokens = Self.tokenize(text)
        guard !tokens.isEmpty else { throw .empty }
        var layers = [LayerSpec]()
        for (index, token) in tokens.enumerated() {
            layers.append(try Self.parseToken(token, number: index + 1))
        }
        self.layers = layers
    }

    /// The canonical string; parsing it gives back an equal architecture.
    public var description: String { layers.map(Self.describe).joined(separator: " ") }

    /// Splits on whitespace outside parentheses, so `conv(64, 3)` is one token.
    static func tokenize(_ text: String) -> [String] {
        var tokens = [String](), current = "", depth = 0
        for character in text {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if character.isWhitespace && depth <= 0 {
                if !current.isEmpty { tokens.append(current) }
                current = ""
            } else if !character.isWhitespace {
                current.append(character)
            }
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }

    private static func parseToken(_ token: String, number: Int) throws(ArchitectureError) -> LayerSpec {
        var name = token.lowercased(), positional = [String](), named = [String: String]()
        if let open = token.firstIndex(of: "(") {
            guard token.hasSuffix(")") else { throw .badArgument(token: number, text: token, detail: "missing ')'") }
            name = String(token[..<open]).lowercased()
            let inner = token[token.index(after: open)..<token.index(before: token.endIndex)]
            for part in inner.split(separator: ",", omittingEmptySubsequences: false) {
                let argument = String(part)  // tokenize has already removed whitespace
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
        }
        var arguments = Arguments(token: token, number: number, positional: positional, named: named)
        let spec: LayerSpec
        switch name {
        case "conv", "conv2d":
            let filters = try arguments.int(0, "filters", min: 1)
            let kernel = try arguments.int(1, "kernel", min: 1)
            spec = .conv(filters: filters, kernel: kernel, stride: try arguments.int(nil, "stride", min: 1, default: 1),
                         padding: try arguments.int(nil, "pad", min: 0, default: 0), initializer: try arguments.initializer())
        case "dense", "linear":
            spec = .dense(units: try arguments.int(0, "units", min: 1), initializer: try arguments.initializer())
        case "maxpool", "avgpool":
            let size = try arguments.int(0, "size", min: 1)
            let stride = try arguments.int(nil, "stride", min: 1, default: size)
            spec = name == "maxpool" ? .maxPool(size: size, stride: stride) : .avgPool(size: size, stride: stride)
        case "gap": spec = .globalAvgPool
        case "flatten": spec = .flatten
        case "relu": spec = .relu
        case "leakyrelu", "lrelu": spec = .leakyReLU(slope: try arguments.float(0, "slope", default: 0.01))
        case "sigmoid": spec = .sigmoid
        case "tanh": spec = .tanh
        case "dropout":
            let p = try arguments.float(0, "p", default: 0.5)
            guard p >= 0, p < 1 else { throw .badArgument(token: number, text: token, detail: "p must be in [0, 1)") }
            spec = .dropout(probability: p)
        case "batchnorm", "bn": spec = .batchNorm
        case "lrn":
            spec = .lrn(size: try arguments.int(0, "size", min: 1, default: 5), alpha: try arguments.float(nil, "alpha", default: 1e-4),
                        beta: try arguments.float(nil, "beta", default: 0.75), k: try arguments.float(nil, "k", default: 2))
        case "l2norm", "l2normalize": spec = .l2Normalize
        default:
            throw .unknownLayer(token: number, text: token, known: layerNames)
        }
        try arguments.checkAllUsed()
        return spec
    }

    private static func describe(_ spec: LayerSpec) -> String {
        func initSuffix(_ initializer: Initializer) -> String { initializer == .he ? "" : ",init=\(initializer.rawValue)" }
        switch spec {
        case .conv(let filters, let kernel, let stride, let padding, let initializer):
            return "conv(\(filters),\(kernel)\(stride != 1 ? ",stride=\(stride)" : "")\(padding != 0 ? ",pad=\(padding)" : "")\(initSuffix(initializer)))"
        case .dense(let units, let initializer): return "dense(\(units)\(initSuffix(initializer)))"
        case .maxPool(let size, let stride): return stride == size ? "maxpool(\(size))" : "maxpool(\(size),stride=\(stride))"
        case .avgPool(let size, let stride): return stride == size ? "avgpool(\(size))" : "avgpool(\(size),stride=\(stride))"
        case .globalAvgPool: return "gap"
        case .flatten: return "flatten"
        case .relu: return "relu"
        case .leakyReLU(let slope): return "leakyrelu(\(slope))"
        case .sigmoid: return "sigmoid"
        case .tanh: return "tanh"
        case .dropout(let p): return "dropout(\(p))"
        case .batchNorm: return "batchnorm"
        case .lrn(let size, let alpha, let beta, let k): return "lrn(\(size),alpha=\(alpha),beta=\(beta),k=\(k))"
        case .l2Normalize: return "l2norm"
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
