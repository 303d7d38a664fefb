// SPDX-License-Identifier: MIT
import Testing
@testable import DoppelGallery

/// The pieces the shared gallery statements rely on, apart from any database.
@Suite struct SQLDialectTests {
    @Test func placeholdersAreNumberedOutsideQuotedText() {
        let sql = "SELECT '?', x FROM t WHERE a = ? AND b = 'it''s ?' AND c IN (?, ?)"
        #expect(SQLDialect.postgres.statement(sql) == "SELECT '?', x FROM t WHERE a = $1 AND b = 'it''s ?' AND c IN ($2, $3)")
        #expect(SQLDialect.sqlite.statement(sql) == sql)
        #expect(SQLDialect.placeholders(3) == "?, ?, ?")
    }

    @Test func aMissingOrMistypedColumnIsAnErrorNotAZero() throws {
        let row = SQLRow([.integer(7), .null, .text("x"), .bytes([0, 0, 128, 63]), .real(1.5)])
        #expect(try row.integer(0) == 7 && row.count(0) == 7)
        #expect(try row.optionalText(1) == nil && row.optionalBytes(1) == nil)
        #expect(try row.text(2) == "x" && row.optionalText(2) == "x")
        #expect(try row.vector(3) == [1] && row.real(4) == 1.5)
        #expect(throws: GalleryError.unexpected("column 2 of a row is null, not an integer")) { try row.integer(1) }
        #expect(throws: GalleryError.self) { try row.text(0) }
        #expect(throws: GalleryError.self) { try row.bytes(2) }
        #expect(throws: GalleryError.self) { try row.optionalText(0) }
    }
}
