// SPDX-License-Identifier: MIT
import DoppelKernels
import DoppelNN
import Foundation
import Testing

/// The binary runs the fastest OpenBLAS kernels this CPU supports, and a user's own
/// OPENBLAS_CORETYPE wins (`BLASKernelSelection`).
@Suite(.slow) struct BLASKernelSelectionTests {
    /// The kernel set `doppel bench embed` reports having run with.
    static func kernels(_ environment: [String: String] = [:]) throws -> String? {
        let run = try DoppelBinary.run(["bench", "embed", "--arch", "flatten dense(4)", "--input", "1x8x8", "--batch", "1",
                                        "--train-pairs", "0", "--seconds", "0.01", "--json"], environment: environment)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        return object?["blasKernels"] as? String
    }

    @Test func theBinaryRunsTheFastestKernelsAndKeepsAUsersChoice() throws {
        #expect(try Self.kernels(["OPENBLAS_CORETYPE": "Prescott"]) == "Prescott", "a user's OPENBLAS_CORETYPE is kept")
        if let set = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] {
            #expect(try Self.kernels()?.lowercased() == set.lowercased())
            return
        }
        let chosen = try #require(try Self.kernels())
        let flags = BLASKernels.cpuFlags(cpuinfo: try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))
        #expect(BLASKernels.better(than: chosen, cpuFlags: flags) == nil,
                "the binary ran \(chosen) although this CPU runs \(BLASKernels.better(than: chosen, cpuFlags: flags) ?? "")")
    }
}
