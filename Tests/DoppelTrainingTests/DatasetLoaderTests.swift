// SPDX-License-Identifier: MIT
import DoppelImaging
import Foundation
import Testing
@testable import DoppelTraining

@Suite struct DatasetLoaderTests {
    static func gray(_ value: UInt8, width: Int = 3, height: Int = 2) -> Image {
        Image(width: width, height: height, layout: .gray, filledWith: value)
    }

    @Test func folderAtAnyDepthWithSkips() throws {
        let folder = try TemporaryFolder()
        try folder.write(PNGEncoder.encode(Self.gray(10)), to: "Greek/alpha/1.png")
        try folder.write(PNGEncoder.encode(Self.gray(11)), to: "Greek/alpha/2.png")
        try folder.write(try JPEGEncoder.encode(Self.gray(20, width: 16, height: 16)), to: "Greek/beta/x.jpg")
        try folder.write(NetpbmEncoder.encode(Self.gray(30)), to: "s1/1.pgm")
        // A file named like a PNG that is not one, and an image with a misleading name.
        try folder.write(Array("hello".utf8), to: "s1/notes.png")
        try folder.write(PNGEncoder.encode(Self.gray(31)), to: "s1/2.txt")
        try folder.write(PNGEncoder.encode(Self.gray(99)), to: ".hidden/1.png")
        try folder.write(PNGEncoder.encode(Self.gray(98)), to: "s1/.DS_Store")
        try folder.write(Array(PNGEncoder.encode(Self.gray(97)).prefix(40)), to: "s1/broken.png")
        try folder.write(Array("readme".utf8), to: "README")

        let dataset = try DatasetLoader().load(folder.path)
        #expect(dataset.identities == ["Greek/alpha", "Greek/beta", "s1"])
        #expect(dataset.samples.map(\.origin) == ["Greek/alpha/1.png", "Greek/alpha/2.png", "Greek/beta/x.jpg", "s1/1.pgm", "s1/2.txt"])
        #expect(dataset.samples.map(\.identity) == [0, 0, 1, 2, 2])
        #expect(dataset.samples[3].image.pixels == [30, 30, 30, 30, 30, 30])
        #expect(dataset.skipped.hidden == 2)
        #expect(dataset.skipped.notImages == 2)  // notes.png and README
        #expect(dataset.skipped.undecodable == 1)
        #expect(dataset.skipped.examples.first?.hasPrefix("s1/broken.png") == true)
    }

    @Test func emptyFolderAndMissingPath() throws {
        let folder = try TemporaryFolder()
        try folder.write(Array("x".utf8), to: "a/b.txt")
        #expect(throws: DatasetError.self) { try DatasetLoader().load(folder.path) }
        #expect(throws: DatasetError.self) { try DatasetLoader().load(folder.path + "/nope") }
        #expect(throws: DatasetError.unknownBuiltin(name: "cifar", known: DatasetLoader.builtinNames)) {
            try DatasetLoader().load("builtin:cifar")
        }
    }

    @Test func csvLikeMNIST5k() throws {
        let folder = try TemporaryFolder()
        let line = { (pixel: Int, label: Int) in (Array(repeating: String(pixel), count: 4) + [String(label)]).joined(separator: ",") }
        let text = [line(0, 7), line(255, 3), line(9, 7)].joined(separator: "\n") + "\n"
        try folder.write(Zlib.deflate(Array(text.utf8), container: .gzip), to: "digits.csv.gz")
        let dataset = try DatasetLoader().load(folder.path + "/digits.csv.gz")
        #expect(dataset.identities == ["3", "7"])
        #expect(dataset.samples.map(\.identity) == [1, 0, 1])
        #expect(dataset.samples[1].image.pixels == [255, 255, 255, 255] && dataset.samples[1].image.width == 2)

        try folder.write(Array("1,2,3\n".utf8), to: "bad.csv")
        #expect(throws: DatasetError.self) { try DatasetLoader().load(folder.path + "/bad.csv") }
        try folder.write(Array("1,2,3,999,1\n".utf8), to: "big.csv")
        #expect(throws: DatasetError.self) { try DatasetLoader().load(folder.path + "/big.csv") }
    }

    /// builtin:fashion-mnist reads Debian's four gzipped IDX files; here a tiny stand-in of the
    /// same layout, so the test needs no installed package.
    @Test func builtinFashionMNISTLayout() throws {
        let folder = try TemporaryFolder()
        func idx(_ dimensions: [Int], _ data: [UInt8]) throws -> [UInt8] {
            var bytes: [UInt8] = [0, 0, 8, UInt8(dimensions.count)]
            for d in dimensions { bytes += [0, 0, UInt8(d >> 8), UInt8(d & 255)] }
            return Zlib.deflate(bytes + data, container: .gzip)
        }
        try folder.write(try idx([3, 2, 2], Array(0..<12)), to: "train-images-idx3-ubyte.gz")
        try folder.write(try idx([3], [9, 0, 9]), to: "train-labels-idx1-ubyte.gz")
        try folder.write(try idx([1, 2, 2], [5, 5, 5, 5]), to: "t10k-images-idx3-ubyte.gz")
        try folder.write(try idx([1], [1]), to: "t10k-labels-idx1-ubyte.gz")
        let loader = DatasetLoader(locations: DatasetLocations(fashionMNISTDirectory: folder.path, cacheDirectory: folder.path))
        let all = try loader.load("builtin:fashion-mnist")
        #expect(all.samples.count == 4)
        #expect(all.identities == ["T-shirt/top", "Ankle boot"])  // from the train labels 0 and 9
        let test = try loader.load("builtin:fashion-mnist:test")
        #expect(test.identities == ["Trouser"] && test.samples[0].image.pixels == [5, 5, 5, 5])
        // An IDX path given directly finds its labels beside it.
        let direct = try loader.load(folder.path + "/train-images-idx3-ubyte.gz")
        #expect(direct.samples.map(\.identity) == [1, 0, 1] && direct.identities == ["0", "9"])
    }
}
