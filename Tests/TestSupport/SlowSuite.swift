// SPDX-License-Identifier: MIT
import Foundation
import Testing

extension Trait where Self == ConditionTrait {
    /// Marks a suite that starts the real binary, a browser, PostgreSQL or dlib's models:
    /// `FAST=1 scripts/test` (which sets DOPPEL_FAST=1) leaves it out, so that what is left
    /// runs in under a minute between edits. The full run, and CI, run it.
    public static var slow: Self {
        .enabled(if: ProcessInfo.processInfo.environment["DOPPEL_FAST"] != "1", "a slow suite; DOPPEL_FAST=1 leaves it out")
    }
}
