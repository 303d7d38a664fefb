// SPDX-License-Identifier: MIT
import DoppelNN

/// Why an ONNX file does not import; each case names the node and what to do.
public enum ONNXImportError: Error, Equatable, Sendable, CustomStringConvertible {
    case unreadable(path: String, detail: String)
    case malformed(ProtobufError)
    case unsupportedOpset(found: Int, supported: ClosedRange<Int>)
    case unsupportedOperator(node: String, opType: String, supported: [String])
    case unsupportedAttribute(node: String, opType: String, attribute: String, detail: String)
    case unsupportedInput(node: String, opType: String, detail: String)
    case unsupportedTensor(name: String, detail: String)
    case inputShape(detail: String)
    case graph(detail: String)
    case architecture(ArchitectureError)

    public var description: String {
        switch self {
        case .unreadable(let path, let detail): "cannot read \(path): \(detail)"
        case .malformed(let error): "not an ONNX model: \(error)"
        case .unsupportedOpset(let found, let supported):
            "the model uses ONNX opset \(found); doppel imports opsets \(supported.lowerBound) to \(supported.upperBound) (re-export with opset_version in that range)"
        case .unsupportedOperator(let node, let opType, let supported):
            "node '\(node)' is a \(opType), which doppel does not import; supported operators: \(supported.joined(separator: ", "))"
        case .unsupportedAttribute(let node, let opType, let attribute, let detail):
            "node '\(node)' (\(opType)): attribute \(attribute) \(detail)"
        case .unsupportedInput(let node, let opType, let detail): "node '\(node)' (\(opType)): \(detail)"
        case .unsupportedTensor(let name, let detail): "tensor '\(name)': \(detail)"
        case .inputShape(let detail): "input: \(detail)"
        case .graph(let detail): "graph: \(detail)"
        case .architecture(let error): "the imported graph is not a valid network: \(error)"
        }
    }
}
