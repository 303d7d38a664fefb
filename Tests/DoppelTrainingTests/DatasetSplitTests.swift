// SPDX-License-Identifier: MIT
import Testing
@testable import DoppelTraining

@Suite struct DatasetSplitTests {
    @Test func identitiesAreDisjointAndAllUsed() throws {
        let dataset = Dataset.make(identities: 20, perIdentity: 3)
        let split = try DatasetSplit.byIdentity(dataset, validationFraction: 0.15, testFraction: 0.25, seed: 7)
        let train = Set(split.train.identities), validation = Set(split.validation.identities), test = Set(split.test.identities)
        #expect(train.isDisjoint(with: validation) && train.isDisjoint(with: test) && validation.isDisjoint(with: test))
        #expect(train.union(validation).union(test) == Set(dataset.identities))
        #expect((validation.count, test.count, train.count) == (3, 5, 12))
        #expect(split.train.samples.count + split.validation.samples.count + split.test.samples.count == 60)
        // Samples keep their images and point at the renumbered identity of the same name.
        for part in [split.train, split.validation, split.test] {
            for sample in part.samples {
                #expect(part.identities[sample.identity] == "id\(sample.image.pixels[0])")
            }
        }
    }

    @Test func sameSeedSameSplitOtherSeedOtherSplit() throws {
        let dataset = Dataset.make(identities: 30)
        let a = try DatasetSplit.byIdentity(dataset, validationFraction: 0.2, testFraction: 0.2, seed: 1)
        let b = try DatasetSplit.byIdentity(dataset, validationFraction: 0.2, testFraction: 0.2, seed: 1)
        let c = try DatasetSplit.byIdentity(dataset, validationFraction: 0.2, testFraction: 0.2, seed: 2)
        #expect(a.test.identities == b.test.identities && a.validation.identities == b.validation.identities)
        #expect(a.test.identities != c.test.identities)
    }

    @Test func holdingOutNamedIdentities() throws {
        let dataset = Dataset.make(identities: 12)
        let split = try DatasetSplit.naming(dataset, validation: nil, test: { $0.hasSuffix("1") }, validationFraction: 0.2, testFraction: 0.3, seed: 3)
        #expect(Set(split.test.identities) == ["id1", "id11"])
        #expect(!split.train.identities.contains("id1") && !split.validation.identities.contains("id11"))
        // The rest: 2 of 10 to validation by the fraction, none more to test.
        #expect(split.validation.identities.count == 2 && split.train.identities.count == 8)
    }

    @Test func validatingOnNamedIdentities() throws {
        let dataset = Dataset.make(identities: 10)
        let named: (String) -> Bool = { ["id2", "id5", "id7"].contains($0) }
        // Seven to train on, the three named to validate on: Fashion-MNIST's protocol with its classes chosen.
        let split = try DatasetSplit.naming(dataset, validation: named, test: nil, validationFraction: 0.3, testFraction: 0, seed: 3)
        #expect(split.validation.identities == ["id2", "id5", "id7"])
        #expect(split.test.identities.isEmpty && split.train.identities.count == 7)
        #expect(Set(split.train.identities).isDisjoint(with: split.validation.identities))
        #expect(split.validation.samples.count == 3 * 3, "every image of the named identities")
        // With a test fraction the rest also gives a seeded test set; both named parts at once too.
        let withTest = try DatasetSplit.naming(dataset, validation: named, test: nil, validationFraction: 0.3, testFraction: 0.2, seed: 3)
        #expect(withTest.validation.identities == ["id2", "id5", "id7"] && withTest.test.identities.count == 1 && withTest.train.identities.count == 6)
        let both = try DatasetSplit.naming(dataset, validation: named, test: { $0 == "id9" }, validationFraction: 0.3, testFraction: 0.2, seed: 3)
        #expect(both.test.identities == ["id9"] && both.train.identities.count == 6)
        // Names that match nothing, or one identity named for both parts, are refused.
        #expect(throws: DatasetError.self) { try DatasetSplit.naming(dataset, validation: { $0 == "id99" }, test: nil, validationFraction: 0.3, testFraction: 0, seed: 3) }
        #expect(throws: DatasetError.self) { try DatasetSplit.naming(dataset, validation: named, test: { $0 == "id5" }, validationFraction: 0.3, testFraction: 0, seed: 3) }
    }

    @Test func closedSetSplitsEveryIdentitysImages() throws {
        let dataset = Dataset.make(identities: 6, perIdentity: 10)
        let split = try DatasetSplit.byImage(dataset, validationFraction: 0.2, testFraction: 0.1, seed: 4)
        // Every identity in every part, with 2 validation, 1 test and 7 training images each.
        for (part, perIdentity) in [(split.train, 7), (split.validation, 2), (split.test, 1)] {
            #expect(part.identities == dataset.identities)
            #expect(part.samplesByIdentity().allSatisfy { $0.count == perIdentity })
            for sample in part.samples { #expect(part.identities[sample.identity] == "id\(sample.image.pixels[0])") }
        }
        let origins = [split.train, split.validation, split.test].map { Set($0.samples.map(\.origin)) }
        #expect(origins[0].isDisjoint(with: origins[1]) && origins[0].isDisjoint(with: origins[2]) && origins[1].isDisjoint(with: origins[2]))
        #expect(origins[0].union(origins[1]).union(origins[2]) == Set(dataset.samples.map(\.origin)))
        let again = try DatasetSplit.byImage(dataset, validationFraction: 0.2, testFraction: 0.1, seed: 4)
        let other = try DatasetSplit.byImage(dataset, validationFraction: 0.2, testFraction: 0.1, seed: 5)
        #expect(again.validation.samples.map(\.origin) == split.validation.samples.map(\.origin))
        #expect(other.validation.samples.map(\.origin) != split.validation.samples.map(\.origin))
        // The recipe's flag picks this split.
        var recipe = TrainingRecipe(architecture: "flatten dense(2)", input: .init(channels: 1, height: 1, width: 2), validationFraction: 0.2,
                                    testFraction: 0.1, seed: 4)
        recipe.closedSet = true
        #expect(try TrainingSplit.make(dataset, recipe: recipe).validation.samples.map(\.origin) == split.validation.samples.map(\.origin))
        // Too few images to hold one out and train on two.
        #expect(throws: DatasetError.self) { try DatasetSplit.byImage(.make(identities: 3, perIdentity: 2), validationFraction: 0.3, testFraction: 0, seed: 1) }
        #expect(throws: DatasetError.self) { try DatasetSplit.byImage(dataset, validationFraction: 0, testFraction: 0.1, seed: 1) }
    }

    @Test func rotatedIdentitiesAreNewIdentities() {
        let dataset = Dataset.make(identities: 3, perIdentity: 2)
        let grown = dataset.addingRotatedIdentities()
        #expect(grown.identities == dataset.identities + ["id0@90", "id1@90", "id2@90", "id0@180", "id1@180", "id2@180", "id0@270", "id1@270", "id2@270"])
        #expect(grown.samples.count == 4 * dataset.samples.count)
        let groups = grown.samplesByIdentity()
        #expect(groups.allSatisfy { $0.count == 2 })
        // id1@180's images are id1's turned twice.
        let turned = groups[grown.identities.firstIndex(of: "id1@180")!].map { grown.samples[$0].image }
        #expect(turned == groups[1].map { grown.samples[$0].image.rotated(quarterTurns: 2) })
        #expect(grown.samples[groups[4][0]].origin == "id1/0@90")
        let mirrored = dataset.addingMirroredIdentities()
        #expect(mirrored.identities == dataset.identities + ["id0@mirror", "id1@mirror", "id2@mirror"])
        #expect(mirrored.samples[6].image == dataset.samples[0].image.mirrored() && mirrored.samples[6].identity == 3)
    }

    @Test func impossibleSplitsAreRefused() {
        #expect(throws: DatasetError.self) { try DatasetSplit.byIdentity(.make(identities: 3), validationFraction: 0.4, testFraction: 0.4, seed: 1) }
        #expect(throws: DatasetError.self) { try DatasetSplit.byIdentity(.make(identities: 30), validationFraction: 0.6, testFraction: 0.5, seed: 1) }
        #expect(throws: DatasetError.self) { try DatasetSplit.naming(.make(identities: 5), validation: nil, test: { _ in false }, validationFraction: 0.2, testFraction: 0, seed: 1) }
    }

    @Test func summaryCounts() {
        var samples = Dataset.make(identities: 4, perIdentity: 5).samples
        samples.removeAll { $0.identity == 0 && $0.image.pixels[1] >= 2 }  // identity 0 keeps 2
        let dataset = Dataset(identities: ["a", "b", "c", "d"], samples: samples, source: "s")
        let summary = DatasetSummary(dataset)
        #expect(summary.identities == 4 && summary.images == 17)
        #expect(summary.minPerIdentity == 2 && summary.medianPerIdentity == 5 && summary.maxPerIdentity == 5)
        #expect(summary.shapes == [DatasetSummary.Shape(shape: "2x1 gray", count: 17)])
    }

    @Test func contactSheetHasOneRowPerIdentity() {
        let dataset = Dataset.make(identities: 30, perIdentity: 4)
        let (sheet, rows) = ContactSheet.make(dataset, maxIdentities: 5, columns: 3, tile: 10, seed: 1)
        #expect(rows.count == 5 && Set(rows).count == 5)
        #expect(sheet.width == 3 * 12 + 2 && sheet.height == 5 * 12 + 2)
        let again = ContactSheet.make(dataset, maxIdentities: 5, columns: 3, tile: 10, seed: 1)
        #expect(again.image == sheet && again.rows == rows)
    }
}
