// SPDX-License-Identifier: MIT
import Testing
import TestSupport
@testable import DoppelImaging

@Suite struct ImageProcessingTests {
    @Test func colorToGrayUsesBT601Luma() {
        let image = Image(width: 3, height: 1, layout: .rgba, pixels: [255, 0, 0, 9, 0, 255, 0, 9, 0, 0, 255, 9])
        #expect(image.converted(to: .gray).pixels == [76, 150, 29])
        #expect(image.converted(to: .rgb).pixels == [255, 0, 0, 0, 255, 0, 0, 0, 255])
        let gray = Image(width: 1, height: 1, layout: .gray, pixels: [7])
        #expect(gray.converted(to: .rgba).pixels == [7, 7, 7, 255])
    }

    @Test func quarterTurnsMovePixelsClockwise() {
        // 1 2 3
        // 4 5 6
        let image = Image(width: 3, height: 2, layout: .gray, pixels: [1, 2, 3, 4, 5, 6])
        let once = image.rotated(quarterTurns: 1)
        #expect(once.width == 2 && once.height == 3)
        #expect(once.pixels == [4, 1, 5, 2, 6, 3])  // 4 1 / 5 2 / 6 3
        #expect(image.rotated(quarterTurns: 2).pixels == [6, 5, 4, 3, 2, 1])
        #expect(image.rotated(quarterTurns: 3).pixels == [3, 6, 2, 5, 1, 4])  // 3 6 / 2 5 / 1 4
        #expect(image.rotated(quarterTurns: -1) == image.rotated(quarterTurns: 3))
        #expect(once.rotated(quarterTurns: 3) == image && image.rotated(quarterTurns: 4) == image)
        let rgb = Image(width: 2, height: 1, layout: .rgb, pixels: [1, 2, 3, 4, 5, 6])
        #expect(rgb.rotated(quarterTurns: 1).pixels == [1, 2, 3, 4, 5, 6] && rgb.rotated(quarterTurns: 2).pixels == [4, 5, 6, 1, 2, 3])
        #expect(image.mirrored().pixels == [3, 2, 1, 6, 5, 4] && rgb.mirrored().pixels == [4, 5, 6, 1, 2, 3])
        #expect(image.mirrored().mirrored() == image)
    }

    @Test func shrinkingAveragesAreas() {
        // 4x2 -> 2x1: each output pixel is the mean of a 2x2 block.
        let image = Image(width: 4, height: 2, layout: .gray, pixels: [0, 100, 200, 200, 50, 50, 0, 40])
        #expect(image.resized(width: 2, height: 1).pixels == [50, 110])
        // Non-integer factor: 3 -> 2 weights the middle pixel half to each side.
        let row = Image(width: 3, height: 1, layout: .gray, pixels: [0, 90, 180])
        #expect(row.resized(width: 2, height: 1).pixels == [30, 150])
        // A one-pixel line survives a 4x reduction as a quarter of its intensity.
        var thin = Image(width: 8, height: 8, layout: .gray)
        for y in 0..<8 { thin[3, y, 0] = 200 }
        #expect(thin.resized(width: 2, height: 2).pixels == [50, 0, 50, 0])
    }

    @Test func growingIsBilinear() {
        let image = Image(width: 2, height: 1, layout: .gray, pixels: [0, 100])
        // Pixel centres: output x maps to (x + 0.5) / 2 - 0.5 -> -0.25, 0.25, 0.75, 1.25 (clamped).
        #expect(image.resized(width: 4, height: 1).pixels == [0, 25, 75, 100])
    }

    static func noise(width: Int, height: Int, layout: PixelLayout, seed: UInt64) -> Image {
        var state = seed
        let pixels = (0..<(width * height * layout.channels)).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        return Image(width: width, height: height, layout: layout, pixels: pixels)
    }

    /// The two pass orders compute the same double sum of tap products in different orders: an
    /// output is sum_v w_v sum_h w_h x with weights >= 0 adding to 1 and x <= 255, so the two
    /// are within the reordering bound of (taps_h x taps_v) terms of magnitude 255.
    @Test(arguments: [(37, 23, 5, 9), (20, 30, 61, 7), (640, 480, 112, 112), (3, 100, 2, 40)])
    func bothPassOrdersAgree(width: Int, height: Int, outWidth: Int, outHeight: Int) {
        let image = Self.noise(width: width, height: height, layout: .rgb, seed: 7)
        let rows = Resampler.resize(image, width: outWidth, height: outHeight, order: .rowsFirst)
        let columns = Resampler.resize(image, width: outWidth, height: outHeight, order: .columnsFirst)
        let taps = (width / outWidth + 2) * (height / outHeight + 2)
        let bound = RoundingBound.reordered(terms: taps, magnitude: 255)
        #expect(zip(rows, columns).allSatisfy { abs(Double($0) - Double($1)) <= bound })
    }

    /// A window (what `crop` keeps) is the same taps in the same order as the whole: equal.
    @Test func aWindowIsTheWholeCut() {
        let image = Self.noise(width: 50, height: 31, layout: .gray, seed: 3)
        for order in [Resampler.PassOrder.rowsFirst, .columnsFirst] {
            let whole = Resampler.resize(image, width: 80, height: 60, order: order)
            let window = Resampler.resize(image, width: 80, height: 60, columns: 10..<50, rows: 5..<45, order: order)
            let cut = (5..<45).flatMap { y in (10..<50).map { x in whole[y * 80 + x] } }
            #expect(window == cut)
        }
    }

    /// The intermediate is at most the larger of source and target (the smaller of the two
    /// orders' sizes is at most the geometric mean of the two images' sizes), including the
    /// tall strip that once took a gigabyte.
    @Test(arguments: [(1, 999_999, 112, 112), (999_999, 1, 112, 112), (4000, 3000, 112, 112), (92, 112, 150, 150), (10, 10, 3000, 20)])
    func theIntermediateIsBoundedByTheImages(width: Int, height: Int, outWidth: Int, outHeight: Int) {
        for rowsWhenBounded in [false, true] {
            let floats = Resampler.passOrder(width: width, height: height, outWidth: outWidth, outHeight: outHeight, rowsWhenBounded: rowsWhenBounded).floatsPerChannel
            #expect(floats <= max(width * height, outWidth * outHeight))
        }
    }

    /// A 1 x 999,999 strip through every resize mode: a 112 x 112 tensor (crop scales the strip
    /// to 112 x 111,999,888 and computes only the 112 x 112 it keeps).
    @Test func aTallStripResizesInEveryMode() {
        let strip = Image(width: 1, height: 999_999, layout: .gray, filledWith: 200)
        for mode in [InputSpec.ResizeMode.stretch, .fit, .crop] {
            let tensor = InputSpec(channels: 1, height: 112, width: 112, resize: mode).tensor(from: strip)
            #expect(tensor.count == 112 * 112)
            #expect(tensor.contains { abs($0 - 200 / 255) < 1e-5 })
        }
    }

    @Test func constantImagesStayConstantAtAnySize() {
        let image = Image(width: 37, height: 23, layout: .rgb, filledWith: 123)
        for (w, h) in [(5, 5), (100, 7), (37, 60), (1, 1)] {
            #expect(image.resized(width: w, height: h).pixels.allSatisfy { $0 == 123 })
        }
    }

    /// The letterbox pads with the spec's grey (Siamese-pytorch's 128), scaled like any pixel;
    /// the spec says so in its description and refuses a level outside 0...255.
    @Test func letterboxPadsWithTheSpecsGrey() {
        let wide = Image(width: 4, height: 2, layout: .gray, filledWith: 255)
        var spec = InputSpec(channels: 1, height: 4, width: 4, resize: .fit)
        spec.pad = 128
        let tensor = spec.tensor(from: wide)
        // 4x2 fits as 4x2 in the middle rows; rows 0 and 3 are padding.
        #expect(tensor[0..<4].allSatisfy { $0 == 128 / 255 } && tensor[12..<16].allSatisfy { $0 == 128 / 255 })
        #expect(tensor[4..<12].allSatisfy { $0 == 1 })
        #expect(spec.description.contains("pad128"))
        spec.pad = 300
        #expect(spec.validationError() != nil)
    }

    /// Pillow's bicubic, as Siamese-pytorch letterboxes, on a patterned image shrunk and grown,
    /// against Pillow's own output (PIL 8-bit `Image.resize(..., BICUBIC)`, the values below).
    /// Both round and clip each pass to 8 bits; they differ only in the weights' precision
    /// (Pillow's 22-bit fixed point, Float here), which can move a sum lying within a hair of
    /// a half across it: one level after the first pass, carried by the second's weights
    /// (absolute sum at most 1.25), plus one at the final rounding: at most 2 levels apart.
    @Test func bicubicIsPillows() {
        let cases: [(Int, Int, Int, Int, [Float])] = [
            (37, 23, 16, 10, [98, 122, 133, 131, 99, 137, 113, 134, 139, 121, 110, 125, 104, 142, 144, 131, 124, 136, 142, 149, 143, 130, 144, 150, 153, 121, 127, 126, 128, 142, 105, 120, 118, 108, 133, 128, 149, 109, 127, 130, 132, 142, 127, 138, 112, 125, 136, 108, 136, 111, 127, 150, 98, 108, 97, 107, 132, 133, 151, 155, 167, 135, 123, 110, 142, 88, 118, 139, 111, 97, 149, 153, 123, 85, 117, 145, 142, 162, 101, 96, 166, 137, 100, 137, 151, 106, 154, 146, 85, 128, 153, 108, 148, 151, 69, 120, 144, 127, 108, 117, 150, 102, 111, 105, 110, 123, 130, 125, 129, 117, 119, 126, 123, 157, 142, 109, 107, 121, 124, 117, 123, 122, 123, 124, 129, 123, 148, 117, 109, 145, 122, 134, 100, 111, 147, 118, 148, 129, 140, 134, 103, 138, 125, 143, 134, 108, 112, 127, 163, 120, 101, 88, 118, 116, 136, 133, 119, 172, 147, 170]),
            (7, 5, 16, 11, [0, 0, 10, 29, 44, 61, 76, 91, 112, 141, 165, 182, 196, 215, 229, 237, 10, 14, 30, 49, 67, 86, 104, 121, 129, 127, 131, 147, 166, 185, 201, 209, 49, 56, 72, 94, 121, 147, 174, 196, 171, 94, 48, 63, 92, 112, 130, 138, 96, 104, 125, 146, 159, 171, 198, 225, 186, 74, 7, 21, 56, 79, 99, 107, 153, 164, 194, 204, 155, 99, 104, 136, 130, 84, 61, 81, 114, 146, 174, 187, 177, 189, 226, 230, 139, 38, 27, 63, 90, 112, 135, 157, 179, 206, 227, 237, 104, 117, 149, 163, 115, 62, 69, 108, 144, 182, 208, 218, 213, 183, 146, 132, 17, 29, 54, 82, 100, 118, 144, 174, 205, 237, 252, 251, 222, 137, 45, 8, 32, 44, 68, 101, 141, 175, 173, 152, 150, 166, 177, 183, 173, 121, 63, 40, 88, 100, 128, 161, 203, 229, 183, 97, 53, 46, 54, 76, 102, 118, 129, 134, 110, 122, 151, 184, 229, 253, 188, 74, 13, 0, 3, 32, 71, 116, 155, 172]),
        ]
        for (width, height, outWidth, outHeight, pillow) in cases {
            var image = Image(width: width, height: height, layout: .gray)
            for y in 0..<height { for x in 0..<width { image[x, y, 0] = UInt8((x * 37 + y * 91 + (x * y) % 13 * 7) % 256) } }
            let ours = Resampler.resize(image, width: outWidth, height: outHeight, filter: .bicubic)
            let worst = zip(ours, pillow).map { abs(min(max($0, 0), 255) - $1) }.max()!
            #expect(worst <= 2, "\(width)x\(height) -> \(outWidth)x\(outHeight): \(worst) grey levels from Pillow")
        }
    }

    @Test func inputSpecStretchesNormalisesAndInverts() {
        let image = Image(width: 2, height: 2, layout: .gray, pixels: [0, 255, 255, 0])
        #expect(InputSpec(channels: 1, height: 2, width: 2).tensor(from: image) == [0, 1, 1, 0])
        #expect(InputSpec(channels: 1, height: 2, width: 2, invert: true).tensor(from: image) == [1, 0, 0, 1])
        let standardised = InputSpec(channels: 1, height: 2, width: 2, mean: [0.5], std: [0.5]).tensor(from: image)
        #expect(standardised == [-1, 1, 1, -1])
        let rgb = InputSpec(channels: 3, height: 1, width: 1).tensor(from: Image(width: 1, height: 1, layout: .gray, pixels: [51]))
        #expect(rgb.allSatisfy { abs(Double($0) - 0.2) <= RoundingBound.operations(2, magnitude: 1) }, "51 / 255, one rounding (and 0.2's own)")
    }

    @Test func inputSpecFitPadsAndCropCuts() {
        // A 4x2 white image into 2x2: fit -> a 2x1 band in the middle rows, padded with black.
        let wide = Image(width: 4, height: 2, layout: .gray, filledWith: 255)
        let fit = InputSpec(channels: 1, height: 4, width: 4, resize: .fit).tensor(from: wide)
        #expect(fit == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
        // crop: cover 4x4 by scaling to 8x4 and cutting the centre columns 2...5.
        var striped = Image(width: 4, height: 2, layout: .gray)
        for y in 0..<2 { striped[1, y, 0] = 255; striped[2, y, 0] = 255 }
        let crop = InputSpec(channels: 1, height: 2, width: 2, resize: .crop).tensor(from: striped)
        #expect(crop == [1, 1, 1, 1])
    }

    @Test func inputSpecValidation() {
        #expect(InputSpec(channels: 1, height: 28, width: 28).validationError() == nil)
        #expect(InputSpec(channels: 2, height: 28, width: 28).validationError() != nil)
        #expect(InputSpec(channels: 1, height: 0, width: 28).validationError() != nil)
        #expect(InputSpec(channels: 1, height: 28, width: 28, std: [0]).validationError() != nil)
    }
}
