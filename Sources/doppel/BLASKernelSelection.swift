// SPDX-License-Identifier: MIT
import DoppelKernels
import DoppelNN
import Foundation

/// Runs the process on the fastest OpenBLAS kernels the CPU supports (see `BLASKernels`).
enum BLASKernelSelection {
    /// When OpenBLAS chose kernels below what the CPU runs and OPENBLAS_CORETYPE is unset, sets
    /// it and re-executes this binary once: the library reads the variable only while it loads,
    /// before `main`. exec keeps the pid, the arguments and the open descriptors, so callers see
    /// one process. A user's own OPENBLAS_CORETYPE is always left as it is.
    static func useTheFastestKernels() {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil,
              let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let kernels = BLASKernels.better(than: BLASKernels.chosen, cpuFlags: BLASKernels.cpuFlags(cpuinfo: cpuinfo))
        else { return }
        setenv("OPENBLAS_CORETYPE", kernels, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // exec failed: carry on with the kernels already loaded (slower, same results).
    }
}
