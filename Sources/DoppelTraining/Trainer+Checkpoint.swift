// SPDX-License-Identifier: MIT
import DoppelNN
import Foundation

/// Checkpoints: a safetensors file with the current and best weights, the optimizer's
/// moments, the step and the history, written atomically at every validation. Resuming
/// continues with the same batches (each step's sampling is seeded by its number).
extension Trainer {
    static let checkpointFormat = "doppel-checkpoint"

    func saveCheckpoint(to path: String) throws {
        var tensors = [(String, SafeTensors.Tensor)]()
        for (name, shape, values) in network.namedTensors() {
            tensors.append(("current.\(name)", SafeTensors.Tensor(shape: shape, values: values)))
            if let best = bestParameters[name] { tensors.append(("best.\(name)", SafeTensors.Tensor(shape: shape, values: best))) }
        }
        if let head = trainer.head {
            tensors.append(("current.head", SafeTensors.Tensor(shape: [head.parameters.count], values: head.parameters)))
            if !bestHead.isEmpty { tensors.append(("best.head", SafeTensors.Tensor(shape: [bestHead.count], values: bestHead))) }
        }
        for (index, moment) in trainer.optimizer.state.enumerated() {
            tensors.append(("optimizer.\(index)", SafeTensors.Tensor(shape: [moment.count], values: moment)))
        }
        let encoder = JSONEncoder()
        let metadata = [
            "format": Self.checkpointFormat,
            "step": String(step),
            "best_auc": String(bestAUC),
            "recipe": String(decoding: try encoder.encode(recipe), as: UTF8.self),
            "history": String(decoding: try encoder.encode(history), as: UTF8.self),
        ]
        try Data(SafeTensors(metadata: metadata, tensors: tensors).serialized()).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Loads a checkpoint written by a run of the same recipe (architecture, loss and seed must
    /// match; the iteration count may grow).
    public func resume(from path: String) throws {
        let file = try SafeTensors(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
        guard file.metadata["format"] == Self.checkpointFormat, let stepText = file.metadata["step"], let saved = Int(stepText),
              let recipeText = file.metadata["recipe"], let historyText = file.metadata["history"]
        else { throw DatasetError.malformed(source: path, detail: "not a Doppel training checkpoint") }
        let savedRecipe = try JSONDecoder().decode(TrainingRecipe.self, from: Data(recipeText.utf8))
        var comparable = savedRecipe
        comparable.iterations = recipe.iterations
        guard comparable == recipe else {
            throw DatasetError.malformed(source: path, detail: "the checkpoint was written by another recipe (architecture, loss, data options or seed differ)")
        }
        func tensors(_ prefix: String) -> [String: [Float]] {
            Dictionary(uniqueKeysWithValues: file.names.filter { $0.hasPrefix(prefix) }.map { (String($0.dropFirst(prefix.count)), file.tensors[$0]!.values) })
        }
        var current = tensors("current."), best = tensors("best.")
        let currentHead = current.removeValue(forKey: "head"), savedBestHead = best.removeValue(forKey: "head")
        try network.load(tensors: current)
        if let head = trainer.head, let currentHead { head.parameters = currentHead }
        bestParameters = best
        bestHead = savedBestHead ?? []
        bestAUC = Double(file.metadata["best_auc"] ?? "") ?? -1
        let moments = [file.tensors["optimizer.0"]?.values ?? [], file.tensors["optimizer.1"]?.values ?? []]
        guard moments.map(\.count) == trainer.optimizer.state.map(\.count) else {
            throw DatasetError.malformed(source: path, detail: "optimizer state does not match the network's parameters")
        }
        trainer.optimizer.state = moments
        trainer.optimizer.restore(step: saved)
        history = try JSONDecoder().decode(TrainingHistory.self, from: Data(historyText.utf8))
        step = saved
    }
}
