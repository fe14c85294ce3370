using Backprop.Autograd;
using Backprop.Backends;

namespace Backprop.NN;

public static partial class Functional
{
    /// <summary>
    /// One tanh RNN layer over a batch-first sequence <paramref name="x"/> [B, T, I]: h_t = tanh(W_ih x_t + b_ih +
    /// W_hh h_{t−1} + b_hh), from <paramref name="h0"/> [B, H] (zeros when null). Returns the outputs [B, T, H]
    /// (a view) and the final state h_T [B, H]. Weights in PyTorch's layout: W_ih [H, I], W_hh [H, H].
    /// </summary>
    public static (Tensor Output, Tensor H) Rnn(Tensor x, Tensor? h0, Tensor weightIh, Tensor weightHh, Tensor? biasIh = null, Tensor? biasHh = null)
    {
        var p = RecurrentSequence(RecurrentCell.RnnTanh, x, h0, null, weightIh, weightHh, biasIh, biasHh);
        int t = x.Size(1);
        return (p.Narrow(0, 1, t).Transpose(0, 1), p.Select(0, t));
    }

    /// <summary>
    /// One LSTM layer over a batch-first sequence <paramref name="x"/> [B, T, I] (PyTorch's gate order i, f, g, o
    /// in the rows of W_ih [4H, I] and W_hh [4H, H]), from (<paramref name="h0"/>, <paramref name="c0"/>) [B, H]
    /// (zeros when null). Returns the outputs [B, T, H] (a view) and the final (h_T, c_T).
    /// </summary>
    public static (Tensor Output, Tensor H, Tensor C) Lstm(Tensor x, Tensor? h0, Tensor? c0, Tensor weightIh, Tensor weightHh, Tensor? biasIh = null, Tensor? biasHh = null)
    {
        var p = RecurrentSequence(RecurrentCell.Lstm, x, h0, c0, weightIh, weightHh, biasIh, biasHh);
        int t = x.Size(1);
        return (p.Narrow(0, 1, t).Transpose(0, 1), p.Select(0, t), p.Select(0, t + 1));
    }

    /// <summary>
    /// One GRU layer over a batch-first sequence <paramref name="x"/> [B, T, I] (PyTorch's gate order r, z, n in
    /// the rows of W_ih [3H, I] and W_hh [3H, H], with b_hn inside the reset product:
    /// n = tanh(W_in x + b_in + r·(W_hn h + b_hn))), from <paramref name="h0"/> [B, H] (zeros when null).
    /// Returns the outputs [B, T, H] (a view) and the final state h_T.
    /// </summary>
    public static (Tensor Output, Tensor H) Gru(Tensor x, Tensor? h0, Tensor weightIh, Tensor weightHh, Tensor? biasIh = null, Tensor? biasHh = null)
    {
        var p = RecurrentSequence(RecurrentCell.Gru, x, h0, null, weightIh, weightHh, biasIh, biasHh);
        int t = x.Size(1);
        return (p.Narrow(0, 1, t).Transpose(0, 1), p.Select(0, t));
    }

    private static string NameOf(RecurrentCell cell) => cell switch { RecurrentCell.Lstm => "Lstm", RecurrentCell.Gru => "Gru", _ => "Rnn" };

    /// <summary>
    /// The whole-sequence op behind <see cref="Rnn"/>, <see cref="Lstm"/> and <see cref="Gru"/>. Its one output is
    /// time-major, P [T+1, B, H] (slot 0 a copy of h_0, slot t the state h_t), with one more slot holding c_T
    /// for the LSTM; the public functions return views of it. Forward: one GEMM for the input projections of
    /// all steps, then per step one GEMM and one fused elementwise pass (<see cref="IBackend.RecurrentForward"/>).
    /// Backward: BPTT over the saved activations (<see cref="IBackend.RecurrentBackward"/>), then one GEMM each
    /// for dW_ih, dW_hh and dx over all steps.
    /// </summary>
    internal static Tensor RecurrentSequence(RecurrentCell cell, Tensor x, Tensor? h0, Tensor? c0, Tensor weightIh, Tensor weightHh, Tensor? biasIh, Tensor? biasHh)
    {
        string name = NameOf(cell);
        if (weightHh.Rank != 2 || weightHh.Size(0) != cell.Blocks() * weightHh.Size(1))
            throw new ShapeException($"{name}: weight_hh must be [{cell.Blocks()}·H, H], got {weightHh.Shape}.");
        int h = weightHh.Size(1), g = cell.Blocks() * h;
        if (x.Rank != 3) throw new ShapeException($"{name}: input must be batch-first [B, T, I], got {x.Shape}.");
        int batch = x.Size(0), steps = x.Size(1), inF = x.Size(2);
        if (steps == 0 || batch == 0) throw new ShapeException($"{name}: input {x.Shape} has an empty batch or sequence.");
        if (weightIh.Rank != 2 || weightIh.Size(0) != g || weightIh.Size(1) != inF)
            throw new ShapeException($"{name}: weight_ih must be [{g}, {inF}] for input {x.Shape} and hidden size {h}, got {weightIh.Shape}.");
        if (biasIh != null && (biasIh.Rank != 1 || biasIh.Size(0) != g)) throw new ShapeException($"{name}: bias_ih must be [{g}], got {biasIh.Shape}.");
        if (biasHh != null && (biasHh.Rank != 1 || biasHh.Size(0) != g)) throw new ShapeException($"{name}: bias_hh must be [{g}], got {biasHh.Shape}.");
        if (h0 != null && (h0.Rank != 2 || h0.Size(0) != batch || h0.Size(1) != h))
            throw new ShapeException($"{name}: initial hidden state must be [{batch}, {h}], got {h0.Shape}.");
        if (c0 != null && (c0.Rank != 2 || c0.Size(0) != batch || c0.Size(1) != h))
            throw new ShapeException($"{name}: initial cell state must be [{batch}, {h}], got {c0.Shape}.");
        if (!x.DType.IsFloatingPoint()) throw new ArgumentException($"{name}: input must be float32 or float64, got {x.DType.Name()}.");
        foreach (var t in (ReadOnlySpan<Tensor?>)[h0, c0, weightIh, weightHh, biasIh, biasHh])
            if (t != null && t.DType != x.DType)
                throw new ArgumentException($"{name}: dtypes differ: input {x.DType.Name()}, a weight or state {t.DType.Name()}.");
        var backend = Dispatch.BackendOf(name, x, weightIh);
        foreach (var t in (ReadOnlySpan<Tensor?>)[h0, c0, weightHh, biasIh, biasHh])
            if (t != null) Dispatch.BackendOf(name, x, t);

        bool lstm = cell == RecurrentCell.Lstm;
        var dtype = x.DType;
        var xt = x.Transpose(0, 1).ContiguousData();                                 // [T, B, I], time-major
        var xw = Tensor.Empty(ShapeCache.Intern([steps, batch, g]), dtype, backend);  // W_ih x_t + b_ih, all steps
        if (biasIh != null) backend.Copy(biasIh.V, xw.V);
        Tensor.GemmRows(xt, false, weightIh.ContiguousData(), true, xw, steps * batch, g, inF, beta: biasIh != null ? 1f : 0f);
        var p = Tensor.Empty(ShapeCache.Intern([steps + (lstm ? 2 : 1), batch, h]), dtype, backend);
        var slot0 = p.Select(0, 0);
        if (h0 != null) backend.Copy(h0.V, slot0.V); else backend.Fill(slot0.V, 0);
        Tensor? cs = null;
        if (lstm)
        {
            cs = Tensor.Empty(ShapeCache.Intern([steps + 1, batch, h]), dtype, backend);
            var c0Slot = cs.Select(0, 0);
            if (c0 != null) backend.Copy(c0.V, c0Slot.V); else backend.Fill(c0Slot.V, 0);
        }
        var saved = Tensor.Empty(ShapeCache.Intern([steps, batch, cell.SavedBlocks() * h]), dtype, backend);
        var hw = Tensor.Empty(ShapeCache.Intern([batch, g]), dtype, backend);
        var bhh = biasHh?.ContiguousData() ?? Tensor.Zeros([g], dtype).To(backend.Device);
        var whh = weightHh.ContiguousData();
        backend.RecurrentForward(cell, xw.V, whh.V, bhh.V, p.V, cs?.V ?? default, saved.V, hw.V);
        if (lstm) backend.Copy(cs!.Select(0, steps).V, p.Select(0, steps + 1).V); // c_T in the last slot
        int n = 0;
        bool record = false;
        foreach (var t in (ReadOnlySpan<Tensor?>)[x, h0, c0, weightIh, weightHh, biasIh, biasHh])
            if (t != null) { n++; record |= t.RequiresGrad; }
        if (!record || !GradMode.IsEnabled) return p;
        var inputs = new Tensor[n];
        n = 0;
        foreach (var t in (ReadOnlySpan<Tensor?>)[x, h0, c0, weightIh, weightHh, biasIh, biasHh])
            if (t != null) inputs[n++] = t;
        Engine.RecordMany(p, name, new RecurrentBackward(cell, x, h0, c0, weightIh, weightHh, biasIh, biasHh, xt, p, cs, saved), inputs, saved0: p);
        return p;
    }

    /// <summary>
    /// BPTT over the saved gate activations (one fused pass and one GEMM per step), then dx = dG·W_ih,
    /// dW_ih = dGᵀ·X and dW_hh = dGᵀ·H_prev as one GEMM each over all steps; or, under createGraph, the same
    /// gradients from the unrolled cell written with recorded ops.
    /// </summary>
    private readonly struct RecurrentBackward(RecurrentCell cell, Tensor x, Tensor? h0, Tensor? c0, Tensor weightIh, Tensor weightHh,
        Tensor? biasIh, Tensor? biasHh, Tensor xt, Tensor p, Tensor? cs, Tensor saved) : IBackward
    {
        public void Backward(Tensor dy)
        {
            if (Engine.CreateGraph)
            {
                BackwardRecorded(dy);
                return;
            }
            int steps = xt.Size(0), batch = xt.Size(1), inF = xt.Size(2), h = weightHh.Size(1), g = cell.Blocks() * h;
            var backend = p.Backend;
            var dtype = p.DType;
            var dp = dy.ContiguousData();
            var dgi = Tensor.Empty(ShapeCache.Intern([steps, batch, g]), dtype, backend);
            var dgh = cell == RecurrentCell.Gru ? Tensor.Empty(dgi._shape, dtype, backend) : dgi;
            var dh = Tensor.Empty(ShapeCache.Intern([batch, h]), dtype, backend);
            var dc = cell == RecurrentCell.Lstm ? Tensor.Empty(dh._shape, dtype, backend) : null;
            var whh = weightHh.ContiguousData();
            backend.RecurrentBackward(cell, whh.V, p.V, cs?.V ?? default, saved.V, dp.V, dgi.V, dgh.V, dh.V, dc?.V ?? default);
            int rows = steps * batch;
            if (x.RequiresGrad)
            {
                var dxt = Tensor.Empty(xt._shape, dtype, backend);
                Tensor.GemmRows(dgi, false, weightIh.ContiguousData(), false, dxt, rows, inF, g, beta: 0); // dX = dG·W_ih
                var dx = Tensor.Empty(x._shape, dtype, backend);
                backend.Copy(dxt.Transpose(0, 1).V, dx.V);                                               // back to batch-first
                x.AccumulateGrad(dx);
            }
            if (h0 != null && h0.RequiresGrad) h0.AccumulateGrad(dh);
            if (c0 != null && c0.RequiresGrad) c0.AccumulateGrad(dc!);
            AccumulateProduct(weightIh, dgi, xt, g, inF, rows);     // dW_ih += dGᵀ·X
            AccumulateProduct(weightHh, dgh, p, g, h, rows);         // dW_hh += dGᵀ·[h_0 … h_{T−1}] (P's first T slots)
            AccumulateBias(biasIh, dgi, rows, g);
            AccumulateBias(biasHh, dgh, rows, g);
        }

        private static void AccumulateProduct(Tensor w, Tensor dg, Tensor input, int g, int cols, int rows)
        {
            if (!w.RequiresGrad) return;
            var target = Engine.LeafGradTarget(w);
            var dw = target ?? Tensor.ZerosLike(w);
            Tensor.GemmRows(dg, true, input, false, dw, g, cols, rows, beta: 1);
            if (target == null) w.AccumulateGrad(dw);
        }

        private static void AccumulateBias(Tensor? b, Tensor dg, int rows, int g)
        {
            if (b == null || !b.RequiresGrad) return;
            var target = Engine.LeafGradTarget(b);
            var db = target ?? Tensor.ZerosLike(b);
            AddColumnSums(dg, rows, g, db);
            if (target == null) b.AccumulateGrad(db);
        }

        /// <summary>The unrolled cell, recomputed with recorded ops, and its BPTT written with recorded ops: differentiable again.</summary>
        private void BackwardRecorded(Tensor dy)
        {
            int steps = x.Size(1), h = weightHh.Size(1), g = cell.Blocks() * h;
            var zero = Tensor.ZerosLike(dy.Select(0, 0));
            var hState = h0 ?? zero;
            var cState = c0 ?? zero;
            var xw = Linear(x, weightIh, biasIh);                 // [B, T, G]
            var hPrev = new Tensor[steps];
            var act = new Tensor[steps][];
            for (int t = 0; t < steps; t++)
            {
                hPrev[t] = hState;
                var xg = xw.Select(1, t);
                var hg = Linear(hState, weightHh, biasHh);
                switch (cell)
                {
                    case RecurrentCell.RnnTanh:
                        hState = (xg + hg).Tanh();
                        act[t] = [hState];
                        break;
                    case RecurrentCell.Lstm:
                    {
                        var pre = xg + hg;
                        var i = pre.Narrow(1, 0, h).Sigmoid();
                        var f = pre.Narrow(1, h, h).Sigmoid();
                        var gg = pre.Narrow(1, 2 * h, h).Tanh();
                        var o = pre.Narrow(1, 3 * h, h).Sigmoid();
                        var cPrev = cState;
                        cState = f * cPrev + i * gg;
                        var tc = cState.Tanh();
                        hState = o * tc;
                        act[t] = [i, f, gg, o, tc, cPrev];
                        break;
                    }
                    default:
                    {
                        var r = (xg.Narrow(1, 0, h) + hg.Narrow(1, 0, h)).Sigmoid();
                        var z = (xg.Narrow(1, h, h) + hg.Narrow(1, h, h)).Sigmoid();
                        var hn = hg.Narrow(1, 2 * h, h);
                        var n = (xg.Narrow(1, 2 * h, h) + r * hn).Tanh();
                        hState = (1 - z) * n + z * hState;
                        act[t] = [r, z, n, hn];
                        break;
                    }
                }
            }
            Tensor? dh = null;
            Tensor? dc = cell == RecurrentCell.Lstm ? dy.Select(0, steps + 1) : null;
            var dgis = new Tensor[steps];
            var dghs = new Tensor[steps];
            for (int t = steps - 1; t >= 0; t--)
            {
                var dht = dh == null ? dy.Select(0, t + 1) : dy.Select(0, t + 1) + dh;
                var a = act[t];
                Tensor? direct = null;
                switch (cell)
                {
                    case RecurrentCell.RnnTanh:
                        dgis[t] = dghs[t] = dht * (1 - a[0] * a[0]);
                        break;
                    case RecurrentCell.Lstm:
                    {
                        var (i, f, gg, o, tc, cPrev) = (a[0], a[1], a[2], a[3], a[4], a[5]);
                        var dcv = dc! + dht * o * (1 - tc * tc);
                        dgis[t] = dghs[t] = Tensor.Concat([dcv * gg * i * (1 - i), dcv * cPrev * f * (1 - f), dcv * i * (1 - gg * gg), dht * tc * o * (1 - o)], 1);
                        dc = dcv * f;
                        break;
                    }
                    default:
                    {
                        var (r, z, n, hn) = (a[0], a[1], a[2], a[3]);
                        var dpn = dht * (1 - z) * (1 - n * n);
                        var dpr = dpn * hn * r * (1 - r);
                        var dpz = dht * (hPrev[t] - n) * z * (1 - z);
                        dgis[t] = Tensor.Concat([dpr, dpz, dpn], 1);
                        dghs[t] = Tensor.Concat([dpr, dpz, dpn * r], 1);
                        direct = dht * z;
                        break;
                    }
                }
                var back = dghs[t].MatMul(weightHh);
                dh = direct == null ? back : back + direct;
            }
            var dgi = Tensor.Stack(dgis, 1);                      // [B, T, G], batch-first like x
            var dgh = Tensor.Stack(dghs, 0).Reshape(-1, g);       // [T·B, G], time-major like hPrev
            if (x.RequiresGrad) x.AccumulateGrad(dgi.MatMul(weightIh));
            if (h0 != null && h0.RequiresGrad) h0.AccumulateGrad(dh! + dy.Select(0, 0));
            if (c0 != null && c0.RequiresGrad) c0.AccumulateGrad(dc!);
            var dgiRows = dgi.Reshape(-1, g);
            if (weightIh.RequiresGrad) weightIh.AccumulateGrad(dgiRows.T.MatMul(x.Reshape(-1, x.Size(2))));
            if (weightHh.RequiresGrad) weightHh.AccumulateGrad(dgh.T.MatMul(Tensor.Stack(hPrev, 0).Reshape(-1, h)));
            if (biasIh != null && biasIh.RequiresGrad) biasIh.AccumulateGrad(dgiRows.Sum(0));
            if (biasHh != null && biasHh.RequiresGrad) biasHh.AccumulateGrad(dgh.Sum(0));
        }
    }
}
