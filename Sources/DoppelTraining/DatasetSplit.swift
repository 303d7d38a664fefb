// SPDX-License-Identifier: MIT
import DoppelNN

/// Train / validation / test partitions that share no identity: the product's real use is
/// enrolling people the model never saw, so evaluation must be on unseen identities too.
public struct DatasetSplit: Sendable {
    public let train: Dataset
    public let validation: Dataset
    public let test: Dataset

    /// Shuffles identities with `seed` and deals `validationFraction` and `testFraction` of
    /// them (rounded, at least one each when the fraction is positive) to validation and test.
    public static func byIdentity(_ dataset: Dataset, validationFraction: Double, testFraction: Double,
                                  seed: UInt64) throws -> DatasetSplit {
        guard validationFraction >= 0, testFraction >= 0, validationFraction + testFraction < 1 else {
            throw DatasetError.cannotSplit(detail: "fractions \(validationFraction) + \(testFraction) must be non-negative and sum below 1")
        }
        let count = dataset.identities.count
        func share(_ fraction: Double) -> Int { fraction > 0 ? max(1, Int((Double(count) * fraction).rounded())) : 0 }
        let validationCount = share(validationFraction), testCount = share(testFraction)
        guard count - validationCount - testCount >= 2 else {
            throw DatasetError.cannotSplit(detail: "\(count) identities leave fewer than 2 for training after \(validationCount) validation and \(testCount) test")
        }
        var generator = SeededGenerator(seed: seed)
        var order = Array(0..<count)
        order.shuffle(using: &generator)
        let test = Array(order[0..<testCount])
        let validation = Array(order[testCount..<(testCount + validationCount)])
        let train = Array(order[(testCount + validationCount)...])
        return DatasetSplit(train: dataset.subset(identities: train.sorted(), source: "train"),
                            validation: dataset.subset(identities: validation.sorted(), source: "validation"),
                            test: dataset.subset(identities: test.sorted(), source: "test"))
    }

    /// Closed set: every identity is in all three parts, with `validationFraction` and
    /// `testFraction` of its images (rounded, shuffled with `seed`) held out of training. For a
    /// model that will only ever see the identities it trained on (Fashion-MNIST's ten classes
    /// with its training images enrolled); open-set use needs `byIdentity`.
    public static func byImage(_ dataset: Dataset, validationFraction: Double, testFraction: Double,
                               seed: UInt64) throws -> DatasetSplit {
        guard validationFraction > 0, testFraction >= 0, validationFraction + testFraction < 1 else {
            throw DatasetError.cannotSplit(detail: "fractions \(validationFraction) + \(testFraction) must be positive (validation), non-negative (test) and sum below 1")
        }
        var generator = SeededGenerator(seed: seed)
        var part = [Int](repeating: 0, count: dataset.samples.count)  // 0 train, 1 validation, 2 test
        for var members in dataset.samplesByIdentity() where !members.isEmpty {
            members.shuffle(using: &generator)
            let validation = Int((Double(members.count) * validationFraction).rounded())
            let test = Int((Double(members.count) * testFraction).rounded())
            guard members.count - validation - test >= 2, validation >= 1 else {
                throw DatasetError.cannotSplit(detail: "\(dataset.identities[dataset.samples[members[0]].identity]) has \(members.count) images: too few to hold some out and train on two")
            }
            for (rank, sample) in members.enumerated() { part[sample] = rank < validation ? 1 : rank < validation + test ? 2 : 0 }
        }
        func taking(_ wanted: Int, _ name: String) -> Dataset {
            let samples = dataset.samples.indices.filter { part[$0] == wanted }.map { dataset.samples[$0] }
            return Dataset(identities: dataset.identities, samples: samples, source: dataset.source)
                .subset(identities: Array(dataset.identities.indices), source: name)
        }
        return DatasetSplit(train: taking(0, "train"), validation: taking(1, "validation"), test: taking(2, "test"))
    }

    /// Named parts: identities for which `isValidation` holds go to validation (Fashion-MNIST
    /// with the three classes to evaluate on named), those for which `isTest` holds to test
    /// (Omniglot with whole alphabets held out). A part not named is dealt from the rest by
    /// its fraction with `seed`, as `byIdentity` does.
    public static func naming(_ dataset: Dataset, validation isValidation: ((String) -> Bool)?, test isTest: ((String) -> Bool)?,
                              validationFraction: Double, testFraction: Double, seed: UInt64) throws -> DatasetSplit {
        func named(_ matches: ((String) -> Bool)?, _ what: String) throws -> [Int]? {
            guard let matches else { return nil }
            let found = dataset.identities.indices.filter { matches(dataset.identities[$0]) }
            guard !found.isEmpty else { throw DatasetError.cannotSplit(detail: "no identity matches the \(what) names") }
            return found
        }
        let validation = try named(isValidation, "validation"), test = try named(isTest, "held-out")
        if let validation, let test, let both = Set(validation).intersection(test).first {
            throw DatasetError.cannotSplit(detail: "\(dataset.identities[both]) is named both for validation and as held out")
        }
        let namedIdentities = Set((validation ?? []) + (test ?? []))
        let rest = dataset.subset(identities: dataset.identities.indices.filter { !namedIdentities.contains($0) })
        let dealt = try byIdentity(rest, validationFraction: validation == nil ? validationFraction : 0,
                                   testFraction: test == nil ? testFraction : 0, seed: seed)
        return DatasetSplit(train: dealt.train,
                            validation: validation.map { dataset.subset(identities: $0, source: "validation") } ?? dealt.validation,
                            test: test.map { dataset.subset(identities: $0, source: "test") } ?? dealt.test)
    }
}
