using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Backprop.Kernels;

// AVX-512 paths for shapes the blocked algorithm serves badly, reading operands in place:
//  - DotRange: B stored transposed with few rows of A or few rows of B (a small network's first
//    layer, x·Wᵀ with batch 10 and 16 outputs). Each C element is a dot product along k of two
//    contiguous rows; a 4×4 block of them keeps 16 accumulators busy and needs no packing at all.
//  - SmallKRange: short k (k ≤ SmallK, e.g. dW = dYᵀ·X at batch 10, dX = dY·W through a 16-wide
//    layer). Packing would move as many floats as the product computes with; instead the 12×32
//    micro-kernel reads a plain B and a transposed A where they lie, and only the other operand
//    (small: k floats per row) and edge panels are packed.
public static unsafe partial class Gemm
{
    // Shapes with k at most this take the small-k path (AVX-512 only). Measured on Zen 5: the
    // strided B panel (k rows, ldb apart) stays in L1 across row tiles up to here, and packing B
    // costs more than it saves below it.
    internal const int SmallK = 32;

    // With B transposed, products with m or n at most this take the dot-product path: packing
    // would pad m to 12 (or n to 32) and transpose all of B for a handful of rows.
    internal const int DotMaxSide = 16;

    /// <summary>C[m0..m1, n0..n1] by 4×4 blocks of dot products (B stored transposed).</summary>
    private static void DotRange(ref Problem p, int m0, int m1, int n0, int n1)
    {
        int k = p.K;
        float alpha = p.Alpha, beta = p.Beta;
        nint ldb = p.Ldb, ldc = p.Ldc;
        // op(A) rows of a transposed A are strided columns: copy four at a time into a k-major scratch.
        float* gather = p.TransA ? GemmBuffers.Current.A(4 * (nint)k) : null;
        for (int i = m0; i < m1; i += 4)
        {
            int rows = Math.Min(4, m1 - i);
            float* a;
            nint lda;
            if (p.TransA)
            {
                GatherRows(p.A + i, p.Lda, k, rows, gather);
                a = gather;
                lda = k;
            }
            else
            {
                a = p.A + i * p.Lda;
                lda = p.Lda;
            }
            float* ci = p.C + i * ldc;
            for (int j = n0; j < n1; j += 4)
                GemmDotKernels.Avx512Dot4x4(k, a, lda, p.B + j * ldb, ldb, ci + j, ldc, alpha, beta, rows, Math.Min(4, n1 - j));
        }
    }

    /// <summary>dst[r·k + q] = a[q·lda + r] for r &lt; rows ≤ 4, q &lt; k: four columns of a stored A as rows.</summary>
    private static void GatherRows(float* a, nint lda, int k, int rows, float* dst)
    {
        int q = 0;
        if (rows == 4)
        {
            // 4×4 register transposes; the loads stay inside the four columns.
            for (; q + 4 <= k; q += 4)
            {
                var r0 = Vector128.Load(a + q * lda);
                var r1 = Vector128.Load(a + (q + 1) * lda);
                var r2 = Vector128.Load(a + (q + 2) * lda);
                var r3 = Vector128.Load(a + (q + 3) * lda);
                var t0 = Sse.UnpackLow(r0, r1);
                var t1 = Sse.UnpackLow(r2, r3);
                var t2 = Sse.UnpackHigh(r0, r1);
                var t3 = Sse.UnpackHigh(r2, r3);
                Vector128.Store(Sse.MoveLowToHigh(t0, t1), dst + q);
                Vector128.Store(Sse.MoveHighToLow(t1, t0), dst + k + q);
                Vector128.Store(Sse.MoveLowToHigh(t2, t3), dst + 2 * k + q);
                Vector128.Store(Sse.MoveHighToLow(t3, t2), dst + 3 * k + q);
            }
        }
        for (; q < k; q++)
        {
            float* s = a + q * lda;
            for (int r = 0; r < rows; r++) dst[r * k + q] = s[r];
        }
    }

    /// <summary>C[m0..m1, n0..n1] for k ≤ <see cref="SmallK"/>: the micro-kernel on operands read in place where their layout allows.</summary>
    /// <remarks>AVX-512 only: relies on the 12×32 kernel writing edge tiles itself.</remarks>
    private static void SmallKRange(ref Problem p, int m0, int m1, int n0, int n1)
    {
        int mr = MR, nr = NR, k = p.K;
        var kernel = Kernel;
        var buffers = GemmBuffers.Current;
        int mPanels = (m1 - m0 + mr - 1) / mr;

        // A: a transposed A already holds op(A) columns of a panel side by side (stride lda);
        // only a panel cut by m1 needs zero lanes. A plain A is transposed into panels, all at once.
        float* packA;
        nint strideA;
        if (p.TransA)
        {
            int last = (mPanels - 1) * mr;
            packA = buffers.A((nint)mr * k);
            if (m1 - m0 - last < mr)
                GemmPacking.PackA(true, p.A, p.Lda, m0 + last, m1 - m0 - last, 0, k, mr, packA);
            strideA = p.Lda;
        }
        else
        {
            packA = buffers.A((nint)mPanels * mr * k);
            GemmPacking.PackA(false, p.A, p.Lda, m0, m1 - m0, 0, k, mr, packA);
            strideA = mr;
        }

        // B: a plain B holds op(B) rows of a panel side by side (stride ldb); a transposed one is
        // packed, panel by panel, as is the panel cut by n1.
        float* packB = buffers.B((nint)nr * k);
        for (int j = n0; j < n1; j += nr)
        {
            int cols = Math.Min(nr, n1 - j);
            float* pb;
            nint strideB;
            if (!p.TransB && cols == nr)
            {
                pb = p.B + j;
                strideB = p.Ldb;
            }
            else
            {
                GemmPacking.PackB(p.TransB, p.B, p.Ldb, 0, k, j, cols, nr, packB);
                pb = packB;
                strideB = nr;
            }
            for (int ip = 0; ip < mPanels; ip++)
            {
                int i = m0 + ip * mr;
                int rows = Math.Min(mr, m1 - i);
                float* pa = p.TransA ? (rows == mr ? p.A + i : packA) : packA + (nint)ip * mr * k;
                nint sa = p.TransA && rows < mr ? mr : strideA;
                float* pc = p.C + i * p.Ldc + j;
                kernel(k, pa, sa, pb, strideB, pc, p.Ldc, p.Alpha, p.Beta, rows, cols);
            }
        }
    }
}
