namespace Backprop.Backends.Cpu;

public static unsafe partial class Gemm
{
    /// <summary>
    /// C[m×n] = alpha·op(A)·op(B) + beta·C on the calling thread only, without argument checks: for kernels
    /// that already run one unit of their own parallel work per thread and multiply small tiles inside it (the
    /// fused attention's score and gradient tiles). Takes the same path <see cref="Sgemm(bool, bool, int, int, int, float, float*, int, float*, int, float, float*, int)"/> would.
    /// </summary>
    internal static void SgemmSerial(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda,
        float* b, int ldb, float beta, float* c, int ldc)
    {
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0f)
        {
            ScaleC(m, n, beta, c, ldc);
            return;
        }
        var p = new Problem(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        RunRange(Choose(ref p), ref p, 0, m, 0, n);
    }
}
