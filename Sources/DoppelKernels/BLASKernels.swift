// SPDX-License-Identifier: MIT
import CBLAS

/// Which OpenBLAS kernel set runs the GEMMs, and whether the CPU could run a faster one.
/// OpenBLAS picks its kernels from the CPU model when it loads; a virtual CPU with a generic
/// model name ("Intel(R) Xeon(R) Processor") is not recognised and gets the Prescott (SSE3)
/// kernels even when it has AVX2 or AVX-512: measured on this project's 2-core VM, sgemm
/// 65 GFLOP/s against 160 (Haswell kernels) and 305 (SkylakeX).
public enum BLASKernels {
    /// The kernel set OpenBLAS chose (e.g. "Prescott", "Haswell", "SkylakeX").
    public static var chosen: String { String(cString: openblas_get_corename()) }

    /// Kernel sets that use neither AVX2 nor AVX-512.
    static let withoutAVX2: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "sandybridge", "atom",
                                           "katmai", "coppermine", "northwood", "banias", "opteron", "barcelona", "bobcat", "unknown"]

    /// The kernel set to name in OPENBLAS_CORETYPE, or nil when the chosen one is already a
    /// vector one or the CPU has nothing better. `cpuFlags` are the `flags` of /proc/cpuinfo,
    /// which list only what the operating system enabled (AVX-512 state included).
    public static func better(than chosen: String, cpuFlags: Set<String>) -> String? {
        guard withoutAVX2.contains(chosen.lowercased()) else { return nil }
        if cpuFlags.isSuperset(of: ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]) { return "SkylakeX" }
        if cpuFlags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// The `flags` of the first processor in /proc/cpuinfo (empty where there is none).
    public static func cpuFlags(cpuinfo: String) -> Set<String> {
        guard let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let list = line.split(separator: ":", maxSplits: 1).last else { return [] }
        return Set(list.split(separator: " ").map(String.init))
    }
}
