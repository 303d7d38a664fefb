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

    /// Identities for which `isHeldOut` holds go to test (Omniglot: whole alphabets held out);
    /// the rest are split between train and validation by `validationFraction` with `seed`.
    public static func holdingOut(_ dataset: Dataset, validationFraction: Double, seed: UInt64,
                                  isHeldOut: (String) -> Bool) throws -> DatasetSplit {
        let heldOut = dataset.identities.indices.filter { isHeldOut(dataset.identities[$0]) }
        let rest = dataset.identities.indices.filter { !isHeldOut(dataset.identities[$0]) }
        guard !heldOut.isEmpty else { throw DatasetError.cannotSplit(detail: "no identity matches the held-out set") }
        let remaining = dataset.subset(identities: rest)
        let inner = try byIdentity(remaining, validationFraction: validationFraction, testFraction: 0, seed: seed)
        return DatasetSplit(train: inner.train, validation: inner.validation,
                            test: dataset.subset(identities: heldOut, source: "test"))
    }
}
