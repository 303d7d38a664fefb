// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelGallery
import DoppelNN
import Foundation

/// `doppel bench search`: k-NN latency over N d-dimensional vectors, one query at a time, in
/// batches, and from concurrent callers, at a chosen precision, beside the memory floor of
/// the same run (the bytes one query must read over the measured read bandwidth, one core and
/// all: the single-query scan splits the rows over the cores). Anything approximate (float16,
/// int8 without re-ranking) reports its recall@k against the exact float32 answer.
struct SearchBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search", abstract: "Gallery search latency against the memory floor.",
        discussion: """
            Examples:
              doppel bench search --n 1000000 --precision int8 --json
              doppel bench search --n 1000000 --precision int8 --rerank 4
              doppel bench search --vectors base.npy --queries queries.npy --precision int8   # the same vectors as another library
            """)

    @Option(help: "Stored vectors (generated), up to 10,000,000.") var n: Int = 100_000
    @Option(help: "Dimension (generated vectors).") var dim: Int = 128
    @Option(help: "Results per query.") var k: Int = 10
    @Option(help: "Samples per identity.") var perIdentity: Int = 10
    @Option(help: "Queries per batch.") var batch: Int = 100
    @Option(help: "Seconds per measurement.") var seconds: Double = 2
    @Option(help: "Stored precision: float32 (exact), float16 or int8.") var precision: String = "float32"
    @Option(help: "Re-rank the best R x k identities by their exact float32 distance (0: no re-ranking).") var rerank: Int = 0
    @Option(help: "Threads searching one query at a time, for the concurrent figure (0 skips it).") var concurrency: Int = 0
    @Option(help: "Generated data: gaussian, or clustered (n / 100 centres with their neighbours).") var data: String = "gaussian"
    @Option(help: "Stored vectors from a float32 .npy file (N x d) instead of generated ones.") var vectors: String?
    @Option(help: "Queries from a float32 .npy file (Q x d); default: noisy copies of stored vectors.") var queries: String?
    @Option(help: "Queries for the recall measurement.") var recallQueries: Int = 100
    @Flag(help: "Print JSON.") var json = false

    struct Report: Codable {
        let n: Int, dim: Int, k: Int, identities: Int
        let precision: String, rerank: Int
        /// The compact row kernels' bodies on this processor (avx2 or portable).
        let scanKernels: String
        let bytesPerVector: Int, indexMegabytes: Double, residentMegabytes: Double
        let buildSeconds: Double
        let singleQueryMilliseconds: Double
        let batchedMillisecondsPerQuery: Double
        let batch: Int
        /// 1000 / batched ms per query: what one process can answer with every query batched.
        let batchedQueriesPerSecond: Double
        let concurrency: Int
        let concurrentQueriesPerSecond: Double?
        let recallAtK: Double?
        /// Of the identities both answers name, the share whose distance equals the exact
        /// float32 one (re-ranking promises 1).
        let exactDistanceShare: Double?
        let readBandwidthGBs: Double
        let memoryFloorMilliseconds: Double
        let singleQueryOverFloor: Double
        let allCoreReadBandwidthGBs: Double
        let allCoreMemoryFloorMilliseconds: Double
        let singleQueryOverAllCoreFloor: Double
    }

    func validate() throws {
        guard n > 0, n <= 10_000_000, dim > 0, k > 0, perIdentity > 0, batch > 0, rerank >= 0, concurrency >= 0, recallQueries >= 0 else {
            throw ValidationError("sizes must be positive (n up to 10,000,000), rerank and concurrency 0 or more")
        }
        guard IndexPrecision(rawValue: precision) != nil else { throw ValidationError("--precision must be float32, float16 or int8") }
        guard ["gaussian", "clustered"].contains(data) else { throw ValidationError("--data must be gaussian or clustered") }
    }

    /// The exact vectors, for re-ranking.
    struct Originals: ExactVectorSource {
        let values: [Float]
        let dimension: Int
        func vectors(of samples: [Int64]) -> [Int64: [Float]] {
            Dictionary(uniqueKeysWithValues: samples.map { ($0, Array(values[(Int($0) * dimension)..<((Int($0) + 1) * dimension)])) })
        }
    }

    func run() throws {
        let (base, dimension) = try storedVectors()
        let count = base.count / dimension
        let probes = try queryVectors(base: base, dimension: dimension)
        let precision = IndexPrecision(rawValue: self.precision)!
        let start = DispatchTime.now().uptimeNanoseconds
        let index = GalleryIndex(dimension: dimension, metric: .euclidean, precision: precision,
                                 rerank: rerank > 0 ? GalleryIndex.Rerank(factor: rerank, source: Originals(values: base, dimension: dimension)) { _ in } : nil,
                                 tracksCentroids: false)
        Self.fill(index, base, dimension: dimension, perIdentity: perIdentity)
        let buildSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let resident = Self.residentMegabytes()

        let single = Array(probes[0..<dimension])
        let batchCount = min(batch, probes.count / dimension)
        let batchValues = Array(probes[0..<(batchCount * dimension)])
        let singleRate = Throughput.callsPerSecond(seconds: seconds) { _ = index.search(single, k: k) }
        let batchRate = Throughput.callsPerSecond(seconds: seconds) { _ = index.search(queries: batchValues, count: batchCount, k: k) }
        let concurrent = concurrency > 0 ? concurrentRate(index, probes, dimension: dimension) : nil

        // Recall against the exact float32 answer, for anything approximate.
        var recall: Double? = nil, exactShare: Double? = nil
        if precision != .float32 && recallQueries > 0 {
            let exact = GalleryIndex(dimension: dimension, metric: .euclidean, tracksCentroids: false)
            Self.fill(exact, base, dimension: dimension, perIdentity: perIdentity)
            let q = min(recallQueries, probes.count / dimension)
            let asked = Array(probes[0..<(q * dimension)])
            let want = exact.search(queries: asked, count: q, k: k), got = index.search(queries: asked, count: q, k: k)
            let hits = zip(want, got).reduce(0) { total, pair in total + Set(pair.0.map(\.identity)).intersection(pair.1.map(\.identity)).count }
            recall = Double(hits) / Double(want.reduce(0) { $0 + $1.count })
            var common = 0, equal = 0
            for (w, g) in zip(want, got) {
                let exactDistance = Dictionary(uniqueKeysWithValues: w.map { ($0.identity, $0.distance) })
                for match in g { if let d = exactDistance[match.identity] { common += 1; if d == match.distance { equal += 1 } } }
            }
            exactShare = common > 0 ? Double(equal) / Double(common) : nil
        }

        let (bandwidth, allCoreBandwidth) = Self.readBandwidth(bytes: count * index.bytesPerVector, seconds: seconds)
        let bytes = Double(count * index.bytesPerVector)
        let floor = bytes / (bandwidth * 1e9) * 1000, allCoreFloor = bytes / (allCoreBandwidth * 1e9) * 1000
        let singleMs = 1000 / singleRate
        let perQuery = 1000 / batchRate / Double(batchCount)
        func round(_ value: Double, _ places: Double = 1000) -> Double { (value * places).rounded() / places }
        let report = Report(n: count, dim: dimension, k: k, identities: (count + perIdentity - 1) / perIdentity,
                            precision: precision.rawValue, rerank: rerank, scanKernels: IndexPrecision.kernels, bytesPerVector: index.bytesPerVector,
                            indexMegabytes: round(Double(index.bytes) / 1e6, 10), residentMegabytes: round(resident, 10),
                            buildSeconds: round(buildSeconds, 100),
                            singleQueryMilliseconds: round(singleMs), batchedMillisecondsPerQuery: round(perQuery), batch: batchCount,
                            batchedQueriesPerSecond: round(1000 / perQuery, 1), concurrency: concurrency,
                            concurrentQueriesPerSecond: concurrent.map { round($0, 1) }, recallAtK: recall.map { round($0, 10000) }, exactDistanceShare: exactShare.map { round($0, 10000) },
                            readBandwidthGBs: round(bandwidth, 10), memoryFloorMilliseconds: round(floor), singleQueryOverFloor: round(singleMs / floor, 100),
                            allCoreReadBandwidthGBs: round(allCoreBandwidth, 10), allCoreMemoryFloorMilliseconds: round(allCoreFloor),
                            singleQueryOverAllCoreFloor: round(singleMs / allCoreFloor, 100))
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print(String(format: "%d x %d %@%@, k %d: one query %.3f ms (floor %.3f ms at %.1f GB/s one core, %.3f ms all cores, %.2fx); batch of %d: %.3f ms per query (%.0f queries/s)",
                     count, dimension, precision.rawValue, rerank > 0 ? " re-ranked x\(rerank)" : "", k, report.singleQueryMilliseconds,
                     report.memoryFloorMilliseconds, report.readBandwidthGBs, report.allCoreMemoryFloorMilliseconds, report.singleQueryOverAllCoreFloor,
                     batchCount, report.batchedMillisecondsPerQuery, report.batchedQueriesPerSecond))
        print(String(format: "%d bytes per vector, index %.1f MB, resident %.0f MB, built in %.2f s, %@ row kernels", report.bytesPerVector, report.indexMegabytes,
                     report.residentMegabytes, report.buildSeconds, report.scanKernels)
              + (recall.map { String(format: "; recall@%d %.4f against exact", k, $0) } ?? "")
              + (exactShare.map { String(format: ", exact distances %.4f", $0) } ?? "")
              + (concurrent.map { String(format: "; %d concurrent callers %.0f queries/s", concurrency, $0) } ?? ""))
    }

    /// Stored vectors: from --vectors, or generated (gaussian, or clustered around n / 100 centres).
    private func storedVectors() throws -> (values: [Float], dimension: Int) {
        if let vectors {
            let array = try NumpyArray(contentsOf: vectors)
            guard array.shape.count == 2 else { throw ValidationError("\(vectors) must be N x d") }
            return (array.values, array.shape[1])
        }
        // Plain locals: an option's getter in the loops below cost more than the generation.
        let (n, dim) = (self.n, self.dim)
        var generator = SeededGenerator(seed: 3)
        var values = [Float](repeating: 0, count: n * dim)
        if data == "gaussian" {
            for i in values.indices { values[i] = generator.nextGaussian() }
        } else {
            // Centres far apart, points close to theirs: each point's nearest neighbours are
            // its cluster-mates, as an identity's photos are.
            let clusters = max(1, n / 100)
            let centres = (0..<(clusters * dim)).map { _ in generator.nextGaussian() }
            for row in 0..<n {
                let c = Int(generator.next() % UInt64(clusters))
                for j in 0..<dim { values[row * dim + j] = centres[c * dim + j] + 0.35 * (generator.nextUnitFloat() * 2 - 1) }
            }
        }
        return (values, dim)
    }

    /// Queries: from --queries, or stored vectors nudged (each has true near neighbours).
    private func queryVectors(base: [Float], dimension: Int) throws -> [Float] {
        if let queries {
            let array = try NumpyArray(contentsOf: queries)
            guard array.shape.count == 2, array.shape[1] == dimension else { throw ValidationError("\(queries) must be Q x \(dimension)") }
            return array.values
        }
        var generator = SeededGenerator(seed: 11)
        let count = base.count / dimension
        let wanted = max(batch, recallQueries, 64)
        var out = [Float]()
        out.reserveCapacity(wanted * dimension)
        for _ in 0..<wanted {
            let row = Int(generator.next() % UInt64(count))
            for j in 0..<dimension { out.append(base[row * dimension + j] + 0.05 * generator.nextGaussian()) }
        }
        return out
    }

    static func fill(_ index: GalleryIndex, _ values: [Float], dimension: Int, perIdentity: Int) {
        let count = values.count / dimension
        index.reserveCapacity(rows: count, identities: (count + perIdentity - 1) / perIdentity)
        values.withUnsafeBufferPointer { v in
            for row in 0..<count {
                index.add(sample: Int64(row), identity: "id\(row / perIdentity)", vector: UnsafeBufferPointer(rebasing: v[(row * dimension)..<((row + 1) * dimension)]))
            }
        }
        index.train()
    }

    /// Queries per second from `concurrency` threads each searching one query at a time.
    private func concurrentRate(_ index: GalleryIndex, _ probes: [Float], dimension: Int) -> Double {
        let done = SinkSlots(count: concurrency)
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
        let available = probes.count / dimension
        let (k, threads) = (self.k, concurrency)
        let started = DispatchTime.now().uptimeNanoseconds
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            var i = thread
            var answered: Float = 0
            while DispatchTime.now().uptimeNanoseconds < deadline {
                let q = Array(probes[((i % available) * dimension)..<((i % available + 1) * dimension)])
                _ = index.search(q, k: k)
                answered += 1
                i += threads
            }
            done.values[thread] = answered
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        return Double(done.values.reduce(0, +)) / elapsed
    }

    /// Read bandwidth over a buffer of `bytes` (capped at 1 GB), one core and all: the floor
    /// for a scan.
    static func readBandwidth(bytes requested: Int, seconds: Double) -> (oneCore: Double, allCores: Double) {
        let bytes = max(64 * 1024, min(requested, 1 << 30)) / 64 * 64
        let buffer = [Float](repeating: 1, count: bytes / 4)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let sums = SinkSlots(count: cores)
        let (one, all) = buffer.withUnsafeBufferPointer { b -> (Double, Double) in
            nonisolated(unsafe) let raw = UnsafeRawPointer(b.baseAddress!)
            @Sendable func sum(_ range: Range<Int>) -> Float {
                var acc = SIMD16<Float>()
                var offset = range.lowerBound
                while offset + 64 <= range.upperBound {
                    acc += raw.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
                    offset += 64
                }
                return acc.sum()
            }
            let one = Throughput.callsPerSecond(seconds: seconds) { sums.values[0] += sum(0..<bytes) }
            let all = Throughput.callsPerSecond(seconds: seconds) {
                DispatchQueue.concurrentPerform(iterations: cores) { core in
                    sums.values[core] += sum((core * bytes / cores / 64 * 64)..<((core + 1) * bytes / cores / 64 * 64))
                }
            }
            return (one, all)
        }
        if sums.values.contains(where: \.isNaN) { print("") }  // keeps the bandwidth loops from being optimised away
        return (one * Double(bytes) / 1e9, all * Double(bytes) / 1e9)
    }

    /// VmRSS of this process, in MB.
    static func residentMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kilobytes / 1000
    }
}

private final class SinkSlots: @unchecked Sendable {
    var values: [Float]
    init(count: Int) { values = Array(repeating: 0, count: count) }
}
