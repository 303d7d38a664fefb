// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelModel
import DoppelNN
import Foundation
import Testing

/// What a model file's metadata says, read through typed accessors that throw rather than
/// guess, and the decision rule built from it.
@Suite struct DecisionRuleTests {
    static func file(threshold: Float? = 0.5, calibration: String? = nil, spec: String? = nil) throws -> ModelFile {
        let input = TensorShape(channels: 1, height: 4, width: 4)
        let network = try Network(architecture: Architecture(parsing: "flatten dense(3) l2norm"), input: input, seed: 1)
        let specJSON = String(decoding: try JSONEncoder().encode(InputSpec(channels: 1, height: 4, width: 4)), as: UTF8.self)
        var metadata = ModelMetadata(architecture: network.architecture, inputShape: input, objective: "test", metric: .euclidean,
                                     inputSpec: spec ?? specJSON)
        metadata.threshold = threshold
        metadata.calibration = calibration
        return ModelFile(network: network, head: nil, metadata: metadata)
    }

    @Test func aCalibratedModelDecidesByItsRecord() throws {
        var file = try Self.file()
        let record = CalibrationRecord(policy: .equalErrorRate, identities: 4, same: [0.1, 0.2, 0.3, 0.35], different: [0.6, 0.7, 0.8, 0.9, 0.25])
        try file.metadata.record(record, population: "test identities")
        let rule = try DecisionRule(file)
        #expect(rule.threshold == record.threshold && rule.calibration == record)
        #expect(rule.normalizesEmbeddings && rule.naturalMaxThreshold == 2)
        #expect(rule.similarity(distance: 0.1) > rule.similarity(distance: 0.9))
        #expect(rule.falseAcceptRate(at: record.threshold) != nil)
        #expect(rule.distance([1, 0, 0], [0, 1, 0]) == Float(2).squareRoot())
        #expect(file.metadata.thresholdMethod?.contains("on 4 test identities") == true)
    }

    @Test func metadataThatCannotBeUsedIsAnErrorNamingTheField() throws {
        #expect(throws: ModelMetadataError.noThreshold) { try DecisionRule(try Self.file(threshold: nil)) }
        #expect { try DecisionRule(try Self.file(calibration: "{not json")) } throws: {
            if case ModelMetadataError.unreadable(let field, _) = $0 { return field == "calibration" }
            return false
        }
        #expect { try Self.file(spec: "[]").inputSpec() } throws: {
            if case ModelMetadataError.unreadable(let field, _) = $0 { return field == "input spec" }
            return false
        }
        // No calibration is not an error: an import given --threshold has none.
        #expect(try Self.file().calibrationRecord() == nil)
        #expect(try DecisionRule(try Self.file()).similarity(distance: 0.4) == 1)
    }
}
