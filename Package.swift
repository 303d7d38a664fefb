// swift-tools-version:6.0
// Doppel: a Siamese-network similarity service in one Swift binary. See DESIGN.md for the map.
import PackageDescription

// Doppel's C kernels are compiled optimised in debug builds too: their -O0 form is many times
// slower and exercises nothing the optimised one does not, and it is the optimised code that ships.
let optimisedC: [CSetting] = [.unsafeFlags(["-O2"])]

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
        // Which instruction-set bodies Doppel's own C kernels may run (DOPPEL_KERNELS, `kernels`).
        .target(name: "CKernelLevels"),
        // The packed-weights matrix product for one image at a time (AVX2 / AVX-512, self-checked at first use).
        .target(name: "CGEMMKernels", dependencies: ["CKernelLevels"], cSettings: optimisedC),
        // What the network engine and the gallery share below them: OpenBLAS's thread count, kernel levels.
        .target(name: "DoppelKernels", dependencies: ["CBLAS", "CKernelLevels", "CGEMMKernels", "CScanKernels"]),
        // SHA-256's compression function (model ids, content hashes), C so debug builds hash quickly too.
        .target(name: "CSHA256", cSettings: optimisedC),
        .target(name: "DoppelNN", dependencies: ["CBLAS", "CGEMMKernels", "CSHA256", "DoppelKernels"]),
        // ONNX files -> DoppelNN graphs (a protobuf reader of its own: no generated code).
        .target(name: "DoppelONNX", dependencies: ["DoppelNN", "DoppelModel", "DoppelImaging"]),
        // What a model file is beyond its network: input spec, embedding path, calibration, decision rule.
        .target(name: "DoppelModel", dependencies: ["DoppelNN", "DoppelImaging"]),
        .target(name: "DoppelTraining", dependencies: ["DoppelNN", "DoppelImaging", "DoppelModel"]),
        // The index's row kernels (AVX2 / AVX-512, self-checked at first use; portable C otherwise).
        .target(name: "CScanKernels", dependencies: ["CKernelLevels"], cSettings: optimisedC),
        .target(name: "DoppelGallery", dependencies: ["CBLAS", "CSQLite", "CPostgres", "CScanKernels", "CKernelLevels", "DoppelKernels"]),
        // epoll and eventfd headers (Linux), which Swift's Glibc module leaves out.
        .target(name: "CLinuxEvents"),

        .target(name: "DoppelHTTP", dependencies: ["CLinuxEvents", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "DoppelService",
            dependencies: [
                "DoppelHTTP", "DoppelGallery", "DoppelNN", "DoppelImaging", "DoppelModel",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // The console and the OpenAPI document as the files they are (linted, diffed),
            // compiled into the binary as bytes: no resource folder to ship beside it.
            resources: [
                .embedInCode("Resources/console.html"), .embedInCode("Resources/console.js"), .embedInCode("Resources/console.css"),
                .embedInCode("Resources/favicon.svg"), .embedInCode("Resources/openapi.json"),
            ]
        ),
        .executableTarget(
            name: "doppel",
            dependencies: [
                "DoppelImaging", "DoppelKernels", "DoppelNN", "DoppelModel", "DoppelONNX", "DoppelTraining", "DoppelGallery", "DoppelHTTP", "DoppelService",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(name: "DoppelImagingTests", dependencies: ["DoppelImaging", "CJPEG", "TestSupport"]),
        .testTarget(name: "DoppelNNTests", dependencies: ["DoppelNN", "DoppelKernels", "CGEMMKernels", "CKernelLevels", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "DoppelONNXTests", dependencies: ["DoppelONNX", "DoppelNN", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "DoppelGalleryTests", dependencies: ["DoppelGallery", "CScanKernels", "CKernelLevels", "TestSupport"]),
        // Test helpers shared by the test targets (a raw HTTP client).
        .target(name: "TestSupport", dependencies: ["DoppelHTTP", "DoppelNN"], path: "Tests/TestSupport"),
        .testTarget(name: "DoppelHTTPTests", dependencies: ["DoppelHTTP", "TestSupport"]),
        .testTarget(name: "DoppelServiceTests", dependencies: ["DoppelService", "DoppelHTTP", "DoppelNN", "DoppelImaging", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "DoppelModelTests", dependencies: ["DoppelModel", "DoppelNN", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "DoppelTrainingTests", dependencies: ["DoppelTraining", "DoppelModel", "DoppelImaging", "TestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["DoppelImaging", "DoppelGallery", "DoppelKernels", "DoppelNN", "TestSupport", "doppel"]),
    ]
)
