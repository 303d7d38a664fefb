// SPDX-License-Identifier: MIT
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What an index snapshot must agree with in the database: the embeddings under the model
/// (how many, and the sum of their sample ids) and the database's change counter for them,
/// all kept by triggers in the same transactions as the embeddings themselves.
public struct IndexStamp: Codable, Equatable, Sendable, CustomStringConvertible {
    public let rows: Int64
    public let sampleSum: Int64
    public let changes: Int64

    public init(rows: Int64, sampleSum: Int64, changes: Int64) {
        self.rows = rows
        self.sampleSum = sampleSum
        self.changes = changes
    }

    public var description: String { "\(rows) rows, sample sum \(sampleSum), change \(changes)" }
}

/// Why a snapshot was not used (it is then rebuilt from the database).
public enum SnapshotRejection: Error, Equatable, Sendable, CustomStringConvertible {
    case missing
    case unreadable(String)
    case stale(found: IndexStamp, expected: IndexStamp)
    case mismatch(String)
    case damaged(String)

    public var description: String {
        switch self {
        case .missing: "no snapshot"
        case .unreadable(let detail): "unreadable: \(detail)"
        case .stale(let found, let expected): "stale: it holds \(found), the database \(expected)"
        case .mismatch(let detail): "made for another index: \(detail)"
        case .damaged(let detail): "damaged: \(detail)"
        }
    }
}

/// Index snapshots: every gallery's index under one model in one file, so a replica with
/// millions of samples starts at disk speed instead of stepping SQLite through every
/// embedding. Layout (little-endian): "DOPPELIX", version (UInt32), header length (UInt64),
/// a JSON header (model, dimension, metric, precision, stamp, and per gallery its rows, slots
/// and whether its int8 ranges are learned), then per gallery its sections (identity names,
/// samples per identity, sample ids, identity of each row, norms, int8 ranges, the rows as
/// stored), then a 64-bit checksum of the sections. Written atomically (temporary file, then
/// rename); read back only when whole, checksummed, and stamped like the database.
extension GalleryIndex {
    struct SnapshotHeader: Codable {
        struct Gallery: Codable {
            let name: String
            let rows: Int
            let slots: Int
            let trained: Bool
        }
        let model: String
        let dimension: Int
        let metric: String
        let precision: String
        let stamp: IndexStamp
        let galleries: [Gallery]
    }

    static let snapshotMagic = Array("DOPPELIX".utf8)
    static let snapshotVersion: UInt32 = 1

    /// Writes `indexes` (gallery -> index, all of one model) to `path` atomically.
    public static func writeSnapshot(_ indexes: [String: GalleryIndex], model: String, stamp: IndexStamp, to path: String) throws {
        let ordered = indexes.sorted { $0.key < $1.key }
        // Hold every index's read lock while writing, so the file is one consistent state.
        for (_, index) in ordered { pthread_rwlock_rdlock(&index.lock) }
        defer { for (_, index) in ordered { pthread_rwlock_unlock(&index.lock) } }
        guard let first = ordered.first?.value else { throw SnapshotRejection.unreadable("no index to write") }
        let header = SnapshotHeader(
            model: model, dimension: first.dimension, metric: first.metric.rawValue, precision: first.precision.rawValue, stamp: stamp,
            galleries: ordered.map { SnapshotHeader.Gallery(name: $0.key, rows: $0.value.sampleOfRow.count, slots: $0.value.identityNames.count,
                                                            trained: !$0.value.storage.readsFloats || $0.value.precision == .float32) })
        let temporary = path + ".partial"
        // The snapshot holds every embedding: readable by the owner only, and made fresh (never
        // written through a symlink or a file someone else placed at the temporary name).
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SnapshotRejection.unreadable("cannot create \(temporary): \(String(cString: strerror(errno)))") }
        var writer = SnapshotWriter(fd: fd)
        do {
            let json = try JSONEncoder().encode(header)
            try writer.write(snapshotMagic, checksummed: false)
            try writer.write([snapshotVersion], checksummed: false)
            try writer.write([UInt64(json.count)], checksummed: false)
            try writer.write([UInt8](json), checksummed: false)
            for (_, index) in ordered {
                var names = [UInt8]()
                for name in index.identityNames {
                    let bytes = Array(name.utf8)
                    withUnsafeBytes(of: UInt32(bytes.count).littleEndian) { names += $0 }
                    names += bytes
                }
                try writer.write([UInt64(names.count)])
                try writer.write(names)
                try writer.write(index.samplesPerIdentity)
                try writer.write(index.sampleOfRow)
                try writer.write(index.identityOfRow)
                try writer.write(index.norms)
                try index.storage.writePayload(&writer)
            }
            try writer.write([writer.checksum], checksummed: false)
            guard fsync(fd) == 0 else { throw SnapshotRejection.unreadable("fsync: \(String(cString: strerror(errno)))") }
            close(fd)
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw SnapshotRejection.unreadable("rename to \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// The indexes in the snapshot at `path` if it is whole and matches the model, shape and
    /// stamp given; otherwise why not.
    public static func readSnapshot(path: String, model: String, stamp: IndexStamp, dimension: Int, metric: IndexMetric,
                                    precision: IndexPrecision, tracksCentroids: Bool = true,
                                    rerank: Rerank? = nil) -> Result<[String: GalleryIndex], SnapshotRejection> {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return .failure(errno == ENOENT ? .missing : .unreadable(String(cString: strerror(errno)))) }
        defer { close(fd) }
        var reader = SnapshotReader(fd: fd)
        do {
            guard try reader.read(UInt8.self, count: 8, checksummed: false) == snapshotMagic else { throw SnapshotRejection.damaged("not a Doppel index snapshot") }
            let version = try reader.read(UInt32.self, count: 1, checksummed: false)[0]
            guard version == snapshotVersion else { throw SnapshotRejection.mismatch("format version \(version), this build reads \(snapshotVersion)") }
            let length = try reader.read(UInt64.self, count: 1, checksummed: false)[0]
            guard length < 1 << 30 else { throw SnapshotRejection.damaged("header length \(length)") }
            let header = try JSONDecoder().decode(SnapshotHeader.self, from: Data(try reader.read(UInt8.self, count: Int(length), checksummed: false)))
            guard header.model == model, header.dimension == dimension, header.metric == metric.rawValue, header.precision == precision.rawValue else {
                throw SnapshotRejection.mismatch("model \(header.model), \(header.dimension)-D \(header.metric) \(header.precision); wanted \(model), \(dimension)-D \(metric.rawValue) \(precision.rawValue)")
            }
            guard header.stamp == stamp else { throw SnapshotRejection.stale(found: header.stamp, expected: stamp) }
            var indexes = [String: GalleryIndex]()
            for gallery in header.galleries {
                let index = GalleryIndex(dimension: dimension, metric: metric, precision: precision, rerank: rerank, tracksCentroids: tracksCentroids)
                let nameBytes = try reader.read(UInt64.self, count: 1)[0]
                let names = try reader.read(UInt8.self, count: Int(nameBytes))
                var position = 0
                var identityNames = [String]()
                identityNames.reserveCapacity(gallery.slots)
                while position < names.count {
                    guard position + 4 <= names.count else { throw SnapshotRejection.damaged("identity names") }
                    let count = names[position..<(position + 4)].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
                    guard position + 4 + count <= names.count else { throw SnapshotRejection.damaged("identity names") }
                    identityNames.append(String(decoding: names[(position + 4)..<(position + 4 + count)], as: UTF8.self))
                    position += 4 + count
                }
                guard identityNames.count == gallery.slots else { throw SnapshotRejection.damaged("\(identityNames.count) identity names for \(gallery.slots) slots") }
                let perIdentity = try reader.read(Int32.self, count: gallery.slots)
                let samples = try reader.read(Int64.self, count: gallery.rows)
                let owners = try reader.read(Int32.self, count: gallery.rows)
                let norms = try reader.read(Float.self, count: gallery.rows)
                let storage = try EncodedVectors(reading: &reader, dimension: dimension, precision: precision, rows: gallery.rows, trained: gallery.trained)
                guard owners.allSatisfy({ $0 >= 0 && Int($0) < gallery.slots }) else { throw SnapshotRejection.damaged("a row's identity is out of range") }
                index.restore(names: identityNames, samplesPerIdentity: perIdentity, sampleOfRow: samples, identityOfRow: owners, norms: norms, storage: storage)
                indexes[gallery.name] = index
            }
            let expected = reader.checksum
            guard try reader.read(UInt64.self, count: 1, checksummed: false)[0] == expected else { throw SnapshotRejection.damaged("checksum mismatch") }
            guard try reader.atEnd() else { throw SnapshotRejection.damaged("trailing bytes") }
            return .success(indexes)
        } catch let rejection as SnapshotRejection {
            return .failure(rejection)
        } catch {
            return .failure(.damaged("\(error)"))
        }
    }

    /// Takes over the arrays read from a snapshot and rebuilds the lookups. The index is new
    /// and not yet shared. The two halves of the work (the sample -> row map; the identity
    /// map and the centroid sums) touch different state and run on two cores: at 10M rows
    /// 1.6 s and 0.3 + 1.3 s, which one after the other were most of the snapshot's start.
    private func restore(names: [String], samplesPerIdentity: [Int32], sampleOfRow: [Int64], identityOfRow: [Int32], norms: [Float],
                         storage: EncodedVectors) {
        identityNames = names
        self.samplesPerIdentity = samplesPerIdentity
        self.sampleOfRow = sampleOfRow
        self.identityOfRow = identityOfRow
        changes += 1
        self.norms = norms
        self.storage = storage
        let rows = RowsOfSamples()
        DispatchQueue.concurrentPerform(iterations: 2) { part in
            if part == 0 {
                rows.map.reserveCapacity(sampleOfRow.count)
                for (row, sample) in sampleOfRow.enumerated() { rows.map[sample] = Int32(row) }
            } else {
                identityIndex.reserveCapacity(names.count)
                for (slot, name) in names.enumerated() {
                    if samplesPerIdentity[slot] > 0 { identityIndex[name] = Int32(slot) } else { freeSlots.append(Int32(slot)) }
                }
                sumRows(norms: false)
            }
        }
        rowOfSample = rows.map
    }

    /// The sample -> row map while another core restores the rest.
    private final class RowsOfSamples: @unchecked Sendable {
        var map: [Int64: Int32] = [:]
    }
}

/// A 64-bit checksum of 8-byte words (mixed by multiplication, so swapped or zeroed words
/// change it), computed at memory speed as sections are written or read.
struct SnapshotChecksum {
    private(set) var value: UInt64 = 0x6A09_E667_F3BC_C908

    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var i = 0
        var v = value
        while i + 8 <= bytes.count {
            v = (v ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x9E37_79B9_7F4A_7C15
            i += 8
        }
        while i < bytes.count {
            v = (v ^ UInt64(bytes[i])) &* 0x100_0000_01B3
            i += 1
        }
        value = v
    }
}

struct SnapshotWriter {
    let fd: Int32
    private var sum = SnapshotChecksum()
    var checksum: UInt64 { sum.value }

    init(fd: Int32) { self.fd = fd }

    mutating func write<T>(_ values: [T], checksummed: Bool = true) throws {
        try values.withUnsafeBytes { bytes in
            if checksummed { sum.add(bytes) }
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(fd, bytes.baseAddress! + offset, min(bytes.count - offset, 1 << 30))
                guard written > 0 else { throw SnapshotRejection.unreadable("write: \(String(cString: strerror(errno)))") }
                offset += written
            }
        }
    }
}

struct SnapshotReader {
    let fd: Int32
    private var sum = SnapshotChecksum()
    var checksum: UInt64 { sum.value }

    init(fd: Int32) { self.fd = fd }

    /// `count` values read straight into a new array (no intermediate copy: a 10 M-row
    /// snapshot's codes are 1.3 GB).
    mutating func read<T>(_ type: T.Type, count: Int, checksummed: Bool = true) throws -> [T] {
        guard count >= 0, count < 1 << 40 else { throw SnapshotRejection.damaged("section of \(count) values") }
        let fd = self.fd
        let values = try [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            Self.preferHugePages(raw)
            var offset = 0
            while offset < raw.count {
                let got = Glibc.read(fd, raw.baseAddress! + offset, min(raw.count - offset, 1 << 30))
                guard got > 0 else { throw SnapshotRejection.damaged(got == 0 ? "truncated" : String(cString: strerror(errno))) }
                offset += got
            }
            initialized = count
        }
        if checksummed { values.withUnsafeBytes { sum.add($0) } }
        return values
    }

    /// Asks for 2 MB pages over a large section before it is filled (this kernel gives them
    /// only when asked): a 1.3 GB section then takes 650 page faults instead of 330,000, and
    /// the scans over it miss the TLB less. Advice only: nothing changes if it is refused.
    static func preferHugePages(_ buffer: UnsafeMutableRawBufferPointer) {
        let huge = 2 << 20
        guard buffer.count >= 4 * huge, let base = buffer.baseAddress else { return }
        let start = (Int(bitPattern: base) + huge - 1) / huge * huge
        let end = (Int(bitPattern: base) + buffer.count) / huge * huge
        guard end > start, let aligned = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(aligned, end - start, MADV_HUGEPAGE)
    }

    func atEnd() throws -> Bool {
        var byte: UInt8 = 0
        return Glibc.read(fd, &byte, 1) == 0
    }
}
