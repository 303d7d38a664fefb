// SPDX-License-Identifier: MIT

import CGEMMKernels

/// 3x3, stride-1 convolution for inference by Winograd's minimal filtering F(2x2, 3x3)
/// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): each 2x2 block
/// of output (a tile) comes from the 4x4 input patch around it as
///     Y = A^T [ (G g G^T) . (B^T d B) ] A
/// so the 9 multiply-adds per output of a direct convolution become 16 per 4 outputs, and
/// the sum over input channels of the element-wise products is 16 GEMMs:
///     M[i][K, T] = U[i][K, C] V[i][C, T],   i = 0..<16, T = tiles in the chunk.
/// x: [N, C, H, W] -> y: [N, K, H', W'] (H' = H + 2 pad - 2);  parameters: U [16, K, C] then
/// the bias [K], made from a convolution's weights by `transformWeights` (the inference plan
/// does it once per change of the weights). The transforms use only 0, +-1 and +-1/2, so the
/// results match the direct convolution's to rounding.
/// Measured on ResNet-18 at 3x112x112, batch 32 (2 cores): see the inference plan's note.
final class WinogradConv2D: Layer {
    let inputShape: TensorShape
    let outputShape: TensorShape
    let filters: Int, padding: Int
    var epilogue: ActivationFunction?
    private let workspace: Workspace
    var token: String { Architecture.describe(.conv(filters: filters, kernel: 3, stride: 1, padding: padding, groups: 1, initializer: .he)) }
    var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "transformed", shape: [16, filters, inputShape.channels]), ParameterSpec(name: "bias", shape: [filters])]
    }
    /// 2x2 output tiles in a batch.
    func tiles(batch: Int) -> Int { batch * tilesHigh * tilesWide }
    private var tilesHigh: Int { (outputShape.height + 1) / 2 }
    private var tilesWide: Int { (outputShape.width + 1) / 2 }

    init(input: TensorShape, filters: Int, padding: Int, workspace: Workspace) {
        inputShape = input
        self.filters = filters
        self.padding = padding
        self.workspace = workspace
        outputShape = TensorShape(channels: filters, height: input.height + 2 * padding - 2, width: input.width + 2 * padding - 2)
    }

    /// U[i][k, c] = (G g_{k,c} G^T)[i] for weights g [K, C, 3, 3];  G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
    static func transformWeights(_ weight: UnsafePointer<Float>, filters: Int, channels: Int, into u: UnsafeMutablePointer<Float>) {
        let plane = filters * channels
        for k in 0..<filters {
            for c in 0..<channels {
                let g = weight + (k * channels + c) * 9
                // t = G g (4x3), then t G^T (4x4).
                var t = [Float](repeating: 0, count: 12)  // once per weight change, not per image
                for j in 0..<3 {
                    let (g0, g1, g2) = (g[j], g[3 + j], g[6 + j])
                    t[j] = g0
                    t[3 + j] = 0.5 * (g0 + g1 + g2)
                    t[6 + j] = 0.5 * (g0 - g1 + g2)
                    t[9 + j] = g2
                }
                for r in 0..<4 {
                    let (a, b, e) = (t[3 * r], t[3 * r + 1], t[3 * r + 2])
                    let values = [a, 0.5 * (a + b + e), 0.5 * (a - b + e), e]
                    for s in 0..<4 { u[(4 * r + s) * plane + k * channels + c] = values[s] }
                }
            }
        }
    }

    /// Tiles per chunk: the 16 transformed planes of input (and of output) within 256 Ki floats,
    /// a core's 1 MB L2, so the GEMMs read what the transform just wrote from cache. ResNet-18
    /// at batch 32 (images/s): 64 Ki floats 314, 256 Ki 352, 1 Mi 350, 4 Mi 327.
    static let chunkFloats = 1 << 18

    private func chunkTiles() -> Int {
        max(1, Self.chunkFloats / (16 * max(inputShape.channels, filters)))
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 parameters: UnsafePointer<Float>, mode: PassMode) {
        let (channels, k) = (inputShape.channels, filters)
        let u = parameters, bias = parameters + 16 * k * channels
        let tilesPerSample = tilesHigh * tilesWide
        let samplesPerChunk = max(1, min(batch, chunkTiles() / tilesPerSample))
        var start = 0
        while start < batch {
            let count = min(samplesPerChunk, batch - start)
            let tiles = count * tilesPerSample
            let v = workspace.columns.reserve(16 * channels * tiles)
            let m = workspace.product.reserve(16 * k * tiles)
            transformInput(x + start * inputShape.count, samples: count, into: v, tiles: tiles)
            for i in 0..<16 {
                // M[i][K, T] = U[i][K, C] V[i][C, T]
                BLAS.gemm(
                    .none, .none,
                    m: k, n: tiles, k: channels,
                    a: u + i * k * channels, lda: channels,
                    b: v + i * channels * tiles, ldb: tiles,
                    beta: 0,
                    c: m + i * k * tiles, ldc: tiles)
            }
            transformOutput(m, tiles: tiles, samples: count, bias: bias, into: y + start * outputShape.count)
            start += count
        }
    }

    // MARK: one image by packed weights

    /// Floats of the 16 transformed weight matrices packed for `CGEMMKernels` (`packTransformed`).
    static func packedTransformedFloats(filters: Int, channels: Int) -> Int { 16 * doppel_gemm_packed_floats(filters, channels) }

    /// U[i] [K, C] (`transformWeights`' output) packed, one matrix after another.
    static func packTransformed(_ u: UnsafePointer<Float>, filters: Int, channels: Int, into packed: UnsafeMutablePointer<Float>) {
        let size = doppel_gemm_packed_floats(filters, channels)
        for i in 0..<16 { doppel_gemm_pack(u + i * filters * channels, filters, channels, channels, packed + i * size) }
    }

    /// Reserves one image's transformed input and products, before pieces of `forwardPacked`
    /// share them.
    func reserveForOneImage() {
        _ = workspace.columns.reserve(16 * inputShape.channels * tiles(batch: 1))
        _ = workspace.product.reserve(16 * filters * tiles(batch: 1))
    }

    /// Phases of one image by `forwardPacked`: the input transform (split by channels), the 16
    /// products (split among the pieces), the output transform (split by filters).
    static let packedPhases = 3

    /// Piece `piece` of `parts` of phase `phase` of one image, on the 16 transformed weight
    /// matrices packed once (`packTransformed`) and the bias. Every piece of a phase must have
    /// finished before the next phase starts; `reserveForOneImage` must have run.
    func forwardPacked(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, packed: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                       phase: Int, piece: Int, parts: Int) {
        let (channels, tiles) = (inputShape.channels, tiles(batch: 1))
        let v = workspace.columns.pointer, m = workspace.product.pointer
        switch phase {
        case 0:
            transformInput(x, samples: 1, channels: share(of: channels, piece: piece, parts: parts), into: v, tiles: tiles)
        case 1:
            let size = doppel_gemm_packed_floats(filters, channels)
            let panels = (filters + Int(DOPPEL_GEMM_PANEL_ROWS) - 1) / Int(DOPPEL_GEMM_PANEL_ROWS)
            for i in share(of: 16, piece: piece, parts: parts) {
                // M[i][K, T] = U[i][K, C] V[i][C, T]
                doppel_gemm_packed(packed + i * size, filters, channels, 0, panels, v + i * channels * tiles, tiles, tiles, nil,
                                   m + i * filters * tiles, tiles)
            }
        default:
            transformOutput(m, tiles: tiles, samples: 1, bias: bias, filters: share(of: filters, piece: piece, parts: parts), into: y)
        }
    }

    /// V[i][c, t] = (B^T d B)[i] for the 4x4 patch d of tile t (zero outside the image);
    /// B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. Per input plane: every padded row is
    /// transformed along its columns once for all the tiles it meets (d B; neighbouring rows of
    /// tiles share two input rows), then each row of tiles combines four of them down the rows
    /// (B^T (d B)) into 16 contiguous runs.
    private func transformInput(_ x: UnsafePointer<Float>, samples: Int, channels selected: Range<Int>? = nil,
                                into v: UnsafeMutablePointer<Float>, tiles: Int) {
        let (channels, height, width) = (inputShape.channels, inputShape.height, inputShape.width)
        let (tilesH, tilesW) = (tilesHigh, tilesWide)
        let stride = channels * tiles
        let (paddedWidth, paddedRows) = (2 * tilesW + 2, 2 * tilesH + 2)
        // One padded row, then the column transforms of every padded row: [paddedRows][4][tilesW].
        withUnsafeTemporaryAllocation(of: Float.self, capacity: paddedWidth + paddedRows * 4 * tilesW) { scratch in
            let row = scratch.baseAddress!, columns = row + paddedWidth
            for c in selected ?? 0..<channels {
                for b in 0..<samples {
                    let plane = x + (b * channels + c) * height * width
                    for r in 0..<paddedRows {
                        let c0 = columns + 4 * r * tilesW, c1 = c0 + tilesW, c2 = c1 + tilesW, c3 = c2 + tilesW
                        let iy = r - padding
                        guard iy >= 0 && iy < height else {
                            c0.update(repeating: 0, count: 4 * tilesW)
                            continue
                        }
                        // row[j] = x[iy, j - padding], 0 outside.
                        let count = max(0, min(width, paddedWidth - padding))
                        row.update(repeating: 0, count: min(padding, paddedWidth))
                        (row + padding).update(from: plane + iy * width, count: count)
                        if padding + count < paddedWidth { (row + padding + count).update(repeating: 0, count: paddedWidth - padding - count) }
                        let source = UnsafePointer(row)
                        forEachVector(tilesW, { tx in
                            // p[0..3] of eight tiles: even and odd floats from 2 tx and 2 tx + 2.
                            let (p0, p1) = source.evenOdd(2 * tx), (p2, p3) = source.evenOdd(2 * tx + 2)
                            c0.store(p0 - p2, tx)
                            c1.store(p1 + p2, tx)
                            c2.store(p2 - p1, tx)
                            c3.store(p1 - p3, tx)
                        }, { tx in
                            let p = row + 2 * tx
                            c0[tx] = p[0] - p[2]
                            c1[tx] = p[1] + p[2]
                            c2[tx] = p[2] - p[1]
                            c3[tx] = p[1] - p[3]
                        })
                    }
                    for ty in 0..<tilesH {
                        // B^T down rows 2ty..2ty+3: V[4 i + s].
                        let base = v + c * tiles + (b * tilesH + ty) * tilesW
                        let top = columns + 4 * (2 * ty) * tilesW
                        for s in 0..<4 {
                            let d0 = top + s * tilesW, d1 = d0 + 4 * tilesW, d2 = d1 + 4 * tilesW, d3 = d2 + 4 * tilesW
                            let o0 = base + s * stride, o1 = base + (4 + s) * stride, o2 = base + (8 + s) * stride, o3 = base + (12 + s) * stride
                            forEachVector(tilesW, { tx in
                                let (a, b, c, d) = (d0.vector(tx), d1.vector(tx), d2.vector(tx), d3.vector(tx))
                                o0.store(a - c, tx)
                                o1.store(b + c, tx)
                                o2.store(c - b, tx)
                                o3.store(b - d, tx)
                            }, { tx in
                                o0[tx] = d0[tx] - d2[tx]
                                o1[tx] = d1[tx] + d2[tx]
                                o2[tx] = d2[tx] - d1[tx]
                                o3[tx] = d1[tx] - d3[tx]
                            })
                        }
                    }
                }
            }
        }
    }

    /// y[k, 2ty + a, 2tx + b] = bias[k] + (A^T m A)[a, b] for the 16 values m of (k, tile);
    /// A^T = [1 1 1 0; 0 1 -1 -1]. A row of tiles at a time: A^T down the rows (contiguous over
    /// the tiles), then A along the columns into the two output rows. Outputs past an odd
    /// edge are dropped.
    private func transformOutput(_ m: UnsafePointer<Float>, tiles: Int, samples: Int, bias: UnsafePointer<Float>,
                                 filters selected: Range<Int>? = nil, into y: UnsafeMutablePointer<Float>) {
        let (outH, outW) = (outputShape.height, outputShape.width)
        let (tilesH, tilesW) = (tilesHigh, tilesWide)
        let stride = filters * tiles
        // s[2][4][tilesW] (A^T m), then two output rows of 2 tilesW.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * tilesW + 4 * tilesW) { scratch in
            let sums = scratch.baseAddress!, outRows = sums + 8 * tilesW
            for k in selected ?? 0..<filters {
                let bk = bias[k]
                for b in 0..<samples {
                    let out = y + (b * filters + k) * outH * outW
                    for ty in 0..<tilesH {
                        let base = m + k * tiles + (b * tilesH + ty) * tilesW
                        for j in 0..<4 {
                            let m0 = base + j * stride, m1 = base + (4 + j) * stride, m2 = base + (8 + j) * stride, m3 = base + (12 + j) * stride
                            let s0 = sums + j * tilesW, s1 = sums + (4 + j) * tilesW
                            forEachVector(tilesW, { tx in
                                let (a, b, c, d) = (m0.vector(tx), m1.vector(tx), m2.vector(tx), m3.vector(tx))
                                s0.store(a + b + c, tx)
                                s1.store(b - c - d, tx)
                            }, { tx in
                                s0[tx] = m0[tx] + m1[tx] + m2[tx]
                                s1[tx] = m1[tx] - m2[tx] - m3[tx]
                            })
                        }
                        for a in 0..<2 {
                            let q0 = sums + (4 * a) * tilesW, q1 = q0 + tilesW, q2 = q1 + tilesW, q3 = q2 + tilesW
                            let row = outRows + a * 2 * tilesW
                            let biasVector = Vector(repeating: bk)
                            forEachVector(tilesW, { tx in
                                let (a, b, c, d) = (q0.vector(tx), q1.vector(tx), q2.vector(tx), q3.vector(tx))
                                row.storeInterleaved(biasVector + a + b + c, biasVector + b - c - d, 2 * tx)
                            }, { tx in
                                row[2 * tx] = bk + q0[tx] + q1[tx] + q2[tx]
                                row[2 * tx + 1] = bk + q1[tx] - q2[tx] - q3[tx]
                            })
                            let oy = 2 * ty + a
                            if oy < outH { (out + oy * outW).update(from: row, count: outW) }
                        }
                    }
                    epilogue?.apply(out, out, count: outH * outW)
                }
            }
        }
    }

    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int,
                  parameters: UnsafePointer<Float>, dParameters: UnsafeMutablePointer<Float>) {
        preconditionFailure("Winograd convolutions run in inference plans only; training uses Conv2D")
    }
}
