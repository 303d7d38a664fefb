// SPDX-License-Identifier: MIT

/// Why a dataset could not be loaded or split.
public enum DatasetError: Error, Equatable, Sendable, CustomStringConvertible {
    case notFound(path: String, hint: String)
    case unknownBuiltin(name: String, known: [String])
    case empty(source: String, detail: String)
    case malformed(source: String, detail: String)
    case cannotSplit(detail: String)

    public var description: String {
        switch self {
        case .notFound(let path, let hint): "dataset not found at \(path)\(hint.isEmpty ? "" : "; \(hint)")"
        case .unknownBuiltin(let name, let known):
            "unknown built-in dataset '\(name)'; known: \(known.map { "builtin:\($0)" }.joined(separator: ", "))"
        case .empty(let source, let detail): "dataset \(source) holds no usable images: \(detail)"
        case .malformed(let source, let detail): "dataset \(source) is malformed: \(detail)"
        case .cannotSplit(let detail): "cannot split the dataset: \(detail)"
        }
    }
}
