// SPDX-License-Identifier: MIT
import DoppelImaging
import Foundation

/// A folder with one folder per identity at any depth: every folder that directly holds
/// images is an identity named by its path relative to the root (`s1`, `Greek/character01`).
/// Hidden files and folders and files that are not images (by their bytes) are skipped and
/// counted; images that fail to decode are skipped with their reason.
enum FolderDataset {
    static func load(root: String, limits: DecodingLimits) throws -> Dataset {
        let rootURL = URL(fileURLWithPath: root).standardizedFileURL
        var skipped = Dataset.Skipped()
        var files = [(identity: String, path: String)]()
        try collect(directory: rootURL, relative: "", into: &files, skipped: &skipped)
        files.sort { $0.path < $1.path }

        // Decoding is the slow part (thousands of PNGs): spread it over the cores.
        let results = files.map(\.path).concurrentMap { path -> Result<Image?, ImageDecodingError> in
            guard let data = FileManager.default.contents(atPath: rootURL.appendingPathComponent(path).path) else {
                return .failure(.empty)
            }
            let bytes = [UInt8](data)
            guard ImageFormat.sniff(bytes) != nil else { return .success(nil) }  // not an image
            do throws(ImageDecodingError) {
                return .success(try ImageDecoder.decode(bytes, limits: limits))
            } catch {
                return .failure(error)
            }
        }

        var identityIndex = [String: Int]()
        var identities = [String]()
        var samples = [Dataset.Sample]()
        for (i, file) in files.enumerated() {
            switch results[i] {
            case .success(nil):
                skipped.notImages += 1
            case .success(let image?):
                let index: Int
                if let known = identityIndex[file.identity] {
                    index = known
                } else {
                    index = identities.count
                    identityIndex[file.identity] = index
                    identities.append(file.identity)
                }
                samples.append(Dataset.Sample(identity: index, origin: file.path, image: image))
            case .failure(let error):
                skipped.undecodable += 1
                if skipped.examples.count < 5 { skipped.examples.append("\(file.path): \(error)") }
            }
        }
        guard !samples.isEmpty else {
            throw DatasetError.empty(source: root, detail: "no decodable images in identity folders (\(skipped.total) files skipped)")
        }
        return Dataset(identities: identities, samples: samples, source: root, skipped: skipped)
    }

    private static func collect(directory: URL, relative: String, into files: inout [(identity: String, path: String)],
                                skipped: inout Dataset.Skipped) throws {
        let entries = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        for name in entries {
            let path = relative.isEmpty ? name : "\(relative)/\(name)"
            if name.hasPrefix(".") {
                skipped.hidden += 1
                continue
            }
            var isDirectory: ObjCBool = false
            let url = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                try collect(directory: url, relative: path, into: &files, skipped: &skipped)
            } else if relative.isEmpty {
                // A file at the root belongs to no identity folder.
                skipped.notImages += 1
            } else {
                files.append((relative, path))
            }
        }
    }
}
