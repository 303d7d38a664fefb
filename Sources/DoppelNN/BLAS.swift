// SPDX-License-Identifier: MIT
import CBLAS

/// Row-major single-precision matrix products through OpenBLAS, with a naive reference
/// beside each kernel (the tests compare the two).
enum BLAS {
    enum Transpose {
        case none, transposed
        var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
    }

    /// C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C, all row-major.
    /// `lda`, `ldb`, `ldc` are the row strides of A, B and C as stored (before op).
    @inline(__always)
    static func gemm(
        _ transA: Transpose, _ transB: Transpose,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS leaves C untouched when k = 0 only if beta = 1; make beta's meaning explicit.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
            return
        }
        cblas_sgemm(
            CblasRowMajor, transA.cblas, transB.cblas,
            Int32(m), Int32(n), Int32(k),
            alpha,
            a, Int32(lda),
            b, Int32(ldb),
            beta,
            c, Int32(ldc))
    }

    /// The algorithmic reference for `gemm`: the same contract, three loops, Double accumulation.
    static func gemmNaive(
        _ transA: Transpose, _ transB: Transpose,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    let aValue = transA == .none ? a[i * lda + p] : a[p * lda + i]
                    let bValue = transB == .none ? b[p * ldb + j] : b[j * ldb + p]
                    sum += Double(aValue) * Double(bValue)
                }
                c[i * ldc + j] = alpha * Float(sum) + beta * c[i * ldc + j]
            }
        }
    }

    /// y[m] = alpha * op(A) x + beta * y, A row-major [rows, columns] with row stride `lda`.
    @inline(__always)
    static func gemv(
        _ trans: Transpose, rows: Int, columns: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        x: UnsafePointer<Float>, beta: Float,
        y: UnsafeMutablePointer<Float>
    ) {
        guard rows > 0, columns > 0 else { return }
        cblas_sgemv(CblasRowMajor, trans.cblas, Int32(rows), Int32(columns), alpha, a, Int32(lda), x, 1, beta, y, 1)
    }
}

extension BLAS {
    /// y += alpha x over `count` floats.
    static func axpy(count: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        cblas_saxpy(Int32(count), alpha, x, 1, y, 1)
    }
}
