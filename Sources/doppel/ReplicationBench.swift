// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelHTTP
import DoppelImaging
import DoppelNN
import Foundation

/// `doppel bench replication`: how long an enrolment takes to reach the other replicas of a
/// PostgreSQL gallery. Enrolls N identities (one random image each) through the writer; after
/// each is acknowledged, checks the writer finds it at once, then searches every reader until
/// its top match is the new identity. Reports the delay from acknowledgement to found (its
/// resolution is one search round trip, reported too), and deletes the identities again.
struct ReplicationBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replication", abstract: "Propagation delay of enrolments between replicas sharing a PostgreSQL gallery.",
        discussion: """
            Example (scripts/cluster running on port 8080):
              doppel bench replication --writer 127.0.0.1:8081 --reader 127.0.0.1:8082 --reader 127.0.0.1:8083 \\
                  --admin-key-file /tmp/doppel-cluster.XXXX/admin.key --n 1000 --json
            """)

    @Option(help: "The replica that takes the enrolments (host:port).") var writer: String = "127.0.0.1:8081"
    @Option(help: "A replica to watch for them (host:port; repeatable).") var reader: [String] = ["127.0.0.1:8082"]
    @Option(help: "File holding an admin key of the replicas.") var adminKeyFile: String
    @Option(help: "Enrolments.") var n: Int = 1000
    @Option(help: "Side of the random square grey images, in pixels (the model resizes them).") var size: Int = 32
    @Option(help: "Give up on one enrolment after this many seconds.") var timeout: Double = 10
    @Flag(help: "Leave the enrolled identities in the gallery.") var keep = false
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let key = try String(contentsOfFile: adminKeyFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let auth = [("Authorization", "Bearer \(key)")]
        let writerClient = try Self.client(writer)
        let readerClients = try reader.map(Self.client)
        var generator = SeededGenerator(seed: UInt64(getpid()))
        let prefix = "propagation-\(getpid())"
        var delays = [Double]()
        var enrolMilliseconds = [Double]()
        var searchMilliseconds = [Double]()
        var writerMisses = 0
        var timeouts = 0
        for i in 0..<n {
            let pixels = (0..<(size * size)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let png = PNGEncoder.encode(Image(width: size, height: size, layout: .gray, pixels: pixels))
            let id = "\(prefix)-\(i)"
            let body = Array("{\"id\": \"\(id)\", \"images\": [\"\(Data(png).base64EncodedString())\"]}".utf8)
            let sent = DispatchTime.now().uptimeNanoseconds
            let response = try writerClient.send("POST", "/v1/identities", headers: auth + [("Content-Type", "application/json")], body: body)
            let acknowledged = DispatchTime.now().uptimeNanoseconds
            guard response.status == 201 else { throw ValidationError("enrolment \(i) answered \(response.status): \(response.text)") }
            enrolMilliseconds.append(Double(acknowledged - sent) / 1e6)
            // The writer sees its own write at once.
            if try Self.topMatch(writerClient, png) != id { writerMisses += 1 }
            for client in readerClients {
                let deadline = acknowledged + UInt64(timeout * 1e9)
                var found = false
                while DispatchTime.now().uptimeNanoseconds < deadline {
                    let asked = DispatchTime.now().uptimeNanoseconds
                    let top = try Self.topMatch(client, png)
                    searchMilliseconds.append(Double(DispatchTime.now().uptimeNanoseconds - asked) / 1e6)
                    if top == id { found = true; break }
                }
                if found { delays.append(Double(DispatchTime.now().uptimeNanoseconds - acknowledged) / 1e6) } else { timeouts += 1 }
            }
        }
        if !keep {
            for i in 0..<n { _ = try? writerClient.send("DELETE", "/v1/identities/\(prefix)-\(i)", headers: auth) }
        }
        delays.sort()
        enrolMilliseconds.sort()
        searchMilliseconds.sort()
        func quantile(_ values: [Double], _ q: Double) -> Double {
            values.isEmpty ? .nan : values[min(values.count - 1, Int((Double(values.count) * q).rounded(.up)) - 1)]
        }
        let p50 = quantile(delays, 0.5), p99 = quantile(delays, 0.99), worst = delays.last ?? .nan
        if json {
            print(String(format: "{\"enrolments\": %d, \"readers\": %d, \"propagation_ms\": {\"p50\": %.2f, \"p99\": %.2f, \"max\": %.2f}, \"enrol_ms\": {\"p50\": %.2f, \"p99\": %.2f}, \"search_ms\": {\"p50\": %.2f}, \"writer_misses\": %d, \"timeouts\": %d}",
                         n, reader.count, p50, p99, worst, quantile(enrolMilliseconds, 0.5), quantile(enrolMilliseconds, 0.99),
                         quantile(searchMilliseconds, 0.5), writerMisses, timeouts))
        } else {
            print(String(format: "%d enrolments through %@ seen by %d other replica(s): p50 %.1f ms, p99 %.1f ms, max %.1f ms after acknowledgement",
                         n, writer, reader.count, p50, p99, worst))
            print(String(format: "enrolment p50 %.1f ms, p99 %.1f ms; one search (the delay's resolution) p50 %.1f ms; the writer missed its own write %d times; %d never arrived within %.0f s",
                         quantile(enrolMilliseconds, 0.5), quantile(enrolMilliseconds, 0.99), quantile(searchMilliseconds, 0.5), writerMisses, timeouts, timeout))
        }
    }

    static func client(_ address: String) throws -> HTTPClient {
        let parts = address.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("\(address): give host:port") }
        return try HTTPClient(port: port, host: String(parts[0]))
    }

    /// The identity of the top match for `png`, or nil when there is none.
    static func topMatch(_ client: HTTPClient, _ png: [UInt8]) throws -> String? {
        let response = try client.send("POST", "/v1/search?k=1", headers: [("Content-Type", "image/png")], body: png)
        guard response.status == 200 else { throw ValidationError("search answered \(response.status): \(response.text)") }
        let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        return ((object?["matches"] as? [[String: Any]])?.first)?["identity"] as? String
    }
}
