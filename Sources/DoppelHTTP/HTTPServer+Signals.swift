// SPDX-License-Identifier: MIT
import Foundation

extension HTTPServer {
    /// Shuts the server down gracefully on SIGTERM and SIGINT (the default actions are
    /// ignored so the process lives until `run()` returns). Keep the returned sources alive
    /// while serving; `notify` runs first with the signal number (for a log line).
    public func shutdownOnSignals(_ signals: [Int32] = [SIGTERM, SIGINT], notify: @escaping @Sendable (Int32) -> Void = { _ in }) -> [DispatchSourceSignal] {
        signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                notify(number)
                shutdown()
            }
            source.resume()
            return source
        }
    }
}
