// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelTraining
import Foundation

/// Where built-in datasets are found; shared by every command that reads a dataset.
struct DatasetOptions: ParsableArguments {
    @Option(help: "Folder holding mnist_5k.csv.gz (default: $DOPPEL_CACHE_DIR or ~/.cache/doppel).")
    var cacheDir: String?

    @Option(help: "Folder holding Fashion-MNIST's gzipped IDX files.")
    var fashionMnistDir: String = DatasetLocations().fashionMNISTDirectory

    var loader: DatasetLoader {
        let cache = cacheDir ?? ProcessInfo.processInfo.environment["DOPPEL_CACHE_DIR"] ?? DatasetLocations().cacheDirectory
        return DatasetLoader(locations: DatasetLocations(fashionMNISTDirectory: fashionMnistDir, cacheDirectory: cache))
    }
}
