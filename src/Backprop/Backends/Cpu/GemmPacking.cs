using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Backprop.Backends.Cpu;

// Packing turns a block of op(A) or op(B) into the layout the micro-kernel streams through:
// consecutive micro-panels of `width` (MR or NR) lanes, each stored k-major, i.e.
// panel[p * width + lane]. Lanes past the matrix edge are zero so the kernel can always run a
// full tile; only the write-back is trimmed. Both packers read the stored (possibly transposed)
// layout directly, so no transpose is ever materialized.
internal static unsafe class GemmPacking
{
    /// <summary>Packs op(A)[i0..i0+mc, p0..p0+kc] into MR-row micro-panels.</summary>
    public static void PackA(bool transA, float* a, nint lda, int i0, int mc, int p0, int kc, int mr, float* dst)
    {
        if (mr <= 16 && Avx512F.IsSupported)
        {
            if (transA)
                PackRowsNarrow(a + p0 * lda + i0, lda, kc, mc, mr, dst);
            else
                for (int ir = 0; ir < mc; ir += mr)
                    TransposePanel16(a + (i0 + ir) * lda + p0, lda, Math.Min(mr, mc - ir), kc, mr, dst + (nint)ir * kc);
            return;
        }
        for (int ir = 0; ir < mc; ir += mr)
        {
            int rows = Math.Min(mr, mc - ir);
            float* d = dst + (nint)ir * kc;
            if (transA)
                CopyPanel(a + p0 * lda + i0 + ir, lda, kc, rows, mr, d);
            else
                TransposePanel(a + (i0 + ir) * lda + p0, lda, rows, kc, mr, d);
        }
    }

    /// <summary>Packs op(B)[p0..p0+kc, j0..j0+nc] into NR-column micro-panels.</summary>
    public static void PackB(bool transB, float* b, nint ldb, int p0, int kc, int j0, int nc, int nr, float* dst)
    {
        if (!transB && nr == 32 && Vector512.IsHardwareAccelerated)
        {
            PackRows32(b + p0 * ldb + j0, ldb, kc, nc, dst);
            return;
        }
        if (transB && nr % 16 == 0 && Avx512F.IsSupported)
        {
            for (int jr = 0; jr < nc; jr += nr)
            {
                float* src = b + (j0 + jr) * ldb + p0;
                float* d = dst + (nint)jr * kc;
                int cols = Math.Min(nr, nc - jr);
                for (int g = 0; g < nr; g += 16)
                    TransposePanel16(src + g * ldb, ldb, Math.Clamp(cols - g, 0, 16), kc, nr, d + g);
            }
            return;
        }
        for (int jr = 0; jr < nc; jr += nr)
        {
            int cols = Math.Min(nr, nc - jr);
            float* d = dst + (nint)jr * kc;
            if (transB)
                TransposePanel(b + (j0 + jr) * ldb + p0, ldb, cols, kc, nr, d);
            else
                CopyPanel(b + p0 * ldb + j0 + jr, ldb, kc, cols, nr, d);
        }
    }

    /// <summary>CopyPanel for every 32-wide panel of a kc×nc block at once, walking each source row left to right.</summary>
    private static void PackRows32(float* src, nint ld, int kc, int nc, float* dst)
    {
        // At most PanelGroup panels per sweep: see PackRowsNarrow.
        for (int j = 0; j < nc; j += 32 * PanelGroup)
            PackRows32Group(src + j, ld, kc, Math.Min(32 * PanelGroup, nc - j), dst + (nint)j * kc);
    }

    private static void PackRows32Group(float* src, nint ld, int kc, int nc, float* dst)
    {
        // Reading whole rows keeps the source access sequential (prefetcher- and TLB-friendly);
        // going panel by panel instead would touch kc distant rows for every 128 bytes copied.
        int full = nc / 32, rest = nc - full * 32;
        nint panelStride = (nint)kc * 32;
        for (int p = 0; p < kc; p++, src += ld)
        {
            float* d = dst + p * 32;
            float* s = src;
            for (int jp = 0; jp < full; jp++, s += 32, d += panelStride)
            {
                Vector512.Store(Vector512.Load(s), d);
                Vector512.Store(Vector512.Load(s + 16), d + 16);
            }
            if (rest > 0)
            {
                if (Avx512F.IsSupported)
                {
                    var z = Vector512<float>.Zero;
                    Vector512.Store(Avx512F.MaskLoad(s, GemmMicroKernels.FirstLanes(rest), z), d);
                    Vector512.Store(Avx512F.MaskLoad(s + 16, GemmMicroKernels.FirstLanes(rest - 16), z), d + 16);
                    continue;
                }
                int j = 0;
                for (; j < rest; j++) d[j] = s[j];
                for (; j < 32; j++) d[j] = 0f;
            }
        }
    }

    /// <summary>CopyPanel for every panel of width ≤ 16 of a kc×mc block, walking source rows left to right.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackRowsNarrow(float* src, nint ld, int kc, int mc, int width, float* dst)
    {
        // One masked load and store per panel row: a 12-wide row is neither a vector nor a half.
        // Panels go PanelGroup at a time: their destinations are kc·width floats apart, which for
        // kc = 256 or 512 puts every panel's current row in the same L1 set, so more streams
        // than the cache has ways (12) would evict each other (43 panels ran 6× slower).
        int panels = (mc + width - 1) / width;
        nint panelStride = (nint)kc * width;
        var widthMask = GemmMicroKernels.FirstLanes(width);
        for (int g = 0; g < panels; g += PanelGroup)
        {
            int gEnd = Math.Min(panels, g + PanelGroup);
            int full = Math.Min(gEnd, mc / width);
            var restMask = GemmMicroKernels.FirstLanes(mc - (gEnd - 1) * width);
            float* s0 = src + g * width;
            float* d0 = dst + g * panelStride;
            for (int p = 0; p < kc; p++, s0 += ld, d0 += width)
            {
                float* s = s0, d = d0;
                int ip = g;
                for (; ip < full; ip++, s += width, d += panelStride)
                    Avx512F.MaskStore(d, widthMask, Avx512F.MaskLoad(s, widthMask, Vector512<float>.Zero));
                if (ip < gEnd)
                    Avx512F.MaskStore(d, widthMask, Avx512F.MaskLoad(s, restMask, Vector512<float>.Zero));
            }
        }
    }

    // Panels packed together from each source row (see PackRowsNarrow).
    private const int PanelGroup = 8;

    /// <summary>
    /// dst[p * width + r] = src[r * ld + p] for r &lt; valid (≤ 16), zero for valid ≤ r &lt; min(16, width),
    /// through 16×16 register transposes. Lanes from 16 on in each destination row are not written.
    /// </summary>
    /// <remarks>
    /// Every store writes a destination row's whole 64-byte run at once; the 4×4 version wrote each
    /// row in 16-byte pieces, a kc-long sweep apart, so for kc of a few hundred the partly written
    /// lines left L1 between pieces (3-4× slower on transposed B).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransposePanel16(float* src, nint ld, int valid, int kc, int width, float* dst)
    {
        int lanes = Math.Min(16, width);
        int p = 0;
        for (; p + 16 <= kc; p += 16)
            Transpose16(src + p, ld, valid, 16, dst + (nint)p * width, width, lanes);
        if (p < kc)
            Transpose16(src + p, ld, valid, kc - p, dst + (nint)p * width, width, lanes);
    }

    /// <summary>
    /// Transposes the block s[r * ld + q] (r &lt; rows, q &lt; cols; zero for r ≥ rows) into
    /// d[q * dstride + r] for q &lt; cols, writing the first <paramref name="lanes"/> lanes of each row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Transpose16(float* s, nint ld, int rows, int cols, float* d, nint dstride, int lanes)
    {
        Vector512<float> v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15;
        if (rows == 16 && cols == 16)
        {
            v0 = Vector512.Load(s); v1 = Vector512.Load(s + ld);
            v2 = Vector512.Load(s + 2 * ld); v3 = Vector512.Load(s + 3 * ld);
            v4 = Vector512.Load(s + 4 * ld); v5 = Vector512.Load(s + 5 * ld);
            v6 = Vector512.Load(s + 6 * ld); v7 = Vector512.Load(s + 7 * ld);
            v8 = Vector512.Load(s + 8 * ld); v9 = Vector512.Load(s + 9 * ld);
            v10 = Vector512.Load(s + 10 * ld); v11 = Vector512.Load(s + 11 * ld);
            v12 = Vector512.Load(s + 12 * ld); v13 = Vector512.Load(s + 13 * ld);
            v14 = Vector512.Load(s + 14 * ld); v15 = Vector512.Load(s + 15 * ld);
        }
        else
        {
            var m = GemmMicroKernels.FirstLanes(cols);
            var z = Vector512<float>.Zero;
            v0 = rows > 0 ? Avx512F.MaskLoad(s, m, z) : z;
            v1 = rows > 1 ? Avx512F.MaskLoad(s + ld, m, z) : z;
            v2 = rows > 2 ? Avx512F.MaskLoad(s + 2 * ld, m, z) : z;
            v3 = rows > 3 ? Avx512F.MaskLoad(s + 3 * ld, m, z) : z;
            v4 = rows > 4 ? Avx512F.MaskLoad(s + 4 * ld, m, z) : z;
            v5 = rows > 5 ? Avx512F.MaskLoad(s + 5 * ld, m, z) : z;
            v6 = rows > 6 ? Avx512F.MaskLoad(s + 6 * ld, m, z) : z;
            v7 = rows > 7 ? Avx512F.MaskLoad(s + 7 * ld, m, z) : z;
            v8 = rows > 8 ? Avx512F.MaskLoad(s + 8 * ld, m, z) : z;
            v9 = rows > 9 ? Avx512F.MaskLoad(s + 9 * ld, m, z) : z;
            v10 = rows > 10 ? Avx512F.MaskLoad(s + 10 * ld, m, z) : z;
            v11 = rows > 11 ? Avx512F.MaskLoad(s + 11 * ld, m, z) : z;
            v12 = rows > 12 ? Avx512F.MaskLoad(s + 12 * ld, m, z) : z;
            v13 = rows > 13 ? Avx512F.MaskLoad(s + 13 * ld, m, z) : z;
            v14 = rows > 14 ? Avx512F.MaskLoad(s + 14 * ld, m, z) : z;
            v15 = rows > 15 ? Avx512F.MaskLoad(s + 15 * ld, m, z) : z;
        }
        // Stage 1: interleave row pairs within 128-bit lanes: (a0 b0 a1 b1), (a2 b2 a3 b3).
        var t0 = Avx512F.UnpackLow(v0, v1); var t1 = Avx512F.UnpackHigh(v0, v1);
        var t2 = Avx512F.UnpackLow(v2, v3); var t3 = Avx512F.UnpackHigh(v2, v3);
        var t4 = Avx512F.UnpackLow(v4, v5); var t5 = Avx512F.UnpackHigh(v4, v5);
        var t6 = Avx512F.UnpackLow(v6, v7); var t7 = Avx512F.UnpackHigh(v6, v7);
        var t8 = Avx512F.UnpackLow(v8, v9); var t9 = Avx512F.UnpackHigh(v8, v9);
        var t10 = Avx512F.UnpackLow(v10, v11); var t11 = Avx512F.UnpackHigh(v10, v11);
        var t12 = Avx512F.UnpackLow(v12, v13); var t13 = Avx512F.UnpackHigh(v12, v13);
        var t14 = Avx512F.UnpackLow(v14, v15); var t15 = Avx512F.UnpackHigh(v14, v15);
        // Stage 2: u[4g + c] holds, in 128-bit lane L, column 4L + c of rows 4g..4g+3.
        var u0 = Avx512F.Shuffle(t0, t2, 0x44); var u1 = Avx512F.Shuffle(t0, t2, 0xEE);
        var u2 = Avx512F.Shuffle(t1, t3, 0x44); var u3 = Avx512F.Shuffle(t1, t3, 0xEE);
        var u4 = Avx512F.Shuffle(t4, t6, 0x44); var u5 = Avx512F.Shuffle(t4, t6, 0xEE);
        var u6 = Avx512F.Shuffle(t5, t7, 0x44); var u7 = Avx512F.Shuffle(t5, t7, 0xEE);
        var u8 = Avx512F.Shuffle(t8, t10, 0x44); var u9 = Avx512F.Shuffle(t8, t10, 0xEE);
        var u10 = Avx512F.Shuffle(t9, t11, 0x44); var u11 = Avx512F.Shuffle(t9, t11, 0xEE);
        var u12 = Avx512F.Shuffle(t12, t14, 0x44); var u13 = Avx512F.Shuffle(t12, t14, 0xEE);
        var u14 = Avx512F.Shuffle(t13, t15, 0x44); var u15 = Avx512F.Shuffle(t13, t15, 0xEE);
        // Stages 3-4: gather lane L of u[c], u[4 + c], u[8 + c], u[12 + c] into output row 4L + c.
        var w0 = Avx512F.Shuffle4x128(u0, u4, 0x88); var x0 = Avx512F.Shuffle4x128(u8, u12, 0x88);
        var w1 = Avx512F.Shuffle4x128(u1, u5, 0x88); var x1 = Avx512F.Shuffle4x128(u9, u13, 0x88);
        var w2 = Avx512F.Shuffle4x128(u2, u6, 0x88); var x2 = Avx512F.Shuffle4x128(u10, u14, 0x88);
        var w3 = Avx512F.Shuffle4x128(u3, u7, 0x88); var x3 = Avx512F.Shuffle4x128(u11, u15, 0x88);
        var y0 = Avx512F.Shuffle4x128(u0, u4, 0xDD); var z0 = Avx512F.Shuffle4x128(u8, u12, 0xDD);
        var y1 = Avx512F.Shuffle4x128(u1, u5, 0xDD); var z1 = Avx512F.Shuffle4x128(u9, u13, 0xDD);
        var y2 = Avx512F.Shuffle4x128(u2, u6, 0xDD); var z2 = Avx512F.Shuffle4x128(u10, u14, 0xDD);
        var y3 = Avx512F.Shuffle4x128(u3, u7, 0xDD); var z3 = Avx512F.Shuffle4x128(u11, u15, 0xDD);
        var o0 = Avx512F.Shuffle4x128(w0, x0, 0x88); var o8 = Avx512F.Shuffle4x128(w0, x0, 0xDD);
        var o1 = Avx512F.Shuffle4x128(w1, x1, 0x88); var o9 = Avx512F.Shuffle4x128(w1, x1, 0xDD);
        var o2 = Avx512F.Shuffle4x128(w2, x2, 0x88); var o10 = Avx512F.Shuffle4x128(w2, x2, 0xDD);
        var o3 = Avx512F.Shuffle4x128(w3, x3, 0x88); var o11 = Avx512F.Shuffle4x128(w3, x3, 0xDD);
        var o4 = Avx512F.Shuffle4x128(y0, z0, 0x88); var o12 = Avx512F.Shuffle4x128(y0, z0, 0xDD);
        var o5 = Avx512F.Shuffle4x128(y1, z1, 0x88); var o13 = Avx512F.Shuffle4x128(y1, z1, 0xDD);
        var o6 = Avx512F.Shuffle4x128(y2, z2, 0x88); var o14 = Avx512F.Shuffle4x128(y2, z2, 0xDD);
        var o7 = Avx512F.Shuffle4x128(y3, z3, 0x88); var o15 = Avx512F.Shuffle4x128(y3, z3, 0xDD);
        if (cols == 16 && lanes == 16)
        {
            Vector512.Store(o0, d); Vector512.Store(o1, d + dstride);
            Vector512.Store(o2, d + 2 * dstride); Vector512.Store(o3, d + 3 * dstride);
            Vector512.Store(o4, d + 4 * dstride); Vector512.Store(o5, d + 5 * dstride);
            Vector512.Store(o6, d + 6 * dstride); Vector512.Store(o7, d + 7 * dstride);
            Vector512.Store(o8, d + 8 * dstride); Vector512.Store(o9, d + 9 * dstride);
            Vector512.Store(o10, d + 10 * dstride); Vector512.Store(o11, d + 11 * dstride);
            Vector512.Store(o12, d + 12 * dstride); Vector512.Store(o13, d + 13 * dstride);
            Vector512.Store(o14, d + 14 * dstride); Vector512.Store(o15, d + 15 * dstride);
            return;
        }
        var lm = GemmMicroKernels.FirstLanes(lanes);
        Avx512F.MaskStore(d, lm, o0);
        if (cols > 1) Avx512F.MaskStore(d + dstride, lm, o1);
        if (cols > 2) Avx512F.MaskStore(d + 2 * dstride, lm, o2);
        if (cols > 3) Avx512F.MaskStore(d + 3 * dstride, lm, o3);
        if (cols > 4) Avx512F.MaskStore(d + 4 * dstride, lm, o4);
        if (cols > 5) Avx512F.MaskStore(d + 5 * dstride, lm, o5);
        if (cols > 6) Avx512F.MaskStore(d + 6 * dstride, lm, o6);
        if (cols > 7) Avx512F.MaskStore(d + 7 * dstride, lm, o7);
        if (cols > 8) Avx512F.MaskStore(d + 8 * dstride, lm, o8);
        if (cols > 9) Avx512F.MaskStore(d + 9 * dstride, lm, o9);
        if (cols > 10) Avx512F.MaskStore(d + 10 * dstride, lm, o10);
        if (cols > 11) Avx512F.MaskStore(d + 11 * dstride, lm, o11);
        if (cols > 12) Avx512F.MaskStore(d + 12 * dstride, lm, o12);
        if (cols > 13) Avx512F.MaskStore(d + 13 * dstride, lm, o13);
        if (cols > 14) Avx512F.MaskStore(d + 14 * dstride, lm, o14);
        if (cols > 15) Avx512F.MaskStore(d + 15 * dstride, lm, o15);
    }

    /// <summary>dst[p * width + j] = src[p * ld + j] for j &lt; valid, zero up to width.</summary>
    private static void CopyPanel(float* src, nint ld, int kc, int valid, int width, float* dst)
    {
        if (valid == width && width == 32 && Vector512.IsHardwareAccelerated)
        {
            for (int p = 0; p < kc; p++, src += ld, dst += 32)
            {
                Vector512.Store(Vector512.Load(src), dst);
                Vector512.Store(Vector512.Load(src + 16), dst + 16);
            }
            return;
        }
        if (valid == width && width == 16 && Vector256.IsHardwareAccelerated)
        {
            for (int p = 0; p < kc; p++, src += ld, dst += 16)
            {
                Vector256.Store(Vector256.Load(src), dst);
                Vector256.Store(Vector256.Load(src + 8), dst + 8);
            }
            return;
        }
        int w = Vector<float>.Count;
        for (int p = 0; p < kc; p++, src += ld, dst += width)
        {
            int j = 0;
            for (; j + w <= valid; j += w) Vector.Store(Vector.Load(src + j), dst + j);
            for (; j < valid; j++) dst[j] = src[j];
            for (; j < width; j++) dst[j] = 0f;
        }
    }

    /// <summary>dst[p * width + r] = src[r * ld + p] for r &lt; valid, zero up to width.</summary>
    private static void TransposePanel(float* src, nint ld, int valid, int kc, int width, float* dst)
    {
        int r = 0;
        if (Sse.IsSupported)
        {
            // 4x4 register transposes: reads stay sequential along each source row and every
            // store writes four packed lanes, several times faster than moving scalars.
            int kc4 = kc & ~3;
            for (; r + 4 <= valid; r += 4)
            {
                float* s0 = src + r * ld, s1 = s0 + ld, s2 = s1 + ld, s3 = s2 + ld;
                float* d = dst + r;
                nint step = width;
                int p = 0;
                for (; p < kc4; p += 4)
                {
                    var r0 = Sse.LoadVector128(s0 + p);
                    var r1 = Sse.LoadVector128(s1 + p);
                    var r2 = Sse.LoadVector128(s2 + p);
                    var r3 = Sse.LoadVector128(s3 + p);
                    var t0 = Sse.UnpackLow(r0, r1);
                    var t1 = Sse.UnpackLow(r2, r3);
                    var t2 = Sse.UnpackHigh(r0, r1);
                    var t3 = Sse.UnpackHigh(r2, r3);
                    float* dp = d + p * step;
                    Sse.Store(dp, Sse.MoveLowToHigh(t0, t1));
                    Sse.Store(dp + step, Sse.MoveHighToLow(t1, t0));
                    Sse.Store(dp + 2 * step, Sse.MoveLowToHigh(t2, t3));
                    Sse.Store(dp + 3 * step, Sse.MoveHighToLow(t3, t2));
                }
                for (; p < kc; p++)
                {
                    float* dp = d + p * step;
                    dp[0] = s0[p]; dp[1] = s1[p]; dp[2] = s2[p]; dp[3] = s3[p];
                }
            }
        }
        for (; r < valid; r++)
        {
            float* s = src + r * ld;
            for (int p = 0; p < kc; p++) dst[(nint)p * width + r] = s[p];
        }
        if (valid < width)
        {
            for (int p = 0; p < kc; p++)
                new Span<float>(dst + (nint)p * width + valid, width - valid).Clear();
        }
    }
}

/// <summary>Per-thread, 64-byte-aligned packing buffers, grown on demand and reused across calls.</summary>
/// <remarks>Held by a [ThreadStatic] field, so the finalizer frees them once their thread has exited.</remarks>
internal sealed unsafe class GemmBuffers
{
    [ThreadStatic] private static GemmBuffers? t_current;

    private float* _a, _b, _tile, _shared;
    private nint _aLength, _bLength, _tileLength, _sharedLength;
    private int* _claims;
    private int _claimsLength;

    /// <summary>The calling thread's buffers.</summary>
    public static GemmBuffers Current => t_current ??= new GemmBuffers();

    private GemmBuffers() { }

    /// <summary>Buffer for packed A (or any per-thread scratch) of at least <paramref name="floats"/> floats.</summary>
    public float* A(nint floats) => Ensure(ref _a, ref _aLength, floats);

    /// <summary>Buffer for packed B of at least <paramref name="floats"/> floats.</summary>
    public float* B(nint floats) => Ensure(ref _b, ref _bLength, floats);

    /// <summary>Buffer for an operand packed by several threads together, of at least <paramref name="floats"/> floats.</summary>
    /// <remarks>Taken by the thread that starts a parallel product; the others write to it through the job.</remarks>
    public float* Shared(nint floats) => Ensure(ref _shared, ref _sharedLength, floats);

    /// <summary>
    /// <paramref name="count"/> zeroed ints: the per-panel states of a shared operand that threads
    /// pack as they first use it (see Gemm.ProductJob).
    /// </summary>
    public int* Claims(int count)
    {
        if (count > _claimsLength)
        {
            NativeMemory.AlignedFree(_claims);
            _claims = null;
            _claimsLength = 0;
            _claims = (int*)NativeMemory.AlignedAlloc((nuint)count * sizeof(int), 64);
            _claimsLength = count;
        }
        new Span<int>(_claims, count).Clear();
        return _claims;
    }

    /// <summary>Scratch tile for edge write-back of at least <paramref name="floats"/> floats.</summary>
    public float* Tile(nint floats) => Ensure(ref _tile, ref _tileLength, floats);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* Ensure(ref float* p, ref nint length, nint floats)
    {
        if (floats > length) Grow(ref p, ref length, floats);
        return p;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Grow(ref float* p, ref nint length, nint floats)
    {
        NativeMemory.AlignedFree(p);
        p = null;
        length = 0;
        // Cache-line alignment keeps every packed micro-panel row on whole lines; one extra line
        // lets vector loads at the very end stay inside the allocation.
        p = (float*)NativeMemory.AlignedAlloc((nuint)(floats + 16) * sizeof(float), 64);
        length = floats;
    }

    ~GemmBuffers()
    {
        NativeMemory.AlignedFree(_a);
        NativeMemory.AlignedFree(_b);
        NativeMemory.AlignedFree(_tile);
        NativeMemory.AlignedFree(_shared);
        NativeMemory.AlignedFree(_claims);
    }
}
