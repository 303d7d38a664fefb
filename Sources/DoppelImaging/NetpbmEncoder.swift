// SPDX-License-Identifier: MIT

/// Writes PGM/PPM files: binary (P5/P6) or ASCII (P2/P3), with any maxval up to 65535.
public enum NetpbmEncoder {
    /// `samples`: `width * height` (gray) or `width * height * 3` (RGB) values at most `maxval`.
    public static func encode(width: Int, height: Int, color: Bool, samples: [UInt16], maxval: Int = 255,
                              ascii: Bool = false, comment: String? = nil) -> [UInt8] {
        precondition((1...65535).contains(maxval))
        precondition(samples.count == width * height * (color ? 3 : 1))
        let magic = color ? (ascii ? "P3" : "P6") : (ascii ? "P2" : "P5")
        var header = magic + "\n"
        if let comment { header += "# \(comment)\n" }
        header += "\(width) \(height)\n\(maxval)\n"
        var out = Array(header.utf8)
        if ascii {
            let perLine = 12
            for (i, value) in samples.enumerated() {
                out += Array(String(value).utf8)
                out.append(i % perLine == perLine - 1 ? 0x0A : 0x20)
            }
        } else if maxval < 256 {
            out += samples.map { UInt8($0) }
        } else {
            for value in samples { out += [UInt8(value >> 8), UInt8(truncatingIfNeeded: value)] }
        }
        return out
    }

    /// An 8-bit gray or RGB image as binary PGM/PPM (alpha is dropped).
    public static func encode(_ image: Image) -> [UInt8] {
        let converted = image.layout.isColor ? image.converted(to: .rgb) : image.converted(to: .gray)
        return encode(width: image.width, height: image.height, color: converted.layout == .rgb,
                      samples: converted.pixels.map(UInt16.init))
    }
}
