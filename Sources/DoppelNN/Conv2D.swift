// SPDX-License-Identifier: MIT

import CGEMMKernels

/// Scratch memory shared by the layers of one replica: they run one at a time, so one set of
/// im2col columns serves every convolution (a ResNet's twenty layers would otherwise keep
/// twenty 16 MB buffers each).
final class Workspace {
    let columns = FloatBuffer()
    let product = FloatBuffer()
    /// dx of a value several layers read, before it is added to what the others gave.
    let gradient = FloatBuffer()
}

/// 2-D convolution, grouped or not, by im2col + sgemm over chunks of the batch; depthwise
/// convolutions (one input channel per group) by direct loops, which a GEMM of one row
/// cannot beat.
/// x: [N, C, H, W] -> y: [N, K, H', W'],  H' = (H + 2 pad - k) / stride + 1
/// W: [K, C / G, k, k] (= [K, C/G k k] row-major), b: [K]; output channel k reads the C / G
/// input channels of its group g = k / (K / G).
///
/// For a chunk of B samples the columns are cols[C k k, B H' W'] and one GEMM per group gives
/// tmp[K/G, B H' W'] = W_g cols_g, which is then scattered to NCHW. Chunking keeps the columns
/// within `maxColumnFloats` while making late, small feature maps (3x3) one big GEMM
/// instead of many tiny ones.
final class Conv2D: Layer {
    let inputShape: TensorShape
    let outputShape: TensorShape
    let filters: Int, kernel: Int, stride: Int, padding: Int, groups: Int
    let initializer: Initializer
    /// An activation applied in the pass that adds the bias (inference plans fuse a
    /// following ReLU, hard-swish, ... this way). Training layers have none.
    var epilogue: ActivationFunction?
    /// 256 Ki floats (1 MB, a core's L2) of columns per chunk, so the GEMM reads what im2col
    /// just wrote from cache. Against 4 Mi floats (2 cores, OpenBLAS Cooperlake kernels):
    /// 4-layer 64-channel CNN on 42x42, training step on 64 pairs 116.5 -> 103.5 ms; fashion CNN
    /// 9.7 -> 9.1 ms; ResNet-18 at 3x112x112, batch 32, 343 -> 367 images/s.
    static let maxColumnFloats = 1 << 18
    /// One sample whose columns would exceed this (16 MB) is convolved in bands of output rows,
    /// each band's columns made and multiplied in turn: the tiled image pyramid of a face
    /// detector (a 640x480 photo upsampled once is 1304 x 3506) would otherwise need 450 MB of
    /// columns in one layer. Smaller maps keep one GEMM per sample.
    static let maxBandFloats = 1 << 22
    /// A band's columns: about a core's L2 (1 MB), so the product reads what im2col just
    /// wrote from cache (at least one output row, whatever its size). Against 16 MB bands the
    /// detector's 5x5 layers on that pyramid run about twice as fast.
    static let bandFloats = 1 << 18

    private let workspace: Workspace

    var token: String {
        Architecture.describe(.conv(filters: filters, kernel: kernel, stride: stride, padding: padding, groups: groups, initializer: initializer))
    }

    private var channelsPerGroup: Int { inputShape.channels / groups }
    private var filtersPerGroup: Int { filters / groups }
    /// One weight row: the inputs of one output position of one filter.
    private var patch: Int { channelsPerGroup * kernel * kernel }
    /// Rows of the im2col matrix, over every group.
    private var columnRows: Int { inputShape.channels * kernel * kernel }
    private var isDepthwise: Bool { channelsPerGroup == 1 && groups > 1 }
    /// Large feature maps make one GEMM per sample big enough and let it write NCHW directly;
    /// small ones (7x7, 3x3) are batched into one GEMM per chunk and scattered.
    private var writesPerSample: Bool { outSpatial >= 128 }
    private var outSpatial: Int { outputShape.spatial }

    var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "weight", shape: [filters, channelsPerGroup, kernel, kernel]),
         ParameterSpec(name: "bias", shape: [filters])]
    }

    /// The caller (the graph builder) has checked that the output is at least 1x1 and that
    /// the groups divide the channels and filters.
    init(input: TensorShape, filters: Int, kernel: Int, stride: Int, padding: Int, groups: Int = 1, initializer: Initializer = .he,
         workspace: Workspace = Workspace()) {
        inputShape = input
        self.filters = filters
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.groups = groups
        self.initializer = initializer
        self.workspace = workspace
        outputShape = TensorShape(channels: filters,
                                  height: (input.height + 2 * padding - kernel) / stride + 1,
                                  width: (input.width + 2 * padding - kernel) / stride + 1)
    }

    func initialize(_ parameters: UnsafeMutablePointer<Float>, using generator: inout SeededGenerator) {
        let count = filters * patch
        switch initializer {
        case .he: heNormal(parameters, count: count, fanIn: patch, using: &generator)
        case .glorot:
            glorotUniform(parameters, count: count, fanIn: patch, fanOut: filtersPerGroup * kernel * kernel, using: &generator)
        }
        (parameters + count).update(repeating: 0, count: filters)
    }

    /// Output rows per band when one sample is convolved in bands (`bandFloats`).
    private var bandRows: Int {
        max(1, min(outputShape.height, Self.bandFloats / max(1, columnRows * outputShape.width)))
    }

    /// Whether one sample's columns are too large to make at once.
    private var convolvesInBands: Bool { columnRows * outSpatial > Self.maxBandFloats && !isDepthwise }

    private func chunkSize(batch: Int) -> Int {
        max(1, min(batch, Self.maxColumnFloats / max(1, columnRows * outSpatial)))
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        let weight = parameters, bias = parameters + filters * patch
        if isDepthwise {
            depthwiseForward(x, y, batch: batch, weight: weight, bias: bias)
            return
        }
        let (kg, cg) = (filtersPerGroup, patch)
        if kernel == 1 && stride == 1 && padding == 0 && writesPerSample {
            // A pointwise convolution's columns are its input: y_b[K/G, HW] = b + W_g x_{g,b}[C/G, HW].
            for b in 0..<batch {
                writeSample(y + b * outputShape.count, columns: x + b * inputShape.count, rowStride: outSpatial, weight: weight, bias: bias)
            }
            return
        }
        if convolvesInBands {
            let band = bandRows
            let cols = workspace.columns.reserve(columnRows * band * outputShape.width)
            for b in 0..<batch {
                let out = y + b * outputShape.count
                for k in 0..<filters { (out + k * outSpatial).update(repeating: bias[k], count: outSpatial) }
                for first in Swift.stride(from: 0, to: outputShape.height, by: band) {
                    let rows = first..<min(first + band, outputShape.height)
                    im2col(x + b * inputShape.count, samples: 1, outputRows: rows, compact: true, into: cols)
                    multiplyBand(rows, columns: cols, weight: weight, into: out)
                }
                epilogue?.apply(out, out, count: outputShape.count)
            }
            return
        }
        let chunk = chunkSize(batch: batch)
        let cols = workspace.columns.reserve(columnRows * chunk * outSpatial)
        let tmp = workspace.product.reserve(filters * chunk * outSpatial)
        var start = 0
        while start < batch {
            let count = min(chunk, batch - start)
            let width = count * outSpatial
            im2col(x + start * inputShape.count, samples: count, into: cols)
            if writesPerSample {
                for b in 0..<count {
                    writeSample(y + (start + b) * outputShape.count, columns: cols + b * outSpatial, rowStride: width, weight: weight, bias: bias)
                }
            } else {
                // tmp[K, B H'W'] = W_g[K/G, C/G kk] cols_g[C/G kk, B H'W'] per group, then
                // scattered to NCHW with the bias.
                for g in 0..<groups {
                    BLAS.gemm(
                        .none, .none,
                        m: kg, n: width, k: cg,
                        a: weight + g * kg * cg, lda: cg,
                        b: cols + g * cg * width, ldb: width,
                        beta: 0,
                        c: tmp + g * kg * width, ldc: width)
                }
                for b in 0..<count {
                    let out = y + (start + b) * outputShape.count
                    for k in 0..<filters {
                        let source = tmp + k * width + b * outSpatial
                        let destination = out + k * outSpatial
                        let bk = bias[k]
                        for i in 0..<outSpatial { destination[i] = source[i] + bk }
                    }
                    epilogue?.apply(out, out, count: outputShape.count)
                }
            }
            start += count
        }
    }

    // MARK: one image by packed weights

    /// Whether the packed-weights kernel (`forwardPacked`) has a vector body here (under the
    /// `DOPPEL_KERNELS` ceiling); otherwise BLAS runs one image as it runs a batch.
    static var packedKernelAvailable: Bool { doppel_gemm_level() > 0 }

    /// Floats of the packed copy of this layer's weights (`packWeights`); nil when the layer is
    /// grouped, which the packed path does not take.
    var packedWeightFloats: Int? { groups == 1 ? doppel_gemm_packed_floats(filters, patch) : nil }

    /// The weights [K, C k k] in the packed kernel's layout.
    func packWeights(_ weight: UnsafePointer<Float>, into packed: UnsafeMutablePointer<Float>) {
        doppel_gemm_pack(weight, filters, patch, patch, packed)
    }

    /// Reserves the im2col columns of one image, before `parts` pieces of `forwardPacked`
    /// share them (each its own bands when the map is convolved in bands).
    func reserveColumnsForOneImage(parts: Int) {
        if isThin { return }
        _ = workspace.columns.reserve(convolvesInBands ? parts * columnRows * bandRows * outputShape.width : columnRows * outSpatial)
    }

    /// Phases of one image by `forwardPacked` over `parts` pieces each: a wide map is one phase
    /// split by output rows (each piece writes its own im2col columns, then multiplies them); a
    /// thin one writes the columns by input channels first, then multiplies by filters (one
    /// phase when pointwise: its columns are its input).
    func packedPhases(parts: Int) -> Int {
        isWideForPacking(parts: parts) || isPointwise || isThin ? 1 : 2
    }

    private var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }

    /// A filter or two at stride 1 (a detector's score map): convolved directly by shifted
    /// rows (`thinRows`). im2col would write C k k copies of the map to multiply each by one
    /// weight row, which costs more than the arithmetic.
    private var isThin: Bool { filters <= 2 && stride == 1 && kernel > 1 && groups == 1 }

    /// At least 32 columns a piece, the kernel's tiles being 16 wide.
    private func isWideForPacking(parts: Int) -> Bool {
        parts == 1 || (outputShape.height >= parts && outSpatial >= 32 * parts)
    }

    /// Piece `piece` of `parts` of phase `phase` (`packedPhases`) of one image, y[K, H'W'] = b + W
    /// cols[C k k, H'W'], by the kernel that reads weights packed once (`packWeights`) instead of
    /// BLAS, which copies them into its own layout on every call (for a late ResNet layer at one
    /// image, as long as the multiplication itself). Every piece of a phase must have finished
    /// before the next phase starts; `reserveColumnsForOneImage` must have run.
    func forwardPacked(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, packed: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                       phase: Int, piece: Int, parts: Int) {
        precondition(groups == 1, "grouped convolutions take the BLAS path")
        let columns = workspace.columns.pointer
        let b: UnsafePointer<Float> = isPointwise ? x : UnsafePointer(columns)
        let (outH, outW) = (outputShape.height, outputShape.width)
        let panels = (filters + Int(DOPPEL_GEMM_PANEL_ROWS) - 1) / Int(DOPPEL_GEMM_PANEL_ROWS)
        if isThin {
            thinRows(x, y, packed: packed, bias: bias, rows: share(of: outH, piece: piece, parts: parts))
        } else if isWideForPacking(parts: parts) && convolvesInBands && !isPointwise {
            // Each piece makes and multiplies its rows band by band in its own part of the columns.
            let band = bandRows
            let own = columns + piece * columnRows * band * outW
            let rows = share(of: outH, piece: piece, parts: parts)
            for start in Swift.stride(from: rows.lowerBound, to: rows.upperBound, by: band) {
                let part = start..<min(start + band, rows.upperBound)
                im2col(x, samples: 1, outputRows: part, compact: true, into: own)
                let (first, count) = (part.lowerBound * outW, part.count * outW)
                doppel_gemm_packed(packed, filters, patch, 0, panels, own, count, count, bias, y + first, outSpatial)
                if let epilogue {
                    for k in 0..<filters { epilogue.apply(y + k * outSpatial + first, y + k * outSpatial + first, count: count) }
                }
            }
        } else if isWideForPacking(parts: parts) {
            let rows = share(of: outH, piece: piece, parts: parts)
            if !isPointwise { im2col(x, samples: 1, outputRows: rows, into: columns) }
            let (first, count) = (rows.lowerBound * outW, rows.count * outW)
            doppel_gemm_packed(packed, filters, patch, 0, panels, b + first, outSpatial, count, bias, y + first, outSpatial)
            if let epilogue {
                for k in 0..<filters { epilogue.apply(y + k * outSpatial + first, y + k * outSpatial + first, count: count) }
            }
        } else if phase == 0 && !isPointwise {
            im2col(x, samples: 1, channels: share(of: inputShape.channels, piece: piece, parts: parts), into: columns)
        } else {
            let ownPanels = share(of: panels, piece: piece, parts: parts)
            let (firstPanel, endPanel) = (ownPanels.lowerBound, ownPanels.upperBound)
            doppel_gemm_packed(packed, filters, patch, firstPanel, endPanel, b, outSpatial, outSpatial, bias, y, outSpatial)
            let firstRow = firstPanel * Int(DOPPEL_GEMM_PANEL_ROWS), endRow = min(filters, endPanel * Int(DOPPEL_GEMM_PANEL_ROWS))
            if let epilogue, endRow > firstRow {
                let start = y + firstRow * outSpatial
                epilogue.apply(start, start, count: (endRow - firstRow) * outSpatial)
            }
        }
    }

    /// Output rows `rows` of a thin convolution (`isThin`), every filter: for each input
    /// channel and kernel tap, one multiply-add of a shifted input row into the output row,
    /// which stays in L1 meanwhile. The weights are read from their packed panel (one panel,
    /// the filters being fewer than its rows).
    private func thinRows(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, packed: UnsafePointer<Float>,
                          bias: UnsafePointer<Float>, rows: Range<Int>) {
        let (inH, inW, outW) = (inputShape.height, inputShape.width, outputShape.width)
        let panelRows = Int(DOPPEL_GEMM_PANEL_ROWS)
        for k in 0..<filters {
            for r in rows {
                let out = y + k * outSpatial + r * outW
                out.update(repeating: bias[k], count: outW)
                for c in 0..<inputShape.channels {
                    for ky in 0..<kernel {
                        let iy = r * stride + ky - padding
                        guard iy >= 0 && iy < inH else { continue }
                        let input = x + (c * inH + iy) * inW
                        for kx in 0..<kernel {
                            let weight = packed[((c * kernel + ky) * kernel + kx) * panelRows + k]
                            let shift = kx - padding
                            let first = max(0, -shift), end = min(outW, inW - shift)
                            guard first < end else { continue }
                            let source = input + shift
                            for j in first..<end { out[j] += weight * source[j] }
                        }
                    }
                }
                epilogue?.apply(out, out, count: outW)
            }
        }
    }

    /// y[K, rows] += W_g cols_g for one band of output rows whose columns are compact
    /// ([C k k, rows x W']), written in place into the sample's NCHW output.
    private func multiplyBand(_ rows: Range<Int>, columns: UnsafePointer<Float>, weight: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let (kg, cg) = (filtersPerGroup, patch)
        let width = rows.count * outputShape.width, offset = rows.lowerBound * outputShape.width
        for g in 0..<groups {
            BLAS.gemm(
                .none, .none,
                m: kg, n: width, k: cg,
                a: weight + g * kg * cg, lda: cg,
                b: columns + g * cg * width, ldb: width,
                beta: 1,
                c: out + g * kg * outSpatial + offset, ldc: outSpatial)
        }
    }

    /// One sample's output straight into NCHW: y_b[K/G, H'W'] = b + W_g[K/G, C/G kk]
    /// columns_g[C/G kk, H'W'] per group, then the epilogue. The columns' rows are `rowStride`
    /// apart (a pointwise convolution's columns are its input itself).
    private func writeSample(_ out: UnsafeMutablePointer<Float>, columns: UnsafePointer<Float>, rowStride: Int,
                             weight: UnsafePointer<Float>, bias: UnsafePointer<Float>) {
        let (kg, cg) = (filtersPerGroup, patch)
        for k in 0..<filters { (out + k * outSpatial).update(repeating: bias[k], count: outSpatial) }
        for g in 0..<groups {
            BLAS.gemm(
                .none, .none,
                m: kg, n: outSpatial, k: cg,
                a: weight + g * kg * cg, lda: cg,
                b: columns + g * cg * rowStride, ldb: rowStride,
                beta: 1,
                c: out + g * kg * outSpatial, ldc: outSpatial)
        }
        epilogue?.apply(out, out, count: outputShape.count)
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        precondition(epilogue == nil, "fused epilogues are for inference plans")
        let weight = parameters
        let dWeight = dParameters, dBias = dParameters + filters * patch
        for b in 0..<batch {
            let source = dy + b * outputShape.count
            for k in 0..<filters {
                var sum: Float = 0
                for i in 0..<outSpatial { sum += source[k * outSpatial + i] }
                dBias[k] += sum
            }
        }
        if isDepthwise {
            depthwiseBackward(x, dy, dx, batch: batch, weight: weight, dWeight: dWeight)
            return
        }
        let (kg, cg) = (filtersPerGroup, patch)
        let chunk = chunkSize(batch: batch)
        let cols = workspace.columns.reserve(columnRows * chunk * outSpatial)
        let dyT = workspace.product.reserve(filters * chunk * outSpatial)
        if let dx { dx.update(repeating: 0, count: batch * inputShape.count) }
        var start = 0
        while start < batch {
            let count = min(chunk, batch - start)
            let width = count * outSpatial
            // Columns are recomputed rather than kept from forward: cheap next to the GEMMs,
            // and training memory stays one chunk's worth.
            im2col(x + start * inputShape.count, samples: count, into: cols)
            if writesPerSample {
                for b in 0..<count {
                    let dyB = dy + (start + b) * outputShape.count
                    for g in 0..<groups {
                        // dW_g[K/G, C/G kk] += dy_{g,b}[K/G, H'W'] cols_{g,b}^T[H'W', C/G kk]
                        BLAS.gemm(
                            .none, .transposed,
                            m: kg, n: cg, k: outSpatial,
                            a: dyB + g * kg * outSpatial, lda: outSpatial,
                            b: cols + g * cg * width + b * outSpatial, ldb: width,
                            beta: 1,
                            c: dWeight + g * kg * cg, ldc: cg)
                    }
                }
                if dx != nil {
                    for b in 0..<count {
                        let dyB = dy + (start + b) * outputShape.count
                        for g in 0..<groups {
                            // dcols_{g,b}[C/G kk, H'W'] = W_g^T[C/G kk, K/G] dy_{g,b}[K/G, H'W'] (into
                            // the columns buffer, whose sample b the dW product above has used)
                            BLAS.gemm(
                                .transposed, .none,
                                m: cg, n: outSpatial, k: kg,
                                a: weight + g * kg * cg, lda: cg,
                                b: dyB + g * kg * outSpatial, ldb: outSpatial,
                                beta: 0,
                                c: cols + g * cg * width + b * outSpatial, ldc: width)
                        }
                    }
                }
            } else {
                // Gather dy to dyT[K, B H'W'] so each product is one wide GEMM.
                for b in 0..<count {
                    let source = dy + (start + b) * outputShape.count
                    for k in 0..<filters {
                        (dyT + k * width + b * outSpatial).update(from: source + k * outSpatial, count: outSpatial)
                    }
                }
                for g in 0..<groups {
                    // dW_g[K/G, C/G kk] += dyT_g[K/G, B H'W'] cols_g^T[B H'W', C/G kk]
                    BLAS.gemm(
                        .none, .transposed,
                        m: kg, n: cg, k: width,
                        a: dyT + g * kg * width, lda: width,
                        b: cols + g * cg * width, ldb: width,
                        beta: 1,
                        c: dWeight + g * kg * cg, ldc: cg)
                    if dx != nil {
                        // dcols_g[C/G kk, B H'W'] = W_g^T[C/G kk, K/G] dyT_g[K/G, B H'W'] (reusing the columns)
                        BLAS.gemm(
                            .transposed, .none,
                            m: cg, n: width, k: kg,
                            a: weight + g * kg * cg, lda: cg,
                            b: dyT + g * kg * width, ldb: width,
                            beta: 0,
                            c: cols + g * cg * width, ldc: width)
                    }
                }
            }
            if let dx { col2im(cols, samples: count, into: dx + start * inputShape.count) }
            start += count
        }
    }

    // MARK: depthwise

    /// y[n, k] = b[k] + sum over the window of w[k] x[n, k / m], m = K / C filters per channel.
    /// Each input plane is copied once into a zero-bordered plane, so every tap is a plain pass
    /// over an output row (stride 1: contiguous, vectorised); MobileNetV3-Small at 3x112x112,
    /// batch 32: the per-tap bounded loops took 54% of the forward.
    private func depthwiseForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                                  weight: UnsafePointer<Float>, bias: UnsafePointer<Float>) {
        let (h, w, oh, ow) = (inputShape.height, inputShape.width, outputShape.height, outputShape.width)
        let multiplier = filters / inputShape.channels
        let (paddedHeight, paddedWidth) = (h + 2 * padding, w + 2 * padding)
        let padded = workspace.columns.reserve(paddedHeight * paddedWidth)
        padded.update(repeating: 0, count: paddedHeight * paddedWidth)
        for n in 0..<batch {
            for c in 0..<inputShape.channels {
                let plane = x + (n * inputShape.channels + c) * h * w
                for iy in 0..<h { (padded + (iy + padding) * paddedWidth + padding).update(from: plane + iy * w, count: w) }
                for k in (c * multiplier)..<((c + 1) * multiplier) {
                    let out = y + (n * filters + k) * outSpatial
                    let taps = weight + k * kernel * kernel
                    for oy in 0..<oh {
                        let row = out + oy * ow
                        let top = UnsafePointer(padded + oy * stride * paddedWidth)
                        // Eight outputs at a time, the window's taps summed in registers.
                        var ox = 0
                        if stride == 1 {
                            while ox + 8 <= ow {
                                var sum = Vector(repeating: bias[k])
                                for ki in 0..<kernel {
                                    let source = top + ki * paddedWidth + ox
                                    for kj in 0..<kernel { sum += Vector(repeating: taps[ki * kernel + kj]) * source.vector(kj) }
                                }
                                row.store(sum, ox)
                                ox += 8
                            }
                        }
                        while ox < ow {
                            var sum = bias[k]
                            for ki in 0..<kernel {
                                let source = top + ki * paddedWidth + ox * stride
                                for kj in 0..<kernel { sum += taps[ki * kernel + kj] * source[kj] }
                            }
                            row[ox] = sum
                            ox += 1
                        }
                    }
                    epilogue?.apply(out, out, count: outSpatial)
                }
            }
        }
    }

    /// dW[k] += sum dy x over each tap's positions; dx[n, k / m] += w[k] dy, tap by tap.
    private func depthwiseBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>?,
                                   batch: Int, weight: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>) {
        let (h, w, oh, ow) = (inputShape.height, inputShape.width, outputShape.height, outputShape.width)
        let multiplier = filters / inputShape.channels
        if let dx { dx.update(repeating: 0, count: batch * inputShape.count) }
        for n in 0..<batch {
            for k in 0..<filters {
                let planeOffset = (n * inputShape.channels + k / multiplier) * h * w
                let plane = x + planeOffset
                let g = dy + (n * filters + k) * outSpatial
                for ki in 0..<kernel {
                    for kj in 0..<kernel {
                        let (first, last) = insideColumns(kj)
                        guard first <= last else { continue }
                        let tap = weight[(k * kernel + ki) * kernel + kj]
                        var dTap: Float = 0
                        for oy in 0..<oh {
                            let iy = oy * stride - padding + ki
                            guard iy >= 0, iy < h else { continue }
                            let offset = iy * w - padding + kj
                            let row = g + oy * ow
                            for ox in first...last { dTap += row[ox] * plane[offset + ox * stride] }
                            if let dx {
                                let target = dx + planeOffset + offset
                                for ox in first...last { target[ox * stride] += tap * row[ox] }
                            }
                        }
                        dWeight[(k * kernel + ki) * kernel + kj] += dTap
                    }
                }
            }
        }
    }

    // MARK: im2col

    /// Output columns ox in [first, last] whose input column ox*stride - pad + kj lies inside
    /// the image; empty when first > last. One definition for `im2col` and its adjoint.
    private func insideColumns(_ kj: Int) -> (first: Int, last: Int) {
        (max(0, (padding - kj + stride - 1) / stride), min(outputShape.width - 1, (inputShape.width - 1 + padding - kj) / stride))
    }

    /// cols[(c, ki, kj), (b, oy, ox)] = x[b, c, oy*stride - pad + ki, ox*stride - pad + kj], 0 outside;
    /// only the rows of `channels` and the columns of `outputRows` are written (all when nil).
    /// With `compact`, the columns hold only `outputRows` (rows of outputRows.count x W'), as a
    /// band's GEMM reads them; otherwise every row has its place in the full map.
    private func im2col(_ x: UnsafePointer<Float>, samples: Int, channels selected: Range<Int>? = nil, outputRows: Range<Int>? = nil,
                        compact: Bool = false, into cols: UnsafeMutablePointer<Float>) {
        let (channels, height, width) = (inputShape.channels, inputShape.height, inputShape.width)
        let (outH, outW) = (outputShape.height, outputShape.width)
        let firstRow = compact ? outputRows?.lowerBound ?? 0 : 0
        let rowLength = compact ? (outputRows?.count ?? outH) * outW : samples * outSpatial
        for c in selected ?? 0..<channels {
            for ki in 0..<kernel {
                for kj in 0..<kernel {
                    let row = cols + ((c * kernel + ki) * kernel + kj) * rowLength
                    let (first, last) = insideColumns(kj)
                    for b in 0..<samples {
                        let plane = x + (b * channels + c) * height * width
                        let out = row + b * outSpatial
                        for oy in outputRows ?? 0..<outH {
                            let iy = oy * stride - padding + ki
                            let dest = out + (oy - firstRow) * outW
                            guard iy >= 0, iy < height, first <= last else {
                                dest.update(repeating: 0, count: outW)
                                continue
                            }
                            if first > 0 { dest.update(repeating: 0, count: first) }
                            if last < outW - 1 { (dest + last + 1).update(repeating: 0, count: outW - 1 - last) }
                            let source = plane + iy * width - padding + kj
                            if stride == 1 {
                                (dest + first).update(from: source + first, count: last - first + 1)
                            } else {
                                for ox in first...last { dest[ox] = source[ox * stride] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `im2col`: dx[b, c, iy, ix] += dcols[(c, ki, kj), (b, oy, ox)].
    private func col2im(_ cols: UnsafePointer<Float>, samples: Int, into dx: UnsafeMutablePointer<Float>) {
        let (channels, height, width) = (inputShape.channels, inputShape.height, inputShape.width)
        let (outH, outW) = (outputShape.height, outputShape.width)
        let rowLength = samples * outSpatial
        for c in 0..<channels {
            for ki in 0..<kernel {
                for kj in 0..<kernel {
                    let row = cols + ((c * kernel + ki) * kernel + kj) * rowLength
                    let (first, last) = insideColumns(kj)
                    guard first <= last else { continue }
                    for b in 0..<samples {
                        let plane = dx + (b * channels + c) * height * width
                        let source = row + b * outSpatial
                        for oy in 0..<outH {
                            let iy = oy * stride - padding + ki
                            guard iy >= 0, iy < height else { continue }
                            let target = plane + iy * width - padding + kj
                            let from = source + oy * outW
                            for ox in first...last { target[ox * stride] += from[ox] }
                        }
                    }
                }
            }
        }
    }
}
