// SPDX-License-Identifier: MIT
// DoppelModel owns what a model file is beyond its network: the input spec it embeds with,
// the calibration and decision rule it decides with, and the one embedding path every
// command and the server share. It knows nothing of training, galleries or HTTP.
import DoppelImaging
import DoppelNN
import Foundation

/// A model file's metadata that cannot be used, naming the field and what is wrong.
public enum ModelMetadataError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A field that is present but does not decode.
    case unreadable(field: String, detail: String)
    /// No calibrated threshold: the model cannot decide yet.
    case noThreshold

    public var description: String {
        switch self {
        case .unreadable(let field, let detail): "the model's \(field) metadata is unreadable: \(detail)"
        case .noThreshold:
            "the model has no calibrated threshold: run `doppel calibrate --model MODEL --data DIR` on labelled images of the population "
                + "it will serve (one folder per identity), or import it again with --threshold"
        }
    }
}

extension ModelFile {
    /// How images become the network's input.
    public func inputSpec() throws(ModelMetadataError) -> InputSpec {
        do { return try JSONDecoder().decode(InputSpec.self, from: Data(metadata.inputSpec.utf8)) } catch {
            throw .unreadable(field: "input spec", detail: "\(error)")
        }
    }

    /// The numbers the threshold and the similarity calibration came from; nil when the model
    /// was never calibrated (an import given --threshold), an error when the record is damaged.
    public func calibrationRecord() throws(ModelMetadataError) -> CalibrationRecord? {
        guard let text = metadata.calibration else { return nil }
        do { return try JSONDecoder().decode(CalibrationRecord.self, from: Data(text.utf8)) } catch {
            throw .unreadable(field: "calibration", detail: "\(error)")
        }
    }
}

extension ModelMetadata {
    /// Writes a calibration into the metadata: the threshold, how it was chosen on which
    /// `population` (said in words), and the record with its numbers.
    public mutating func record(_ calibration: CalibrationRecord, population: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        threshold = calibration.threshold
        thresholdMethod = "\(calibration.policy) on \(calibration.identities) \(population), \(calibration.samePairs) same and \(calibration.differentPairs) different pairs"
        self.calibration = String(decoding: try encoder.encode(calibration), as: UTF8.self)
    }
}
