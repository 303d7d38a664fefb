// SPDX-License-Identifier: MIT
import ArgumentParser
import DoppelImaging
import DoppelKernels
import DoppelNN
import Foundation

/// `doppel bench embed`: forward (inference) images/s and GFLOP/s at each batch size, and the
/// time of one contrastive training step on N pairs, beside the sgemm peak of the same run.
struct EmbedBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "embed", abstract: "Embedding and training-step speed.")

    @Option(help: "Architecture string.")
    var arch: String = "flatten dense(1024) relu dense(1024) relu dense(2)"

    @Option(help: "Input shape CxHxW.")
    var input: String = "1x28x28"

    @Option(help: "Benchmark this model file (an imported one, say) instead of --arch and --input.")
    var model: String?

    @Option(parsing: .upToNextOption, help: "Forward batch sizes.")
    var batch: [Int] = [256, 32, 1]

    @Option(help: "Pairs in the timed contrastive training step (0 skips it).")
    var trainPairs: Int = 180

    @Option(help: "Seconds per measurement.")
    var seconds: Double = 2

    @Option(help: "BLAS threads (default: all cores).")
    var threads: Int?

    @Option(help: "Also save the benchmarked (freshly initialised) network as a model file, so another framework can be timed on the same weights.")
    var saveModel: String?

    @Flag(help: "Print JSON.")
    var json = false

    struct Forward: Codable {
        let batch: Int
        let imagesPerSecond: Double
        let gflops: Double
        let millisecondsPerBatch: Double
    }

    struct Report: Codable {
        let architecture: String
        let input: String
        let parameters: Int
        let mflopsPerImage: Double
        let sgemmGFLOPs: Double
        /// The OpenBLAS kernel set that ran (`BLASKernels`).
        let blasKernels: String
        /// The body the packed-weights product ran (`KernelLevels`: portable, avx2, avx512).
        let packedKernels: String
        let forward: [Forward]
        let trainStep: TrainStep?
    }

    struct TrainStep: Codable {
        let pairs: Int
        let millisecondsPerStep: Double
        let gflops: Double
    }

    func validate() throws {
        guard batch.allSatisfy({ $0 > 0 && $0 <= 65536 }), trainPairs >= 0, seconds > 0 else {
            throw ValidationError("batch sizes must be 1...65536, train pairs >= 0, seconds > 0")
        }
    }

    func run() throws {
        if let threads { BLASThreads.set(threads) }
        let network: Network
        if let model {
            network = try ModelFile.load(path: model).network
        } else {
            let dims = input.split(separator: "x").compactMap { Int($0) }
            guard dims.count == 3, dims.allSatisfy({ $0 > 0 }) else { throw ValidationError("--input must be CxHxW, e.g. 1x28x28") }
            network = try Network(architecture: try Architecture(parsing: arch), input: TensorShape(channels: dims[0], height: dims[1], width: dims[2]), seed: 1)
        }
        let (architecture, shape) = (network.architecture, network.inputShape)
        let flopsPerImage = network.forwardFLOPsPerSample
        var generator = SeededGenerator(seed: 2)
        let largest = max(batch.max() ?? 1, 2 * trainPairs)
        let data = (0..<(largest * shape.count)).map { _ in generator.nextUnitFloat() }

        if let saveModel {
            let spec = InputSpec(channels: shape.channels, height: shape.height, width: shape.width)
            let specJSON = String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)
            var model = ModelFile(network: network, head: nil,
                                  metadata: ModelMetadata(architecture: architecture, inputShape: shape, objective: "contrastive",
                                                          metric: .euclidean, inputSpec: specJSON))
            try model.save(to: saveModel)
        }
        let sgemm = Throughput.sgemmGFLOPs()
        var forward = [Forward]()
        data.withUnsafeBufferPointer { x in
            for n in batch {
                let rate = Throughput.callsPerSecond(seconds: seconds) { network.forward(x.baseAddress!, batch: n) }
                forward.append(Forward(batch: n, imagesPerSecond: (rate * Double(n)).rounded(),
                                       gflops: (rate * Double(n) * flopsPerImage / 1e8).rounded() / 10,
                                       millisecondsPerBatch: (1e5 / rate).rounded() / 100))
            }
        }
        var trainStep: TrainStep? = nil
        if trainPairs > 0 {
            let trainer = try SiameseTrainer(network: network, objective: .contrastive(ContrastiveLoss(margin: 0.3)),
                                         optimizer: .adam(learningRate: 1e-4, beta1: 0.9, beta2: 0.99), seed: 1)
            let labels = (0..<trainPairs).map { $0 % 2 == 0 ? PairLabel.same : PairLabel.different }
            let rate = data.withUnsafeBufferPointer { x in
                Throughput.callsPerSecond(seconds: seconds) { trainer.trainPairs(x.baseAddress!, pairs: trainPairs, labels: labels) }
            }
            // Forward + backward is about 3x the forward's flops, over 2 * pairs images.
            let flops = 3 * flopsPerImage * Double(2 * trainPairs)
            trainStep = TrainStep(pairs: trainPairs, millisecondsPerStep: (1e5 / rate).rounded() / 100,
                                  gflops: (rate * flops / 1e8).rounded() / 10)
        }
        let report = Report(architecture: architecture.description, input: "\(shape.channels)x\(shape.height)x\(shape.width)", parameters: network.parameterCount,
                            mflopsPerImage: (flopsPerImage / 1e4).rounded() / 100, sgemmGFLOPs: sgemm.rounded(),
                            blasKernels: BLASKernels.chosen, packedKernels: KernelLevels.packedGEMM, forward: forward, trainStep: trainStep)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print("\(report.architecture.prefix(200)) on \(report.input): \(report.parameters) parameters, \(report.mflopsPerImage) MFLOP/image")
        print(String(format: "sgemm peak (1024^3) %.0f GFLOP/s", report.sgemmGFLOPs))
        print("kernels: \(KernelLevels.report)")
        for f in forward {
            print(String(format: "forward batch %5d: %10.0f images/s  %6.1f GFLOP/s  %8.2f ms/batch", f.batch, f.imagesPerSecond, f.gflops, f.millisecondsPerBatch))
        }
        if let t = trainStep {
            print(String(format: "train step, contrastive, %d pairs: %.2f ms  %.1f GFLOP/s", t.pairs, t.millisecondsPerStep, t.gflops))
        }
    }
}
