// SPDX-License-Identifier: MIT

/// A value bound to or read from a gallery statement, whichever SQL backend runs it.
public enum SQLValue: Equatable, Sendable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case bytes([UInt8])

    public var integer: Int64? { if case .integer(let v) = self { v } else { nil } }
    public var text: String? { if case .text(let v) = self { v } else { nil } }
    public var bytes: [UInt8]? { if case .bytes(let v) = self { v } else { nil } }
}

/// One row a gallery statement returned. The readers throw when a column the statement
/// always fills is missing or of another type: corrupt data or a wrong statement is an error,
/// never a row of zeros and empty strings.
public struct SQLRow: Sendable {
    public let values: [SQLValue]

    public init(_ values: [SQLValue]) { self.values = values }

    public func integer(_ column: Int) throws(GalleryError) -> Int64 {
        guard case .integer(let value) = values[column] else { throw missing(column, "an integer") }
        return value
    }

    public func count(_ column: Int) throws(GalleryError) -> Int { Int(try integer(column)) }

    public func text(_ column: Int) throws(GalleryError) -> String {
        guard case .text(let value) = values[column] else { throw missing(column, "text") }
        return value
    }

    public func real(_ column: Int) throws(GalleryError) -> Double {
        guard case .real(let value) = values[column] else { throw missing(column, "a number") }
        return value
    }

    public func bytes(_ column: Int) throws(GalleryError) -> [UInt8] {
        guard case .bytes(let value) = values[column] else { throw missing(column, "bytes") }
        return value
    }

    /// A column that may be NULL (a display name, an image not stored).
    public func optionalText(_ column: Int) throws(GalleryError) -> String? {
        if case .null = values[column] { return nil }
        return try text(column)
    }

    public func optionalBytes(_ column: Int) throws(GalleryError) -> [UInt8]? {
        if case .null = values[column] { return nil }
        return try bytes(column)
    }

    /// A vector stored as its float32 bytes.
    public func vector(_ column: Int) throws(GalleryError) -> [Float] {
        try bytes(column).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    private func missing(_ column: Int, _ expected: String) -> GalleryError {
        .unexpected("column \(column + 1) of a row is \(values[column]), not \(expected)")
    }
}

/// What SQLite and PostgreSQL spell differently, so that each gallery statement is written
/// once (with `?` placeholders) in `SQLGalleryStore`: the placeholders, the clock, JSON,
/// time as text, byte-order text comparison, a comma-joined list and a new sample's id. (The other difference,
/// how an insert reports its row id, is the connection's: `SQLGalleryStore.insert`.)
public struct SQLDialect: Sendable {
    /// `$1, $2, ...` instead of `?` (PostgreSQL).
    let numberedPlaceholders: Bool
    /// The current time, in the type the schema's time columns have.
    let now: String
    /// A text parameter as a value of the schema's JSON column.
    let jsonParameter: String
    /// Makes a JSON column text.
    let jsonText: @Sendable (String) -> String
    /// Makes a time column ISO 8601 text in UTC with milliseconds.
    let timeText: @Sendable (String) -> String
    /// Appended to a text comparison or ORDER BY so it follows byte order (which keyset
    /// pagination relies on, whatever the database's collation).
    let byteOrder: String
    /// An aggregate joining integer `expression`s with commas.
    let commaList: @Sendable (String) -> String
    /// The id of a new sample, never one given out before (SQLite would reuse the id of the
    /// newest sample once it is deleted: migration 0003 keeps the highest deleted one).
    let newSampleID: String

    public static let sqlite = SQLDialect(
        numberedPlaceholders: false, now: "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", jsonParameter: "?",
        jsonText: { $0 }, timeText: { $0 }, byteOrder: "", commaList: { "group_concat(\($0))" },
        newSampleID: "(SELECT max(value, (SELECT coalesce(max(id), 0) FROM samples)) + 1 FROM sample_id_high_water)")

    public static let postgres = SQLDialect(
        numberedPlaceholders: true, now: "now()", jsonParameter: "CAST(? AS json)",
        jsonText: { "\($0)::text" },
        timeText: { #"to_char(\#($0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"# },
        byteOrder: #" COLLATE "C""#, commaList: { "string_agg(\($0)::text, ',')" }, newSampleID: "DEFAULT")

    /// `sql` as this backend takes it: each `?` outside a quoted string becomes `$n` where
    /// placeholders are numbered.
    public func statement(_ sql: String) -> String {
        guard numberedPlaceholders else { return sql }
        var out = ""
        out.reserveCapacity(sql.utf8.count + 16)
        var number = 0, quoted = false
        for character in sql {
            if character == "'" { quoted.toggle() }
            if character == "?" && !quoted {
                number += 1
                out += "$\(number)"
            } else {
                out.append(character)
            }
        }
        return out
    }

    /// `count` placeholders for an `IN (...)` list.
    static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }
}
