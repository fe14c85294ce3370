using Backprop.Autograd;
using Backprop.Backends;

namespace Backprop.NN;

public static partial class Functional
{
    /// <summary>
    /// Scaled dot-product attention, softmax(scale·q·kᵀ + mask)·v for q [B, H, Tq, D], k [B, H, Tk, D],
    /// v [B, H, Tk, Dv] (views of any strides), giving [B, H, Tq, Dv]. <paramref name="scale"/> defaults to
    /// 1/√D. With <paramref name="causal"/>, query i sees keys j ≤ i + Tk − Tq (a sequence attending to itself
    /// when Tq = Tk; the new queries of a key/value cache otherwise). Dropout on the attention weights applies
    /// in training when <paramref name="dropout"/> &gt; 0.
    /// </summary>
    /// <remarks>
    /// Without dropout this is one fused, numerically stable op: the keys are read in blocks with an online
    /// softmax, so no [Tq, Tk] score matrix is allocated (extra memory O(B·H·T), the log-sum-exp of each row,
    /// which the backward uses to recompute the probabilities block by block, as FlashAttention-2 does). With
    /// dropout in training it is the plain formulation (scores, softmax, dropout, product), which holds the
    /// [B, H, Tq, Tk] weights. The result is the transpose of a contiguous [B, Tq, H, Dv] tensor, so
    /// <c>y.Transpose(1, 2).Reshape(B, Tq, H·Dv)</c> copies nothing.
    /// </remarks>
    public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, bool causal = false, double? scale = null,
        double dropout = 0, bool training = false, Generator? generator = null)
    {
        CheckAttention(q, k, v, causal);
        if (dropout < 0 || dropout > 1) throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "ScaledDotProductAttention: dropout must be in [0, 1].");
        double s = scale ?? 1 / Math.Sqrt(q.Size(3));
        if (training && dropout > 0)
            return Dropout(AttentionWeights(q, k, causal, s), dropout, training, generator).MatMul(v);
        int b = q.Size(0), h = q.Size(1), tq = q.Size(2), dv = v.Size(3);
        var backend = Dispatch.BackendOf("ScaledDotProductAttention", q, k);
        Dispatch.BackendOf("ScaledDotProductAttention", q, v);
        var qu = UnitStride(q);
        var ku = UnitStride(k);
        var vu = UnitStride(v);
        var o = Tensor.Empty(ShapeCache.Intern([b, tq, h, dv]), q.DType, backend).Transpose(1, 2);
        var lse = Tensor.Empty(ShapeCache.Intern([b, h, tq]), q.DType, backend).MarkScratch();
        backend.AttentionForward(qu.V, ku.V, vu.V, o.V, lse.V, causal, s);
        Engine.Record(o, "ScaledDotProductAttention", new AttentionBackward(q, k, v, qu, ku, vu, o, lse, causal, s), q, k, v, saved0: o, saved1: lse);
        return o;
    }

    /// <summary>
    /// Multi-head self-attention straight from the fused projection <paramref name="qkv"/> [B, T, 3C] (queries,
    /// then keys, then values, each C = heads·D wide, as GPT-2's <c>c_attn</c> writes them), giving [B, T, C] with
    /// the heads side by side: the same as splitting qkv into [B, H, T, D] views, calling
    /// <see cref="ScaledDotProductAttention"/> and merging the heads, but as one op whose kernels read and write
    /// the packed layouts in place (no split, transpose or merge copies, and one gradient [B, T, 3C] in backward).
    /// </summary>
    public static Tensor SelfAttention(Tensor qkv, int heads, bool causal = true, double? scale = null)
    {
        const string op = "SelfAttention";
        if (qkv.Rank != 3 || heads < 1 || qkv.Size(2) % (3 * heads) != 0 || qkv.Size(2) == 0)
            throw new ShapeException($"{op}: expected qkv of shape [batch, time, 3·heads·dim] for {heads} heads, got {qkv.Shape}.");
        if (!qkv.DType.IsFloatingPoint()) throw Dispatch.NotFloat(op, qkv);
        int b = qkv.Size(0), t = qkv.Size(1), c = qkv.Size(2) / 3, d = c / heads;
        double s = scale ?? 1 / Math.Sqrt(d);
        var x = qkv.ContiguousData();
        if (!ReferenceEquals(x, qkv)) x.MarkScratch();
        var y = Tensor.Empty(ShapeCache.Intern([b, t, c]), qkv.DType, qkv.Backend);
        var lse = Tensor.Empty(ShapeCache.Intern([b, heads, t]), qkv.DType, qkv.Backend).MarkScratch();
        var (qv, kv, vv) = PackedViews(x, heads);
        qkv.Backend.AttentionForward(qv, kv, vv, HeadsView(y, heads), lse.V, causal, s);
        Engine.Record(y, op, new SelfAttentionBackward(qkv, x, y, lse, heads, causal, s), qkv, saved0: lse, saved1: x);
        return y;
    }

    /// <summary>The [B, H, T, D] query, key and value views of a contiguous [B, T, 3·H·D] buffer.</summary>
    private static (View Q, View K, View V) PackedViews(Tensor qkv, int heads)
    {
        var v = qkv.V;
        int b = qkv.Size(0), t = qkv.Size(1), c = qkv.Size(2) / 3, d = c / heads;
        var shape = ShapeCache.Intern([b, heads, t, d]);
        var strides = ShapeCache.Intern([t * 3 * c, d, 3 * c, 1]); // interned: no array per call
        return (v.With(shape, strides, v._offset), v.With(shape, strides, v._offset + c), v.With(shape, strides, v._offset + 2 * c));
    }

    /// <summary>The [B, H, T, D] view of a contiguous [B, T, H·D] buffer.</summary>
    private static View HeadsView(Tensor y, int heads)
    {
        var v = y.V;
        int b = y.Size(0), t = y.Size(1), c = y.Size(2), d = c / heads;
        return v.With(ShapeCache.Intern([b, heads, t, d]), ShapeCache.Intern([t * c, d, c, 1]), v._offset);
    }

    /// <summary>The fused backward writing the packed gradient [B, T, 3C], or the plain formulation from recorded ops.</summary>
    private readonly struct SelfAttentionBackward(Tensor qkv, Tensor x, Tensor y, Tensor lse, int heads, bool causal, double scale) : IBackward
    {
        public void Backward(Tensor dy)
        {
            int b = qkv.Size(0), t = qkv.Size(1), c = qkv.Size(2) / 3, d = c / heads;
            if (Engine.CreateGraph)
            {
                var split = qkv.View(b, t, 3, heads, d);
                var q = split.Select(2, 0).Transpose(1, 2);
                var k = split.Select(2, 1).Transpose(1, 2);
                var v = split.Select(2, 2).Transpose(1, 2);
                var p = AttentionWeights(q, k, causal, scale);
                var g = dy.Reshape(b, t, heads, d).Transpose(1, 2);
                var dv = p.Transpose(-2, -1).MatMul(g);
                var dp = g.MatMul(v.Transpose(-2, -1));
                var ds = p * (dp - (dp * p).Sum(-1, keepDim: true)) * scale;
                var dq = ds.MatMul(k);
                var dk = ds.Transpose(-2, -1).MatMul(q);
                qkv.AccumulateGrad(Tensor.Stack([dq.Transpose(1, 2), dk.Transpose(1, 2), dv.Transpose(1, 2)], 2).Reshape(b, t, 3 * c));
                return;
            }
            var dyc = dy.ContiguousData();
            var dx = Tensor.Empty(x._shape, x.DType, x.Backend);
            var (qv, kv, vv) = PackedViews(x, heads);
            var (dqv, dkv, dvv) = PackedViews(dx, heads);
            x.Backend.AttentionBackward(qv, kv, vv, HeadsView(y, heads), HeadsView(dyc, heads), lse.V, dqv, dkv, dvv, causal, scale);
            qkv.AccumulateGrad(dx);
        }
    }

    /// <summary>The attention weights softmax(scale·q·kᵀ + mask) [B, H, Tq, Tk] (what each query attends to), from ordinary recorded ops.</summary>
    public static Tensor AttentionWeights(Tensor q, Tensor k, bool causal = false, double? scale = null)
    {
        if (q.Rank != 4 || k.Rank != 4) throw new ShapeException($"AttentionWeights: q and k must be 4-D [B, H, T, D], got {q.Shape} and {k.Shape}.");
        var scores = q.MatMul(k.Transpose(-2, -1)) * (scale ?? 1 / Math.Sqrt(q.Size(3)));
        if (causal) scores = scores.MaskedFill(CausalMask(scores, q.Size(2), k.Size(2)), double.NegativeInfinity);
        return scores.Softmax(-1);
    }

    /// <summary>1 where key j is hidden from query i (j &gt; i + Tk − Tq), as a [Tq, Tk] constant on like's device.</summary>
    private static Tensor CausalMask(Tensor like, int tq, int tk)
    {
        var m = new double[tq * tk];
        for (int i = 0; i < tq; i++)
            for (int j = 0; j < tk; j++)
                m[i * tk + j] = j > i + tk - tq ? 1 : 0;
        return like.HostConst(m, [tq, tk]);
    }

    private static void CheckAttention(Tensor q, Tensor k, Tensor v, bool causal)
    {
        const string op = "ScaledDotProductAttention";
        if (q.Rank != 4 || k.Rank != 4 || v.Rank != 4)
            throw new ShapeException($"{op}: q, k and v must be 4-D [batch, heads, time, dim], got {q.Shape}, {k.Shape} and {v.Shape}.");
        if (q.Size(0) != k.Size(0) || q.Size(1) != k.Size(1) || q.Size(3) != k.Size(3))
            throw new ShapeException($"{op}: q {q.Shape} and k {k.Shape} must agree in batch, heads and the last dimension.");
        if (v.Size(0) != k.Size(0) || v.Size(1) != k.Size(1) || v.Size(2) != k.Size(2))
            throw new ShapeException($"{op}: v {v.Shape} must have k's batch, heads and time ({k.Shape}).");
        if (q.Size(3) == 0 || k.Size(2) == 0)
            throw new ShapeException($"{op}: the key dimension and the number of keys must be positive, got q {q.Shape} and k {k.Shape}.");
        if (causal && q.Size(2) > k.Size(2))
            throw new ShapeException($"{op}: a causal mask needs at least as many keys as queries, got {q.Size(2)} queries and {k.Size(2)} keys.");
        if (!q.DType.IsFloatingPoint()) throw Dispatch.NotFloat(op, q);
        if (k.DType != q.DType || v.DType != q.DType)
            throw new ArgumentException($"{op}: dtypes differ: q {q.DType.Name()}, k {k.DType.Name()}, v {v.DType.Name()}.");
    }

    /// <summary>The tensor itself when its last dimension has stride 1 (what the kernels read), else a contiguous copy.</summary>
    private static Tensor UnitStride(Tensor t)
    {
        if (t._strides[^1] == 1 || t._shape[^1] == 1) return t.NoGraph();
        return Dispatch.ToContiguous(t.NoGraph()).MarkScratch();
    }

    /// <summary>
    /// The fused backward (the kernel recomputes the probabilities from the saved log-sum-exp), or, when the
    /// backward builds a graph, the plain formulation from recorded ops: P = softmax(scale·q·kᵀ + mask),
    /// dv = Pᵀ·dy, dS = P·(dy·vᵀ − rowsum(dy·vᵀ·P)), dq = scale·dS·k, dk = scale·dSᵀ·q.
    /// </summary>
    private readonly struct AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor qu, Tensor ku, Tensor vu, Tensor o, Tensor lse, bool causal, double scale) : IBackward
    {
        public void Backward(Tensor dy)
        {
            if (Engine.CreateGraph)
            {
                BackwardRecorded(dy);
                return;
            }
            var dyu = UnitStride(dy);
            var dq = Tensor.Empty(q._shape, q.DType, q.Backend);
            var dk = Tensor.Empty(k._shape, k.DType, k.Backend);
            var dv = Tensor.Empty(v._shape, v.DType, v.Backend);
            q.Backend.AttentionBackward(qu.V, ku.V, vu.V, o.V, dyu.V, lse.V, dq.V, dk.V, dv.V, causal, scale);
            if (q.RequiresGrad) q.AccumulateGrad(dq);
            if (k.RequiresGrad) k.AccumulateGrad(dk);
            if (v.RequiresGrad) v.AccumulateGrad(dv);
        }

        private void BackwardRecorded(Tensor dy)
        {
            var p = AttentionWeights(q, k, causal, scale);
            if (v.RequiresGrad) v.AccumulateGrad(p.Transpose(-2, -1).MatMul(dy));
            if (!q.RequiresGrad && !k.RequiresGrad) return;
            var dp = dy.MatMul(v.Transpose(-2, -1));
            var ds = p * (dp - (dp * p).Sum(-1, keepDim: true)) * scale;
            if (q.RequiresGrad) q.AccumulateGrad(ds.MatMul(k));
            if (k.RequiresGrad) k.AccumulateGrad(ds.Transpose(-2, -1).MatMul(q));
        }
    }
}
