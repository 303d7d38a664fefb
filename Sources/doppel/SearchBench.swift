// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelGallery
import DoppelNN
import Foundation

/// `doppel bench search`: exact k-NN latency over N random d-dimensional vectors, one query
/// at a time and in batches, beside the memory floor of the same run (the bytes one query
/// must read divided by the measured read bandwidth, of one core and of all cores: the
/// single-query scan splits the rows over the cores, so the all-core floor is its true limit).
struct SearchBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "search", abstract: "Gallery search latency against the memory floor.")

    @Option(help: "Stored vectors.") var n: Int = 100_000
    @Option(help: "Dimension.") var dim: Int = 128
    @Option(help: "Results per query.") var k: Int = 10
    @Option(help: "Samples per identity.") var perIdentity: Int = 10
    @Option(help: "Queries per batch.") var batch: Int = 100
    @Option(help: "Seconds per measurement.") var seconds: Double = 2
    @Flag(help: "Print JSON.") var json = false

    struct Report: Codable {
        let n: Int, dim: Int, k: Int, identities: Int
        let singleQueryMilliseconds: Double
        let batchedMillisecondsPerQuery: Double
        let batch: Int
        let readBandwidthGBs: Double
        let memoryFloorMilliseconds: Double
        let singleQueryOverFloor: Double
        let allCoreReadBandwidthGBs: Double
        let allCoreMemoryFloorMilliseconds: Double
        let singleQueryOverAllCoreFloor: Double
    }

    func validate() throws {
        guard n > 0, dim > 0, k > 0, perIdentity > 0, batch > 0 else { throw ValidationError("all sizes must be positive") }
    }

    func run() throws {
        var generator = SeededGenerator(seed: 3)
        let index = GalleryIndex(dimension: dim, metric: .euclidean)
        var vector = [Float](repeating: 0, count: dim)
        for i in 0..<n {
            for j in 0..<dim { vector[j] = generator.nextGaussian() }
            index.add(sample: Int64(i), identity: "id\(i / perIdentity)", vector: vector)
        }
        let queries = (0..<(batch * dim)).map { _ in generator.nextGaussian() }
        let single = Array(queries[0..<dim])
        let singleRate = Throughput.callsPerSecond(seconds: seconds) { _ = index.search(single, k: k) }
        let batchRate = Throughput.callsPerSecond(seconds: seconds) { _ = index.search(queries: queries, count: batch, k: k) }

        // Read bandwidth over a buffer of the index's size, one core and all: the floor for a scan.
        let bytes = n * dim * 4
        let buffer = [Float](repeating: 1, count: n * dim)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let sums = SinkSlots(count: cores)
        let (readRate, allCoreReadRate) = buffer.withUnsafeBufferPointer { b -> (Double, Double) in
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
        let allCoreBandwidth = allCoreReadRate * Double(bytes) / 1e9
        let allCoreFloor = Double(bytes) / (allCoreBandwidth * 1e9) * 1000
        let bandwidth = readRate * Double(bytes) / 1e9
        let floor = Double(bytes) / (bandwidth * 1e9) * 1000
        let singleMs = 1000 / singleRate
        let report = Report(n: n, dim: dim, k: k, identities: (n + perIdentity - 1) / perIdentity,
                            singleQueryMilliseconds: (singleMs * 1000).rounded() / 1000,
                            batchedMillisecondsPerQuery: (1000 / batchRate / Double(batch) * 1000).rounded() / 1000, batch: batch,
                            readBandwidthGBs: (bandwidth * 10).rounded() / 10, memoryFloorMilliseconds: (floor * 1000).rounded() / 1000,
                            singleQueryOverFloor: (singleMs / floor * 100).rounded() / 100,
                            allCoreReadBandwidthGBs: (allCoreBandwidth * 10).rounded() / 10,
                            allCoreMemoryFloorMilliseconds: (allCoreFloor * 1000).rounded() / 1000,
                            singleQueryOverAllCoreFloor: (singleMs / allCoreFloor * 100).rounded() / 100)
        if sums.values.contains(where: \.isNaN) { print("") }  // keeps the bandwidth loops from being optimised away
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(String(format: "%d x %d, k %d: one query %.3f ms (floor %.3f ms at %.1f GB/s one core, %.2fx; %.3f ms at %.1f GB/s all cores, %.2fx); batch of %d: %.3f ms per query",
                         n, dim, k, report.singleQueryMilliseconds, report.memoryFloorMilliseconds, report.readBandwidthGBs,
                         report.singleQueryOverFloor, report.allCoreMemoryFloorMilliseconds, report.allCoreReadBandwidthGBs,
                         report.singleQueryOverAllCoreFloor, batch, report.batchedMillisecondsPerQuery))
        }
    }
}

private final class SinkSlots: @unchecked Sendable {
    var values: [Float]
    init(count: Int) { values = Array(repeating: 0, count: count) }
}
