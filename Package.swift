// swift-tools-version:6.0
// Doppel: a Siamese-network similarity service in one Swift binary. See DESIGN.md for the map.
import PackageDescription

let package = Package(
    name: "Doppel",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "doppel", targets: ["doppel"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
    ],
    targets: [
        // System libraries: one [system] module each, installed by scripts/bootstrap.
        .systemLibrary(name: "CBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CPNG", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", providers: [.apt(["libturbojpeg0-dev", "libjpeg-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPostgres", providers: [.apt(["libpq-dev"])]),

        .target(name: "DoppelImaging", dependencies: ["CPNG", "CJPEG", "CZlib"]),
        // The packed-weights matrix product for one image at a time (AVX2 with a run-time check).
        .target(name: "CGEMMKernels"),
        .target(name: "DoppelNN", dependencies: ["CBLAS", "CGEMMKernels"]),
        // ONNX files -> DoppelNN graphs (a protobuf reader of its own: no generated code).
        .target(name: "DoppelONNX", dependencies: ["DoppelNN"]),
        .target(name: "DoppelTraining", dependencies: ["DoppelNN", "DoppelImaging"]),
        // The index's row kernels (AVX2 with a run-time check, portable C otherwise).
        .target(name: "CScanKernels"),
        .target(name: "DoppelGallery", dependencies: ["CBLAS", "CSQLite", "CPostgres", "CScanKernels"]),
        // epoll and eventfd headers (Linux), which Swift's Glibc module leaves out.
        .target(name: "CLinuxEvents"),

        .target(name: "DoppelHTTP", dependencies: ["CLinuxEvents", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "DoppelService",
            dependencies: [
                "DoppelHTTP", "DoppelGallery", "DoppelNN", "DoppelImaging", "DoppelTraining",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "doppel",
            dependencies: [
                "DoppelImaging", "DoppelNN", "DoppelONNX", "DoppelTraining", "DoppelGallery", "DoppelHTTP", "DoppelService",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(name: "DoppelImagingTests", dependencies: ["DoppelImaging", "CJPEG"]),
        .testTarget(name: "DoppelNNTests", dependencies: ["DoppelNN", "CGEMMKernels"], exclude: ["Fixtures"]),
        .testTarget(name: "DoppelONNXTests", dependencies: ["DoppelONNX", "DoppelNN"], exclude: ["Fixtures"]),
        .testTarget(name: "DoppelGalleryTests", dependencies: ["DoppelGallery", "CScanKernels", "TestSupport"]),
        // Test helpers shared by the test targets (a raw HTTP client).
        .target(name: "TestSupport", dependencies: ["DoppelHTTP"], path: "Tests/TestSupport"),
        .testTarget(name: "DoppelHTTPTests", dependencies: ["DoppelHTTP", "TestSupport"]),
        .testTarget(name: "DoppelServiceTests", dependencies: ["DoppelService", "DoppelHTTP"]),
        .testTarget(name: "DoppelTrainingTests", dependencies: ["DoppelTraining", "DoppelImaging"]),
        .testTarget(name: "EndToEndTests", dependencies: ["DoppelImaging", "DoppelGallery", "DoppelNN", "TestSupport", "doppel"]),
    ]
)
