// SPDX-License-Identifier: MIT
// DoppelTraining owns the path from labelled images to a trained, calibrated model:
// datasets and identity-disjoint splits, samplers, augmentation, the trainer, evaluation
// metrics and reports. It builds on DoppelNN (the network) and DoppelImaging (pixels) and
// knows nothing of galleries or HTTP.
import DoppelImaging

/// A labelled image collection: every sample belongs to one identity (a person, a
/// character, a clothing class). Held in memory, decoded once.
public struct Dataset: Sendable {
    public struct Sample: Sendable {
        /// Index into `identities`.
        public let identity: Int
        /// Where it came from: a file path relative to the dataset root, or `file#index`.
        public let origin: String
        public let image: Image
    }

    /// What loading passed over, so a user sees why an image count is lower than expected.
    public struct Skipped: Sendable, Equatable {
        public var hidden = 0
        public var notImages = 0
        /// Files that looked like images but did not decode, with the first few reasons.
        public var undecodable = 0
        public var examples: [String] = []

        public init() {}

        public var total: Int { hidden + notImages + undecodable }
    }

    /// Human-readable identity names, unique (a folder's path relative to the root, a class name).
    public let identities: [String]
    public let samples: [Sample]
    /// The source as the user named it (`builtin:fashion-mnist`, a folder path, ...).
    public let source: String
    public var skipped: Skipped

    public init(identities: [String], samples: [Sample], source: String, skipped: Skipped = Skipped()) {
        self.identities = identities
        self.samples = samples
        self.source = source
        self.skipped = skipped
    }

    /// Sample indices grouped by identity index (`result[identity]`).
    public func samplesByIdentity() -> [[Int]] {
        var groups = Array(repeating: [Int](), count: identities.count)
        for (index, sample) in samples.enumerated() { groups[sample.identity].append(index) }
        return groups
    }

    /// Only the named identity indices, renumbered in the given order; empty identities are kept
    /// out so every identity of the result has at least one sample.
    public func subset(identities kept: [Int], source suffix: String? = nil) -> Dataset {
        var newIndex = [Int: Int]()
        let groups = samplesByIdentity()
        var names = [String]()
        for old in kept where !groups[old].isEmpty && newIndex[old] == nil {
            newIndex[old] = names.count
            names.append(identities[old])
        }
        let kept = samples.compactMap { sample -> Sample? in
            guard let identity = newIndex[sample.identity] else { return nil }
            return Sample(identity: identity, origin: sample.origin, image: sample.image)
        }
        return Dataset(identities: names, samples: kept, source: suffix.map { "\(source) (\($0))" } ?? source)
    }

    /// Only the samples for which `include` holds (identities keep their numbering; ones left
    /// empty are dropped).
    public func filteringSamples(_ include: (Sample) -> Bool) -> Dataset {
        let filtered = Dataset(identities: identities, samples: samples.filter(include), source: source)
        return filtered.subset(identities: Array(identities.indices))
    }

    /// The dataset plus, for every identity and each of `quarterTurns` (1-3), a new identity
    /// made of its images turned that many quarter turns clockwise, named `name@90` etc.
    /// Vinyals et al. grew Omniglot's classes this way: a turned character is another
    /// character, so the network sees four times the identities it would otherwise.
    public func addingRotatedIdentities(quarterTurns: [Int] = [1, 2, 3]) -> Dataset {
        adding(quarterTurns.map { turns in ("\(turns * 90)", { $0.rotated(quarterTurns: turns) }) })
    }

    /// The dataset plus, for every identity, a new identity of its images mirrored, named
    /// `name@mirror` (a mirrored character is another character too).
    public func addingMirroredIdentities() -> Dataset {
        adding([("mirror", { $0.mirrored() })])
    }

    /// Adds, per transform, a copy of every identity with its images transformed, the name
    /// suffixed `@tag`.
    private func adding(_ transforms: [(tag: String, transform: (Image) -> Image)]) -> Dataset {
        var names = identities
        var all = samples
        for (tag, transform) in transforms {
            let offset = names.count
            names += identities.map { "\($0)@\(tag)" }
            all += samples.map { Sample(identity: offset + $0.identity, origin: "\($0.origin)@\(tag)", image: transform($0.image)) }
        }
        return Dataset(identities: names, samples: all, source: source, skipped: skipped)
    }
}
