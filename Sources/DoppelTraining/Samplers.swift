// SPDX-License-Identifier: MIT
import DoppelNN

/// Seeded draws of training and evaluation material from identity-grouped sample indices.
/// Every sampler takes its generator from the caller, so a run is a function of its seed.
public enum Samplers {
    /// `count` pairs, alternately same and different identity (so exactly half of each for an
    /// even count: the class imbalance of naive all-pairs sampling cannot happen).
    /// Identities with one sample only take part in different pairs.
    public static func balancedPairs(_ groups: [[Int]], count: Int, using generator: inout SeededGenerator)
        -> (left: [Int], right: [Int], labels: [Float])
    {
        let withPairs = groups.indices.filter { groups[$0].count >= 2 }
        let nonEmpty = groups.indices.filter { !groups[$0].isEmpty }
        precondition(!withPairs.isEmpty && nonEmpty.count >= 2, "pairs need an identity with two samples and two identities")
        var left = [Int](), right = [Int](), labels = [Float]()
        left.reserveCapacity(count)
        right.reserveCapacity(count)
        for i in 0..<count {
            if i % 2 == 0 {
                let members = groups[withPairs[Int(generator.next() % UInt64(withPairs.count))]]
                let a = Int(generator.next() % UInt64(members.count))
                var b = Int(generator.next() % UInt64(members.count - 1))
                if b >= a { b += 1 }
                left.append(members[a])
                right.append(members[b])
                labels.append(PairLabel.same)
            } else {
                let a = Int(generator.next() % UInt64(nonEmpty.count))
                var b = Int(generator.next() % UInt64(nonEmpty.count - 1))
                if b >= a { b += 1 }
                let first = groups[nonEmpty[a]], second = groups[nonEmpty[b]]
                left.append(first[Int(generator.next() % UInt64(first.count))])
                right.append(second[Int(generator.next() % UInt64(second.count))])
                labels.append(PairLabel.different)
            }
        }
        return (left, right, labels)
    }

    /// A triplet-mining batch: `identities` distinct identities with `perIdentity` samples each
    /// (drawn with replacement when an identity has fewer). Returns sample indices and the
    /// identity of each.
    ///
    /// With `families` (a family index per identity, e.g. its alphabet), the identities are
    /// taken family by family in a random order of families, so a batch holds few families and
    /// its negatives are the hard ones the within-family tests are about.
    public static func identityBatch(_ groups: [[Int]], identities: Int, perIdentity: Int, families: [Int]? = nil,
                                     using generator: inout SeededGenerator) -> (samples: [Int], identities: [Int])
    {
        let usable = groups.indices.filter { groups[$0].count >= 2 }
        precondition(usable.count >= 2, "triplets need two identities with two samples each")
        var chosen = usable
        chosen.shuffle(using: &generator)
        if let families {
            var rank = [Int: Int]()
            var order = Array(Set(usable.map { families[$0] })).sorted()
            order.shuffle(using: &generator)
            for (position, family) in order.enumerated() { rank[family] = position }
            // Stable: within a family the shuffled order stays.
            chosen = chosen.enumerated().sorted { (rank[families[$0.element]]!, $0.offset) < (rank[families[$1.element]]!, $1.offset) }.map(\.element)
        }
        var samples = [Int](), labels = [Int]()
        for identity in chosen.prefix(identities) {
            var members = groups[identity]
            members.shuffle(using: &generator)
            for k in 0..<perIdentity {
                samples.append(k < members.count ? members[k] : members[Int(generator.next() % UInt64(members.count))])
                labels.append(identity)
            }
        }
        return (samples, labels)
    }

    /// An N-way K-shot episode: N identities (from one group when `group` is given, as in the
    /// within-alphabet Omniglot protocol), K support samples each, and one query from one of
    /// them that is not among its supports.
    public struct Episode: Sendable, Equatable {
        public let supports: [[Int]]
        public let query: Int
        /// Index into `supports` of the query's identity.
        public let answer: Int
    }

    public static func episode(_ groups: [[Int]], ways: Int, shots: Int, candidates: [Int], using generator: inout SeededGenerator) -> Episode? {
        let eligible = candidates.filter { groups[$0].count >= shots + 1 }
        guard eligible.count >= ways else { return nil }
        var pool = eligible
        pool.shuffle(using: &generator)
        let chosen = Array(pool.prefix(ways))
        let answer = Int(generator.next() % UInt64(ways))
        var supports = [[Int]](), query = -1
        for (slot, identity) in chosen.enumerated() {
            var members = groups[identity]
            members.shuffle(using: &generator)
            supports.append(Array(members.prefix(shots)))
            if slot == answer { query = members[shots] }
        }
        return Episode(supports: supports, query: query, answer: answer)
    }
}
