// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelNN
import DoppelTraining
import Foundation

/// Lines to standard error (standard output carries results only).
struct Terminal {
    let handle: FileHandle
    let isInteractive: Bool

    static let standardError = Terminal(handle: .standardError, isInteractive: isatty(STDERR_FILENO) != 0)

    func write(_ text: String) { handle.write(Data(text.utf8)) }
    func line(_ text: String) { write(text + "\n") }
}

/// Training progress: a bar redrawn in place on a terminal, a plain line every 5% otherwise.
final class ProgressBar {
    let output: Terminal
    private var lastPlainPercent = -1
    private var drawn = false

    init(output: Terminal) { self.output = output }

    func update(_ p: Trainer.Progress) {
        let fraction = Double(p.step) / Double(max(1, p.iterations))
        let status = String(format: "step %d/%d  loss %.4f  %.0f samples/s  ETA %@", p.step, p.iterations, p.loss, p.samplesPerSecond,
                            Self.duration(p.eta))
        if let v = p.validation {
            if drawn { output.write("\r\u{1B}[K") }
            output.line(String(format: "step %d: validation ROC AUC %.4f, EER %.4f", v.step, v.rocAUC, v.equalErrorRate))
            drawn = false
        }
        if output.isInteractive {
            let width = 30, filled = Int(fraction * Double(width))
            output.write("\r\u{1B}[K[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] " + status)
            drawn = true
        } else if Int(fraction * 20) > lastPlainPercent {
            lastPlainPercent = Int(fraction * 20)
            output.line(status)
        }
    }

    func finish() { if drawn { output.write("\n") } }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%dh%02dm", s / 3600, s % 3600 / 60) : String(format: "%dm%02ds", s / 60, s % 60)
    }
}

/// Set once SIGINT arrives; the default action (exit) is replaced so training can stop
/// between steps and save a usable model. A second Ctrl-C exits at once.
final class InterruptFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false
    private let source: DispatchSourceSignal

    init() {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned self] in
            let again = self.lock.withLock { () -> Bool in
                defer { set = true }
                return set
            }
            if again { exit(130) }
            FileHandle.standardError.write(Data("\ninterrupt: finishing the current step (Ctrl-C again to quit now)\n".utf8))
        }
        source.resume()
    }

    var isSet: Bool { lock.withLock { set } }
}

extension TrainingRecipe.Loss: ExpressibleByArgument {}
extension Metric: ExpressibleByArgument {}
extension TripletLoss.Mining: ExpressibleByArgument {}
