// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelNN
import Testing
@testable import DoppelTraining

/// `doppel train`'s flags as recipe overrides: how one setting bears on another, and the
/// combinations refused before any data is read.
@Suite struct TrainingRecipeOverridesTests {
    @Test func nothingAskedChangesNothing() throws {
        for preset in Preset.allCases {
            #expect(try preset.recipe.applying(TrainingRecipe.Overrides()) == preset.recipe, "\(preset.rawValue)")
        }
    }

    @Test func aCosineScheduleFollowsTheStepCount() throws {
        var overrides = TrainingRecipe.Overrides()
        overrides.iterations = 600
        let vgg = try Preset.siameseVGG.recipe.applying(overrides)
        #expect(vgg.iterations == 600 && vgg.optimizer.schedule == .cosine(total: 600, minimum: 5e-5))
        // A constant rate stays constant.
        let faces = try Preset.faces.recipe.applying(overrides)
        #expect(faces.iterations == 600 && faces.optimizer.schedule == Preset.faces.recipe.optimizer.schedule)
    }

    @Test func aNewInputSizeKeepsThePresetsResizeAndAveraging() throws {
        var overrides = TrainingRecipe.Overrides()
        overrides.input = "1x56x46"
        let base = Preset.faces.recipe, recipe = try base.applying(overrides)
        #expect(recipe.input.channels == 1 && recipe.input.height == 56 && recipe.input.width == 46)
        #expect(recipe.input.resize == base.input.resize && recipe.input.mirrorAverage == base.input.mirrorAverage
                && recipe.input.shiftAverage == base.input.shiftAverage)
        overrides.input = "56x46"
        #expect(throws: TrainingRecipe.OverrideError("--input must be CxHxW, e.g. 1x28x28")) { try base.applying(overrides) }
    }

    @Test func theLetterboxAndItsResampling() throws {
        var overrides = TrainingRecipe.Overrides()
        overrides.resize = "fit"
        overrides.pad = 128
        overrides.resampling = "bicubic"
        let recipe = try Preset.omniglot.recipe.applying(overrides)
        #expect(recipe.input.resize == .fit && recipe.input.pad == 128 && recipe.input.resampling == .bicubic)
        overrides.resize = "crop"
        #expect(throws: TrainingRecipe.OverrideError("--pad sets the letterbox of --resize fit")) { try Preset.omniglot.recipe.applying(overrides) }
    }

    @Test func contradictionsAreRefusedWithTheFlagToDrop() {
        func refusal(_ change: (inout TrainingRecipe.Overrides) -> Void, preset: Preset = .fashion) -> String? {
            var overrides = TrainingRecipe.Overrides()
            change(&overrides)
            do { _ = try preset.recipe.applying(overrides); return nil } catch { return "\(error)" }
        }
        #expect(refusal { $0.loss = .contrastive; $0.mining = .batchHard }?.contains("--mining chooses triplets") == true)
        #expect(refusal { $0.closedSet = true; $0.holdOut = ["Sandal"] }?.contains("drop --hold-out") == true)
        #expect(refusal { $0.validateOn = ["Sandal"]; $0.validationFraction = 0.2 }?.contains("drop --validation-fraction") == true)
        #expect(refusal { $0.targetFalseAcceptRate = 1.5 }?.contains("--target-far must be between 0 and 1") == true)
        #expect(refusal { $0.validationFraction = 0 }?.contains("--validation-fraction") == true)
        #expect(refusal { $0.resampling = "lanczos" }?.contains("area or bicubic") == true)
        #expect(refusal { $0.augmentation = "spin=3" }?.hasPrefix("--augmentation:") == true)
    }

    @Test func settingsThatSwitchOff() throws {
        var overrides = TrainingRecipe.Overrides()
        overrides.whitening = 0
        overrides.shiftAverage = 0
        overrides.mirrorAverage = false
        overrides.augment = false
        let recipe = try Preset.faces.recipe.applying(overrides)
        #expect(recipe.whitening == nil && recipe.input.shiftAverage == nil && recipe.input.mirrorAverage == nil && recipe.augmentation == nil)
        overrides = TrainingRecipe.Overrides()
        overrides.targetFalseAcceptRate = 0.01
        #expect(try Preset.faces.recipe.applying(overrides).threshold == .falseAcceptRate(0.01))
    }
}
