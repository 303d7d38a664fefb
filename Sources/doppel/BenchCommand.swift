// SPDX-License-Identifier: MIT
import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Doppel's speed on this machine (the figures in docs/performance.md).",
        discussion: """
            Examples:
              doppel bench embed --model model.safetensors --batch 32 1 --json
              doppel bench faces --model faces.safetensors photo.jpg --json
              doppel bench search --n 1000000 --dim 128 --precision int8 --json
              doppel bench startup --n 1000000 --dim 128 --snapshot
              doppel bench replication --writer 127.0.0.1:8081 \\
                  --reader 127.0.0.1:8082 --admin-key-file admin.key
            """,
        subcommands: [DecodeBench.self, EmbedBench.self, FaceBench.self, SearchBench.self, StartupBench.self, ReplicationBench.self, HTTPBench.self]
    )
}
