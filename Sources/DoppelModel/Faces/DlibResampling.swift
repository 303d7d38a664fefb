// SPDX-License-Identifier: MIT
import DoppelImaging
import Foundation

/// dlib's bilinear resize_image as the face detector runs it, to the rounding: the rows in
/// Double, the columns four at a time in Float (dlib's simd4f, truncated to whole pixels with
/// cvttps), the columns left over in Double. The detector's boxes come from this arithmetic,
/// so it is reproduced rather than approximated.
enum DlibResampling {
    /// One bilinear pass over a plane, dlib's per-row and per-column arithmetic (`sample`
    /// reads the source, `store` writes the destination; `integral` truncates as dlib does
    /// for 8-bit pixels). What depends only on the column (dlib's running x, its whole part
    /// and fraction) or only on the row is worked out once, in dlib's order of accumulation;
    /// large planes are split by rows over the cores.
    @inline(__always)
    private static func resize(inRows: Int, inColumns: Int, outRows: Int, outColumns: Int, integral: Bool,
                               sample: (Int, Int) -> Float, store: (Int, Int, Float) -> Void) {
        guard inRows > 0, inColumns > 0, outRows > 0, outColumns > 0 else { return }
        let xScale = Double(inColumns - 1) / Double(max(outColumns - 1, 1))
        let yScale = Double(inRows - 1) / Double(max(outRows - 1, 1))
        // The columns dlib's simd4f lanes cover: each lane's left column and its weights.
        var lefts = [Int](), rightWeights = [Float](), leftWeights = [Float]()
        let step = Float(4 * xScale)
        let x0 = -4 * xScale
        var lanes = SIMD4<Float>(Float(x0), Float(x0 + xScale), Float(x0 + 2 * xScale), Float(x0 + 3 * xScale))
        var vectorColumns = 0
        while true {
            lanes += SIMD4(repeating: step)
            let left = SIMD4<Int32>(lanes, rounding: .towardZero)
            let lr = lanes - SIMD4<Float>(left), invLr = 1 - lr
            if Int(left[3]) + 1 >= inColumns || vectorColumns + 3 >= outColumns { break }
            for lane in 0..<4 {
                lefts.append(Int(left[lane]))
                rightWeights.append(lr[lane])
                leftWeights.append(invLr[lane])
            }
            vectorColumns += 4
        }
        // The columns left over, in Double.
        var tailX = [Double](), x = -xScale + Double(vectorColumns) * xScale
        for _ in vectorColumns..<outColumns {
            x += xScale
            tailX.append(x)
        }
        var rowY = [Double](), y = -yScale
        for _ in 0..<outRows {
            y += yScale
            rowY.append(y)
        }
        func rows(_ range: Range<Int>) {
            for r in range {
                let y = rowY[r]
                let top = Int(y.rounded(.down)), bottom = min(top + 1, inRows - 1)
                let tb = y - Double(top)
                let (tbF, invTbF) = (Float(tb), Float(1 - tb))
                for c in 0..<vectorColumns {
                    let l = lefts[c], (lr, invLr) = (rightWeights[c], leftWeights[c])
                    // dlib's order: ((tlf tl + trf tr) + blf bl) + brf br, each product rounded.
                    let a = (invTbF * invLr) * sample(top, l), b = (invTbF * lr) * sample(top, l + 1)
                    let d = (tbF * invLr) * sample(bottom, l), e = (tbF * lr) * sample(bottom, l + 1)
                    let value = ((a + b) + d) + e
                    store(r, c, integral ? value.rounded(.towardZero) : value)
                }
                for (i, x) in tailX.enumerated() {
                    let c = vectorColumns + i
                    let left = Int(x.rounded(.down)), right = min(left + 1, inColumns - 1)
                    if integral {
                        let lr = x - Double(left)
                        let value = (1 - tb) * ((1 - lr) * Double(sample(top, left)) + lr * Double(sample(top, right)))
                            + tb * ((1 - lr) * Double(sample(bottom, left)) + lr * Double(sample(bottom, right)))
                        store(r, c, Float(value.rounded(.towardZero)))
                    } else {
                        let lr = Float(x - Double(left))
                        let upper = (1 - lr) * sample(top, left) + lr * sample(top, right)
                        let lower = (1 - lr) * sample(bottom, left) + lr * sample(bottom, right)
                        store(r, c, Float((1 - tb) * Double(upper) + tb * Double(lower)))
                    }
                }
            }
        }
        let parts = outRows * outColumns >= 1 << 16 ? min(ProcessInfo.processInfo.activeProcessorCount, outRows) : 1
        if parts == 1 {
            rows(0..<outRows)
        } else {
            withoutActuallyEscaping(rows) { rows in
                // Each part writes its own rows of the destination.
                nonisolated(unsafe) let rows = rows
                DispatchQueue.concurrentPerform(iterations: parts) { part in
                    rows((part * outRows / parts)..<((part + 1) * outRows / parts))
                }
            }
        }
    }

    /// dlib's pyramid_up with pyramid_down<2> on an RGB image: 2 W + 2 columns by 2 H + 1 rows
    /// (the rectangle pyramid_down<2> maps back up, rounded), filled by resize_image.
    static func pyramidUp(_ image: Image) -> Image {
        precondition(image.layout == .rgb)
        let (inColumns, inRows) = (image.width, image.height)
        let (outColumns, outRows) = (2 * inColumns + 2, 2 * inRows + 1)
        var out = [UInt8](repeating: 0, count: outColumns * outRows * 3)
        image.pixels.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                for channel in 0..<3 {
                    resize(inRows: inRows, inColumns: inColumns, outRows: outRows, outColumns: outColumns, integral: true,
                           sample: { Float(source[($0 * inColumns + $1) * 3 + channel]) },
                           store: { target[($0 * outColumns + $1) * 3 + channel] = UInt8($2) })
                }
            }
        }
        return Image(width: outColumns, height: outRows, layout: .rgb, pixels: out)
    }

    /// A float plane resized into another (dlib's tt::resize_bilinear on the tiled pyramid).
    static func resizePlane(_ source: UnsafePointer<Float>, rows: Int, columns: Int, rowStride: Int,
                            into target: UnsafeMutablePointer<Float>, rows outRows: Int, columns outColumns: Int, rowStride outStride: Int) {
        resize(inRows: rows, inColumns: columns, outRows: outRows, outColumns: outColumns, integral: false,
               sample: { source[$0 * rowStride + $1] }, store: { target[$0 * outStride + $1] = $2 })
    }
}
