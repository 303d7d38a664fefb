// SPDX-License-Identifier: MIT
import CGEMMKernels
import CKernelLevels
import CScanKernels

/// Which instruction-set bodies Doppel's own C kernels run (`CKernelLevels`): the highest
/// level the processor supports, under a ceiling from the configuration (`kernels`) or the
/// environment (`DOPPEL_KERNELS`), and only a body that passed its self-check against the
/// portable one. `portable` is what arm64 and x86-64 without AVX2 run, so forcing it on any
/// machine runs (and tests) their code.
public enum KernelLevels {
    /// The ceilings a configuration may name.
    public static let names = ["auto", "portable", "avx2", "avx512"]

    /// Sets the ceiling by name (`names`); false for any other name (nothing changes).
    @discardableResult
    public static func setCeiling(_ name: String) -> Bool {
        let level = doppel_kernels_parse(name)
        guard level != -2 else { return false }
        doppel_kernels_set_ceiling(level)
        return true
    }

    /// The ceiling now ("auto" or a level's name).
    public static var ceiling: String { name(doppel_kernels_ceiling()) }

    /// The highest level this processor runs.
    public static var supported: String { name(doppel_kernels_supported()) }

    /// The level the packed-weights product runs (one image through a convolution).
    public static var packedGEMM: String { name(doppel_gemm_level()) }

    /// The level the gallery's row kernels run (compact scans, batched products).
    public static var scans: String { name(doppel_scan_level()) }

    /// Levels whose bodies failed their self-check here and are not used (empty normally).
    public static var failures: [String] {
        let mask = doppel_gemm_self_check_failures() | doppel_scan_self_check_failures()
        return (0..<3).filter { mask & (1 << $0) != 0 }.map { name(Int32($0)) }
    }

    /// One line for logs and benches: e.g. "packed GEMM avx2, index scans avx2 (ceiling auto;
    /// processor avx2)", naming any body that failed its self-check.
    public static var report: String {
        var line = "packed GEMM \(packedGEMM), index scans \(scans) (ceiling \(ceiling); processor \(supported))"
        if !failures.isEmpty { line += "; failed their self-check, not used: \(failures.joined(separator: ", "))" }
        return line
    }

    static func name(_ level: Int32) -> String {
        level == DOPPEL_KERNELS_AUTO ? "auto" : doppel_kernels_name(level).map { String(cString: $0) } ?? "level \(level)"
    }
}
