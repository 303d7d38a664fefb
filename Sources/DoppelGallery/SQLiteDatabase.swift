// SPDX-License-Identifier: MIT
import CSQLite
import Foundation

/// A failed SQLite call: the result code, SQLite's message, and the statement.
public struct SQLiteError: Error, Equatable, Sendable, CustomStringConvertible {
    public let code: Int32
    public let message: String
    public let sql: String?

    /// SQLITE_CONSTRAINT and its extended codes (unique, foreign key, check).
    public var isConstraintViolation: Bool { code & 0xFF == SQLITE_CONSTRAINT }
    public var isUniqueViolation: Bool { code == Self.constraintUnique || code == Self.constraintPrimaryKey }
    // Extended result codes (sqlite3.h: SQLITE_CONSTRAINT | (8<<8), | (6<<8)); Swift does not
    // import those macros.
    static let constraintUnique: Int32 = SQLITE_CONSTRAINT | (8 << 8)
    static let constraintPrimaryKey: Int32 = SQLITE_CONSTRAINT | (6 << 8)
    /// The disk is full, the database is read-only, or the file cannot be written.
    public var isWriteUnavailable: Bool { [SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN].contains(code & 0xFF) }

    public var description: String { "SQLite error \(code): \(message)" + (sql.map { " in `\($0)`" } ?? "") }
}

/// The current row of a statement being stepped (see `SQLiteDatabase.forEachRow`).
public struct SQLiteRow {
    let statement: OpaquePointer
    public func integer(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }
    public func text(_ column: Int32) -> String { sqlite3_column_text(statement, column).map { String(cString: $0) } ?? "" }
    public func blob(_ column: Int32) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: sqlite3_column_blob(statement, column), count: Int(sqlite3_column_bytes(statement, column)))
    }
    public var columnCount: Int32 { sqlite3_column_count(statement) }

    /// A copy of one column's value.
    public func value(_ column: Int32) -> SQLValue {
        switch sqlite3_column_type(statement, column) {
        case SQLITE_INTEGER: .integer(integer(column))
        case SQLITE_FLOAT: .real(sqlite3_column_double(statement, column))
        case SQLITE_TEXT: .text(text(column))
        case SQLITE_BLOB: .bytes(Array(blob(column)))
        default: .null
        }
    }
}

/// A thin wrapper over one SQLite connection (chosen over GRDB: the gallery needs a dozen
/// statements, explicit transactions and typed errors, and the wrapper keeps the build small
/// and every C return code checked where it is called). WAL journal, foreign keys on, a busy
/// timeout. Not thread-safe: one connection per thread, or serialise calls.
public final class SQLiteDatabase {
    private var handle: OpaquePointer?
    public let path: String

    private let busyTimeoutMilliseconds: Int32

    public init(path: String, busyTimeoutMilliseconds: Int32 = 5000) throws(SQLiteError) {
        self.path = path
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        try open()
    }

    private func open() throws(SQLiteError) {
        // The gallery holds face images and embeddings: a new file is created readable by its
        // owner only (SQLite gives its WAL and shared-memory files the database's mode), and a
        // symlink at the path is refused rather than followed.
        if path != ":memory:" && !path.isEmpty && !path.hasPrefix("file:") {
            let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd >= 0 { Glibc.close(fd) }
        }
        let status = sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW, nil)
        guard status == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(handle)
            handle = nil
            throw SQLiteError(code: status, message: message, sql: nil)
        }
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
        try execute("PRAGMA journal_mode=WAL")
        try execute("PRAGMA foreign_keys=ON")
        // FULL: a transaction that returned is on disk, whatever happens next.
        try execute("PRAGMA synchronous=FULL")
    }

    /// Closes and opens the connection again. A connection SQLite opened read-only stays so
    /// (and, in WAL mode, so does its shared-memory index while any connection to the file is
    /// open in this process), so this is how writes resume once the file is writable again.
    /// Throws if the file cannot be opened at all; the connection is then closed
    /// (`isReadOnly` is true) and a later `reopen()` may succeed.
    public func reopen() throws(SQLiteError) {
        sqlite3_close_v2(handle)
        handle = nil
        try open()
    }

    deinit { sqlite3_close_v2(handle) }

    private func error(_ code: Int32, _ sql: String?) -> SQLiteError {
        SQLiteError(code: code, message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// Runs one or more statements without results.
    public func execute(_ sql: String) throws(SQLiteError) {
        var message: UnsafeMutablePointer<CChar>? = nil
        let status = sqlite3_exec(handle, sql, nil, nil, &message)
        guard status == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(message)
            throw SQLiteError(code: sqlite3_extended_errcode(handle), message: text, sql: sql)
        }
    }

    /// Prepares `sql` and binds `values` to its parameters; the caller finalizes.
    private func prepare(_ sql: String, _ values: [SQLValue]) throws(SQLiteError) -> OpaquePointer {
        var statement: OpaquePointer?
        var status = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard status == SQLITE_OK, let statement else { throw error(status, sql) }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            switch value {
            case .null: status = sqlite3_bind_null(statement, index)
            case .integer(let v): status = sqlite3_bind_int64(statement, index, v)
            case .real(let v): status = sqlite3_bind_double(statement, index, v)
            case .text(let v): status = sqlite3_bind_text(statement, index, v, -1, transient)
            case .bytes(let v): status = v.withUnsafeBytes { sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), transient) }
            }
            guard status == SQLITE_OK else {
                sqlite3_finalize(statement)
                throw error(status, sql)
            }
        }
        return statement
    }

    /// Steps through the rows of one statement without copying them: `row` reads columns of
    /// the current row (valid only during the call). For bulk loads such as the index at start-up.
    public func forEachRow(_ sql: String, _ values: [SQLValue] = [], _ row: (SQLiteRow) throws -> Void) throws {
        let statement = try prepare(sql, values)
        defer { sqlite3_finalize(statement) }
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { return }
            guard status == SQLITE_ROW else { throw error(sqlite3_extended_errcode(handle), sql) }
            try row(SQLiteRow(statement: statement))
        }
    }

    /// Runs one statement with bound values and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) -> [[SQLValue]] {
        var rows = [[SQLValue]]()
        do {
            try forEachRow(sql, values) { row in rows.append((0..<row.columnCount).map(row.value)) }
        } catch let error as SQLiteError {
            throw error
        } catch {
            preconditionFailure("the row reader throws nothing else")
        }
        return rows
    }

    /// SQLite opened the file read-only (it could not open it for writing), or it is closed.
    public var isReadOnly: Bool { handle == nil || sqlite3_db_readonly(handle, "main") == 1 }

    public var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    /// Rows changed by the last INSERT, UPDATE or DELETE.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// Runs `body` in one IMMEDIATE transaction: all of it commits, or none of it.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }
}
