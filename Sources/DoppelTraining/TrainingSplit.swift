// SPDX-License-Identifier: MIT

/// The split a recipe asks for: named prefixes held out as test (whole alphabets), seeded
/// fractions of the identities, or (closed set) seeded fractions of every identity's images.
/// `doppel eval` rebuilds the same split from the recipe in a model.
public enum TrainingSplit {
    public static func make(_ dataset: Dataset, recipe: TrainingRecipe) throws -> DatasetSplit {
        if recipe.closedSet == true {
            return try DatasetSplit.byImage(dataset, validationFraction: recipe.validationFraction, testFraction: recipe.testFraction,
                                            seed: recipe.seed)
        }
        if recipe.holdOut.isEmpty {
            return try DatasetSplit.byIdentity(dataset, validationFraction: recipe.validationFraction, testFraction: recipe.testFraction,
                                               seed: recipe.seed)
        }
        return try DatasetSplit.holdingOut(dataset, validationFraction: recipe.validationFraction, seed: recipe.seed) { name in
            recipe.holdOut.contains { name == $0 || name.hasPrefix($0 + "/") }
        }
    }
}
