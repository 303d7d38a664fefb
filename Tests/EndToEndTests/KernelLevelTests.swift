// SPDX-License-Identifier: MIT
import DoppelKernels
import Foundation
import Testing

/// The binary says which bodies of Doppel's own kernels run, keeps the ceiling it is given
/// (DOPPEL_KERNELS, or the `kernels` setting of `doppel serve`), and runs the highest level
/// this processor supports otherwise.
@Suite(.slow) struct KernelLevelTests {
    /// What `doppel bench embed` and `bench search` report having run with.
    static func levels(_ environment: [String: String]) throws -> (packed: String?, scans: String?, stderr: String) {
        let embed = try DoppelBinary.run(["bench", "embed", "--arch", "conv(4,3,pad=1) flatten dense(4)", "--input", "1x8x8", "--batch", "1",
                                          "--train-pairs", "0", "--seconds", "0.01", "--json"], environment: environment)
        #expect(embed.status == 0, "stderr: \(embed.stderr)")
        let search = try DoppelBinary.run(["bench", "search", "--n", "200", "--dim", "8", "--seconds", "0.01", "--recall-queries", "0", "--json"],
                                          environment: environment)
        #expect(search.status == 0, "stderr: \(search.stderr)")
        let packed = (try JSONSerialization.jsonObject(with: Data(embed.stdout.utf8)) as? [String: Any])?["packedKernels"] as? String
        let scans = (try JSONSerialization.jsonObject(with: Data(search.stdout.utf8)) as? [String: Any])?["scanKernels"] as? String
        return (packed, scans, embed.stderr)
    }

    @Test func theCeilingIsKeptAndTheProcessorsBestRunsOtherwise() throws {
        let portable = try Self.levels(["DOPPEL_KERNELS": "portable"])
        #expect(portable.packed == "portable" && portable.scans == "portable")
        // This test process's own choice, under no ceiling, is what a binary without one runs.
        let best = try Self.levels(["DOPPEL_KERNELS": "auto"])
        #expect(best.packed == KernelLevels.supported && best.scans == KernelLevels.supported, "\(best)")
        let unknown = try Self.levels(["DOPPEL_KERNELS": "sse9"])
        #expect(unknown.stderr.contains("DOPPEL_KERNELS=sse9 is not one of auto, portable, avx2, avx512; using auto"), "\(unknown.stderr)")
        #expect(unknown.packed == KernelLevels.supported)
    }

    /// `doppel serve` says at start which bodies run, under its `kernels` setting.
    @Test func theServerSaysWhichKernelsRun() throws {
        let folder = try ServeTests.freshFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try ServerProcess(model: ServeTests.fixture.model, folder: folder,
                                       environment: ["DOPPEL_ADMIN_KEYS": ServeTests.adminKey, "DOPPEL_KERNELS": "portable"])
        #expect(server.stop() == 0)
        #expect(server.stderr.contains("kernels: packed GEMM portable, index scans portable (ceiling portable; processor \(KernelLevels.supported))"),
                "\(server.stderr)")
    }
}
