using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Backprop.Backends.Cpu;

// Register-blocked micro-kernels: C[MR x NR] = alpha * Apanel * Bpanel + beta * C, where Apanel is
// kc columns of MR values, strideA apart, and Bpanel kc rows of NR values, strideB apart: packed
// panels (see GemmPacking) have strides MR and NR, but a transposed A or a plain B can also be
// read in place, which the small-k path does. The
// accumulators are separate locals so RyuJIT keeps every one in its own register; the broadcast of
// each A value is loaded once and feeds all the vectors of its row. beta == 0 never reads C, so
// NaN or garbage there cannot leak into the result.
//
// AggressiveOptimization skips tier-0: these loops run once per tile and would otherwise spend
// their first few thousand calls in unoptimized code with every accumulator on the stack.
// The kernels are written out in full (one statement per FMA) because that is what RyuJIT turns
// into straight register code; the AVX-512 one runs at 99% of the FMA peak on cached panels.
internal static unsafe class GemmMicroKernels
{
    /// <summary>AVX-512 12x32 micro-kernel: 24 zmm accumulators, 2 B vectors and a broadcast (27 of 32 registers).</summary>
    /// <remarks>
    /// Writes only the first <paramref name="rows"/> rows and <paramref name="cols"/> columns of C (masked
    /// stores), so edge tiles go straight to C; the panels themselves must hold a full 12×32 tile.
    /// 6x64, 8x48 and 14x32 measured the same (~99% of peak with panels in L1/L2); 12x32 wastes
    /// less on narrow layers (n padded to 32, not 64) and keeps the L1-resident A panel small.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512Kernel12x32(nint kc, float* a, nint strideA, float* b, nint strideB, float* c, nint ldc, float alpha, float beta,
        int rows, int cols) =>
        Avx512Tile12x32<Read, Read>(kc, a, strideA, b, strideB, c, ldc, alpha, beta, rows, cols, null, null);

    /// <summary>
    /// <see cref="Avx512Kernel12x32"/> on a full 32-column panel of B read where it lies (rows
    /// <paramref name="strideB"/> apart), writing the panel packed (32 floats per k step) to
    /// <paramref name="packedB"/> as it goes: the first row of tiles packs B for the others.
    /// </summary>
    /// <remarks>
    /// Packing B on its own reads a source that is often out of cache at 12-13 GB/s while the FMA
    /// units idle; here the loads are the kernel's own, prefetched <see cref="PackBAhead"/> rows
    /// ahead, and overlap the arithmetic (+1-2% on 1024³ products, alternating runs).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512Kernel12x32PackB(nint kc, float* a, nint strideA, float* b, nint strideB, float* c, nint ldc, float alpha, float beta,
        int rows, float* packedB) =>
        Avx512Tile12x32<Read, Pack>(kc, a, strideA, b, strideB, c, ldc, alpha, beta, rows, 32, packedB, null);

    /// <summary>
    /// <see cref="Avx512Kernel12x32"/> on 12 full rows of a plain A read where they lie (row r at
    /// a + r·<paramref name="lda"/>, one float further per k step), writing the micro-panel packed
    /// (12 floats per k step) to <paramref name="packedA"/>: the first tile of each row packs A for
    /// the tiles after it. With <paramref name="packedB"/> it also packs B, as
    /// <see cref="Avx512Kernel12x32PackB"/> does.
    /// </summary>
    /// <remarks>
    /// Each broadcast already loads one value of A; storing its low lane is the packing, one store
    /// per broadcast in a loop with room for more. The 12 source rows need no software prefetch
    /// (one made no difference): the hardware prefetcher follows them.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512Kernel12x32PackA(nint kc, float* a, nint lda, float* b, nint strideB, float* c, nint ldc, float alpha, float beta,
        int cols, float* packedA, float* packedB)
    {
        if (packedB != null) Avx512Tile12x32<Pack, Pack>(kc, a, lda, b, strideB, c, ldc, alpha, beta, 12, 32, packedB, packedA);
        else Avx512Tile12x32<Pack, Read>(kc, a, lda, b, strideB, c, ldc, alpha, beta, 12, cols, null, packedA);
    }

    // How many k steps ahead the packing kernel requests B's source rows.
    private const int PackBAhead = 32;

    /// <summary>Whether the 12×32 kernel also writes the panel of A (or B) it reads to a packed buffer.</summary>
    private interface IPanel
    {
        static abstract bool Packs { get; }
    }

    private struct Read : IPanel
    {
        public static bool Packs => false;
    }

    private struct Pack : IPanel
    {
        public static bool Packs => true;
    }

    // One body for all the 12×32 kernels; TA.Packs and TB.Packs are JIT-time constants, so each
    // instantiation compiles to its own loop with no test inside it.
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Avx512Tile12x32<TA, TB>(nint kc, float* a, nint strideA, float* b, nint strideB, float* c, nint ldc, float alpha, float beta,
        int rows, int cols, float* packedB, float* packedA) where TA : struct, IPanel where TB : struct, IPanel
    {
        Vector512<float> c0_0 = default, c0_1 = default;
        Vector512<float> c1_0 = default, c1_1 = default;
        Vector512<float> c2_0 = default, c2_1 = default;
        Vector512<float> c3_0 = default, c3_1 = default;
        Vector512<float> c4_0 = default, c4_1 = default;
        Vector512<float> c5_0 = default, c5_1 = default;
        Vector512<float> c6_0 = default, c6_1 = default;
        Vector512<float> c7_0 = default, c7_1 = default;
        Vector512<float> c8_0 = default, c8_1 = default;
        Vector512<float> c9_0 = default, c9_1 = default;
        Vector512<float> c10_0 = default, c10_1 = default;
        Vector512<float> c11_0 = default, c11_1 = default;
        PrefetchTile(c, ldc, 12, 31);
        nint ahead = TB.Packs ? strideB * PackBAhead : 0;
        // A source read in place: rows 0-5 at a + r·lda, rows 6-11 at aHi + (r - 6)·lda.
        nint l1 = strideA, l2 = 2 * strideA, l3 = 3 * strideA, l4 = 4 * strideA, l5 = 5 * strideA;
        float* aHi = TA.Packs ? a + 6 * strideA : null;
        for (; kc > 0; kc--)
        {
            if (TB.Packs)
            {
                // Three lines: a row of B off a 64-byte boundary (a managed array's) spans them.
                Sse.Prefetch0(b + ahead);
                Sse.Prefetch0(b + ahead + 16);
                Sse.Prefetch0(b + ahead + 31);
            }
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            if (TB.Packs)
            {
                Vector512.Store(b0, packedB);
                Vector512.Store(b1, packedB + 16);
                packedB += 32;
            }
            var a0 = Vector512.Create(TA.Packs ? a[0] : a[0]);
            if (TA.Packs) packedA[0] = a0.ToScalar();
            c0_0 = Avx512F.FusedMultiplyAdd(a0, b0, c0_0);
            c0_1 = Avx512F.FusedMultiplyAdd(a0, b1, c0_1);
            var a1 = Vector512.Create(TA.Packs ? a[l1] : a[1]);
            if (TA.Packs) packedA[1] = a1.ToScalar();
            c1_0 = Avx512F.FusedMultiplyAdd(a1, b0, c1_0);
            c1_1 = Avx512F.FusedMultiplyAdd(a1, b1, c1_1);
            var a2 = Vector512.Create(TA.Packs ? a[l2] : a[2]);
            if (TA.Packs) packedA[2] = a2.ToScalar();
            c2_0 = Avx512F.FusedMultiplyAdd(a2, b0, c2_0);
            c2_1 = Avx512F.FusedMultiplyAdd(a2, b1, c2_1);
            var a3 = Vector512.Create(TA.Packs ? a[l3] : a[3]);
            if (TA.Packs) packedA[3] = a3.ToScalar();
            c3_0 = Avx512F.FusedMultiplyAdd(a3, b0, c3_0);
            c3_1 = Avx512F.FusedMultiplyAdd(a3, b1, c3_1);
            var a4 = Vector512.Create(TA.Packs ? a[l4] : a[4]);
            if (TA.Packs) packedA[4] = a4.ToScalar();
            c4_0 = Avx512F.FusedMultiplyAdd(a4, b0, c4_0);
            c4_1 = Avx512F.FusedMultiplyAdd(a4, b1, c4_1);
            var a5 = Vector512.Create(TA.Packs ? a[l5] : a[5]);
            if (TA.Packs) packedA[5] = a5.ToScalar();
            c5_0 = Avx512F.FusedMultiplyAdd(a5, b0, c5_0);
            c5_1 = Avx512F.FusedMultiplyAdd(a5, b1, c5_1);
            var a6 = Vector512.Create(TA.Packs ? aHi[0] : a[6]);
            if (TA.Packs) packedA[6] = a6.ToScalar();
            c6_0 = Avx512F.FusedMultiplyAdd(a6, b0, c6_0);
            c6_1 = Avx512F.FusedMultiplyAdd(a6, b1, c6_1);
            var a7 = Vector512.Create(TA.Packs ? aHi[l1] : a[7]);
            if (TA.Packs) packedA[7] = a7.ToScalar();
            c7_0 = Avx512F.FusedMultiplyAdd(a7, b0, c7_0);
            c7_1 = Avx512F.FusedMultiplyAdd(a7, b1, c7_1);
            var a8 = Vector512.Create(TA.Packs ? aHi[l2] : a[8]);
            if (TA.Packs) packedA[8] = a8.ToScalar();
            c8_0 = Avx512F.FusedMultiplyAdd(a8, b0, c8_0);
            c8_1 = Avx512F.FusedMultiplyAdd(a8, b1, c8_1);
            var a9 = Vector512.Create(TA.Packs ? aHi[l3] : a[9]);
            if (TA.Packs) packedA[9] = a9.ToScalar();
            c9_0 = Avx512F.FusedMultiplyAdd(a9, b0, c9_0);
            c9_1 = Avx512F.FusedMultiplyAdd(a9, b1, c9_1);
            var a10 = Vector512.Create(TA.Packs ? aHi[l4] : a[10]);
            if (TA.Packs) packedA[10] = a10.ToScalar();
            c10_0 = Avx512F.FusedMultiplyAdd(a10, b0, c10_0);
            c10_1 = Avx512F.FusedMultiplyAdd(a10, b1, c10_1);
            var a11 = Vector512.Create(TA.Packs ? aHi[l5] : a[11]);
            if (TA.Packs) packedA[11] = a11.ToScalar();
            c11_0 = Avx512F.FusedMultiplyAdd(a11, b0, c11_0);
            c11_1 = Avx512F.FusedMultiplyAdd(a11, b1, c11_1);
            if (TA.Packs)
            {
                a++; aHi++;
                packedA += 12;
            }
            else a += strideA;
            b += strideB;
        }
        var va = Vector512.Create(alpha);
        if (rows < 12 || cols < 32)
        {
            // Edge tile: masked stores write only the valid corner, straight into C.
            var m0 = FirstLanes(cols);
            var m1 = FirstLanes(cols - 16);
            var vbe = Vector512.Create(beta);
            StoreEdgeRow(c0_0, c0_1, c, va, vbe, beta, m0, m1);
            if (rows > 1) StoreEdgeRow(c1_0, c1_1, c + 1 * ldc, va, vbe, beta, m0, m1);
            if (rows > 2) StoreEdgeRow(c2_0, c2_1, c + 2 * ldc, va, vbe, beta, m0, m1);
            if (rows > 3) StoreEdgeRow(c3_0, c3_1, c + 3 * ldc, va, vbe, beta, m0, m1);
            if (rows > 4) StoreEdgeRow(c4_0, c4_1, c + 4 * ldc, va, vbe, beta, m0, m1);
            if (rows > 5) StoreEdgeRow(c5_0, c5_1, c + 5 * ldc, va, vbe, beta, m0, m1);
            if (rows > 6) StoreEdgeRow(c6_0, c6_1, c + 6 * ldc, va, vbe, beta, m0, m1);
            if (rows > 7) StoreEdgeRow(c7_0, c7_1, c + 7 * ldc, va, vbe, beta, m0, m1);
            if (rows > 8) StoreEdgeRow(c8_0, c8_1, c + 8 * ldc, va, vbe, beta, m0, m1);
            if (rows > 9) StoreEdgeRow(c9_0, c9_1, c + 9 * ldc, va, vbe, beta, m0, m1);
            if (rows > 10) StoreEdgeRow(c10_0, c10_1, c + 10 * ldc, va, vbe, beta, m0, m1);
            if (rows > 11) StoreEdgeRow(c11_0, c11_1, c + 11 * ldc, va, vbe, beta, m0, m1);
            return;
        }
        if (beta == 0f)
        {
            Vector512.Store(c0_0 * va, c);
            Vector512.Store(c0_1 * va, c + 16);
            Vector512.Store(c1_0 * va, c + 1 * ldc);
            Vector512.Store(c1_1 * va, c + 1 * ldc + 16);
            Vector512.Store(c2_0 * va, c + 2 * ldc);
            Vector512.Store(c2_1 * va, c + 2 * ldc + 16);
            Vector512.Store(c3_0 * va, c + 3 * ldc);
            Vector512.Store(c3_1 * va, c + 3 * ldc + 16);
            Vector512.Store(c4_0 * va, c + 4 * ldc);
            Vector512.Store(c4_1 * va, c + 4 * ldc + 16);
            Vector512.Store(c5_0 * va, c + 5 * ldc);
            Vector512.Store(c5_1 * va, c + 5 * ldc + 16);
            Vector512.Store(c6_0 * va, c + 6 * ldc);
            Vector512.Store(c6_1 * va, c + 6 * ldc + 16);
            Vector512.Store(c7_0 * va, c + 7 * ldc);
            Vector512.Store(c7_1 * va, c + 7 * ldc + 16);
            Vector512.Store(c8_0 * va, c + 8 * ldc);
            Vector512.Store(c8_1 * va, c + 8 * ldc + 16);
            Vector512.Store(c9_0 * va, c + 9 * ldc);
            Vector512.Store(c9_1 * va, c + 9 * ldc + 16);
            Vector512.Store(c10_0 * va, c + 10 * ldc);
            Vector512.Store(c10_1 * va, c + 10 * ldc + 16);
            Vector512.Store(c11_0 * va, c + 11 * ldc);
            Vector512.Store(c11_1 * va, c + 11 * ldc + 16);
        }
        else
        {
            var vb = Vector512.Create(beta);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c0_0, va, vb * Vector512.Load(c)), c);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c0_1, va, vb * Vector512.Load(c + 16)), c + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c1_0, va, vb * Vector512.Load(c + 1 * ldc + 0)), c + 1 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c1_1, va, vb * Vector512.Load(c + 1 * ldc + 16)), c + 1 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c2_0, va, vb * Vector512.Load(c + 2 * ldc + 0)), c + 2 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c2_1, va, vb * Vector512.Load(c + 2 * ldc + 16)), c + 2 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c3_0, va, vb * Vector512.Load(c + 3 * ldc + 0)), c + 3 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c3_1, va, vb * Vector512.Load(c + 3 * ldc + 16)), c + 3 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c4_0, va, vb * Vector512.Load(c + 4 * ldc + 0)), c + 4 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c4_1, va, vb * Vector512.Load(c + 4 * ldc + 16)), c + 4 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c5_0, va, vb * Vector512.Load(c + 5 * ldc + 0)), c + 5 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c5_1, va, vb * Vector512.Load(c + 5 * ldc + 16)), c + 5 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c6_0, va, vb * Vector512.Load(c + 6 * ldc + 0)), c + 6 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c6_1, va, vb * Vector512.Load(c + 6 * ldc + 16)), c + 6 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c7_0, va, vb * Vector512.Load(c + 7 * ldc + 0)), c + 7 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c7_1, va, vb * Vector512.Load(c + 7 * ldc + 16)), c + 7 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c8_0, va, vb * Vector512.Load(c + 8 * ldc + 0)), c + 8 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c8_1, va, vb * Vector512.Load(c + 8 * ldc + 16)), c + 8 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c9_0, va, vb * Vector512.Load(c + 9 * ldc + 0)), c + 9 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c9_1, va, vb * Vector512.Load(c + 9 * ldc + 16)), c + 9 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c10_0, va, vb * Vector512.Load(c + 10 * ldc + 0)), c + 10 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c10_1, va, vb * Vector512.Load(c + 10 * ldc + 16)), c + 10 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c11_0, va, vb * Vector512.Load(c + 11 * ldc + 0)), c + 11 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c11_1, va, vb * Vector512.Load(c + 11 * ldc + 16)), c + 11 * ldc + 16);
        }
    }


    /// <summary>AVX-512 12x16 micro-kernel for panels at most 16 columns wide (narrow layers, the last panel of n = 784).</summary>
    /// <remarks>
    /// Same panels and strides as <see cref="Avx512Kernel12x32"/> (a packed B panel keeps its 32-float
    /// rows; only the first 16 lanes are read), half the multiply-adds: 12 accumulators, one B vector
    /// and 12 broadcasts per k step.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512Kernel12x16(nint kc, float* a, nint strideA, float* b, nint strideB, float* c, nint ldc, float alpha, float beta,
        int rows, int cols)
    {
        Vector512<float> c0 = default;
        Vector512<float> c1 = default;
        Vector512<float> c2 = default;
        Vector512<float> c3 = default;
        Vector512<float> c4 = default;
        Vector512<float> c5 = default;
        Vector512<float> c6 = default;
        Vector512<float> c7 = default;
        Vector512<float> c8 = default;
        Vector512<float> c9 = default;
        Vector512<float> c10 = default;
        Vector512<float> c11 = default;
        PrefetchTile(c, ldc, 12, 15);
        for (; kc > 0; kc--)
        {
            var b0 = Vector512.Load(b);
            c0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[0]), b0, c0);
            c1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[1]), b0, c1);
            c2 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[2]), b0, c2);
            c3 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[3]), b0, c3);
            c4 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[4]), b0, c4);
            c5 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[5]), b0, c5);
            c6 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[6]), b0, c6);
            c7 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[7]), b0, c7);
            c8 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[8]), b0, c8);
            c9 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[9]), b0, c9);
            c10 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[10]), b0, c10);
            c11 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[11]), b0, c11);
            a += strideA; b += strideB;
        }
        var va = Vector512.Create(alpha);
        var vb = Vector512.Create(beta);
        if (rows < 12 || cols < 16)
        {
            var m = FirstLanes(cols);
            StoreEdgeRow(c0, c + 0 * ldc, va, vb, beta, m);
            if (rows > 1) StoreEdgeRow(c1, c + 1 * ldc, va, vb, beta, m);
            if (rows > 2) StoreEdgeRow(c2, c + 2 * ldc, va, vb, beta, m);
            if (rows > 3) StoreEdgeRow(c3, c + 3 * ldc, va, vb, beta, m);
            if (rows > 4) StoreEdgeRow(c4, c + 4 * ldc, va, vb, beta, m);
            if (rows > 5) StoreEdgeRow(c5, c + 5 * ldc, va, vb, beta, m);
            if (rows > 6) StoreEdgeRow(c6, c + 6 * ldc, va, vb, beta, m);
            if (rows > 7) StoreEdgeRow(c7, c + 7 * ldc, va, vb, beta, m);
            if (rows > 8) StoreEdgeRow(c8, c + 8 * ldc, va, vb, beta, m);
            if (rows > 9) StoreEdgeRow(c9, c + 9 * ldc, va, vb, beta, m);
            if (rows > 10) StoreEdgeRow(c10, c + 10 * ldc, va, vb, beta, m);
            if (rows > 11) StoreEdgeRow(c11, c + 11 * ldc, va, vb, beta, m);
            return;
        }
        if (beta == 0f)
        {
            Vector512.Store(c0 * va, c + 0 * ldc);
            Vector512.Store(c1 * va, c + 1 * ldc);
            Vector512.Store(c2 * va, c + 2 * ldc);
            Vector512.Store(c3 * va, c + 3 * ldc);
            Vector512.Store(c4 * va, c + 4 * ldc);
            Vector512.Store(c5 * va, c + 5 * ldc);
            Vector512.Store(c6 * va, c + 6 * ldc);
            Vector512.Store(c7 * va, c + 7 * ldc);
            Vector512.Store(c8 * va, c + 8 * ldc);
            Vector512.Store(c9 * va, c + 9 * ldc);
            Vector512.Store(c10 * va, c + 10 * ldc);
            Vector512.Store(c11 * va, c + 11 * ldc);
        }
        else
        {
            Vector512.Store(Avx512F.FusedMultiplyAdd(c0, va, vb * Vector512.Load(c + 0 * ldc)), c + 0 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c1, va, vb * Vector512.Load(c + 1 * ldc)), c + 1 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c2, va, vb * Vector512.Load(c + 2 * ldc)), c + 2 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c3, va, vb * Vector512.Load(c + 3 * ldc)), c + 3 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c4, va, vb * Vector512.Load(c + 4 * ldc)), c + 4 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c5, va, vb * Vector512.Load(c + 5 * ldc)), c + 5 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c6, va, vb * Vector512.Load(c + 6 * ldc)), c + 6 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c7, va, vb * Vector512.Load(c + 7 * ldc)), c + 7 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c8, va, vb * Vector512.Load(c + 8 * ldc)), c + 8 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c9, va, vb * Vector512.Load(c + 9 * ldc)), c + 9 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c10, va, vb * Vector512.Load(c + 10 * ldc)), c + 10 * ldc);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c11, va, vb * Vector512.Load(c + 11 * ldc)), c + 11 * ldc);
        }
    }

    /// <summary>
    /// Pulls the C tile (<paramref name="rows"/> rows <paramref name="ldc"/> apart, columns 0 to
    /// <paramref name="lastColumn"/>) toward L1 before the k loop: its rows are far apart (often in
    /// L3 or DRAM), and waiting for them at write-back would stall hundreds of cycles per tile.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchTile(float* c, nint ldc, int rows, int lastColumn)
    {
        for (int r = 0; r < rows; r++, c += ldc)
        {
            // Every 64-byte line the row touches, whatever its alignment.
            for (int j = 0; j < lastColumn; j += 16) Sse.Prefetch0(c + j);
            Sse.Prefetch0(c + lastColumn);
        }
    }

    /// <summary>C[0..16 (m lanes)] = alpha·x + beta·C under a mask: lanes outside it are neither read nor written.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreEdgeRow(Vector512<float> x, float* c, Vector512<float> va, Vector512<float> vb, float beta, Vector512<float> m)
    {
        if (beta == 0f) Avx512F.MaskStore(c, m, x * va);
        else Avx512F.MaskStore(c, m, Avx512F.FusedMultiplyAdd(x, va, vb * Avx512F.MaskLoad(c, m, Vector512<float>.Zero)));
    }

    /// <summary>A mask (all bits set) on lanes [0, count) of a 16-lane vector; none for count ≤ 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> FirstLanes(int count) =>
        Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();

    /// <summary>C[0..16·(m0, m1 lanes)] = alpha·(x0, x1) + beta·C under masks: lanes outside them are neither read nor written.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreEdgeRow(Vector512<float> x0, Vector512<float> x1, float* c, Vector512<float> va,
        Vector512<float> vb, float beta, Vector512<float> m0, Vector512<float> m1)
    {
        if (beta == 0f)
        {
            Avx512F.MaskStore(c, m0, x0 * va);
            Avx512F.MaskStore(c + 16, m1, x1 * va);
        }
        else
        {
            var z = Vector512<float>.Zero;
            Avx512F.MaskStore(c, m0, Avx512F.FusedMultiplyAdd(x0, va, vb * Avx512F.MaskLoad(c, m0, z)));
            Avx512F.MaskStore(c + 16, m1, Avx512F.FusedMultiplyAdd(x1, va, vb * Avx512F.MaskLoad(c + 16, m1, z)));
        }
    }

    /// <summary>AVX2+FMA 6x16 micro-kernel: 12 accumulators, 2 B vectors and a broadcast fill the 16 ymm registers.</summary>
    /// <remarks>
    /// Writes only the first <paramref name="rows"/> rows and <paramref name="cols"/> columns of C (masked
    /// stores), so edge tiles go straight to C; the panels themselves must hold a full 6×16 tile.
    /// The AVX2 twin of <see cref="Avx512Kernel12x32"/>, with the same packing variants.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx2Kernel6x16(nint kc, float* a, nint strideA, float* b, nint strideB, float* c, nint ldc, float alpha, float beta,
        int rows, int cols) =>
        Avx2Tile6x16<Read, Read>(kc, a, strideA, b, strideB, c, ldc, alpha, beta, rows, cols, null, null);

    /// <summary>
    /// <see cref="Avx2Kernel6x16"/> on a full 16-column panel of B read where it lies (rows
    /// <paramref name="strideB"/> apart), writing the panel packed (16 floats per k step) to
    /// <paramref name="packedB"/> as it goes, as <see cref="Avx512Kernel12x32PackB"/> does.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx2Kernel6x16PackB(nint kc, float* a, nint strideA, float* b, nint strideB, float* c, nint ldc, float alpha, float beta,
        int rows, float* packedB) =>
        Avx2Tile6x16<Read, Pack>(kc, a, strideA, b, strideB, c, ldc, alpha, beta, rows, 16, packedB, null);

    /// <summary>
    /// <see cref="Avx2Kernel6x16"/> on 6 full rows of a plain A read where they lie (row r at
    /// a + r·<paramref name="lda"/>), writing the micro-panel packed (6 floats per k step) to
    /// <paramref name="packedA"/>, as <see cref="Avx512Kernel12x32PackA"/> does; with
    /// <paramref name="packedB"/> it also packs B.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx2Kernel6x16PackA(nint kc, float* a, nint lda, float* b, nint strideB, float* c, nint ldc, float alpha, float beta,
        int cols, float* packedA, float* packedB)
    {
        if (packedB != null) Avx2Tile6x16<Pack, Pack>(kc, a, lda, b, strideB, c, ldc, alpha, beta, 6, 16, packedB, packedA);
        else Avx2Tile6x16<Pack, Read>(kc, a, lda, b, strideB, c, ldc, alpha, beta, 6, cols, null, packedA);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Avx2Tile6x16<TA, TB>(nint kc, float* a, nint strideA, float* b, nint strideB, float* c, nint ldc, float alpha, float beta,
        int rows, int cols, float* packedB, float* packedA) where TA : struct, IPanel where TB : struct, IPanel
    {
        Vector256<float> c0_0 = default, c0_1 = default;
        Vector256<float> c1_0 = default, c1_1 = default;
        Vector256<float> c2_0 = default, c2_1 = default;
        Vector256<float> c3_0 = default, c3_1 = default;
        Vector256<float> c4_0 = default, c4_1 = default;
        Vector256<float> c5_0 = default, c5_1 = default;
        PrefetchTile(c, ldc, 6, 15);
        nint ahead = TB.Packs ? strideB * PackBAhead : 0;
        nint l1 = strideA, l2 = 2 * strideA, l3 = 3 * strideA, l4 = 4 * strideA, l5 = 5 * strideA;
        for (; kc > 0; kc--)
        {
            if (TB.Packs)
            {
                // Two lines: a row of 16 floats off a 64-byte boundary spans them.
                Sse.Prefetch0(b + ahead);
                Sse.Prefetch0(b + ahead + 15);
            }
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            if (TB.Packs)
            {
                Vector256.Store(b0, packedB);
                Vector256.Store(b1, packedB + 8);
                packedB += 16;
            }
            var a0 = Vector256.Create(TA.Packs ? a[0] : a[0]);
            if (TA.Packs) packedA[0] = a0.ToScalar();
            c0_0 = Fma.MultiplyAdd(a0, b0, c0_0);
            c0_1 = Fma.MultiplyAdd(a0, b1, c0_1);
            var a1 = Vector256.Create(TA.Packs ? a[l1] : a[1]);
            if (TA.Packs) packedA[1] = a1.ToScalar();
            c1_0 = Fma.MultiplyAdd(a1, b0, c1_0);
            c1_1 = Fma.MultiplyAdd(a1, b1, c1_1);
            var a2 = Vector256.Create(TA.Packs ? a[l2] : a[2]);
            if (TA.Packs) packedA[2] = a2.ToScalar();
            c2_0 = Fma.MultiplyAdd(a2, b0, c2_0);
            c2_1 = Fma.MultiplyAdd(a2, b1, c2_1);
            var a3 = Vector256.Create(TA.Packs ? a[l3] : a[3]);
            if (TA.Packs) packedA[3] = a3.ToScalar();
            c3_0 = Fma.MultiplyAdd(a3, b0, c3_0);
            c3_1 = Fma.MultiplyAdd(a3, b1, c3_1);
            var a4 = Vector256.Create(TA.Packs ? a[l4] : a[4]);
            if (TA.Packs) packedA[4] = a4.ToScalar();
            c4_0 = Fma.MultiplyAdd(a4, b0, c4_0);
            c4_1 = Fma.MultiplyAdd(a4, b1, c4_1);
            var a5 = Vector256.Create(TA.Packs ? a[l5] : a[5]);
            if (TA.Packs) packedA[5] = a5.ToScalar();
            c5_0 = Fma.MultiplyAdd(a5, b0, c5_0);
            c5_1 = Fma.MultiplyAdd(a5, b1, c5_1);
            if (TA.Packs)
            {
                a++;
                packedA += 6;
            }
            else a += strideA;
            b += strideB;
        }
        var va = Vector256.Create(alpha);
        if (rows < 6 || cols < 16)
        {
            // Edge tile: masked stores write only the valid corner, straight into C.
            var m0 = FirstLanes256(cols);
            var m1 = FirstLanes256(cols - 8);
            var vbe = Vector256.Create(beta);
            StoreEdgeRow(c0_0, c0_1, c + 0 * ldc, va, vbe, beta, m0, m1);
            if (rows > 1) StoreEdgeRow(c1_0, c1_1, c + 1 * ldc, va, vbe, beta, m0, m1);
            if (rows > 2) StoreEdgeRow(c2_0, c2_1, c + 2 * ldc, va, vbe, beta, m0, m1);
            if (rows > 3) StoreEdgeRow(c3_0, c3_1, c + 3 * ldc, va, vbe, beta, m0, m1);
            if (rows > 4) StoreEdgeRow(c4_0, c4_1, c + 4 * ldc, va, vbe, beta, m0, m1);
            if (rows > 5) StoreEdgeRow(c5_0, c5_1, c + 5 * ldc, va, vbe, beta, m0, m1);
            return;
        }
        if (beta == 0f)
        {
            Vector256.Store(c0_0 * va, c + 0 * ldc);
            Vector256.Store(c0_1 * va, c + 0 * ldc + 8);
            Vector256.Store(c1_0 * va, c + 1 * ldc);
            Vector256.Store(c1_1 * va, c + 1 * ldc + 8);
            Vector256.Store(c2_0 * va, c + 2 * ldc);
            Vector256.Store(c2_1 * va, c + 2 * ldc + 8);
            Vector256.Store(c3_0 * va, c + 3 * ldc);
            Vector256.Store(c3_1 * va, c + 3 * ldc + 8);
            Vector256.Store(c4_0 * va, c + 4 * ldc);
            Vector256.Store(c4_1 * va, c + 4 * ldc + 8);
            Vector256.Store(c5_0 * va, c + 5 * ldc);
            Vector256.Store(c5_1 * va, c + 5 * ldc + 8);
        }
        else
        {
            var vb = Vector256.Create(beta);
            Vector256.Store(Fma.MultiplyAdd(c0_0, va, vb * Vector256.Load(c + 0 * ldc)), c + 0 * ldc);
            Vector256.Store(Fma.MultiplyAdd(c0_1, va, vb * Vector256.Load(c + 0 * ldc + 8)), c + 0 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(c1_0, va, vb * Vector256.Load(c + 1 * ldc)), c + 1 * ldc);
            Vector256.Store(Fma.MultiplyAdd(c1_1, va, vb * Vector256.Load(c + 1 * ldc + 8)), c + 1 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(c2_0, va, vb * Vector256.Load(c + 2 * ldc)), c + 2 * ldc);
            Vector256.Store(Fma.MultiplyAdd(c2_1, va, vb * Vector256.Load(c + 2 * ldc + 8)), c + 2 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(c3_0, va, vb * Vector256.Load(c + 3 * ldc)), c + 3 * ldc);
            Vector256.Store(Fma.MultiplyAdd(c3_1, va, vb * Vector256.Load(c + 3 * ldc + 8)), c + 3 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(c4_0, va, vb * Vector256.Load(c + 4 * ldc)), c + 4 * ldc);
            Vector256.Store(Fma.MultiplyAdd(c4_1, va, vb * Vector256.Load(c + 4 * ldc + 8)), c + 4 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(c5_0, va, vb * Vector256.Load(c + 5 * ldc)), c + 5 * ldc);
            Vector256.Store(Fma.MultiplyAdd(c5_1, va, vb * Vector256.Load(c + 5 * ldc + 8)), c + 5 * ldc + 8);
        }
    }

    /// <summary>A mask of the first <paramref name="n"/> lanes (none for n ≤ 0, all for n ≥ 8), as AVX's masked loads and stores take it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> FirstLanes256(int n) =>
        Vector256.LessThan(Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), Vector256.Create(n)).AsSingle();

    /// <summary>C[row] = alpha·(x0, x1) + beta·C[row] under two 8-lane masks: lanes outside them are neither read nor written.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreEdgeRow(Vector256<float> x0, Vector256<float> x1, float* c, Vector256<float> va, Vector256<float> vb, float beta,
        Vector256<float> m0, Vector256<float> m1)
    {
        if (beta == 0f)
        {
            Avx.MaskStore(c, m0, x0 * va);
            Avx.MaskStore(c + 8, m1, x1 * va);
        }
        else
        {
            Avx.MaskStore(c, m0, Fma.MultiplyAdd(x0, va, vb * Avx.MaskLoad(c, m0)));
            Avx.MaskStore(c + 8, m1, Fma.MultiplyAdd(x1, va, vb * Avx.MaskLoad(c + 8, m1)));
        }
    }

    /// <summary>Portable 4x(2 Vector&lt;float&gt;) micro-kernel for hardware without AVX2+FMA.</summary>
    /// <remarks>Full tiles only: <paramref name="rows"/> and <paramref name="cols"/> must be 4 and 2·Vector&lt;float&gt;.Count.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void VectorKernel4xW2(nint kc, float* a, nint strideA, float* b, nint strideB, float* c, nint ldc, float alpha, float beta,
        int rows, int cols)
    {
        Vector<float> c0_0 = default, c0_1 = default;
        Vector<float> c1_0 = default, c1_1 = default;
        Vector<float> c2_0 = default, c2_1 = default;
        Vector<float> c3_0 = default, c3_1 = default;
        for (; kc > 0; kc--)
        {
            var b0 = Vector.Load(b);
            var b1 = Vector.Load(b + Vector<float>.Count);
            var a0 = new Vector<float>(a[0]);
            c0_0 = Vector.MultiplyAddEstimate(a0, b0, c0_0);
            c0_1 = Vector.MultiplyAddEstimate(a0, b1, c0_1);
            var a1 = new Vector<float>(a[1]);
            c1_0 = Vector.MultiplyAddEstimate(a1, b0, c1_0);
            c1_1 = Vector.MultiplyAddEstimate(a1, b1, c1_1);
            var a2 = new Vector<float>(a[2]);
            c2_0 = Vector.MultiplyAddEstimate(a2, b0, c2_0);
            c2_1 = Vector.MultiplyAddEstimate(a2, b1, c2_1);
            var a3 = new Vector<float>(a[3]);
            c3_0 = Vector.MultiplyAddEstimate(a3, b0, c3_0);
            c3_1 = Vector.MultiplyAddEstimate(a3, b1, c3_1);
            a += strideA; b += strideB;
        }
        var va = new Vector<float>(alpha);
        if (beta == 0f)
        {
            Vector.Store(c0_0 * va, c);
            Vector.Store(c0_1 * va, c + Vector<float>.Count);
            Vector.Store(c1_0 * va, c + 1 * ldc);
            Vector.Store(c1_1 * va, c + 1 * ldc + Vector<float>.Count);
            Vector.Store(c2_0 * va, c + 2 * ldc);
            Vector.Store(c2_1 * va, c + 2 * ldc + Vector<float>.Count);
            Vector.Store(c3_0 * va, c + 3 * ldc);
            Vector.Store(c3_1 * va, c + 3 * ldc + Vector<float>.Count);
        }
        else
        {
            var vb = new Vector<float>(beta);
            Vector.Store(Vector.MultiplyAddEstimate(c0_0, va, vb * Vector.Load(c)), c);
            Vector.Store(Vector.MultiplyAddEstimate(c0_1, va, vb * Vector.Load(c + Vector<float>.Count)), c + Vector<float>.Count);
            Vector.Store(Vector.MultiplyAddEstimate(c1_0, va, vb * Vector.Load(c + 1 * ldc)), c + 1 * ldc);
            Vector.Store(Vector.MultiplyAddEstimate(c1_1, va, vb * Vector.Load(c + 1 * ldc + Vector<float>.Count)), c + 1 * ldc + Vector<float>.Count);
            Vector.Store(Vector.MultiplyAddEstimate(c2_0, va, vb * Vector.Load(c + 2 * ldc)), c + 2 * ldc);
            Vector.Store(Vector.MultiplyAddEstimate(c2_1, va, vb * Vector.Load(c + 2 * ldc + Vector<float>.Count)), c + 2 * ldc + Vector<float>.Count);
            Vector.Store(Vector.MultiplyAddEstimate(c3_0, va, vb * Vector.Load(c + 3 * ldc)), c + 3 * ldc);
            Vector.Store(Vector.MultiplyAddEstimate(c3_1, va, vb * Vector.Load(c + 3 * ldc + Vector<float>.Count)), c + 3 * ldc + Vector<float>.Count);
        }
    }
}

/// <summary>Dot-product micro-kernel for op(B) = Bᵀ: each C element is a dot product of an A row and a B row.</summary>
internal static unsafe class GemmDotKernels
{
    /// <summary>
    /// C[r, j] = alpha·dot(a + r·lda, b + j·ldb over k) + beta·C[r, j] for r &lt; rows ≤ 4, j &lt; cols ≤ 4:
    /// 16 zmm accumulators, 8 loads per 16 FMAs, one masked step for the k remainder.
    /// </summary>
    /// <remarks>
    /// Missing rows and columns repeat row or column 0 (always valid memory) and are not stored.
    /// The 16 sums are reduced four at a time into one 128-bit vector per row of C.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512Dot4x4(nint k, float* a, nint lda, float* b, nint ldb, float* c, nint ldc,
        float alpha, float beta, int rows, int cols)
    {
        float* a0 = a, a1 = rows > 1 ? a + lda : a, a2 = rows > 2 ? a + 2 * lda : a, a3 = rows > 3 ? a + 3 * lda : a;
        float* b0 = b, b1 = cols > 1 ? b + ldb : b, b2 = cols > 2 ? b + 2 * ldb : b, b3 = cols > 3 ? b + 3 * ldb : b;
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        nint q = 0;
        for (; q + 16 <= k; q += 16)
        {
            var y0 = Vector512.Load(b0 + q);
            var y1 = Vector512.Load(b1 + q);
            var y2 = Vector512.Load(b2 + q);
            var y3 = Vector512.Load(b3 + q);
            var x = Vector512.Load(a0 + q);
            c00 = Avx512F.FusedMultiplyAdd(x, y0, c00); c01 = Avx512F.FusedMultiplyAdd(x, y1, c01);
            c02 = Avx512F.FusedMultiplyAdd(x, y2, c02); c03 = Avx512F.FusedMultiplyAdd(x, y3, c03);
            x = Vector512.Load(a1 + q);
            c10 = Avx512F.FusedMultiplyAdd(x, y0, c10); c11 = Avx512F.FusedMultiplyAdd(x, y1, c11);
            c12 = Avx512F.FusedMultiplyAdd(x, y2, c12); c13 = Avx512F.FusedMultiplyAdd(x, y3, c13);
            x = Vector512.Load(a2 + q);
            c20 = Avx512F.FusedMultiplyAdd(x, y0, c20); c21 = Avx512F.FusedMultiplyAdd(x, y1, c21);
            c22 = Avx512F.FusedMultiplyAdd(x, y2, c22); c23 = Avx512F.FusedMultiplyAdd(x, y3, c23);
            x = Vector512.Load(a3 + q);
            c30 = Avx512F.FusedMultiplyAdd(x, y0, c30); c31 = Avx512F.FusedMultiplyAdd(x, y1, c31);
            c32 = Avx512F.FusedMultiplyAdd(x, y2, c32); c33 = Avx512F.FusedMultiplyAdd(x, y3, c33);
        }
        if (q < k)
        {
            // Masked loads read nothing past the end of a row, so the last row of a matrix is safe.
            var m = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create((int)(k - q))).AsSingle();
            var z = Vector512<float>.Zero;
            var y0 = Avx512F.MaskLoad(b0 + q, m, z);
            var y1 = Avx512F.MaskLoad(b1 + q, m, z);
            var y2 = Avx512F.MaskLoad(b2 + q, m, z);
            var y3 = Avx512F.MaskLoad(b3 + q, m, z);
            var x = Avx512F.MaskLoad(a0 + q, m, z);
            c00 = Avx512F.FusedMultiplyAdd(x, y0, c00); c01 = Avx512F.FusedMultiplyAdd(x, y1, c01);
            c02 = Avx512F.FusedMultiplyAdd(x, y2, c02); c03 = Avx512F.FusedMultiplyAdd(x, y3, c03);
            x = Avx512F.MaskLoad(a1 + q, m, z);
            c10 = Avx512F.FusedMultiplyAdd(x, y0, c10); c11 = Avx512F.FusedMultiplyAdd(x, y1, c11);
            c12 = Avx512F.FusedMultiplyAdd(x, y2, c12); c13 = Avx512F.FusedMultiplyAdd(x, y3, c13);
            x = Avx512F.MaskLoad(a2 + q, m, z);
            c20 = Avx512F.FusedMultiplyAdd(x, y0, c20); c21 = Avx512F.FusedMultiplyAdd(x, y1, c21);
            c22 = Avx512F.FusedMultiplyAdd(x, y2, c22); c23 = Avx512F.FusedMultiplyAdd(x, y3, c23);
            x = Avx512F.MaskLoad(a3 + q, m, z);
            c30 = Avx512F.FusedMultiplyAdd(x, y0, c30); c31 = Avx512F.FusedMultiplyAdd(x, y1, c31);
            c32 = Avx512F.FusedMultiplyAdd(x, y2, c32); c33 = Avx512F.FusedMultiplyAdd(x, y3, c33);
        }
        StoreRow(Sum4(c00, c01, c02, c03), c, alpha, beta, cols);
        if (rows > 1) StoreRow(Sum4(c10, c11, c12, c13), c + ldc, alpha, beta, cols);
        if (rows > 2) StoreRow(Sum4(c20, c21, c22, c23), c + 2 * ldc, alpha, beta, cols);
        if (rows > 3) StoreRow(Sum4(c30, c31, c32, c33), c + 3 * ldc, alpha, beta, cols);
    }

    /// <summary>(Σx0, Σx1, Σx2, Σx3): pairwise interleaved adds, then the four 128-bit lanes folded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Sum4(Vector512<float> x0, Vector512<float> x1, Vector512<float> x2, Vector512<float> x3)
    {
        var t0 = Avx512F.UnpackLow(x0, x1) + Avx512F.UnpackHigh(x0, x1);   // x0 x1 x0 x1 per lane
        var t1 = Avx512F.UnpackLow(x2, x3) + Avx512F.UnpackHigh(x2, x3);   // x2 x3 x2 x3
        var u = Avx512F.Shuffle(t0, t1, 0x44) + Avx512F.Shuffle(t0, t1, 0xEE); // x0 x1 x2 x3
        var v = u.GetLower() + u.GetUpper();
        return v.GetLower() + v.GetUpper();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(Vector128<float> s, float* c, float alpha, float beta, int cols)
    {
        s *= Vector128.Create(alpha);
        if (cols == 4)
        {
            if (beta != 0f) s += Vector128.Create(beta) * Vector128.Load(c);
            Vector128.Store(s, c);
            return;
        }
        for (int j = 0; j < cols; j++)
            c[j] = beta == 0f ? s.GetElement(j) : s.GetElement(j) + beta * c[j];
    }
}
