// SPDX-License-Identifier: MIT
import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `doppel serve` started as a user starts it, on a free port, in a folder of its own.
final class ServerProcess {
    let process = Process()
    let port: Int
    let folder: URL
    /// How long a client waits for each response.
    var responseTimeout = 10
    private let errors = Pipe()
    private let errorText = SendableBox<Data>()

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A server started with `config` (JSON) as its config file, written into `folder`.
    static func configured(_ config: String, model: String, folder: URL) throws -> ServerProcess {
        let file = folder.appendingPathComponent("config.json")
        try Data(config.utf8).write(to: file)
        return try ServerProcess(model: model, folder: folder, arguments: ["--config", file.path])
    }

    /// Starts and waits for the listening line; with `waitReady`, also for /readyz.
    /// `database` defaults to `folder/gallery.sqlite`; a postgres:// URL makes a replica.
    init(model: String, folder: URL, database: String? = nil, arguments: [String] = [],
         environment: [String: String] = ["DOPPEL_ADMIN_KEYS": ServeTests.adminKey], waitReady: Bool = true) throws {
        self.folder = folder
        process.executableURL = DoppelBinary.url
        process.arguments = ["serve", "--port", "0", "--model", model, "--db", database ?? folder.appendingPathComponent("gallery.sqlite").path,
                             "--data-dir", folder.appendingPathComponent("data").path,
                             "--migrations", Self.repository.appendingPathComponent("Migrations").path] + arguments
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("DOPPEL_") }
        env.merge(environment) { $1 }
        process.environment = env
        process.currentDirectoryURL = folder
        let output = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let box = errorText
        let errorHandle = errors.fileHandleForReading
        Thread.detachNewThread { box.value = (try? errorHandle.readToEnd()) ?? Data() }  // readDataToEndOfFile traps on a read error
        // The first stdout line names the port.
        var line = [UInt8]()
        let handle = output.fileHandleForReading
        while !line.contains(10) {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            line += chunk
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let range = text.range(of: "listening on http://127.0.0.1:"), let port = Int(text[range.upperBound...].prefix { $0.isNumber }) else {
            process.waitUntilExit()
            throw RawClient.Failure(description: "server did not start: \(text) (see stderr)")
        }
        self.port = port
        if waitReady {
            for _ in 0..<600 {
                if let client = try? RawClient(port: port), let response = try? client.send("GET", "/readyz"), response.status == 200 { return }
                usleep(50_000)
            }
            throw RawClient.Failure(description: "server never became ready: \(stderr)")
        }
    }

    /// What the server wrote to stderr (complete once it exited).
    var stderr: String { String(decoding: errorText.value ?? Data(), as: UTF8.self) }

    func client() throws -> RawClient { try RawClient(port: port, timeoutSeconds: responseTimeout) }

    /// SIGTERM, then the exit status.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        while errorText.value == nil { usleep(1000) }
        return process.terminationStatus
    }

    /// Waits for the process to end by itself (at most 30 s), then its exit status.
    func waitForExit() -> Int32 {
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        return stop()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// Builders of request bodies in the three forms the service accepts.
enum Body {
    static func multipart(_ parts: [(name: String, filename: String?, bytes: [UInt8])]) -> (contentType: String, body: [UInt8]) {
        let boundary = "doppel-test-\(UUID().uuidString)"
        var body = [UInt8]()
        for part in parts {
            var head = "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(part.name)\""
            if let filename = part.filename { head += "; filename=\"\(filename)\"\r\nContent-Type: image/png" }
            body += Array((head + "\r\n\r\n").utf8) + part.bytes + Array("\r\n".utf8)
        }
        body += Array("--\(boundary)--\r\n".utf8)
        return ("multipart/form-data; boundary=\(boundary)", body)
    }

    static func json(_ object: [String: Any]) -> [UInt8] {
        [UInt8](try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
}

extension RawClient.Response {
    var json: [String: Any] { ((try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]) ?? [:] }
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
}
