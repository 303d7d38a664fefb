// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelNN

/// A grid of random samples, one row per identity: the quickest way to see whether a
/// dataset's folders hold what their names say.
public enum ContactSheet {
    /// Rows for up to `maxIdentities` identities (chosen at random when there are more), each
    /// with up to `columns` random samples scaled to fit `tile` x `tile`, on a gray background
    /// with a 2-pixel gutter. Returns the sheet and the identity name of each row.
    public static func make(_ dataset: Dataset, maxIdentities: Int = 20, columns: Int = 10, tile: Int = 48,
                            seed: UInt64 = 1) -> (image: Image, rows: [String]) {
        var generator = SeededGenerator(seed: seed)
        let groups = dataset.samplesByIdentity()
        var chosen = Array(groups.indices.filter { !groups[$0].isEmpty })
        if chosen.count > maxIdentities {
            chosen.shuffle(using: &generator)
            chosen = Array(chosen.prefix(maxIdentities)).sorted()
        }
        let gutter = 2
        let width = columns * (tile + gutter) + gutter
        let height = max(1, chosen.count) * (tile + gutter) + gutter
        var sheet = Image(width: width, height: height, layout: .rgb, filledWith: 96)
        for (row, identity) in chosen.enumerated() {
            var members = groups[identity]
            members.shuffle(using: &generator)
            for (column, sampleIndex) in members.prefix(columns).enumerated() {
                let source = dataset.samples[sampleIndex].image.converted(to: .rgb)
                let scale = min(Double(tile) / Double(source.width), Double(tile) / Double(source.height))
                let w = max(1, Int((Double(source.width) * scale).rounded()))
                let h = max(1, Int((Double(source.height) * scale).rounded()))
                let thumbnail = source.resized(width: w, height: h)
                let x0 = gutter + column * (tile + gutter) + (tile - w) / 2
                let y0 = gutter + row * (tile + gutter) + (tile - h) / 2
                for y in 0..<h {
                    for x in 0..<w {
                        for c in 0..<3 { sheet[x0 + x, y0 + y, c] = thumbnail[x, y, c] }
                    }
                }
            }
        }
        return (sheet, chosen.map { dataset.identities[$0] })
    }
}
