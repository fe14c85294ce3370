using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Backprop.Backends.Cpu;

// AVX-512 paths for shapes the blocked algorithm serves badly, reading operands in place:
//  - DotRange: B stored transposed with few rows of A or few rows of B (a small network's first
//    layer, x·Wᵀ with batch 10 and 16 outputs). Each C element is a dot product along k of two
//    contiguous rows; a 4×4 block of them keeps 16 accumulators busy and needs no packing at all.
//  - DirectRange: short k (dW = dYᵀ·X at batch 10, dX = dY·W through a 16-wide layer), a few
//    rows of A (B's panels would be packed for one or two row tiles), or a product too small
//    for blocking to pay. Packing would move about as many floats as the product computes
//    with; instead the 12×32 micro-kernel reads a plain B and a transposed A where they lie,
//    and only the other operand (m·k floats) and edge panels are packed. k is not blocked.
public static unsafe partial class Gemm
{
    // Shapes with k at most this take the direct path (AVX-512 only): packing B would cost about
    // as much as the multiply-adds that use it (measured on Zen 5: 16×784 by k = 10 runs 1.3×
    // faster direct, 128×1024 by k = 32 the same either way).
    internal const int SmallK = 32;

    // Products up to this many multiply-adds (about 96³, below the two-thread threshold) take the
    // direct path whatever their shape: 64³ runs 5-15% faster than packed, 128³ the same.
    internal const long DirectMnk = 96 * 96 * 96;

    // Beyond this k (and k > SmallK) the direct path's unblocked k would make its A panels
    // (12·k floats) outgrow L1 and L2; the packed path blocks k instead.
    internal const int DirectMaxK = 4096;

    // Floats of A the direct path packs at a time (1 MiB), and the dot path gathers.
    private const int DirectPackFloats = 1 << 18;

    // With B transposed, products with m or n at most this take the dot-product path: packing
    // would pad m to 12 (or n to 32) and transpose all of B for a handful of rows.
    internal const int DotMaxSide = 16;

    // Rows of B one pass of the dot-product path runs every block of A rows against: as many as
    // fill about 256 KiB, so they stay in L2 (a long B streamed from L3 once per four rows of A
    // ran out of bandwidth at m = 32).
    private const int DotBlockFloats = 1 << 16;

    /// <summary>C[m0..m1, n0..n1] by 4×4 blocks of dot products (B stored transposed).</summary>
    private static void DotRange(ref Problem p, int m0, int m1, int n0, int n1)
    {
        int k = p.K;
        float alpha = p.Alpha, beta = p.Beta;
        nint ldb = p.Ldb, ldc = p.Ldc;
        int nb = Math.Max(4, DotBlockFloats / k / 4 * 4);
        // op(A) rows of a transposed A are strided columns: they are copied, four at a time, into
        // k-major rows, a block of rows (about 1 MiB) at a time.
        int rowBlock = p.TransA ? Math.Max(4, DirectPackFloats / k / 4 * 4) : m1 - m0;
        float* gather = p.TransA ? GemmBuffers.Current.A((nint)Math.Min(rowBlock, m1 - m0) * k) : null;
        for (int ib = m0; ib < m1; ib += rowBlock)
        {
            int iEnd = Math.Min(m1, ib + rowBlock);
            float* a = p.A + ib * p.Lda;
            nint lda = p.Lda;
            if (p.TransA)
            {
                for (int i = ib; i < iEnd; i += 4)
                    GatherRows(p.A + i, p.Lda, k, Math.Min(4, iEnd - i), gather + (nint)(i - ib) * k);
                a = gather;
                lda = k;
            }
            for (int jb = n0; jb < n1; jb += nb)
            {
                int jEnd = Math.Min(n1, jb + nb);
                for (int i = ib; i < iEnd; i += 4)
                {
                    int rows = Math.Min(4, iEnd - i);
                    float* ai = a + (i - ib) * lda;
                    float* ci = p.C + i * ldc;
                    for (int j = jb; j < jEnd; j += 4)
                        GemmDotKernels.Avx512Dot4x4(k, ai, lda, p.B + j * ldb, ldb, ci + j, ldc, alpha, beta, rows, Math.Min(4, jEnd - j));
                }
            }
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

    /// <summary>C[m0..m1, n0..n1] without k blocking: the micro-kernel on operands read in place where their layout allows.</summary>
    /// <remarks>AVX-512 only: relies on the 12×32 kernel writing edge tiles itself.</remarks>
    private static void DirectRange(ref Problem p, int m0, int m1, int n0, int n1)
    {
        // Rows go in blocks whose packed A fits in about 1 MiB, so a tall product neither needs an
        // m·k buffer nor pushes the panels out of L2; B's panels are read (or packed) per block.
        int rowBlock = Math.Max(MR, DirectPackFloats / p.K / MR * MR);
        for (int i = m0; i < m1; i += rowBlock)
            DirectBlock(ref p, i, Math.Min(m1, i + rowBlock), n0, n1);
    }

    private static void DirectBlock(ref Problem p, int m0, int m1, int n0, int n1)
    {
        int mr = MR, nr = NR, k = p.K;
        var kernel = Kernel;
        var buffers = GemmBuffers.Current;
        int mPanels = (m1 - m0 + mr - 1) / mr;

        // A stride that is a multiple of 2 KiB puts the k rows of a panel read in place into a
        // few L1 sets, where they evict each other before the next panel of the other operand
        // reuses them; such an operand is packed like any other.
        static bool Benign(nint ld) => ld * sizeof(float) % 2048 != 0;

        // A: a transposed A already holds op(A) columns of a panel side by side (stride lda);
        // only a panel cut by m1 needs zero lanes. Otherwise A is packed, all of the block at once.
        bool inPlaceA = p.TransA && Benign(p.Lda);
        float* packA;
        nint strideA;
        if (inPlaceA)
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
            GemmPacking.PackA(p.TransA, p.A, p.Lda, m0, m1 - m0, 0, k, mr, packA);
            strideA = mr;
        }

        // B: a plain B holds op(B) rows of a panel side by side (stride ldb), and so does a panel
        // at most 16 wide, which the 12×16 kernel reads one vector per row. A transposed B is
        // packed, as are the panel cut by n1 and, when several row tiles reuse them, the panels
        // of a B whose stride is not benign. Columns go in blocks of about 256 KiB of B, so the
        // block stays in L2 while the row tiles run across it, each writing whole rows of C.
        bool inPlaceB = !p.TransB && (mPanels == 1 || Benign(p.Ldb));
        int nb = Math.Clamp((DirectPackFloats / 4) / k / nr * nr, nr, NC);
        float* packB = buffers.B((nint)Math.Min(nb, (n1 - n0 + nr - 1) / nr * nr) * k);
        for (int jb = n0; jb < n1; jb += nb)
        {
            int jEnd = Math.Min(n1, jb + nb);
            for (int j = jb; j < jEnd; j += nr)
            {
                int cols = Math.Min(nr, jEnd - j);
                if (!(inPlaceB && (cols == nr || cols == nr / 2)))
                    GemmPacking.PackB(p.TransB, p.B, p.Ldb, 0, k, j, cols, nr, packB + (nint)(j - jb) * k);
            }
            for (int ip = 0; ip < mPanels; ip++)
            {
                int i = m0 + ip * mr;
                int rows = Math.Min(mr, m1 - i);
                float* pa = !inPlaceA ? packA + (nint)ip * mr * k : rows == mr ? p.A + i : packA;
                nint sa = inPlaceA && rows == mr ? strideA : mr;
                for (int j = jb; j < jEnd; j += nr)
                {
                    int cols = Math.Min(nr, jEnd - j);
                    bool inPlace = inPlaceB && (cols == nr || cols == nr / 2);
                    float* pb = inPlace ? p.B + j : packB + (nint)(j - jb) * k;
                    nint sb = inPlace ? p.Ldb : nr;
                    float* pc = p.C + i * p.Ldc + j;
                    if (cols <= nr / 2) GemmMicroKernels.Avx512Kernel12x16(k, pa, sa, pb, sb, pc, p.Ldc, p.Alpha, p.Beta, rows, cols);
                    else kernel(k, pa, sa, pb, sb, pc, p.Ldc, p.Alpha, p.Beta, rows, cols);
                }
            }
        }
    }
}
