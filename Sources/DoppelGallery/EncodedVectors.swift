// SPDX-License-Identifier: MIT
import CKernelLevels
import CScanKernels
import DoppelKernels

/// How the index stores each vector: what a search reads per row, and so its speed (a single
/// query is bound by memory) and the gallery's memory.
public enum IndexPrecision: String, Sendable, CaseIterable {
    /// 4 bytes a value: exact.
    case float32
    /// 2 bytes a value (IEEE binary16): relative error 2^-11 per value.
    case float16
    /// 1 byte a value: per-dimension scalar quantisation (FAISS's SQ8), each dimension's range
    /// learned from the gallery and cut into 255 steps.
    case int8

    /// Which bodies the row kernels run here: "portable" C, "avx2" or "avx512" (the highest
    /// level under the `DOPPEL_KERNELS` ceiling whose bodies passed their self-check).
    public static var kernels: String { KernelLevels.scans }

    public var bytesPerValue: Int {
        switch self {
        case .float32: 4
        case .float16: 2
        case .int8: 1
        }
    }
}

/// Per-dimension scalar quantiser: x_d ~ minimum_d + code_d step_d, code in 0...255.
struct ScalarQuantizer: Equatable {
    var minimum: [Float]
    var step: [Float]

    init(minimum: [Float], step: [Float]) {
        self.minimum = minimum
        self.step = step
    }

    /// The range of each dimension over `count` rows of `vectors`, widened by half a step so
    /// the extremes are not clipped by rounding.
    init(training vectors: UnsafeBufferPointer<Float>, count: Int, dimension: Int) {
        var low = [Float](repeating: .infinity, count: dimension), high = [Float](repeating: -.infinity, count: dimension)
        for row in 0..<count {
            for d in 0..<dimension {
                let value = vectors[row * dimension + d]
                low[d] = min(low[d], value)
                high[d] = max(high[d], value)
            }
        }
        minimum = [Float](repeating: -1, count: dimension)
        step = [Float](repeating: 2 / 255, count: dimension)
        for d in 0..<dimension where low[d] <= high[d] {
            let span = max(high[d] - low[d], 1e-6)
            step[d] = span / 254
            minimum[d] = low[d] - step[d] / 2
        }
    }

    @inline(__always) func encode(_ value: Float, _ d: Int) -> UInt8 {
        UInt8(min(max(((value - minimum[d]) / step[d]).rounded(), 0), 255))
    }

    @inline(__always) func decode(_ code: UInt8, _ d: Int) -> Float { minimum[d] + Float(code) * step[d] }
}

/// Rows of vectors in one of the index's precisions, with the kernels that read them: the
/// products of a query with a run of rows (SIMD; float16 and int8 in CScanKernels) and decoding a run of
/// rows to float32 (for the batched search's sgemm tiles). The int8 quantiser is trained on
/// the first `trainingRows` vectors (kept as float32 until then) or when `train()` is asked.
struct EncodedVectors {
    let dimension: Int
    let precision: IndexPrecision
    private(set) var count = 0
    /// float32 rows, and int8 rows until the quantiser is trained.
    private(set) var floats: [Float] = []
    private var halves: [UInt16] = []
    private var codes: [UInt8] = []
    private(set) var quantizer: ScalarQuantizer?
    /// An int8 store keeps float32 rows up to this many (32 MB at 128 dimensions), then learns
    /// its ranges from them; a loader calls `train()` once the whole gallery is in.
    static let trainingRows = 65536

    init(dimension: Int, precision: IndexPrecision) {
        self.dimension = dimension
        self.precision = precision
    }

    /// The rows of a snapshot (`GalleryIndex+Snapshot`): the int8 ranges when learned, then
    /// the rows as stored.
    init(reading reader: inout SnapshotReader, dimension: Int, precision: IndexPrecision, rows: Int, trained: Bool) throws {
        self.init(dimension: dimension, precision: precision)
        switch precision {
        case .float32: floats = try reader.read(Float.self, count: rows * dimension)
        case .float16: halves = try reader.read(UInt16.self, count: rows * dimension)
        case .int8:
            if trained {
                let minimum = try reader.read(Float.self, count: dimension), step = try reader.read(Float.self, count: dimension)
                guard step.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw SnapshotRejection.damaged("int8 ranges") }
                quantizer = ScalarQuantizer(minimum: minimum, step: step)
                codes = try reader.read(UInt8.self, count: rows * dimension)
            } else {
                floats = try reader.read(Float.self, count: rows * dimension)
            }
        }
        count = rows
    }

    func writePayload(_ writer: inout SnapshotWriter) throws {
        switch precision {
        case .float32: try writer.write(floats)
        case .float16: try writer.write(halves)
        case .int8:
            if let quantizer {
                try writer.write(quantizer.minimum)
                try writer.write(quantizer.step)
                try writer.write(codes)
            } else {
                try writer.write(floats)
            }
        }
    }

    /// Bytes per stored vector once trained.
    var bytesPerVector: Int { precision.bytesPerValue * dimension }

    /// Bytes the rows occupy now.
    var bytes: Int { floats.count * 4 + halves.count * 2 + codes.count }

    /// Whether rows are read as float32 (float32 precision, or int8 before training).
    var readsFloats: Bool { precision == .float32 || (precision == .int8 && quantizer == nil) }

    mutating func reserve(_ rows: Int) {
        switch precision {
        case .float32: floats.reserveCapacity((count + rows) * dimension)
        case .float16: halves.reserveCapacity((count + rows) * dimension)
        case .int8: if quantizer != nil { codes.reserveCapacity((count + rows) * dimension) }
        }
    }

    mutating func append(_ vector: UnsafeBufferPointer<Float>) {
        switch precision {
        case .float32: floats.append(contentsOf: vector)
        case .float16: for value in vector { halves.append(Self.half(value)) }
        case .int8:
            if let quantizer {
                for d in 0..<dimension { codes.append(quantizer.encode(vector[d], d)) }
            } else {
                floats.append(contentsOf: vector)
                if count + 1 >= Self.trainingRows { count += 1; train(); return }
            }
        }
        count += 1
    }

    /// Learns the int8 ranges from the rows held (as float32, or decoded) and re-encodes them.
    mutating func train() {
        guard precision == .int8, count > 0 else { return }
        var current = [Float](repeating: 0, count: count * dimension)
        current.withUnsafeMutableBufferPointer { decode(rows: 0..<count, into: $0.baseAddress!) }
        let trained = current.withUnsafeBufferPointer { ScalarQuantizer(training: $0, count: count, dimension: dimension) }
        codes = []
        codes.reserveCapacity(current.count)
        for row in 0..<count { for d in 0..<dimension { codes.append(trained.encode(current[row * dimension + d], d)) } }
        quantizer = trained
        floats = []
    }

    /// Row `last` moves to `row` (deletion without a rebuild), then the last row goes.
    mutating func moveLast(to row: Int) {
        let last = count - 1, d = dimension
        if row != last {
            if !floats.isEmpty {
                for k in 0..<d { floats[row * d + k] = floats[last * d + k] }
            } else if precision == .float16 {
                for k in 0..<d { halves[row * d + k] = halves[last * d + k] }
            } else {
                for k in 0..<d { codes[row * d + k] = codes[last * d + k] }
            }
        }
        if !floats.isEmpty { floats.removeLast(d) } else if precision == .float16 { halves.removeLast(d) } else { codes.removeLast(d) }
        count -= 1
    }

    /// Rows `range` as float32 into `out` (`range.count x dimension`). Plain loops over
    /// pointers, which the compiler vectorises (the batched search decodes every tile so).
    func decode(rows range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = dimension, values = range.count * d, first = range.lowerBound * d
        if readsFloats {
            floats.withUnsafeBufferPointer { out.update(from: $0.baseAddress! + first, count: values) }
        } else if precision == .float16 {
            halves.withUnsafeBufferPointer { h in
                let h = h.baseAddress! + first
                for i in 0..<values { out[i] = Self.float(h[i]) }
            }
        } else if let quantizer {
            codes.withUnsafeBufferPointer { c in
                quantizer.minimum.withUnsafeBufferPointer { minimum in
                    quantizer.step.withUnsafeBufferPointer { step in
                        let (c, minimum, step) = (c.baseAddress! + first, minimum.baseAddress!, step.baseAddress!)
                        for row in 0..<range.count {
                            let (codes, decoded) = (c + row * d, out + row * d)
                            for k in 0..<d { decoded[k] = minimum[k] + Float(codes[k]) * step[k] }
                        }
                    }
                }
            }
        }
    }

    func decode(row: Int) -> [Float] {
        var out = [Float](repeating: 0, count: dimension)
        out.withUnsafeMutableBufferPointer { decode(rows: row..<(row + 1), into: $0.baseAddress!) }
        return out
    }

    /// A query ready for the row kernels: for int8, q * step per dimension and the constant
    /// q . minimum, so a row's product is one pass over its codes.
    struct PreparedQuery {
        var values: [Float]
        var offset: Float
    }

    func prepare(_ query: UnsafeBufferPointer<Float>) -> PreparedQuery {
        guard precision == .int8, let quantizer else { return PreparedQuery(values: Array(query), offset: 0) }
        var offset: Float = 0
        let scaled = (0..<dimension).map { d in
            offset += query[d] * quantizer.minimum[d]
            return query[d] * quantizer.step[d]
        }
        return PreparedQuery(values: scaled, offset: offset)
    }

    /// Runs `visitor` with the reader of this storage's rows for `query`: one generic call
    /// per precision, which the compiler specialises, so a scan's per-row product is inlined
    /// (no closure call per row). Only while the storage is not changed.
    func visit<V: RowVisitor>(_ query: PreparedQuery, _ visitor: V) -> V.Result {
        let d = dimension
        return query.values.withUnsafeBufferPointer { q in
            let q = q.baseAddress!
            if readsFloats {
                return floats.withUnsafeBufferPointer { visitor.visit(FloatRows(query: q, rows: $0.baseAddress!, dimension: d)) }
            } else if precision == .float16 {
                return halves.withUnsafeBufferPointer { visitor.visit(HalfRows(query: q, rows: $0.baseAddress!, dimension: d)) }
            } else {
                return codes.withUnsafeBufferPointer { visitor.visit(CodeRows(query: q, rows: $0.baseAddress!, dimension: d, offset: query.offset)) }
            }
        }
    }

    // MARK: kernels

    /// a . b over `count` floats, sixteen lanes at a time.
    @inline(__always) static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var lanes = SIMD16<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while i + 16 <= count {
            lanes += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        var sum = lanes.sum()
        while i < count {
            sum += a[i] * b[i]
            i += 1
        }
        return sum
    }

    /// binary16 bits to float (the C header's conversion, inlined here too).
    @inline(__always) static func float(_ h: UInt16) -> Float { doppel_half_to_float(h) }

    /// float -> binary16, rounded to nearest; beyond the half range saturates, tiny values flush to 0.
    static func half(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF) - 127 + 15
        if exponent <= 0 { return sign }
        if exponent >= 31 { return sign | 0x7BFF }
        var mantissa = (bits >> 13) & 0x3FF
        var result = UInt32(exponent) << 10
        // Round to nearest even on the 13 dropped bits.
        let dropped = bits & 0x1FFF
        if dropped > 0x1000 || (dropped == 0x1000 && mantissa & 1 == 1) {
            mantissa += 1
            if mantissa == 0x400 { mantissa = 0; result += 1 << 10 }
        }
        result |= mantissa
        return result >= 0x7C00 ? sign | 0x7BFF : sign | UInt16(result)
    }
}

/// The products of a prepared query with a run of rows of some storage.
protocol RowReader: Sendable {
    /// out[i] = the product with row `rows.lowerBound + i`.
    func products(_ rows: Range<Int>, into out: UnsafeMutablePointer<Float>)
}

/// What runs over a storage's rows, generic over how they are read.
protocol RowVisitor {
    associatedtype Result
    func visit<Reader: RowReader>(_ reader: Reader) -> Result
}

/// Read-only pointers into rows no one changes during a search (the index's read lock).
struct FloatRows: RowReader, @unchecked Sendable {
    let query: UnsafePointer<Float>, rows: UnsafePointer<Float>, dimension: Int
    @inline(__always) func products(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        for row in range { out[row - range.lowerBound] = EncodedVectors.dot(query, rows + row * dimension, count: dimension) }
    }
}

/// float16 and int8 rows go to the C kernels (CScanKernels: F16C and byte-widening loads).
struct HalfRows: RowReader, @unchecked Sendable {
    let query: UnsafePointer<Float>, rows: UnsafePointer<UInt16>, dimension: Int
    func products(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        doppel_scan_f16(query, rows + range.lowerBound * dimension, dimension, range.count, out)
    }
}

struct CodeRows: RowReader, @unchecked Sendable {
    let query: UnsafePointer<Float>, rows: UnsafePointer<UInt8>, dimension: Int, offset: Float
    func products(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        doppel_scan_u8(query, rows + range.lowerBound * dimension, dimension, range.count, offset, out)
    }
}
