using System.Runtime.Intrinsics;

namespace Backprop.Backends.Cpu;

/// <summary>
/// 2-D pooling over NCHW planes: each plane is independent, so the planes are split across
/// <see cref="Threads"/>; within a plane, windows are walked row by row over the contiguous input.
/// </summary>
internal sealed partial class CpuBackend
{
    public void MaxPool2d(in View x, in View y, in View indices, in Pool2dGeometry g) => PoolRun(PoolKind.Max, x, y, indices, g);

    public void MaxPool2dBackward(in View dy, in View indices, in View dx, in Pool2dGeometry g) => PoolRun(PoolKind.MaxBackward, dy, dx, indices, g);

    public void AvgPool2d(in View x, in View y, in Pool2dGeometry g) => PoolRun(PoolKind.Avg, x, y, default, g);

    public void AvgPool2dBackward(in View dy, in View dx, in Pool2dGeometry g) => PoolRun(PoolKind.AvgBackward, dy, dx, default, g);

    private static void PoolRun(PoolKind kind, in View a, in View b, in View indices, in Pool2dGeometry g)
    {
        if (g.Planes == 0) return;
        if (a.DType == DType.Float32) PoolJob<float>.Execute(kind, a, b, indices, g);
        else PoolJob<double>.Execute(kind, a, b, indices, g);
    }
}

internal enum PoolKind { Max, MaxBackward, Avg, AvgBackward }

/// <summary>One pooling call split by planes; one reusable instance per dtype and thread, so a call allocates nothing.</summary>
internal sealed unsafe class PoolJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
{
    [ThreadStatic] private static PoolJob<T>? t_job;

    private PoolKind _kind;
    private View _a, _b, _indices; // forward: x, y, indices; backward: dy, dx, indices
    private Pool2dGeometry _g;

    public static void Execute(PoolKind kind, in View a, in View b, in View indices, in Pool2dGeometry g)
    {
        var job = t_job ??= new PoolJob<T>();
        job._kind = kind;
        job._a = a;
        job._b = b;
        job._indices = indices;
        job._g = g;
        long work = (long)g.Planes * Math.Max(g.H * g.W, g.OH * g.OW * g.KH * g.KW);
        int chunks = Math.Min(Threads.ChunksFor(work, 1 << 15), g.Planes);
        try
        {
            if (chunks <= 1) job.RunPlanes(0, g.Planes);
            else Threads.For(chunks, job);
        }
        finally
        {
            job._a = job._b = job._indices = default; // hold no buffers between calls
        }
    }

    void IParallelWork.Run(int chunk, int chunks)
    {
        int planes = _g.Planes;
        int start = (int)((long)planes * chunk / chunks), end = (int)((long)planes * (chunk + 1) / chunks);
        RunPlanes(start, end);
    }

    private void RunPlanes(int start, int end)
    {
        switch (_kind)
        {
            case PoolKind.Max:
                if (Unpadded(_g)) MaxForwardUnpadded(start, end);
                else MaxForward(start, end);
                break;
            case PoolKind.MaxBackward:
                if (Unpadded(_g) && _g.KH == _g.SH && _g.KW == _g.SW) MaxBackwardTiled(start, end);
                else MaxBackward(start, end);
                break;
            case PoolKind.Avg: AvgForward(start, end); break;
            default: AvgBackward(start, end); break;
        }
    }

    private void MaxForward(int start, int end)
    {
        var g = _g;
        var x = _a.Data<T>();
        var y = _b.Data<T>();
        var idx = _indices.Data<long>();
        int plane = g.H * g.W, oplane = g.OH * g.OW;
        // the kernel taps of each output row and column that land inside the input, computed once
        Span<int> rows = g.OH <= 512 ? stackalloc int[2 * g.OH] : new int[2 * g.OH];
        Span<int> cols = g.OW <= 512 ? stackalloc int[2 * g.OW] : new int[2 * g.OW];
        TapRange(rows, g.OH, g.H, g.SH, g.PH, g.DH, g.KH);
        TapRange(cols, g.OW, g.W, g.SW, g.PW, g.DW, g.KW);
        for (int p = start; p < end; p++)
        {
            int xo = _a._offset + p * plane, yo = _b._offset + p * oplane, io = _indices._offset + p * oplane;
            for (int oh = 0; oh < g.OH; oh++)
            {
                int hs = oh * g.SH - g.PH, kh0 = rows[2 * oh], kh1 = rows[2 * oh + 1];
                for (int ow = 0; ow < g.OW; ow++)
                {
                    int ws = ow * g.SW - g.PW, kw0 = cols[2 * ow], kw1 = cols[2 * ow + 1];
                    // start from the first tap (every window has one), then keep the first maximum; NaN wins.
                    // Selects rather than branches: on random data "v > best" is a coin toss.
                    int arg = (hs + kh0 * g.DH) * g.W + ws + kw0 * g.DW;
                    T best = x[xo + arg];
                    for (int kh = kh0; kh < kh1; kh++)
                    {
                        int row = (hs + kh * g.DH) * g.W + ws;
                        for (int kw = kw0; kw < kw1; kw++)
                        {
                            int at = row + kw * g.DW;
                            T v = x[xo + at];
                            bool take = v > best || T.IsNaN(v);
                            best = take ? v : best;
                            arg = take ? at : arg;
                        }
                    }
                    y[yo + oh * g.OW + ow] = best;
                    idx[io + oh * g.OW + ow] = arg;
                }
            }
        }
    }

    /// <summary>No padding and no dilation: every window lies inside the input, so no tap needs clipping.</summary>
    private static bool Unpadded(in Pool2dGeometry g) => g.PH == 0 && g.PW == 0 && g.DH == 1 && g.DW == 1;

    /// <summary>
    /// <see cref="MaxForward"/> for windows that lie inside the input (no padding or dilation; the preset's
    /// 2×2 stride-2 pooling), through pointers, with the 2×2 window unrolled. Same order of taps and
    /// the same rule (the first maximum, NaN wins), so the same values and indices.
    /// </summary>
    private void MaxForwardUnpadded(int start, int end)
    {
        int plane = _g.H * _g.W, oplane = _g.OH * _g.OW;
        fixed (T* px = _a.Data<T>(), py = _b.Data<T>())
        fixed (long* pi = _indices.Data<long>())
        {
            for (int p = start; p < end; p++)
                MaxPlaneUnpadded(px + _a._offset + (long)p * plane, py + _b._offset + (long)p * oplane, pi + _indices._offset + (long)p * oplane, _g);
        }
    }

    /// <summary>
    /// One plane of <see cref="MaxForwardUnpadded"/>: x [H×W] pooled into y [OH×OW] and the argmax of each
    /// window (its offset in the plane) into idx. Also the last step of the fused batch norm + ReLU + max pool,
    /// on a normalized row still in L1.
    /// </summary>
    internal static void MaxPlaneUnpadded(T* x, T* y, long* idx, in Pool2dGeometry g)
    {
        int w = g.W, oh = g.OH, ow = g.OW, kh = g.KH, kw = g.KW, sh = g.SH, sw = g.SW;
        for (int i = 0; i < oh; i++)
        {
            int r0 = i * sh * w;
            T* y_i = y + i * ow;
            long* idx_i = idx + i * ow;
            if (kh == 2 && kw == 2)
            {
                T* a = x + r0, b = a + w;
                int j0 = 0;
                if (typeof(T) == typeof(float) && sw == 2) j0 = MaxRow2x2((float*)a, (float*)b, r0, w, ow, (float*)y_i, idx_i);
                for (int j = j0, c = j0 * sw; j < ow; j++, c += sw)
                {
                    T best = a[c], v;
                    int arg = r0 + c;
                    bool take;
                    v = a[c + 1]; take = v > best || T.IsNaN(v); best = take ? v : best; arg = take ? r0 + c + 1 : arg;
                    v = b[c]; take = v > best || T.IsNaN(v); best = take ? v : best; arg = take ? r0 + w + c : arg;
                    v = b[c + 1]; take = v > best || T.IsNaN(v); best = take ? v : best; arg = take ? r0 + w + c + 1 : arg;
                    y_i[j] = best;
                    idx_i[j] = arg;
                }
                continue;
            }
            for (int j = 0; j < ow; j++)
            {
                int first = r0 + j * sw, arg = first;
                T best = x[first];
                for (int u = 0; u < kh; u++)
                    for (int t = 0; t < kw; t++)
                    {
                        int at = first + u * w + t;
                        T v = x[at];
                        bool take = v > best || T.IsNaN(v);
                        best = take ? v : best;
                        arg = take ? at : arg;
                    }
                y_i[j] = best;
                idx_i[j] = arg;
            }
        }
    }

    /// <summary>
    /// One output row of 2×2 stride-2 max pooling in float32, eight outputs at a time with 256-bit SIMD:
    /// the even and odd columns of both input rows are split apart (a permute of each half, then the
    /// halves joined), and the four taps are taken in the scalar order with the scalar rule (a later tap
    /// wins when it is larger or NaN) as lane-wise selects. Returns how many outputs it wrote (a multiple
    /// of 4, eight at a time then four); the caller finishes the row.
    /// </summary>
    private static int MaxRow2x2(float* a, float* b, int r0, int w, int ow, float* y, long* idx)
    {
        if (!Vector256.IsHardwareAccelerated) return 0;
        var lane2 = Vector256.Create(0, 2, 4, 6, 8, 10, 12, 14);
        var one = Vector256<int>.One;
        var below = Vector256.Create(w);
        int j = 0;
        for (; j + 8 <= ow; j += 8)
        {
            int c = 2 * j;
            var (a0, a1) = EvenOdd(Vector256.Load(a + c), Vector256.Load(a + c + 8)); // row 0: taps (0,0), (0,1)
            var (b0, b1) = EvenOdd(Vector256.Load(b + c), Vector256.Load(b + c + 8)); // row 1: taps (1,0), (1,1)
            var best = a0;
            var arg = Vector256<int>.Zero; // offset within the window: 0, 1, w, w + 1
            var take = (Vector256.GreaterThan(a1, best) | ~Vector256.Equals(a1, a1)).AsInt32();
            best = Vector256.ConditionalSelect(take.AsSingle(), a1, best);
            arg = Vector256.ConditionalSelect(take, one, arg);
            take = (Vector256.GreaterThan(b0, best) | ~Vector256.Equals(b0, b0)).AsInt32();
            best = Vector256.ConditionalSelect(take.AsSingle(), b0, best);
            arg = Vector256.ConditionalSelect(take, below, arg);
            take = (Vector256.GreaterThan(b1, best) | ~Vector256.Equals(b1, b1)).AsInt32();
            best = Vector256.ConditionalSelect(take.AsSingle(), b1, best);
            arg = Vector256.ConditionalSelect(take, below + one, arg);
            best.Store(y + j);
            var at = arg + lane2 + Vector256.Create(r0 + c);
            var (lo, hi) = Vector256.Widen(at);
            lo.Store(idx + j);
            hi.Store(idx + j + 4);
        }
        if (j + 4 <= ow && Vector128.IsHardwareAccelerated)
        {
            // four more (the 7 outputs a row of a 14×14 plane: four here, three scalar)
            int c = 2 * j;
            var (a0, a1) = EvenOdd(Vector128.Load(a + c), Vector128.Load(a + c + 4));
            var (b0, b1) = EvenOdd(Vector128.Load(b + c), Vector128.Load(b + c + 4));
            var one4 = Vector128<int>.One;
            var below4 = Vector128.Create(w);
            var best = a0;
            var arg = Vector128<int>.Zero;
            var take = (Vector128.GreaterThan(a1, best) | ~Vector128.Equals(a1, a1)).AsInt32();
            best = Vector128.ConditionalSelect(take.AsSingle(), a1, best);
            arg = Vector128.ConditionalSelect(take, one4, arg);
            take = (Vector128.GreaterThan(b0, best) | ~Vector128.Equals(b0, b0)).AsInt32();
            best = Vector128.ConditionalSelect(take.AsSingle(), b0, best);
            arg = Vector128.ConditionalSelect(take, below4, arg);
            take = (Vector128.GreaterThan(b1, best) | ~Vector128.Equals(b1, b1)).AsInt32();
            best = Vector128.ConditionalSelect(take.AsSingle(), b1, best);
            arg = Vector128.ConditionalSelect(take, below4 + one4, arg);
            best.Store(y + j);
            var (lo, hi) = Vector128.Widen(arg + Vector128.Create(0, 2, 4, 6) + Vector128.Create(r0 + c));
            lo.Store(idx + j);
            hi.Store(idx + j + 2);
            j += 4;
        }
        return j;
    }

    /// <summary>The even- and odd-indexed elements of the 8 floats p ++ q.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector128<float> Even, Vector128<float> Odd) EvenOdd(Vector128<float> p, Vector128<float> q)
    {
        var ps = Vector128.Shuffle(p, Vector128.Create(0, 2, 1, 3)); // p0 p2 | p1 p3
        var qs = Vector128.Shuffle(q, Vector128.Create(0, 2, 1, 3));
        return (Vector128.Create(ps.GetLower(), qs.GetLower()), Vector128.Create(ps.GetUpper(), qs.GetUpper()));
    }

    /// <summary>
    /// One input row of the 2×2 tiled backward in float32, eight windows (16 columns) at a time: each
    /// column gets its window's gradient where the window's argmax is that column, else 0; the even and
    /// odd columns are interleaved back with permutes. Returns the windows done (a multiple of 4).
    /// </summary>
    private static int ScatterRow2(float* dy, long* idx, int row, int ow, float* d)
    {
        if (!Vector256.IsHardwareAccelerated) return 0;
        var lane2 = Vector256.Create(0, 2, 4, 6, 8, 10, 12, 14);
        int j = 0;
        for (; j + 8 <= ow; j += 8)
        {
            var at = Vector256.Narrow(Vector256.Load(idx + j), Vector256.Load(idx + j + 4)) - lane2 - Vector256.Create(row + 2 * j);
            var g = Vector256.Load(dy + j);
            var even = Vector256.ConditionalSelect(Vector256.Equals(at, Vector256<int>.Zero).AsSingle(), g, Vector256<float>.Zero);
            var odd = Vector256.ConditionalSelect(Vector256.Equals(at, Vector256<int>.One).AsSingle(), g, Vector256<float>.Zero);
            Vector256.Shuffle(Vector256.Create(even.GetLower(), odd.GetLower()), Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).Store(d + 2 * j);
            Vector256.Shuffle(Vector256.Create(even.GetUpper(), odd.GetUpper()), Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).Store(d + 2 * j + 8);
        }
        if (j + 4 <= ow && Vector128.IsHardwareAccelerated)
        {
            var at = Vector128.Narrow(Vector128.Load(idx + j), Vector128.Load(idx + j + 2)) - Vector128.Create(0, 2, 4, 6) - Vector128.Create(row + 2 * j);
            var g = Vector128.Load(dy + j);
            var even = Vector128.ConditionalSelect(Vector128.Equals(at, Vector128<int>.Zero).AsSingle(), g, Vector128<float>.Zero);
            var odd = Vector128.ConditionalSelect(Vector128.Equals(at, Vector128<int>.One).AsSingle(), g, Vector128<float>.Zero);
            Vector128.Shuffle(Vector128.Create(even.GetLower(), odd.GetLower()), Vector128.Create(0, 2, 1, 3)).Store(d + 2 * j);
            Vector128.Shuffle(Vector128.Create(even.GetUpper(), odd.GetUpper()), Vector128.Create(0, 2, 1, 3)).Store(d + 2 * j + 4);
            j += 4;
        }
        return j;
    }

    /// <summary>The even- and odd-indexed elements of the 16 floats p ++ q.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float> Even, Vector256<float> Odd) EvenOdd(Vector256<float> p, Vector256<float> q)
    {
        var ps = Vector256.Shuffle(p, Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7)); // p0 p2 p4 p6 | p1 p3 p5 p7
        var qs = Vector256.Shuffle(q, Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7));
        return (Vector256.Create(ps.GetLower(), qs.GetLower()), Vector256.Create(ps.GetUpper(), qs.GetUpper()));
    }

    /// <summary>
    /// <see cref="MaxBackward"/> for windows that tile the input (kernel = stride, no padding or dilation):
    /// every input position belongs to at most one window, so dx is written once, position by position
    /// (dy at the window's argmax, 0 elsewhere and in the rows and columns no window covers), instead of
    /// cleared and then scattered into.
    /// </summary>
    private void MaxBackwardTiled(int start, int end)
    {
        int plane = _g.H * _g.W, oplane = _g.OH * _g.OW;
        fixed (T* pdy = _a.Data<T>(), pdx = _b.Data<T>())
        fixed (long* pi = _indices.Data<long>())
        {
            for (int p = start; p < end; p++)
                ScatterPlaneTiled(pdy + _a._offset + (long)p * oplane, pi + _indices._offset + (long)p * oplane, pdx + _b._offset + (long)p * plane, _g);
        }
    }

    /// <summary>
    /// One plane of <see cref="MaxBackwardTiled"/>: dx [H×W] written whole from dy [OH×OW] and the argmax
    /// offsets. Also the first step of the fused batch norm + ReLU + max pool's backward, into a row buffer.
    /// </summary>
    internal static void ScatterPlaneTiled(T* dy, long* idx, T* dx, in Pool2dGeometry g)
    {
        int h = g.H, w = g.W, oh = g.OH, ow = g.OW, kh = g.KH, kw = g.KW;
        for (int i = 0; i < oh; i++)
        {
            T* dy_i = dy + i * ow;
            long* idx_i = idx + i * ow;
            for (int u = 0; u < kh; u++)
            {
                int row = (i * kh + u) * w;
                T* d = dx + row;
                if (kw == 2)
                {
                    int j0 = typeof(T) == typeof(float) ? ScatterRow2((float*)dy_i, idx_i, row, ow, (float*)d) : 0;
                    for (int j = j0; j < ow; j++)
                    {
                        long at = idx_i[j] - row - 2 * j; // 0 or 1 when the argmax is on this row of the window
                        T v = dy_i[j];
                        d[2 * j] = at == 0 ? v : T.Zero;
                        d[2 * j + 1] = at == 1 ? v : T.Zero;
                    }
                }
                else
                {
                    for (int j = 0; j < ow; j++)
                    {
                        long at = idx_i[j] - row - kw * j;
                        T v = dy_i[j];
                        for (int t = 0; t < kw; t++) d[kw * j + t] = at == t ? v : T.Zero;
                    }
                }
                for (int t = ow * kw; t < w; t++) d[t] = T.Zero; // columns no window covers
            }
        }
        new Span<T>(dx + oh * kh * w, (h - oh * kh) * w).Clear(); // rows no window covers
    }

    /// <summary>For each output position o: the first and one-past-last kernel tap k with o·s − p + k·d inside [0, size).</summary>
    private static void TapRange(Span<int> range, int outSize, int size, int s, int p, int d, int k)
    {
        for (int o = 0; o < outSize; o++)
        {
            int first = o * s - p;
            range[2 * o] = first >= 0 ? 0 : (-first + d - 1) / d;
            range[2 * o + 1] = first > size - 1 ? 0 : Math.Min(k, (size - 1 - first) / d + 1);
        }
    }

    private void MaxBackward(int start, int end)
    {
        var g = _g;
        var dy = _a.Data<T>();
        var dx = _b.Data<T>();
        var idx = _indices.Data<long>();
        int plane = g.H * g.W, oplane = g.OH * g.OW;
        for (int p = start; p < end; p++)
        {
            int xo = _b._offset + p * plane, yo = _a._offset + p * oplane, io = _indices._offset + p * oplane;
            dx.AsSpan(xo, plane).Clear();
            for (int o = 0; o < oplane; o++) dx[xo + (int)idx[io + o]] += dy[yo + o];
        }
    }

    private void AvgForward(int start, int end)
    {
        var g = _g;
        var x = _a.Data<T>();
        var y = _b.Data<T>();
        int plane = g.H * g.W, oplane = g.OH * g.OW;
        for (int p = start; p < end; p++)
        {
            int xo = _a._offset + p * plane, yo = _b._offset + p * oplane;
            for (int oh = 0; oh < g.OH; oh++)
            {
                var r = g.RowWindow(oh);
                for (int ow = 0; ow < g.OW; ow++)
                {
                    var c = g.ColWindow(ow);
                    T s = T.Zero;
                    for (int h = r.Start; h < r.End; h++)
                    {
                        int row = xo + h * g.W;
                        for (int w = c.Start; w < c.End; w++) s += x[row + w];
                    }
                    y[yo + oh * g.OW + ow] = s / T.CreateTruncating(g.Divisor(r, c));
                }
            }
        }
    }

    private void AvgBackward(int start, int end)
    {
        var g = _g;
        var dy = _a.Data<T>();
        var dx = _b.Data<T>();
        int plane = g.H * g.W, oplane = g.OH * g.OW;
        for (int p = start; p < end; p++)
        {
            int xo = _b._offset + p * plane, yo = _a._offset + p * oplane;
            dx.AsSpan(xo, plane).Clear();
            for (int oh = 0; oh < g.OH; oh++)
            {
                var r = g.RowWindow(oh);
                for (int ow = 0; ow < g.OW; ow++)
                {
                    var c = g.ColWindow(ow);
                    T v = dy[yo + oh * g.OW + ow] / T.CreateTruncating(g.Divisor(r, c));
                    for (int h = r.Start; h < r.End; h++)
                    {
                        int row = xo + h * g.W;
                        for (int w = c.Start; w < c.End; w++) dx[row + w] += v;
                    }
                }
            }
        }
    }
}
