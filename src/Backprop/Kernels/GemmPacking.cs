using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Backprop.Kernels;

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
                int j = 0;
                for (; j < rest; j++) d[j] = s[j];
                for (; j < 32; j++) d[j] = 0f;
            }
        }
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

    private float* _a, _b, _tile;
    private nint _aLength, _bLength, _tileLength;

    /// <summary>The calling thread's buffers.</summary>
    public static GemmBuffers Current => t_current ??= new GemmBuffers();

    private GemmBuffers() { }

    /// <summary>Buffer for packed A (or any per-thread scratch) of at least <paramref name="floats"/> floats.</summary>
    public float* A(nint floats) => Ensure(ref _a, ref _aLength, floats);

    /// <summary>Buffer for packed B of at least <paramref name="floats"/> floats.</summary>
    public float* B(nint floats) => Ensure(ref _b, ref _bLength, floats);

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
    }
}
