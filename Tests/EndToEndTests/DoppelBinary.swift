// SPDX-License-Identifier: MIT
import Foundation
import TestSupport

/// Runs the real `doppel` executable built beside the tests.
struct DoppelBinary {
    struct Output {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    static var url: URL {
        if let override = ProcessInfo.processInfo.environment["DOPPEL_BINARY"] { return URL(fileURLWithPath: override) }
        // The test bundle sits in the build products folder, beside the executable.
        var directory = Bundle.main.bundleURL
        if directory.pathExtension == "xctest" { directory.deleteLastPathComponent() }
        let candidate = directory.appendingPathComponent("doppel")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/doppel")
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Output {
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let (stdout, stderr) = try runCapturing(process, separateStderr: true)
        return Output(status: process.terminationStatus, stdout: stdout, stderr: stderr)
    }
}

/// Runs `process` to its end with stdout and stderr written to files, then read: no pipes, so
/// no reader threads and no `readDataToEndOfFile`, which traps when Foundation's Process,
/// launching other children from other tests at the same time, has closed a pipe's
/// descriptor under it (seen as "Bad file descriptor" crashes of the whole test run).
func runCapturing(_ process: Process, separateStderr: Bool) throws -> (stdout: String, stderr: String) {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("doppel-run-\(UUID().uuidString)").path
    let (outPath, errPath) = (base + ".out", base + ".err")
    defer {
        unlink(outPath)
        unlink(errPath)
    }
    guard FileManager.default.createFile(atPath: outPath, contents: nil), FileManager.default.createFile(atPath: errPath, contents: nil),
          let out = FileHandle(forWritingAtPath: outPath), let err = FileHandle(forWritingAtPath: errPath) else {
        throw CocoaError(.fileWriteUnknown)
    }
    defer {
        try? out.close()
        try? err.close()
    }
    process.standardOutput = out
    process.standardError = separateStderr ? err : out
    try process.run()
    process.waitUntilExit()
    let read = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
    return (read(outPath), read(errPath))
}

/// Runs another program to its end; its exit status and what it wrote to stdout and stderr
/// together.
func runProgram(_ path: String, _ arguments: [String], in directory: URL? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    let (output, _) = try runCapturing(process, separateStderr: false)
    return (process.terminationStatus, output)
}
