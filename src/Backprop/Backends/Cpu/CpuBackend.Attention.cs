using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace Backprop.Backends.Cpu;

// Fused scaled dot-product attention (FlashAttention-2 on a CPU). float32 runs in tiles of small GEMMs
// (CpuBackend.AttentionTiles.cs); this file's row-at-a-time kernels serve float64. The forward walks the keys in blocks of
// KeyBlock with an online softmax (running max and sum, the accumulator rescaled when the max grows), so a
// thread holds one block of scores at a time; the backward recomputes each probability from the saved
// log-sum-exp. Forward work is split over (batch, head, query block), backward over (batch, head): one
// thread owns a head's dk and dv, so nothing is shared.
internal sealed partial class CpuBackend
{
    /// <summary>Keys per block of scores.</summary>
    internal const int AttentionKeyBlock = 64;

    /// <summary>Query rows per unit of forward work.</summary>
    private const int AttentionQueryBlock = 16;

    public void AttentionForward(in View q, in View k, in View v, in View o, in View lse, bool causal, double scale)
    {
        if (q.DType == DType.Float32) AttentionTiles.Run(q, k, v, o, lse, default, default, default, default, causal, scale, backward: false);
        else AttentionJob<double>.Run(q, k, v, o, lse, default, default, default, default, causal, scale, backward: false);
    }

    public void AttentionBackward(in View q, in View k, in View v, in View o, in View dO, in View lse,
        in View dq, in View dk, in View dv, bool causal, double scale)
    {
        if (q.DType == DType.Float32) AttentionTiles.Run(q, k, v, o, lse, dO, dq, dk, dv, causal, scale, backward: true);
        else AttentionJob<double>.Run(q, k, v, o, lse, dO, dq, dk, dv, causal, scale, backward: true);
    }

    /// <summary>A [B, H, T, D] operand: its array, offset and the strides of its first three dimensions (the last is 1).</summary>
    private struct Operand<T> where T : unmanaged
    {
        public T[]? A;
        public int Off, S0, S1, S2;

        public Operand(in View x)
        {
            A = x._numel == 0 ? [] : x.Data<T>();
            Off = x._offset;
            (S0, S1, S2) = (x._strides[0], x._strides[1], x._strides[2]);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly ref T Row(int b, int h, int t) => ref A![Off + b * S0 + h * S1 + t * S2];
    }

    private sealed class AttentionJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
    {
        [ThreadStatic] private static AttentionJob<T>? _job;
        private Operand<T> _q, _k, _v, _o, _do, _dq, _dk, _dv;
        private T[]? _lse;
        private int _lseOff, _b, _h, _tq, _tk, _d, _dvDim, _units, _qBlocks;
        private bool _causal, _backward;
        private T _scale;

        public static void Run(in View q, in View k, in View v, in View o, in View lse, in View dO, in View dq, in View dk, in View dv,
            bool causal, double scale, bool backward)
        {
            var j = _job ??= new AttentionJob<T>();
            (j._b, j._h, j._tq, j._d) = (q._shape[0], q._shape[1], q._shape[2], q._shape[3]);
            (j._tk, j._dvDim) = (k._shape[2], v._shape[3]);
            (j._q, j._k, j._v, j._o) = (new Operand<T>(q), new Operand<T>(k), new Operand<T>(v), new Operand<T>(o));
            (j._lse, j._lseOff) = (lse._numel == 0 ? [] : lse.Data<T>(), lse._offset);
            (j._causal, j._backward, j._scale) = (causal, backward, T.CreateChecked(scale));
            if (backward) (j._do, j._dq, j._dk, j._dv) = (new Operand<T>(dO), new Operand<T>(dq), new Operand<T>(dk), new Operand<T>(dv));
            j._qBlocks = (j._tq + AttentionQueryBlock - 1) / AttentionQueryBlock;
            j._units = backward ? j._b * j._h : j._b * j._h * j._qBlocks;
            long work = (long)j._b * j._h * j._tq * j._tk * (j._d + j._dvDim) / (causal ? 2 : 1);
            int chunks = Math.Min(Threads.ChunksFor(work, 1 << 16), Math.Max(1, j._units));
            try { Threads.For(chunks, j); }
            finally { j._q.A = j._k.A = j._v.A = j._o.A = j._do.A = j._dq.A = j._dk.A = j._dv.A = j._lse = null; }
        }

        public void Run(int chunk, int chunks)
        {
            long per = ((long)_units + chunks - 1) / chunks;
            int start = (int)Math.Min(_units, chunk * per), end = (int)Math.Min(_units, (chunk + 1) * per);
            Span<T> scores = stackalloc T[AttentionKeyBlock];
            T[]? rented = null;
            Span<T> acc = _dvDim <= 1024 ? stackalloc T[_dvDim] : (rented = System.Buffers.ArrayPool<T>.Shared.Rent(_dvDim)).AsSpan(0, _dvDim);
            try
            {
                for (int u = start; u < end; u++)
                {
                    if (_backward) BackwardHead(u / _h, u % _h, scores);
                    else
                    {
                        int bh = u / _qBlocks, qb = u % _qBlocks;
                        int i0 = qb * AttentionQueryBlock, i1 = Math.Min(_tq, i0 + AttentionQueryBlock);
                        for (int i = i0; i < i1; i++) ForwardRow(bh / _h, bh % _h, i, scores, acc);
                    }
                }
            }
            finally { if (rented != null) System.Buffers.ArrayPool<T>.Shared.Return(rented); }
        }

        private int KeyEnd(int i) => _causal ? i + _tk - _tq + 1 : _tk;

        private void ForwardRow(int b, int h, int i, Span<T> s, Span<T> acc)
        {
            int d = _d, dv = _dvDim, kend = KeyEnd(i);
            ref T qi = ref _q.Row(b, h, i);
            T m = T.NegativeInfinity, l = T.Zero;
            acc.Clear();
            for (int j0 = 0; j0 < kend; j0 += AttentionKeyBlock)
            {
                int cnt = Math.Min(AttentionKeyBlock, kend - j0);
                var sb = s[..cnt];
                for (int jj = 0; jj < cnt; jj++) sb[jj] = _scale * Dot(ref qi, ref _k.Row(b, h, j0 + jj), d);
                T bm = TensorPrimitives.Max<T>(sb);
                T mnew = T.Max(m, bm);
                if (mnew > m && l != T.Zero)
                {
                    T corr = T.Exp(m - mnew);
                    l *= corr;
                    TensorPrimitives.Multiply(acc, corr, acc);
                }
                m = mnew;
                TensorPrimitives.Subtract(sb, m, sb);
                TensorPrimitives.Exp<T>(sb, sb);
                l += TensorPrimitives.Sum<T>(sb);
                ref T a0 = ref acc[0];
                for (int jj = 0; jj < cnt; jj++) Axpy(sb[jj], ref _v.Row(b, h, j0 + jj), ref a0, dv);
            }
            TensorPrimitives.Divide(acc, l, MemoryMarshalSpan(ref _o.Row(b, h, i), dv));
            _lse![_lseOff + (b * _h + h) * _tq + i] = m + T.Log(l);
        }

        private void BackwardHead(int b, int h, Span<T> s)
        {
            int d = _d, dv = _dvDim;
            for (int j = 0; j < _tk; j++)
            {
                MemoryMarshalSpan(ref _dk.Row(b, h, j), d).Clear();
                MemoryMarshalSpan(ref _dv.Row(b, h, j), dv).Clear();
            }
            for (int i = 0; i < _tq; i++)
            {
                ref T qi = ref _q.Row(b, h, i);
                ref T doi = ref _do.Row(b, h, i);
                ref T dqi = ref _dq.Row(b, h, i);
                MemoryMarshalSpan(ref dqi, d).Clear();
                T di = Dot(ref doi, ref _o.Row(b, h, i), dv);
                T lse = _lse![_lseOff + (b * _h + h) * _tq + i];
                int kend = KeyEnd(i);
                for (int j0 = 0; j0 < kend; j0 += AttentionKeyBlock)
                {
                    int cnt = Math.Min(AttentionKeyBlock, kend - j0);
                    var sb = s[..cnt];
                    for (int jj = 0; jj < cnt; jj++) sb[jj] = _scale * Dot(ref qi, ref _k.Row(b, h, j0 + jj), d) - lse;
                    TensorPrimitives.Exp<T>(sb, sb);
                    for (int jj = 0; jj < cnt; jj++)
                    {
                        int j = j0 + jj;
                        T p = sb[jj];
                        ref T vj = ref _v.Row(b, h, j);
                        Axpy(p, ref doi, ref _dv.Row(b, h, j), dv);             // dv_j += p·do_i
                        T ds = p * (Dot(ref doi, ref vj, dv) - di) * _scale;    // scale·p·(do_i·v_j − D_i)
                        Axpy(ds, ref _k.Row(b, h, j), ref dqi, d);              // dq_i += ds·k_j
                        Axpy(ds, ref qi, ref _dk.Row(b, h, j), d);              // dk_j += ds·q_i
                    }
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Span<T> MemoryMarshalSpan(ref T r, int n) => System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref r, n);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static T Dot(ref T a, ref T b, int n)
        {
            int i = 0;
            T s = T.Zero;
            if (Vector.IsHardwareAccelerated && n >= Vector<T>.Count)
            {
                var acc = Vector<T>.Zero;
                for (; i <= n - Vector<T>.Count; i += Vector<T>.Count)
                    acc += Vector.LoadUnsafe(ref a, (nuint)i) * Vector.LoadUnsafe(ref b, (nuint)i);
                s = Vector.Sum(acc);
            }
            for (; i < n; i++) s += Unsafe.Add(ref a, i) * Unsafe.Add(ref b, i);
            return s;
        }

        /// <summary>y += alpha·x over n elements.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Axpy(T alpha, ref T x, ref T y, int n)
        {
            int i = 0;
            if (Vector.IsHardwareAccelerated && n >= Vector<T>.Count)
            {
                var va = new Vector<T>(alpha);
                for (; i <= n - Vector<T>.Count; i += Vector<T>.Count)
                    (Vector.LoadUnsafe(ref y, (nuint)i) + va * Vector.LoadUnsafe(ref x, (nuint)i)).StoreUnsafe(ref y, (nuint)i);
            }
            for (; i < n; i++) Unsafe.Add(ref y, i) += alpha * Unsafe.Add(ref x, i);
        }
    }
}
