using System.Numerics;
using System.Numerics.Tensors;

namespace Backprop.Backends.Cpu;

// The fused recurrent layers: per step one packed GEMM for the recurrence and one elementwise pass over
// the batch's rows (SIMD through TensorPrimitives and Vector<T>, rows split across threads when the
// step is large enough to pay for waking a worker).
internal sealed partial class CpuBackend
{
    /// <summary>Below this many gate elements per chunk, a step's elementwise pass stays on one thread.</summary>
    private const int RecurrentMinChunk = 1 << 14;

    public void RecurrentForward(RecurrentCell cell, in View xw, in View whh, in View bhh, in View hs, in View cs, in View saved, in View hw)
    {
        if (xw.DType == DType.Float32) RecurrentForward<float>(cell, xw, whh, bhh, hs, cs, saved, hw);
        else RecurrentForward<double>(cell, xw, whh, bhh, hs, cs, saved, hw);
    }

    public void RecurrentBackward(RecurrentCell cell, in View whh, in View hs, in View cs, in View saved, in View dhs,
        in View dgi, in View dgh, in View dh, in View dc)
    {
        if (hs.DType == DType.Float32) RecurrentBackward<float>(cell, whh, hs, cs, saved, dhs, dgi, dgh, dh, dc);
        else RecurrentBackward<double>(cell, whh, hs, cs, saved, dhs, dgi, dgh, dh, dc);
    }

    private void RecurrentForward<T>(RecurrentCell cell, in View xw, in View whh, in View bhh, in View hs, in View cs, in View saved, in View hw)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int steps = saved._shape[0], batch = saved._shape[1], h = hs._shape[2], g = cell.Blocks() * h;
        var job = RecurrentStep<T>.Get();
        job.Set(cell, false, batch, h);
        (job.X, job.Bias, job.Hs, job.Saved, job.Hw) = (xw.Data<T>(), bhh.Data<T>(), hs.Data<T>(), saved.Data<T>(), hw.Data<T>());
        job.C = cell == RecurrentCell.Lstm ? cs.Data<T>() : null;
        job.OBias = bhh._offset;
        int chunks = Threads.ChunksFor((long)batch * g, RecurrentMinChunk);
        try
        {
            for (int t = 0; t < steps; t++)
            {
                int hOff = hs._offset + t * batch * h;
                Gemm(false, true, batch, g, h, hs.With(hs._shape, hs._strides, hOff), whh, 0, hw); // W_hh·h_{t−1}
                job.OX = xw._offset + t * batch * g;
                job.OH = hOff;
                job.OC = cell == RecurrentCell.Lstm ? cs._offset + t * batch * h : 0;
                job.OSaved = saved._offset + t * batch * saved._shape[2];
                job.OHw = hw._offset;
                if (chunks <= 1) job.Run(0, 1);
                else Threads.For(chunks, job);
            }
        }
        finally { job.Clear(); }
    }

    private void RecurrentBackward<T>(RecurrentCell cell, in View whh, in View hs, in View cs, in View saved, in View dhs,
        in View dgi, in View dgh, in View dh, in View dc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int steps = saved._shape[0], batch = saved._shape[1], h = hs._shape[2], g = cell.Blocks() * h, bh = batch * h;
        var dH = dh.Data<T>();
        Array.Clear(dH, dh._offset, bh);
        if (cell == RecurrentCell.Lstm)
            Array.Copy(dhs.Data<T>(), dhs._offset + (steps + 1) * bh, dc.Data<T>(), dc._offset, bh); // dL/dc_T
        var job = RecurrentStep<T>.Get();
        job.Set(cell, true, batch, h);
        (job.Hs, job.Saved, job.Dhs, job.Dgi, job.Dgh, job.Dh) = (hs.Data<T>(), saved.Data<T>(), dhs.Data<T>(), dgi.Data<T>(), dgh.Data<T>(), dH);
        if (cell == RecurrentCell.Lstm) (job.C, job.Dc, job.ODc) = (cs.Data<T>(), dc.Data<T>(), dc._offset);
        job.ODh = dh._offset;
        int chunks = Threads.ChunksFor((long)batch * g, RecurrentMinChunk);
        try
        {
            for (int t = steps - 1; t >= 0; t--)
            {
                job.OH = hs._offset + t * bh;
                job.OC = cell == RecurrentCell.Lstm ? cs._offset + t * bh : 0;
                job.OSaved = saved._offset + t * batch * saved._shape[2];
                job.ODhs = dhs._offset + (t + 1) * bh;
                job.ODgi = dgi._offset + t * batch * g;
                job.ODgh = dgh._offset + t * batch * g;
                if (chunks <= 1) job.Run(0, 1);
                else Threads.For(chunks, job);
                // dL/dh_t through the recurrence: dgh_t·W_hh (added to the GRU's direct z·dh term)
                Gemm(false, false, batch, h, g, dgh.With(dgh._shape, dgh._strides, job.ODgh), whh,
                    cell == RecurrentCell.Gru ? 1 : 0, dh);
            }
        }
        finally { job.Clear(); }
        var dhsData = dhs.Data<T>();
        TensorPrimitives.Add(dH.AsSpan(dh._offset, bh), dhsData.AsSpan(dhs._offset, bh), dH.AsSpan(dh._offset, bh)); // + dL/dh_0 from outside
    }

    /// <summary>One step's elementwise pass over the batch's rows, forward or backward (reused per thread and dtype).</summary>
    private sealed class RecurrentStep<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
    {
        [ThreadStatic] private static RecurrentStep<T>? _job;
        public static RecurrentStep<T> Get() => _job ??= new();

        private RecurrentCell _cell;
        private bool _backward;
        private int _batch, _h;
        public T[]? X, Bias, Hs, C, Saved, Hw, Dhs, Dgi, Dgh, Dh, Dc;
        public int OX, OBias, OH, OC, OSaved, OHw, ODhs, ODgi, ODgh, ODh, ODc;

        public void Set(RecurrentCell cell, bool backward, int batch, int h) => (_cell, _backward, _batch, _h) = (cell, backward, batch, h);

        public void Clear() => X = Bias = Hs = C = Saved = Hw = Dhs = Dgi = Dgh = Dh = Dc = null;

        public void Run(int chunk, int chunks)
        {
            var (s, e) = Elementwise.ChunkRange(_batch, chunk, chunks);
            for (int b = s; b < e; b++)
            {
                if (_backward)
                {
                    switch (_cell)
                    {
                        case RecurrentCell.RnnTanh: RnnBackwardRow(b); break;
                        case RecurrentCell.Lstm: LstmBackwardRow(b); break;
                        default: GruBackwardRow(b); break;
                    }
                }
                else
                {
                    switch (_cell)
                    {
                        case RecurrentCell.RnnTanh: RnnRow(b); break;
                        case RecurrentCell.Lstm: LstmRow(b); break;
                        default: GruRow(b); break;
                    }
                }
            }
        }

        private void RnnRow(int b)
        {
            int h = _h;
            var y = Hs.AsSpan(OH + (_batch + b) * h, h);
            TensorPrimitives.Add(X.AsSpan(OX + b * h, h), Hw.AsSpan(OHw + b * h, h), y);
            TensorPrimitives.Add(y, Bias.AsSpan(OBias, h), y);
            TensorPrimitives.Tanh(y, y);
            y.CopyTo(Saved.AsSpan(OSaved + b * h, h));
        }

        private void LstmRow(int b)
        {
            int h = _h, g = 4 * h;
            var s = Saved.AsSpan(OSaved + b * 5 * h, 5 * h);
            var pre = s[..g];
            TensorPrimitives.Add(X.AsSpan(OX + b * g, g), Hw.AsSpan(OHw + b * g, g), pre);
            TensorPrimitives.Add(pre, Bias.AsSpan(OBias, g), pre);
            var ifg = pre[..(2 * h)];
            TensorPrimitives.Sigmoid(ifg, ifg);
            var gg = pre.Slice(2 * h, h);
            TensorPrimitives.Tanh(gg, gg);
            var o = pre.Slice(3 * h, h);
            TensorPrimitives.Sigmoid(o, o);
            var cPrev = C.AsSpan(OC + b * h, h);
            var c = C.AsSpan(OC + (_batch + b) * h, h);
            TensorPrimitives.Multiply(pre[..h], gg, c);                       // i·g
            TensorPrimitives.FusedMultiplyAdd(pre.Slice(h, h), cPrev, c, c);  // + f·c_{t−1}
            var tc = s.Slice(g, h);
            TensorPrimitives.Tanh(c, tc);
            TensorPrimitives.Multiply(o, tc, Hs.AsSpan(OH + (_batch + b) * h, h));
        }

        private void GruRow(int b)
        {
            int h = _h, g = 3 * h;
            var s = Saved.AsSpan(OSaved + b * 4 * h, 4 * h);
            var x = X.AsSpan(OX + b * g, g);
            var hw = Hw.AsSpan(OHw + b * g, g);
            var bias = Bias.AsSpan(OBias, g);
            var rz = s[..(2 * h)];
            TensorPrimitives.Add(x[..(2 * h)], hw[..(2 * h)], rz);
            TensorPrimitives.Add(rz, bias[..(2 * h)], rz);
            TensorPrimitives.Sigmoid(rz, rz);
            var hn = s.Slice(3 * h, h);
            TensorPrimitives.Add(hw.Slice(2 * h, h), bias.Slice(2 * h, h), hn);   // W_hn h + b_hn
            var n = s.Slice(2 * h, h);
            TensorPrimitives.FusedMultiplyAdd(s[..h], hn, x.Slice(2 * h, h), n);  // r·hn + W_in x + b_in
            TensorPrimitives.Tanh(n, n);
            var hPrev = Hs.AsSpan(OH + b * h, h);
            var y = Hs.AsSpan(OH + (_batch + b) * h, h);
            TensorPrimitives.Subtract(hPrev, n, y);
            TensorPrimitives.FusedMultiplyAdd(s.Slice(h, h), y, n, y);          // n + z·(h − n)
        }

        private void RnnBackwardRow(int b)
        {
            int h = _h, j = 0;
            var dhs = Dhs!; var dh = Dh!; var sv = Saved!; var dg = Dgi!;
            int od = ODhs + b * h, or = ODh + b * h, os = OSaved + b * h, og = ODgi + b * h;
            var one = Vector<T>.One;
            for (; j + Vector<T>.Count <= h; j += Vector<T>.Count)
            {
                var d = new Vector<T>(dhs, od + j) + new Vector<T>(dh, or + j);
                var y = new Vector<T>(sv, os + j);
                (d * (one - y * y)).CopyTo(dg, og + j);
            }
            for (; j < h; j++)
            {
                T d = dhs[od + j] + dh[or + j], y = sv[os + j];
                dg[og + j] = d * (T.One - y * y);
            }
        }

        private void LstmBackwardRow(int b)
        {
            int h = _h, j = 0;
            var dhs = Dhs!; var dh = Dh!; var sv = Saved!; var dg = Dgi!; var c = C!; var dc = Dc!;
            int od = ODhs + b * h, or = ODh + b * h, os = OSaved + b * 5 * h, og = ODgi + b * 4 * h, oc = OC + b * h, odc = ODc + b * h;
            var one = Vector<T>.One;
            for (; j + Vector<T>.Count <= h; j += Vector<T>.Count)
            {
                var d = new Vector<T>(dhs, od + j) + new Vector<T>(dh, or + j);
                var i = new Vector<T>(sv, os + j);
                var f = new Vector<T>(sv, os + h + j);
                var gg = new Vector<T>(sv, os + 2 * h + j);
                var o = new Vector<T>(sv, os + 3 * h + j);
                var tc = new Vector<T>(sv, os + 4 * h + j);
                var dcv = new Vector<T>(dc, odc + j) + d * o * (one - tc * tc);
                (dcv * gg * i * (one - i)).CopyTo(dg, og + j);
                (dcv * new Vector<T>(c, oc + j) * f * (one - f)).CopyTo(dg, og + h + j);
                (dcv * i * (one - gg * gg)).CopyTo(dg, og + 2 * h + j);
                (d * tc * o * (one - o)).CopyTo(dg, og + 3 * h + j);
                (dcv * f).CopyTo(dc, odc + j);
            }
            for (; j < h; j++)
            {
                T d = dhs[od + j] + dh[or + j];
                T i = sv[os + j], f = sv[os + h + j], gg = sv[os + 2 * h + j], o = sv[os + 3 * h + j], tc = sv[os + 4 * h + j];
                T dcv = dc[odc + j] + d * o * (T.One - tc * tc);
                dg[og + j] = dcv * gg * i * (T.One - i);
                dg[og + h + j] = dcv * c[oc + j] * f * (T.One - f);
                dg[og + 2 * h + j] = dcv * i * (T.One - gg * gg);
                dg[og + 3 * h + j] = d * tc * o * (T.One - o);
                dc[odc + j] = dcv * f;
            }
        }

        private void GruBackwardRow(int b)
        {
            int h = _h, j = 0;
            var dhs = Dhs!; var dh = Dh!; var sv = Saved!; var gi = Dgi!; var gh = Dgh!; var hs = Hs!;
            int od = ODhs + b * h, or = ODh + b * h, os = OSaved + b * 4 * h, ogi = ODgi + b * 3 * h, ogh = ODgh + b * 3 * h, oh = OH + b * h;
            var one = Vector<T>.One;
            for (; j + Vector<T>.Count <= h; j += Vector<T>.Count)
            {
                var d = new Vector<T>(dhs, od + j) + new Vector<T>(dh, or + j);
                var r = new Vector<T>(sv, os + j);
                var z = new Vector<T>(sv, os + h + j);
                var n = new Vector<T>(sv, os + 2 * h + j);
                var hn = new Vector<T>(sv, os + 3 * h + j);
                var dpn = d * (one - z) * (one - n * n);
                var dpr = dpn * hn * r * (one - r);
                var dpz = d * (new Vector<T>(hs, oh + j) - n) * z * (one - z);
                dpr.CopyTo(gi, ogi + j); dpr.CopyTo(gh, ogh + j);
                dpz.CopyTo(gi, ogi + h + j); dpz.CopyTo(gh, ogh + h + j);
                dpn.CopyTo(gi, ogi + 2 * h + j); (dpn * r).CopyTo(gh, ogh + 2 * h + j);
                (d * z).CopyTo(dh, or + j); // h_t reaches h_{t+1} directly through z; the GEMM adds the rest
            }
            for (; j < h; j++)
            {
                T d = dhs[od + j] + dh[or + j];
                T r = sv[os + j], z = sv[os + h + j], n = sv[os + 2 * h + j], hn = sv[os + 3 * h + j];
                T dpn = d * (T.One - z) * (T.One - n * n);
                T dpr = dpn * hn * r * (T.One - r);
                T dpz = d * (hs[oh + j] - n) * z * (T.One - z);
                gi[ogi + j] = gh[ogh + j] = dpr;
                gi[ogi + h + j] = gh[ogh + h + j] = dpz;
                gi[ogi + 2 * h + j] = dpn;
                gh[ogh + 2 * h + j] = dpn * r;
                dh[or + j] = d * z;
            }
        }
    }
}
