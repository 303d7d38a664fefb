// SPDX-License-Identifier: MIT
import CPostgres
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a PostgreSQL call failed: the server's SQLSTATE when it answered, libpq's message, and
/// the statement (never its parameters: they may be images or secrets).
public struct PostgresError: Error, Equatable, Sendable, CustomStringConvertible {
    public let sqlState: String?
    public let message: String
    public let statement: String?

    public init(sqlState: String?, message: String, statement: String?) {
        self.sqlState = sqlState
        self.message = message
        self.statement = statement
    }

    /// The connection is gone or the server is going away (class 08, admin shutdown, crash
    /// recovery, or no answer at all): reconnect and retry later.
    public var isConnectionFailure: Bool {
        guard let sqlState else { return true }
        return sqlState.hasPrefix("08") || ["57P01", "57P02", "57P03", "53300"].contains(sqlState)
    }

    public var isUniqueViolation: Bool { sqlState == "23505" }

    public var description: String {
        "PostgreSQL \(sqlState ?? "connection") error: \(message.trimmingCharacters(in: .whitespacesAndNewlines))"
            + (statement.map { " (in: \($0.split(separator: "\n").first.map(String.init) ?? $0))" } ?? "")
    }
}

/// A value sent to or read from PostgreSQL, in binary format.
public enum PostgresValue: Equatable, Sendable {
    case null
    case integer(Int64)
    case double(Double)
    case text(String)
    case bytes([UInt8])
    case bool(Bool)
    case integers([Int64])

    public var integer: Int64? { if case .integer(let v) = self { return v } else { return nil } }
    public var double: Double? { if case .double(let v) = self { return v } else if case .integer(let v) = self { return Double(v) } else { return nil } }
    public var text: String? { if case .text(let v) = self { return v } else { return nil } }
    public var bytes: [UInt8]? { if case .bytes(let v) = self { return v } else { return nil } }
    public var bool: Bool? { if case .bool(let v) = self { return v } else { return nil } }
    public var integers: [Int64]? { if case .integers(let v) = self { return v } else { return nil } }
}

/// One libpq connection, as psycopg 3's `pq` layer wraps it: every call's result status turned
/// into a typed error carrying the SQLSTATE, parameters always bound (PQexecParams, binary
/// format both ways), reconnection in one place. Not thread-safe: one connection per thread,
/// or serialise calls. The connection string is kept to reconnect and never logged.
public final class PostgresConnection {
    private var handle: OpaquePointer?
    private let keywords: [String]
    private let values: [String]

    /// `url` is a libpq connection string or URI (`postgres://user@host:5432/db?sslmode=require`);
    /// `password`, when given, overrides any in the URL (libpq also reads PGPASSWORD and ~/.pgpass).
    public init(url: String, password: String? = nil, applicationName: String = "doppel", connectTimeout: Int = 5) throws(PostgresError) {
        var keywords = ["dbname", "application_name", "connect_timeout"]
        var values = [url, applicationName, String(connectTimeout)]
        if let password {
            keywords.append("password")
            values.append(password)
        }
        self.keywords = keywords
        self.values = values
        try connect()
    }

    deinit { PQfinish(handle) }

    private func connect() throws(PostgresError) {
        PQfinish(handle)
        handle = nil
        let connection = Self.withCStrings(keywords) { k in Self.withCStrings(values) { v in PQconnectdbParams(k, v, 1) } }
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            let message = connection.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            PQfinish(connection)
            throw PostgresError(sqlState: nil, message: message, statement: nil)
        }
        handle = connection
        // Times in UTC, a statement never waits forever on a lock, and the server's notices
        // ("relation ... already exists, skipping" at every start) stay out of stderr: libpq
        // prints every notice there otherwise. Warnings and errors still come through.
        try execute("SET TIME ZONE 'UTC'; SET lock_timeout = '30s'; SET client_min_messages = warning")
    }

    /// Connects again (after the server went away).
    public func reconnect() throws(PostgresError) { try connect() }

    /// Whether libpq still considers the connection good (it finds out at the next call).
    public var isConnected: Bool { handle.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// The socket, for waiting on notifications.
    var socket: Int32 { handle.map { PQsocket($0) } ?? -1 }

    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
        let copies = strings.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        let pointers = copies.map { UnsafePointer($0) } + [nil]
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    private func error(_ result: OpaquePointer?, _ statement: String?) -> PostgresError {
        let state = result.flatMap { PQresultErrorField($0, Int32(UInt8(ascii: "C"))) }.map { String(cString: $0) }
        let message = result.flatMap { PQresultErrorMessage($0) }.map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
            ?? handle.map { String(cString: PQerrorMessage($0)) } ?? "no connection"
        return PostgresError(sqlState: state, message: message, statement: statement)
    }

    /// Runs statements without parameters or results (schema, SET, BEGIN ...).
    public func execute(_ sql: String) throws(PostgresError) {
        guard let handle else { throw PostgresError(sqlState: nil, message: "not connected", statement: sql) }
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        let status = result.map { PQresultStatus($0) } ?? PGRES_FATAL_ERROR
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else { throw error(result, sql) }
    }

    /// Runs one statement with bound parameters; rows of values decoded by column type.
    @discardableResult
    public func query(_ sql: String, _ parameters: [PostgresValue] = []) throws(PostgresError) -> [[PostgresValue]] {
        guard let handle else { throw PostgresError(sqlState: nil, message: "not connected", statement: sql) }
        var types = [Oid](), buffers = [[UInt8]?]()
        for parameter in parameters {
            let (type, bytes) = Self.encode(parameter)
            types.append(type)
            buffers.append(bytes)
        }
        let lengths = buffers.map { Int32($0?.count ?? 0) }
        let formats = [Int32](repeating: 1, count: parameters.count)
        // Each buffer is copied into memory that stays put for the call.
        var pointers = [UnsafeMutablePointer<CChar>?]()
        for buffer in buffers {
            guard let bytes = buffer else {
                pointers.append(nil)
                continue
            }
            let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: max(bytes.count, 1))
            if !bytes.isEmpty { bytes.withUnsafeBytes { UnsafeMutableRawPointer(pointer).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) } }
            pointers.append(pointer)
        }
        defer { pointers.forEach { $0?.deallocate() } }
        let constants: [UnsafePointer<CChar>?] = pointers.map { $0.map { UnsafePointer($0) } }
        let result = constants.withUnsafeBufferPointer { values in
            PQexecParams(handle, sql, Int32(parameters.count), types, values.baseAddress, lengths, formats, 1)
        }
        defer { PQclear(result) }
        guard let result else { throw error(nil, sql) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK: return []
        case PGRES_TUPLES_OK: break
        default: throw error(result, sql)
        }
        let (rows, columns) = (Int(PQntuples(result)), Int(PQnfields(result)))
        var out = [[PostgresValue]]()
        out.reserveCapacity(rows)
        for row in 0..<rows {
            var values = [PostgresValue]()
            values.reserveCapacity(columns)
            for column in 0..<columns {
                guard PQgetisnull(result, Int32(row), Int32(column)) == 0 else {
                    values.append(.null)
                    continue
                }
                let length = Int(PQgetlength(result, Int32(row), Int32(column)))
                let pointer = UnsafeRawPointer(PQgetvalue(result, Int32(row), Int32(column))!)
                values.append(Self.decode(type: PQftype(result, Int32(column)), UnsafeRawBufferPointer(start: pointer, count: length)))
            }
            out.append(values)
        }
        return out
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Sends a COPY statement; the connection, once the server is in the copy state wanted.
    private func startCopy(_ sql: String, expecting state: ExecStatusType) throws -> OpaquePointer {
        guard let handle else { throw PostgresError(sqlState: nil, message: "not connected", statement: sql) }
        let start = PQexec(handle, sql)
        defer { PQclear(start) }
        guard start.map({ PQresultStatus($0) }) == state else { throw error(start, sql) }
        return handle
    }

    /// `COPY (...) TO STDOUT (FORMAT binary)`: hands each chunk of the stream to `body`.
    public func copyOut(_ sql: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let handle = try startCopy(sql, expecting: PGRES_COPY_OUT)
        while true {
            var buffer: UnsafeMutablePointer<CChar>? = nil
            let length = PQgetCopyData(handle, &buffer, 0)
            if length > 0, let buffer {
                defer { PQfreemem(buffer) }
                try body(UnsafeRawBufferPointer(start: buffer, count: Int(length)))
            } else if length == -1 {
                break
            } else {
                throw PostgresError(sqlState: nil, message: String(cString: PQerrorMessage(handle)), statement: sql)
            }
        }
        let end = PQgetResult(handle)
        defer { PQclear(end) }
        guard let end, PQresultStatus(end) == PGRES_COMMAND_OK else { throw error(end, sql) }
        while let more = PQgetResult(handle) { PQclear(more) }
    }

    /// `COPY ... FROM STDIN (FORMAT binary)`: `body` writes the rows to the writer it is
    /// given, which sends them on in blocks of about 1 MB. If `body` throws, the COPY is
    /// aborted and nothing of it is kept.
    public func copyIn(_ sql: String, _ body: (PostgresCopyWriter) throws -> Void) throws {
        let handle = try startCopy(sql, expecting: PGRES_COPY_IN)
        let writer = PostgresCopyWriter(handle: handle, statement: sql)
        var failure: Error? = nil
        do {
            try body(writer)
            try writer.finish()
        } catch {
            failure = error
        }
        if let failure { _ = PQputCopyEnd(handle, "\(failure)") } else { _ = PQputCopyEnd(handle, nil) }
        let end = PQgetResult(handle)
        defer { PQclear(end) }
        while let extra = PQgetResult(handle) { PQclear(extra) }
        if let failure { throw failure }
        guard let end, PQresultStatus(end) == PGRES_COMMAND_OK else { throw error(end, sql) }
    }

    /// Waits up to `timeout` seconds for notifications on channels this connection LISTENs
    /// to; returns their payloads (empty on timeout). Throws when the connection is lost.
    public func notifications(timeout: Double) throws(PostgresError) -> [String] {
        guard let handle else { throw PostgresError(sqlState: nil, message: "not connected", statement: nil) }
        var found = [String]()
        func drain() {
            while let notify = PQnotifies(handle) {
                found.append(String(cString: notify.pointee.extra))
                PQfreemem(notify)
            }
        }
        guard PQconsumeInput(handle) == 1 else { throw PostgresError(sqlState: nil, message: String(cString: PQerrorMessage(handle)), statement: nil) }
        drain()
        guard found.isEmpty else { return found }
        var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, Int32(timeout * 1000))
        guard ready > 0 else { return [] }
        guard PQconsumeInput(handle) == 1 else { throw PostgresError(sqlState: nil, message: String(cString: PQerrorMessage(handle)), statement: nil) }
        drain()
        return found
    }

    // MARK: binary format

    /// Type OIDs (pg_type.h) and the values' binary send format (big-endian).
    static let int8Oid: Oid = 20, int4Oid: Oid = 23, int2Oid: Oid = 21, textOid: Oid = 25, varcharOid: Oid = 1043, nameOid: Oid = 19
    static let byteaOid: Oid = 17, boolOid: Oid = 16, float8Oid: Oid = 701, float4Oid: Oid = 700, int8ArrayOid: Oid = 1016
    static let timestamptzOid: Oid = 1184, timestampOid: Oid = 1114, numericOid: Oid = 1700

    static func encode(_ value: PostgresValue) -> (Oid, [UInt8]?) {
        switch value {
        case .null: return (0, nil)
        case .integer(let v): return (int8Oid, withUnsafeBytes(of: v.bigEndian) { Array($0) })
        case .double(let v): return (float8Oid, withUnsafeBytes(of: v.bitPattern.bigEndian) { Array($0) })
        case .text(let v): return (textOid, Array(v.utf8))
        case .bytes(let v): return (byteaOid, v)
        case .bool(let v): return (boolOid, [v ? 1 : 0])
        case .integers(let v):
            // One-dimensional int8 array: ndim, has-null, element type, length, lower bound, then
            // each element's length and bytes.
            var out = [UInt8]()
            func put32(_ x: Int32) { withUnsafeBytes(of: x.bigEndian) { out += $0 } }
            put32(1); put32(0); put32(Int32(bitPattern: int8Oid)); put32(Int32(v.count)); put32(1)
            for element in v {
                put32(8)
                withUnsafeBytes(of: element.bigEndian) { out += $0 }
            }
            return (int8ArrayOid, out)
        }
    }

    static func decode(type: Oid, _ bytes: UnsafeRawBufferPointer) -> PostgresValue {
        func integer(_ size: Int) -> Int64 {
            var value: Int64 = 0
            for i in 0..<size { value = value << 8 | Int64(bytes[i]) }
            // Sign-extend the narrower types.
            let shift = Int64(64 - 8 * size)
            return (value << shift) >> shift
        }
        switch type {
        case int8Oid: return .integer(integer(8))
        case int4Oid: return .integer(integer(4))
        case int2Oid: return .integer(integer(2))
        case boolOid: return .bool(bytes.first == 1)
        case float8Oid: return .double(Double(bitPattern: UInt64(bitPattern: integer(8))))
        case float4Oid: return .double(Double(Float(bitPattern: UInt32(truncatingIfNeeded: integer(4)))))
        case byteaOid: return .bytes(Array(bytes))
        case timestamptzOid, timestampOid:
            // Microseconds since 2000-01-01 UTC.
            return .double(Double(integer(8)) / 1e6 + 946_684_800)
        case int8ArrayOid:
            var values = [Int64]()
            let dimensions = Int(Int32(bitPattern: UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3])))
            guard dimensions == 1, bytes.count >= 20 else { return .integers([]) }
            var offset = 20
            while offset + 4 <= bytes.count {
                let length = Int(Int32(bitPattern: UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])))
                offset += 4
                guard length == 8, offset + 8 <= bytes.count else { break }
                var value: Int64 = 0
                for i in 0..<8 { value = value << 8 | Int64(bytes[offset + i]) }
                values.append(value)
                offset += 8
            }
            return .integers(values)
        default:
            // text, varchar, name, json and anything else with a textual send format.
            return .text(String(decoding: bytes, as: UTF8.self))
        }
    }
}

/// Rows in PostgreSQL's binary COPY format, sent as they fill a buffer: a header once, then
/// per row its field count and each field as a length and big-endian bytes.
public final class PostgresCopyWriter {
    private let handle: OpaquePointer
    private let statement: String
    /// The signature "PGCOPY\n\xFF\r\n\0", no flags, no header extension.
    private var bytes: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00] + [0, 0, 0, 0, 0, 0, 0, 0]
    private static let blockBytes = 1 << 20

    init(handle: OpaquePointer, statement: String) {
        self.handle = handle
        self.statement = statement
    }

    /// Starts a row of `fields` fields (sending what is buffered once it passes 1 MB).
    public func row(fields: Int) throws {
        if bytes.count >= Self.blockBytes { try send() }
        append(Int16(fields))
    }
    public func integer(_ value: Int64) { append(Int32(8)); append(value) }
    public func integer32(_ value: Int32) { append(Int32(4)); append(value) }
    public func text(_ value: String) { raw(Array(value.utf8)) }
    public func raw(_ value: [UInt8]) { append(Int32(value.count)); bytes += value }
    /// Float32 values as the embeddings column stores them: little-endian, back to back.
    public func floats(_ value: UnsafeBufferPointer<Float>) {
        append(Int32(value.count * 4))
        bytes += UnsafeRawBufferPointer(value)
    }

    func finish() throws {
        append(Int16(-1))
        try send()
    }

    private func send() throws {
        let sent = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
        }
        guard sent == 1 else { throw PostgresError(sqlState: nil, message: String(cString: PQerrorMessage(handle)), statement: statement) }
        bytes.removeAll(keepingCapacity: true)
    }

    private func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
}
