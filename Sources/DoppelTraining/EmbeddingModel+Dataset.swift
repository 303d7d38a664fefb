// SPDX-License-Identifier: MIT
import DoppelModel

extension EmbeddingModel {
    /// Embeddings of every sample, `[count, dimension]`.
    public func embed(_ data: TensorDataset) -> [Float] {
        embed(values: data.values, count: data.count)
    }
}
