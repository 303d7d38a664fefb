// SPDX-License-Identifier: MIT

/// The shape of one sample's features, `[channels, height, width]`; a batch adds N in front
/// (NCHW). A flat vector of F features is `[F, 1, 1]`.
public struct TensorShape: Equatable, Hashable, Sendable, CustomStringConvertible, Codable {
    public var channels: Int
    public var height: Int
    public var width: Int

    public init(channels: Int, height: Int = 1, width: Int = 1) {
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// Elements per sample.
    public var count: Int { channels * height * width }
    public var isFlat: Bool { height == 1 && width == 1 }
    public var spatial: Int { height * width }

    public var description: String { isFlat ? "\(channels)" : "\(channels)x\(height)x\(width)" }
}
