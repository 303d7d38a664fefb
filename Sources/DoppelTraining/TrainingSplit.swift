// SPDX-License-Identifier: MIT

/// The split a recipe asks for: named prefixes held out as test (whole alphabets) or named as
/// validation (the classes to evaluate on), seeded fractions of the identities, or (closed
/// set) seeded fractions of every identity's images.
/// `doppel eval` rebuilds the same split from the recipe in a model.
public enum TrainingSplit {
    public static func make(_ dataset: Dataset, recipe: TrainingRecipe) throws -> DatasetSplit {
        if recipe.closedSet == true {
            return try DatasetSplit.byImage(dataset, validationFraction: recipe.validationFraction, testFraction: recipe.testFraction,
                                            seed: recipe.seed)
        }
        let validateOn = recipe.validateOn ?? []
        if recipe.holdOut.isEmpty && validateOn.isEmpty {
            return try DatasetSplit.byIdentity(dataset, validationFraction: recipe.validationFraction, testFraction: recipe.testFraction,
                                               seed: recipe.seed)
        }
        // A name is an identity or a folder of them: "Korean" names "Korean/character01".
        func matching(_ prefixes: [String]) -> ((String) -> Bool)? {
            prefixes.isEmpty ? nil : { name in prefixes.contains { name == $0 || name.hasPrefix($0 + "/") } }
        }
        return try DatasetSplit.naming(dataset, validation: matching(validateOn), test: matching(recipe.holdOut),
                                       validationFraction: recipe.validationFraction, testFraction: recipe.testFraction, seed: recipe.seed)
    }
}
