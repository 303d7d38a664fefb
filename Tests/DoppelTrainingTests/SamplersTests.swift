// SPDX-License-Identifier: MIT
import DoppelNN
import Testing
@testable import DoppelTraining

@Suite struct SamplersTests {
    static let groups: [[Int]] = [[0, 1, 2], [3, 4], [5], [6, 7, 8, 9]]
    static func identity(of sample: Int) -> Int { groups.firstIndex { $0.contains(sample) }! }

    @Test func pairsAreBalancedAndLabelledRight() {
        var generator = SeededGenerator(seed: 1)
        let pairs = Samplers.balancedPairs(Self.groups, count: 1000, using: &generator)
        #expect(pairs.labels.filter { $0 == PairLabel.same }.count == 500)
        for i in 0..<1000 {
            let same = Self.identity(of: pairs.left[i]) == Self.identity(of: pairs.right[i])
            #expect(same == (pairs.labels[i] == PairLabel.same))
            #expect(pairs.left[i] != pairs.right[i])
        }
        var again = SeededGenerator(seed: 1)
        #expect(Samplers.balancedPairs(Self.groups, count: 1000, using: &again).left == pairs.left)
    }

    @Test func identityBatchesHoldDistinctIdentities() {
        var generator = SeededGenerator(seed: 2)
        let batch = Samplers.identityBatch(Self.groups, identities: 3, perIdentity: 4, using: &generator)
        #expect(batch.samples.count == 12 && Set(batch.identities).count == 3)
        #expect(!batch.identities.contains(2))  // one sample only: no positives
        for (sample, identity) in zip(batch.samples, batch.identities) { #expect(Self.identity(of: sample) == identity) }
    }

    @Test func familyBatchesFillFromOneFamilyAtATime() {
        // 12 identities of 3 samples in 3 families of 4: a batch of 4 identities is one family,
        // a batch of 6 is one whole family and half of another; every family leads sometime.
        let groups = (0..<12).map { [3 * $0, 3 * $0 + 1, 3 * $0 + 2] }
        let families = (0..<12).map { $0 / 4 }
        var generator = SeededGenerator(seed: 4)
        var leaders = Set<Int>()
        for _ in 0..<30 {
            let four = Set(Samplers.identityBatch(groups, identities: 4, perIdentity: 2, families: families, using: &generator).identities)
            #expect(four.count == 4 && Set(four.map { families[$0] }).count == 1)
            leaders.insert(families[four.first!])
            let six = Samplers.identityBatch(groups, identities: 6, perIdentity: 2, families: families, using: &generator).identities
            let counts = Dictionary(grouping: Set(six), by: { families[$0] }).mapValues(\.count)
            #expect(counts.values.sorted() == [2, 4])
        }
        #expect(leaders == [0, 1, 2])
        #expect(Trainer.families(of: ["Greek/c1", "Greek/c2@90", "Latin/c1", "Greek/c3", "Greek/c1@90", "flat"]) == [0, 1, 2, 0, 1, 3])
    }

    @Test func episodesKeepTheQueryOutOfTheSupports() {
        var generator = SeededGenerator(seed: 3)
        for _ in 0..<100 {
            let episode = Samplers.episode(Self.groups, ways: 2, shots: 1, candidates: [0, 1, 3], using: &generator)!
            #expect(episode.supports.count == 2)
            #expect(!episode.supports.joined().contains(episode.query))
            #expect(Self.identity(of: episode.supports[episode.answer][0]) == Self.identity(of: episode.query))
        }
        #expect(Samplers.episode(Self.groups, ways: 4, shots: 1, candidates: [0, 1, 2, 3], using: &generator) == nil)
    }
}
