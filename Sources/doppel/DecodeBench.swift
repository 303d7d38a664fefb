// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelImaging
import DoppelNN
import Foundation

/// `doppel bench decode`: images decoded per second for a set of files, by default three
/// generated ones that stand for the product's inputs (a 28x28 PNG digit, a 105x105 1-bit
/// Omniglot-style PNG, a 640x480 photo-like JPEG). The files are kept so another decoder
/// (Pillow, say) can be timed on exactly the same bytes.
struct DecodeBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "decode", abstract: "Image decoding speed (images/s).")

    @Option(parsing: .upToNextOption, help: "Files to decode (default: three generated samples).")
    var files: [String] = []

    @Option(help: "Folder for the generated samples.")
    var dir: String = FileManager.default.temporaryDirectory.appendingPathComponent("doppel-bench-decode").path

    @Option(help: "Seconds to spend on each file (best of 3 rounds of a third each).")
    var seconds: Double = 1.5

    @Flag(help: "Print JSON.")
    var json = false

    struct Result: Codable {
        let path: String
        let bytes: Int
        let shape: String
        let imagesPerSecond: Double
        let microsecondsPerImage: Double
    }

    func run() throws {
        let paths = files.isEmpty ? try Self.writeSamples(into: dir) : files
        var results = [Result]()
        for path in paths {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            let image = try ImageDecoder.decode(bytes)
            let perSecond = Throughput.callsPerSecond(seconds: seconds) { _ = try? ImageDecoder.decode(bytes) }
            results.append(Result(path: path, bytes: bytes.count, shape: image.shapeDescription,
                                  imagesPerSecond: perSecond.rounded(), microsecondsPerImage: (1e6 / perSecond * 10).rounded() / 10))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(["decode": results]), as: UTF8.self))
        } else {
            for r in results {
                print(String(format: "%-60@ %8d B  %-18@ %10.0f images/s  %8.1f us", r.path as NSString, r.bytes, r.shape as NSString,
                             r.imagesPerSecond, r.microsecondsPerImage))
            }
        }
    }

    /// Deterministic stand-ins for the three input kinds.
    static func writeSamples(into dir: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var digit = Image(width: 28, height: 28, layout: .gray)
        for y in 0..<28 {
            for x in 0..<28 {
                let d = ((Double(x) - 14) * (Double(x) - 14) + (Double(y) - 13) * (Double(y) - 13)).squareRoot()
                digit[x, y, 0] = abs(d - 8) < 2.5 ? UInt8(255 - Int(abs(d - 8) * 60)) : 0
            }
        }
        var glyph = [UInt16](repeating: 1, count: 105 * 105)
        for t in stride(from: 0.0, to: 1.0, by: 0.002) {
            let x = Int(20 + 65 * t), y = Int(52 + 30 * sin(t * 9))
            for dy in -2...2 { for dx in -2...2 { glyph[(y + dy) * 105 + x + dx] = 0 } }
        }
        var photo = Image(width: 640, height: 480, layout: .rgb)
        var state: UInt32 = 12345
        for y in 0..<480 {
            for x in 0..<640 {
                state = state &* 1_103_515_245 &+ 12345
                let noise = Int(state >> 27)
                photo[x, y, 0] = UInt8(clamping: x * 255 / 640 + noise)
                photo[x, y, 1] = UInt8(clamping: y * 255 / 480 + noise)
                photo[x, y, 2] = UInt8(clamping: 128 + Int(60 * sin(Double(x + y) / 40)) + noise)
            }
        }
        let outputs: [(String, [UInt8])] = [
            ("digit-28x28.png", PNGEncoder.encode(digit)),
            ("glyph-105x105-1bit.png", PNGEncoder(colorType: .gray, bitDepth: 1).encode(width: 105, height: 105, samples: glyph)),
            ("photo-640x480.jpg", try JPEGEncoder.encode(photo, quality: 90)),
        ]
        return try outputs.map { name, bytes in
            let path = (dir as NSString).appendingPathComponent(name)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }
    }
}
