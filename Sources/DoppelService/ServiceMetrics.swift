// SPDX-License-Identifier: MIT
import Foundation
import Prometheus
import Synchronization

/// The `/metrics` numbers, in Prometheus text format (swift-prometheus): requests by route,
/// method and status, latency histograms by route, forward-pass batch sizes, gallery sizes.
final class ServiceMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()

    nonisolated(unsafe) private static let requests = MetricNameDescriptor(namespace: "doppel", metricName: "http_requests", unitName: "total",
                                                       helpText: "HTTP requests answered, by route pattern, method and status.")
    nonisolated(unsafe) private static let latency = MetricNameDescriptor(namespace: "doppel", metricName: "http_request_duration", unitName: "seconds",
                                                      helpText: "Time from a parsed request to its response, by route pattern.")
    nonisolated(unsafe) private static let batches = MetricNameDescriptor(namespace: "doppel", metricName: "embed_batch_size", unitName: "images",
                                                      helpText: "Images per forward pass (micro-batching).")
    nonisolated(unsafe) private static let gallerySamples = MetricNameDescriptor(namespace: "doppel", metricName: "gallery_samples", unitName: "count",
                                                             helpText: "Samples in each gallery's in-memory index.")
    nonisolated(unsafe) private static let searchBatches = MetricNameDescriptor(namespace: "doppel", metricName: "search_batch_size", unitName: "queries",
                                                            helpText: "Searches answered per pass over a gallery (search batching).")
    nonisolated(unsafe) private static let indexBytes = MetricNameDescriptor(namespace: "doppel", metricName: "index", unitName: "bytes",
                                                         helpText: "Bytes of every gallery's in-memory index (rows and norms).")
    nonisolated(unsafe) private static let indexBytesPerVector = MetricNameDescriptor(namespace: "doppel", metricName: "index_vector", unitName: "bytes",
                                                                  helpText: "Bytes per stored vector at the index's precision.")
    nonisolated(unsafe) private static let ready = MetricNameDescriptor(namespace: "doppel", metricName: "ready", unitName: "bool",
                                                    helpText: "1 when the model is loaded and the gallery indexed.")

    static let latencyBuckets: [Duration] = [.microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
                                             .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                             .milliseconds(500), .seconds(1), .seconds(5)]
    private let batchSizes: ValueHistogram
    private let searchBatchSizes: ValueHistogram

    /// One constant the registry keeps (it holds the array where LeakSanitizer cannot see it,
    /// so a literal made per server would read as a leak).
    static let batchBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]

    init() {
        batchSizes = registry.makeValueHistogram(descriptor: Self.batches, buckets: Self.batchBuckets)
        searchBatchSizes = registry.makeValueHistogram(descriptor: Self.searchBatches, buckets: Self.batchBuckets)
    }

    /// Handles by route, method and status, so a request costs one dictionary lookup instead of
    /// two registry look-ups with label arrays (labels come from fixed sets, so this is bounded).
    /// Behind an NSLock (pthread), which ThreadSanitizer sees, where Synchronization's futex
    /// Mutex on Linux is invisible to it.
    nonisolated(unsafe) private var handles: [String: (Counter, DurationHistogram)] = [:]
    private let handlesLock = NSLock()

    func record(route: String, method: String, status: Int, nanoseconds: Int64) {
        let key = "\(route) \(method) \(status)"
        let (counter, histogram) = handlesLock.withLock {
            if let found = handles[key] { return found }
            let made = (registry.makeCounter(descriptor: Self.requests, labels: [("route", route), ("method", method), ("status", String(status))]),
                        registry.makeDurationHistogram(descriptor: Self.latency, labels: [("route", route)], buckets: Self.latencyBuckets))
            handles[key] = made
            return made
        }
        counter.increment()
        histogram.recordNanoseconds(nanoseconds)
    }

    func recordBatch(_ size: Int) { batchSizes.record(Double(size)) }

    func recordSearchBatch(_ size: Int) { searchBatchSizes.record(Double(size)) }

    func text(galleries: [(gallery: String, samples: Int)], index: (bytesPerVector: Int, bytes: Int), isReady: Bool) -> [UInt8] {
        registry.makeGauge(descriptor: Self.indexBytes, labels: []).set(to: Double(index.bytes))
        registry.makeGauge(descriptor: Self.indexBytesPerVector, labels: []).set(to: Double(index.bytesPerVector))
        for (gallery, samples) in galleries {
            registry.makeGauge(descriptor: Self.gallerySamples, labels: [("gallery", gallery)]).set(to: Double(samples))
        }
        registry.makeGauge(descriptor: Self.ready, labels: []).set(to: isReady ? 1 : 0)
        return registry.emitToBuffer()
    }
}
