// SPDX-License-Identifier: MIT
import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Doppel's speed on this machine (figures for issue notes and the README).",
        subcommands: [DecodeBench.self, EmbedBench.self, SearchBench.self, StartupBench.self, ReplicationBench.self, HTTPBench.self]
    )
}
