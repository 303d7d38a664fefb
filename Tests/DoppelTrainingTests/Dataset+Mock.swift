// SPDX-License-Identifier: MIT
import DoppelImaging
import Foundation
@testable import DoppelTraining

extension Dataset {
    /// `identities` identities with `perIdentity` tiny gray images each; sample pixels encode
    /// (identity, index) so tests can tell them apart.
    static func make(identities: Int = 10, perIdentity: Int = 3) -> Dataset {
        var samples = [Sample]()
        for identity in 0..<identities {
            for index in 0..<perIdentity {
                let image = Image(width: 2, height: 1, layout: .gray, pixels: [UInt8(identity), UInt8(index)])
                samples.append(Sample(identity: identity, origin: "id\(identity)/\(index)", image: image))
            }
        }
        return Dataset(identities: (0..<identities).map { "id\($0)" }, samples: samples, source: "mock")
    }
}

/// A temporary folder removed when the value is released.
final class TemporaryFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("doppel-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    var path: String { url.path }

    func write(_ bytes: [UInt8], to relative: String) throws {
        let file = url.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: file)
    }
}
