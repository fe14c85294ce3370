using System.Buffers;
using System.Numerics;

namespace Backprop.Backends.Cpu;

// Double precision exists for gradient checking, where exactness matters and speed hardly does:
// a straightforward i-k-j loop (vectorized along rows of op(B)), or dot products when B is stored
// transposed. Single-threaded; same argument conventions as Sgemm.
public static unsafe partial class Gemm
{
    /// <summary>C[m×n] = alpha·op(A)·op(B) + beta·C for row-major double matrices addressed by pointers.</summary>
    public static void Dgemm(bool transA, bool transB, int m, int n, int k, double alpha, double* a, int lda,
        double* b, int ldb, double beta, double* c, int ldc)
    {
        CheckShape(transA, transB, m, n, k, lda, ldb, ldc);
        DgemmCore(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    /// <summary>C[m×n] = alpha·op(A)·op(B) + beta·C for row-major double matrices held in spans.</summary>
    public static void Dgemm(bool transA, bool transB, int m, int n, int k, double alpha, ReadOnlySpan<double> a, int lda,
        ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
    {
        CheckShape(transA, transB, m, n, k, lda, ldb, ldc);
        CheckSpans(1, transA, transB, m, n, k, a.Length, lda, 0, b.Length, ldb, 0, c.Length, ldc, 0);
        fixed (double* pa = a)
        fixed (double* pb = b)
        fixed (double* pc = c)
            DgemmCore(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
    }

    /// <summary>Batched <see cref="Dgemm(bool, bool, int, int, int, double, double*, int, double*, int, double, double*, int)"/>; a stride of 0 shares that operand.</summary>
    public static void DgemmBatched(int batch, bool transA, bool transB, int m, int n, int k, double alpha,
        double* a, int lda, long strideA, double* b, int ldb, long strideB, double beta, double* c, int ldc, long strideC)
    {
        CheckShape(transA, transB, m, n, k, lda, ldb, ldc);
        CheckBatch(batch, strideA, strideB, strideC);
        for (int i = 0; i < batch; i++)
            DgemmCore(transA, transB, m, n, k, alpha, a + i * strideA, lda, b + i * strideB, ldb, beta, c + i * strideC, ldc);
    }

    /// <summary>Span form of <see cref="DgemmBatched(int, bool, bool, int, int, int, double, double*, int, long, double*, int, long, double, double*, int, long)"/>.</summary>
    public static void DgemmBatched(int batch, bool transA, bool transB, int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, int lda, long strideA, ReadOnlySpan<double> b, int ldb, long strideB, double beta,
        Span<double> c, int ldc, long strideC)
    {
        CheckShape(transA, transB, m, n, k, lda, ldb, ldc);
        CheckBatch(batch, strideA, strideB, strideC);
        CheckSpans(batch, transA, transB, m, n, k, a.Length, lda, strideA, b.Length, ldb, strideB, c.Length, ldc, strideC);
        fixed (double* pa = a)
        fixed (double* pb = b)
        fixed (double* pc = c)
            for (int i = 0; i < batch; i++)
                DgemmCore(transA, transB, m, n, k, alpha, pa + i * strideA, lda, pb + i * strideB, ldb, beta, pc + i * strideC, ldc);
    }

    private static void DgemmCore(bool transA, bool transB, int m, int n, int k, double alpha, double* a, nint lda,
        double* b, nint ldb, double beta, double* c, nint ldc)
    {
        if (m == 0 || n == 0) return;
        for (int i = 0; i < m; i++)
        {
            var row = new Span<double>(c + i * ldc, n);
            if (beta == 0) row.Clear();
            else if (beta != 1) System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
        if (k == 0 || alpha == 0) return;

        nint aRow = transA ? 1 : lda, aCol = transA ? lda : 1;
        int w = Vector<double>.Count;
        if (!transB)
        {
            for (int i = 0; i < m; i++)
            {
                double* ci = c + i * ldc;
                for (int q = 0; q < k; q++)
                {
                    double s = alpha * a[i * aRow + q * aCol];
                    double* bq = b + q * ldb;
                    var vs = new Vector<double>(s);
                    int j = 0;
                    for (; j + w <= n; j += w)
                        Vector.Store(Vector.Load(ci + j) + vs * Vector.Load(bq + j), ci + j);
                    for (; j < n; j++) ci[j] += s * bq[j];
                }
            }
            return;
        }

        // op(B) column j is stored row j of B: each C element is a dot product of contiguous rows.
        double[] rented = ArrayPool<double>.Shared.Rent(k);
        try
        {
            fixed (double* row = rented)
            {
                for (int i = 0; i < m; i++)
                {
                    for (int q = 0; q < k; q++) row[q] = a[i * aRow + q * aCol];
                    double* ci = c + i * ldc;
                    for (int j = 0; j < n; j++)
                    {
                        double* bj = b + j * ldb;
                        var acc = Vector<double>.Zero;
                        int q = 0;
                        for (; q + w <= k; q += w) acc += Vector.Load(row + q) * Vector.Load(bj + q);
                        double s = Vector.Sum(acc);
                        for (; q < k; q++) s += row[q] * bj[q];
                        ci[j] += alpha * s;
                    }
                }
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(rented);
        }
    }
}
