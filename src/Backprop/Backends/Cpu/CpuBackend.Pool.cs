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
internal sealed class PoolJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
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
            case PoolKind.Max: MaxForward(start, end); break;
            case PoolKind.MaxBackward: MaxBackward(start, end); break;
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
        for (int p = start; p < end; p++)
        {
            int xo = _a._offset + p * plane, yo = _b._offset + p * oplane, io = _indices._offset + p * oplane;
            for (int oh = 0; oh < g.OH; oh++)
            {
                int hs = oh * g.SH - g.PH;
                // the kernel rows that land inside the input
                int kh0 = hs >= 0 ? 0 : (-hs + g.DH - 1) / g.DH;
                int kh1 = Math.Min(g.KH, (g.H - 1 - hs) / g.DH + 1);
                for (int ow = 0; ow < g.OW; ow++)
                {
                    int ws = ow * g.SW - g.PW;
                    int kw0 = ws >= 0 ? 0 : (-ws + g.DW - 1) / g.DW;
                    int kw1 = Math.Min(g.KW, (g.W - 1 - ws) / g.DW + 1);
                    T best = T.NegativeInfinity;
                    int arg = -1;
                    for (int kh = kh0; kh < kh1; kh++)
                    {
                        int row = (hs + kh * g.DH) * g.W;
                        for (int kw = kw0; kw < kw1; kw++)
                        {
                            int at = row + ws + kw * g.DW;
                            T v = x[xo + at];
                            if (arg < 0 || v > best || T.IsNaN(v))
                            {
                                best = v;
                                arg = at;
                            }
                        }
                    }
                    y[yo + oh * g.OW + ow] = best;
                    idx[io + oh * g.OW + ow] = arg;
                }
            }
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
