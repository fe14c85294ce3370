using System.Numerics.Tensors;

namespace Backprop.Backends.Cpu;

// Convolutions as im2col + the packed GEMM, threads splitting the batch (see docs/performance.md,
// "Convolutions"). Per sample and group: the input is unfolded into a [C/G·KH·KW, OH·OW] matrix
// (skipped for a 1×1, stride-1, unpadded kernel, whose input already is that matrix), then
//   forward          y[n, g]  = W[g] · col                      (Og × OH·OW, inner C/G·KH·KW)
//   backward input   dcol     = W[g]ᵀ · dy[n, g], folded back    (col2im: overlapping taps add up)
//   backward weight  dW[g]   += dy[n, g] · colᵀ                  (Og × C/G·KH·KW, inner OH·OW)
// The weight gradient is computed transposed (dW[g]ᵀ += col·dy[n, g]ᵀ into a per-thread buffer,
// transposed into dw once per range of samples) when Gemm.FillsBetterTransposed says that
// orientation fills the micro-tiles clearly better: the same sums in the same order, so the same
// bits; the CNN preset's second convolution's weight-gradient pass takes 17% less time. (The
// forward done the same way, yᵀ = colᵀ·Wᵀ, lost 10%: its transpose is per sample.)
// Each thread takes a contiguous range of samples with its own unfold buffer (thread-static, grown
// once), and the GEMMs inside run single-threaded; a batch too small to split leaves the threads to
// the GEMM instead. The weight gradient is summed per thread range into its own buffer and the
// ranges are added in order, so the result does not depend on which thread ran which range.
internal sealed partial class CpuBackend
{
    public void ConvForward(in View x, in View w, in View bias, bool hasBias, in View y, in ConvGeometry g)
    {
        if (y.DType == DType.Float32) ConvKernels<float>.Run(ConvKernels<float>.Kind.Forward, x, w, hasBias ? bias : default, y, g, false);
        else ConvKernels<double>.Run(ConvKernels<double>.Kind.Forward, x, w, hasBias ? bias : default, y, g, false);
    }

    public void ConvBackwardInput(in View dy, in View w, in View dx, in ConvGeometry g)
    {
        if (dx.DType == DType.Float32) ConvKernels<float>.Run(ConvKernels<float>.Kind.Input, dy, w, default, dx, g, false);
        else ConvKernels<double>.Run(ConvKernels<double>.Kind.Input, dy, w, default, dx, g, false);
    }

    public void ConvBackwardWeight(in View x, in View dy, in View dw, in ConvGeometry g, bool accumulate)
    {
        if (dw.DType == DType.Float32) ConvKernels<float>.Run(ConvKernels<float>.Kind.Weight, x, dy, default, dw, g, accumulate);
        else ConvKernels<double>.Run(ConvKernels<double>.Kind.Weight, x, dy, default, dw, g, accumulate);
    }
}

internal static unsafe class ConvKernels<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public enum Kind : byte { Forward, Input, Weight }

    // A unfold buffer per thread that runs a range of samples (workers included), grown once; and
    // one for the range's transposed weight gradient.
    [ThreadStatic] private static T[]? t_col, t_transposed;

    /// <summary>For tests and benchmarks: 0 transposes the weight-gradient product where it fills the
    /// tiles better, 1 never, 2 wherever both orientations take the packed path.</summary>
    internal static int TransposeMode;

    private static T[] Grow(ref T[]? buffer, int length)
    {
        var b = buffer;
        if (b == null || b.Length < length) buffer = b = new T[Math.Max(length, (b?.Length ?? 0) * 2)];
        return b;
    }

    private static bool Transposed(Kind kind, in ConvGeometry g) =>
        kind == Kind.Weight && typeof(T) == typeof(float) && TransposeMode != 1
        && Gemm.FillsBetterTransposed(false, true, g.Og, g.Rows, g.OH * g.OW, TransposeMode == 2 ? 0 : 1.05);

    /// <summary>dst[j·rows + i] = src[i·cols + j]: the [cols × rows] transpose of a [rows × cols] matrix, in 8×8 blocks.</summary>
    private static void Transpose(T* src, int rows, int cols, T* dst)
    {
        for (int i0 = 0; i0 < rows; i0 += 8)
        {
            int i1 = Math.Min(i0 + 8, rows);
            for (int j0 = 0; j0 < cols; j0 += 8)
            {
                int j1 = Math.Min(j0 + 8, cols);
                for (int j = j0; j < j1; j++)
                {
                    T* d = dst + (long)j * rows;
                    for (int i = i0; i < i1; i++) d[i] = src[(long)i * cols + j];
                }
            }
        }
    }

    /// <summary>
    /// Forward: a = x, b = w, out = y (bias optional). Input: a = dy, b = w, out = dx.
    /// Weight: a = x, b = dy, out = dw.
    /// </summary>
    public static void Run(Kind kind, in View a, in View b, in View bias, in View output, in ConvGeometry g, bool accumulate)
    {
        if (output.NumElements == 0) return;
        if (g.N == 0 || g.Rows == 0 || (long)g.OH * g.OW == 0)
        {
            // nothing to sum: y = bias (or 0), dx = 0, dw unchanged or 0
            var o = output.Span<T>();
            if (kind == Kind.Weight && accumulate) return;
            o.Clear();
            if (kind == Kind.Forward && bias._storage != null)
            {
                var bs = bias.Span<T>();
                int plane = g.OH * g.OW;
                for (int n = 0; n < g.N; n++)
                    for (int c = 0; c < g.O; c++) o.Slice((n * g.O + c) * plane, plane).Fill(bs[c]);
            }
            return;
        }
        int chunks = Math.Min(g.N, Threads.ChunksFor(g.Macs, Gemm.MinMnkPerThread));
        var job = Job.Current;
        job.Set(kind, a, b, bias, output, g, accumulate, chunks);
        try
        {
            if (chunks <= 1) job.Run(0, 1);
            else Threads.For(chunks, job);
            if (kind == Kind.Weight && chunks > 1) job.AddPartials();
        }
        finally { job.Clear(); }
    }

    private sealed class Job : IParallelWork
    {
        [ThreadStatic] private static Job? t_current;
        public static Job Current => t_current ??= new Job();

        private Kind _kind;
        private T[]? _a, _b, _bias, _out;
        private int _aOff, _bOff, _biasOff, _outOff;
        private ConvGeometry _g;
        private bool _accumulate;
        private int _chunks;
        // The weight gradients of ranges 1..chunks-1 (range 0 writes dw itself).
        private T[] _partials = [];

        public void Set(Kind kind, in View a, in View b, in View bias, in View output, in ConvGeometry g, bool accumulate, int chunks)
        {
            _kind = kind;
            _a = a.Data<T>(); _aOff = a._offset;
            _b = b.Data<T>(); _bOff = b._offset;
            _out = output.Data<T>(); _outOff = output._offset;
            if (bias._storage != null) { _bias = bias.Data<T>(); _biasOff = bias._offset; }
            _g = g;
            _accumulate = accumulate;
            _chunks = chunks;
            if (kind == Kind.Weight && chunks > 1)
            {
                long need = (long)(chunks - 1) * output.NumElements;
                if (_partials.Length < need) _partials = new T[need];
            }
        }

        public void Clear()
        {
            _a = _b = _bias = _out = null;
        }

        public void AddPartials()
        {
            int len = _g.O * _g.Rows;
            var dw = _out.AsSpan(_outOff, len);
            for (int c = 1; c < _chunks; c++) TensorPrimitives.Add(dw, _partials.AsSpan((c - 1) * len, len), dw);
        }

        public void Run(int chunk, int chunks)
        {
            ref readonly var g = ref _g;
            int n0 = (int)((long)g.N * chunk / chunks), n1 = (int)((long)g.N * (chunk + 1) / chunks);
            bool pointwise = g.Pointwise;
            int plane = g.H * g.W, outPlane = g.OH * g.OW, rows = g.Rows, cg = g.Cg, og = g.Og;
            var colArr = pointwise ? null : Grow(ref t_col, rows * outPlane);
            bool transposed = Transposed(_kind, g);
            var trArr = !transposed ? null : Grow(ref t_transposed, g.O * rows);
            fixed (T* pa = _a, pb = _b, pout = _out, pbias = _bias, pcol = colArr, ppart = _partials, ptr = trArr)
            {
                T* a = pa + _aOff, b = pb + _bOff, o = pout + _outOff;
                switch (_kind)
                {
                    case Kind.Forward:
                        for (int n = n0; n < n1; n++)
                        {
                            T* xs = a + (long)n * g.C * plane, ys = o + (long)n * g.O * outPlane;
                            bool bias = pbias != null;
                            if (bias)
                                for (int c = 0; c < g.O; c++) new Span<T>(ys + (long)c * outPlane, outPlane).Fill(pbias[_biasOff + c]);
                            for (int grp = 0; grp < g.Groups; grp++)
                            {
                                T* xg = xs + (long)grp * cg * plane, col = xg;
                                if (!pointwise) { Im2Col(xg, pcol, g); col = pcol; }
                                Mul(false, false, og, outPlane, rows, b + (long)grp * og * rows, rows, col, outPlane,
                                    bias ? T.One : T.Zero, ys + (long)grp * og * outPlane, outPlane);
                            }
                        }
                        break;
                    case Kind.Input:
                        for (int n = n0; n < n1; n++)
                        {
                            T* dys = a + (long)n * g.O * outPlane, dxs = o + (long)n * g.C * plane;
                            for (int grp = 0; grp < g.Groups; grp++)
                            {
                                T* dxg = dxs + (long)grp * cg * plane, wg = b + (long)grp * og * rows, dyg = dys + (long)grp * og * outPlane;
                                if (pointwise)
                                {
                                    Mul(true, false, cg, plane, og, wg, rows, dyg, outPlane, T.Zero, dxg, plane);
                                    continue;
                                }
                                Mul(true, false, rows, outPlane, og, wg, rows, dyg, outPlane, T.Zero, pcol, outPlane);
                                new Span<T>(dxg, cg * plane).Clear();
                                Col2Im(pcol, dxg, g);
                            }
                        }
                        break;
                    default:
                        {
                            int len = g.O * rows;
                            T* dw = chunk == 0 ? o : ppart + (long)(chunk - 1) * len;
                            bool first = chunk != 0 || !_accumulate;
                            if (n1 == n0 && first) new Span<T>(dw, len).Clear();
                            if (transposed && n1 > n0)
                            {
                                // dW[g]ᵀ [rows × og] += col · dy[n, g]ᵀ in this thread's buffer (starting from dwᵀ when
                                // accumulating), transposed into dw once for the range
                                if (!first)
                                    for (int grp = 0; grp < g.Groups; grp++)
                                        Transpose(dw + (long)grp * og * rows, og, rows, ptr + (long)grp * og * rows);
                                for (int n = n0; n < n1; n++)
                                {
                                    T* xs = a + (long)n * g.C * plane, dys = b + (long)n * g.O * outPlane;
                                    for (int grp = 0; grp < g.Groups; grp++)
                                    {
                                        T* xg = xs + (long)grp * cg * plane, col = xg;
                                        if (!pointwise) { Im2Col(xg, pcol, g); col = pcol; }
                                        Mul(false, true, rows, og, outPlane, col, outPlane, dys + (long)grp * og * outPlane, outPlane,
                                            first ? T.Zero : T.One, ptr + (long)grp * og * rows, og);
                                    }
                                    first = false;
                                }
                                for (int grp = 0; grp < g.Groups; grp++)
                                    Transpose(ptr + (long)grp * og * rows, rows, og, dw + (long)grp * og * rows);
                                break;
                            }
                            for (int n = n0; n < n1; n++)
                            {
                                T* xs = a + (long)n * g.C * plane, dys = b + (long)n * g.O * outPlane;
                                for (int grp = 0; grp < g.Groups; grp++)
                                {
                                    T* xg = xs + (long)grp * cg * plane, col = xg;
                                    if (!pointwise) { Im2Col(xg, pcol, g); col = pcol; }
                                    Mul(false, true, og, rows, outPlane, dys + (long)grp * og * outPlane, outPlane, col, outPlane,
                                        first ? T.Zero : T.One, dw + (long)grp * og * rows, rows);
                                }
                                first = false;
                            }
                        }
                        break;
                }
            }
        }
    }

    private static void Mul(bool ta, bool tb, int m, int n, int k, T* a, int lda, T* b, int ldb, T beta, T* c, int ldc)
    {
        if (typeof(T) == typeof(float))
            Gemm.Sgemm(ta, tb, m, n, k, 1f, (float*)a, lda, (float*)b, ldb, float.CreateTruncating(beta), (float*)c, ldc);
        else
            Gemm.Dgemm(ta, tb, m, n, k, 1d, (double*)a, lda, (double*)b, ldb, double.CreateTruncating(beta), (double*)c, ldc);
    }

    /// <summary>The output columns j whose tap at offset <paramref name="off"/> (input column j·s + off) lands in [0, size).</summary>
    private static (int Lo, int Hi) Valid(int off, int s, int size, int outSize)
    {
        int lo = off >= 0 ? 0 : (-off + s - 1) / s;
        int hi = size - 1 - off < 0 ? 0 : Math.Min(outSize, (size - 1 - off) / s + 1);
        return (Math.Min(lo, outSize), Math.Max(hi, Math.Min(lo, outSize)));
    }

    /// <summary>Unfolds one group's channels of one sample, [Cg, H, W], into col [Cg·KH·KW, OH·OW] (padding as 0).</summary>
    internal static void Im2Col(T* src, T* col, in ConvGeometry g)
    {
        int ow = g.OW, outPlane = g.OH * ow;
        if (g.SW == 1 && g.SH == 1 && g.W == ow)
        {
            Im2ColSame(src, col, g);
            return;
        }
        for (int c = 0; c < g.Cg; c++)
        {
            T* chan = src + (long)c * g.H * g.W;
            for (int kh = 0; kh < g.KH; kh++)
                for (int kw = 0; kw < g.KW; kw++)
                {
                    T* dst = col + (long)((c * g.KH + kh) * g.KW + kw) * outPlane;
                    int off = kw * g.DW - g.PW;
                    var (lo, hi) = Valid(off, g.SW, g.W, ow);
                    for (int i = 0; i < g.OH; i++)
                    {
                        T* row = dst + i * ow;
                        int ih = i * g.SH - g.PH + kh * g.DH;
                        if ((uint)ih >= (uint)g.H)
                        {
                            new Span<T>(row, ow).Clear();
                            continue;
                        }
                        if (lo > 0) new Span<T>(row, lo).Clear();
                        if (hi < ow) new Span<T>(row + hi, ow - hi).Clear();
                        T* s = chan + (long)ih * g.W + off;
                        if (g.SW == 1) new ReadOnlySpan<T>(s + lo, hi - lo).CopyTo(new Span<T>(row + lo, hi - lo));
                        else if (g.SW == 2) for (int j = lo; j < hi; j++) row[j] = s[2 * j];
                        else for (int j = lo; j < hi; j++) row[j] = s[j * g.SW];
                    }
                }
        }
    }

    /// <summary>
    /// <see cref="Im2Col"/> for stride 1 and an output as wide as the input ("same" padding, as 3×3 pad 1):
    /// then a tap's rows in col and their source rows in the channel have the same stride, so the valid rows
    /// of a tap are one block copy (instead of one short copy per row) and the columns that fall into the
    /// padding, which the block copy filled from the neighbouring rows, are cleared afterwards. The same
    /// values land in col as with the general loop.
    /// </summary>
    private static void Im2ColSame(T* src, T* col, in ConvGeometry g)
    {
        int ow = g.OW, oh = g.OH, outPlane = oh * ow;
        for (int c = 0; c < g.Cg; c++)
        {
            T* chan = src + (long)c * g.H * g.W;
            for (int kh = 0; kh < g.KH; kh++)
            {
                // output rows i whose input row i − PH + kh·DH lies in [0, H)
                int rowOff = kh * g.DH - g.PH;
                int i0 = Math.Clamp(-rowOff, 0, oh), i1 = Math.Clamp(g.H - rowOff, i0, oh);
                for (int kw = 0; kw < g.KW; kw++)
                {
                    T* dst = col + (long)((c * g.KH + kh) * g.KW + kw) * outPlane;
                    int off = kw * g.DW - g.PW;
                    var (lo, hi) = Valid(off, 1, g.W, ow);
                    if (i0 > 0) new Span<T>(dst, i0 * ow).Clear();
                    if (i1 < oh) new Span<T>(dst + i1 * ow, (oh - i1) * ow).Clear();
                    if (i1 <= i0) continue;
                    if (hi <= lo)
                    {
                        new Span<T>(dst + i0 * ow, (i1 - i0) * ow).Clear();
                        continue;
                    }
                    // dst[i·ow + j] = chan[(i + rowOff)·W + off + j] for i in [i0, i1), j in [lo, hi): with W = ow one
                    // contiguous range from the first valid entry to the last, all of it inside the channel
                    int first = i0 * ow + lo, last = (i1 - 1) * ow + hi;
                    new ReadOnlySpan<T>(chan + (long)rowOff * g.W + off + first, last - first).CopyTo(new Span<T>(dst + first, last - first));
                    for (int i = i0; i < i1; i++)
                    {
                        T* row = dst + i * ow;
                        for (int j = 0; j < lo; j++) row[j] = T.Zero;
                        for (int j = hi; j < ow; j++) row[j] = T.Zero;
                    }
                }
            }
        }
    }

    /// <summary><see cref="Col2Im"/> for Backprop.Bench's conv-parts.</summary>
    internal static void Col2ImForBench(T* col, T* dst, in ConvGeometry g) => Col2Im(col, dst, g);

    /// <summary>The adjoint of <see cref="Im2Col"/>: adds each column entry into the input position it was read from.</summary>
    private static void Col2Im(T* col, T* dst, in ConvGeometry g)
    {
        int ow = g.OW, outPlane = g.OH * ow;
        if (g.SW == 1 && g.SH == 1 && g.W == ow)
        {
            Col2ImSame(col, dst, g);
            return;
        }
        for (int c = 0; c < g.Cg; c++)
        {
            T* chan = dst + (long)c * g.H * g.W;
            for (int kh = 0; kh < g.KH; kh++)
                for (int kw = 0; kw < g.KW; kw++)
                {
                    T* src = col + (long)((c * g.KH + kh) * g.KW + kw) * outPlane;
                    int off = kw * g.DW - g.PW;
                    var (lo, hi) = Valid(off, g.SW, g.W, ow);
                    if (hi <= lo) continue;
                    for (int i = 0; i < g.OH; i++)
                    {
                        int ih = i * g.SH - g.PH + kh * g.DH;
                        if ((uint)ih >= (uint)g.H) continue;
                        T* row = src + i * ow;
                        T* d = chan + (long)ih * g.W + off;
                        if (g.SW == 1)
                        {
                            var span = new Span<T>(d + lo, hi - lo);
                            TensorPrimitives.Add(span, new ReadOnlySpan<T>(row + lo, hi - lo), span);
                        }
                        else for (int j = lo; j < hi; j++) d[j * g.SW] += row[j];
                    }
                }
        }
    }

    /// <summary>
    /// <see cref="Col2Im"/> for the shapes of <see cref="Im2ColSame"/>: a tap's valid rows are added as one
    /// contiguous range, after clearing the entries of col (scratch) that fall into the padding, which then
    /// add +0 to the neighbouring rows' ends. The sums are the same bits: every input position still receives
    /// the same values in the same (channel, tap) order, and adding +0 leaves any value of dst unchanged
    /// (dst starts as +0 and a round-to-nearest sum with a +0 operand is never −0).
    /// </summary>
    private static void Col2ImSame(T* col, T* dst, in ConvGeometry g)
    {
        int ow = g.OW, oh = g.OH, outPlane = oh * ow;
        for (int c = 0; c < g.Cg; c++)
        {
            T* chan = dst + (long)c * g.H * g.W;
            for (int kh = 0; kh < g.KH; kh++)
            {
                int rowOff = kh * g.DH - g.PH;
                int i0 = Math.Clamp(-rowOff, 0, oh), i1 = Math.Clamp(g.H - rowOff, i0, oh);
                if (i1 <= i0) continue;
                for (int kw = 0; kw < g.KW; kw++)
                {
                    T* src = col + (long)((c * g.KH + kh) * g.KW + kw) * outPlane;
                    int off = kw * g.DW - g.PW;
                    var (lo, hi) = Valid(off, 1, g.W, ow);
                    if (hi <= lo) continue;
                    for (int i = i0; i < i1; i++)
                    {
                        T* row = src + i * ow;
                        for (int j = 0; j < lo; j++) row[j] = T.Zero;
                        for (int j = hi; j < ow; j++) row[j] = T.Zero;
                    }
                    int first = i0 * ow + lo, last = (i1 - 1) * ow + hi;
                    var d = new Span<T>(chan + (long)rowOff * g.W + off + first, last - first);
                    TensorPrimitives.Add(d, new ReadOnlySpan<T>(src + first, last - first), d);
                }
            }
        }
    }
}
