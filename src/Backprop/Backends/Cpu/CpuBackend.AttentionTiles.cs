using System.Runtime.InteropServices;

namespace Backprop.Backends.Cpu;

// The float32 fused attention (FlashAttention-2 on a CPU, in tiles): a block of up to TileQ query rows meets
// the keys in blocks of up to TileK, each score tile a small GEMM on the calling thread (Gemm.SgemmSerial:
// the AVX-512 direct path, operands read in place at their row strides), the softmax done on the whole tile
// (one exp pass), and the products with V and the gradients GEMMs again. A thread holds one score tile (two
// in backward) at a time: TileQ·TileK floats, whatever T is. With a causal mask a query block reads only the
// keys up to its last row, so the upper triangle costs nothing beyond the diagonal tile.
internal sealed partial class CpuBackend
{
    /// <summary>Query rows per tile.</summary>
    internal const int AttentionTileQ = 32;

    /// <summary>Keys per tile.</summary>
    internal const int AttentionTileK = 64;

    private sealed unsafe class AttentionTiles : IParallelWork
    {
        [ThreadStatic] private static AttentionTiles? _job;
        [ThreadStatic] private static float* t_scratch;
        [ThreadStatic] private static nint t_scratchLength;

        private Operand<float> _q, _k, _v, _o, _do, _dq, _dk, _dv;
        private float[]? _lse;
        private int _lseOff, _b, _h, _tq, _tk, _d, _dvDim, _units, _qBlocks;
        private bool _causal, _backward;
        private float _scale;

        public static void Run(in View q, in View k, in View v, in View o, in View lse, in View dO, in View dq, in View dk, in View dv,
            bool causal, double scale, bool backward)
        {
            var j = _job ??= new AttentionTiles();
            (j._b, j._h, j._tq, j._d) = (q._shape[0], q._shape[1], q._shape[2], q._shape[3]);
            (j._tk, j._dvDim) = (k._shape[2], v._shape[3]);
            (j._q, j._k, j._v, j._o) = (new Operand<float>(q), new Operand<float>(k), new Operand<float>(v), new Operand<float>(o));
            (j._lse, j._lseOff) = (lse._numel == 0 ? [] : lse.Data<float>(), lse._offset);
            (j._causal, j._backward, j._scale) = (causal, backward, (float)scale);
            if (backward) (j._do, j._dq, j._dk, j._dv) = (new Operand<float>(dO), new Operand<float>(dq), new Operand<float>(dk), new Operand<float>(dv));
            j._qBlocks = (j._tq + AttentionTileQ - 1) / AttentionTileQ;
            j._units = backward ? j._b * j._h : j._b * j._h * j._qBlocks;
            long work = (long)j._b * j._h * j._tq * j._tk * (j._d + j._dvDim) / (causal ? 2 : 1);
            int chunks = Math.Min(Threads.ChunksFor(work, 1 << 16), Math.Max(1, j._units));
            try { Threads.For(chunks, j); }
            finally { j._q.A = j._k.A = j._v.A = j._o.A = j._do.A = j._dq.A = j._dk.A = j._dv.A = j._lse = null; }
        }

        private static float* Scratch(nint floats)
        {
            if (t_scratchLength < floats)
            {
                if (t_scratch != null) NativeMemory.AlignedFree(t_scratch);
                t_scratch = (float*)NativeMemory.AlignedAlloc((nuint)(floats * sizeof(float)), 64);
                t_scratchLength = floats;
            }
            return t_scratch;
        }

        public void Run(int chunk, int chunks)
        {
            long per = ((long)_units + chunks - 1) / chunks;
            int start = (int)Math.Min(_units, chunk * per), end = (int)Math.Min(_units, (chunk + 1) * per);
            if (start >= end) return;
            const int tile = AttentionTileQ * AttentionTileK;
            float* s = Scratch(2 * tile + 3 * AttentionTileQ);
            fixed (float* q = _q.A, k = _k.A, v = _v.A, o = _o.A, dO = _do.A, dq = _dq.A, dk = _dk.A, dv = _dv.A, lse = _lse)
            {
                var p = new Ptrs { Q = q, K = k, V = v, O = o, DO = dO, DQ = dq, DK = dk, DV = dv, Lse = lse };
                for (int u = start; u < end; u++)
                {
                    if (_backward) BackwardHead(ref p, u / _h, u % _h, s, s + tile, s + 2 * tile);
                    else
                    {
                        int bh = u / _qBlocks, qb = u % _qBlocks;
                        ForwardBlock(ref p, bh / _h, bh % _h, qb * AttentionTileQ, s, s + tile, s + tile + AttentionTileQ);
                    }
                }
            }
        }

        private struct Ptrs
        {
            public float* Q, K, V, O, DO, DQ, DK, DV, Lse;
        }

        private static float* Row(float* a, in Operand<float> x, int b, int h, int t) => a + x.Off + (nint)b * x.S0 + (nint)h * x.S1 + (nint)t * x.S2;

        private int KeyEnd(int i) => _causal ? i + _tk - _tq + 1 : _tk;

        /// <summary>Sets the scores of keys a causal mask hides from each row to −∞ (rows from query i0, keys from j0, cnt wide).</summary>
        private void Mask(float* s, int rows, int cnt, int i0, int j0)
        {
            if (!_causal || KeyEnd(i0) - j0 >= cnt) return;
            for (int r = 0; r < rows; r++)
            {
                int from = Math.Max(0, KeyEnd(i0 + r) - j0);
                if (from < cnt) new Span<float>(s + (nint)r * cnt + from, cnt - from).Fill(float.NegativeInfinity);
            }
        }

        private void ForwardBlock(ref Ptrs p, int b, int h, int i0, float* s, float* m, float* l)
        {
            int rows = Math.Min(AttentionTileQ, _tq - i0), d = _d, dvDim = _dvDim;
            int kend = KeyEnd(i0 + rows - 1);
            float* qi = Row(p.Q, _q, b, h, i0), k0 = Row(p.K, _k, b, h, 0), v0 = Row(p.V, _v, b, h, 0), oi = Row(p.O, _o, b, h, i0);
            int ldq = _q.S2, ldk = _k.S2, ldv = _v.S2, ldo = _o.S2;
            for (int j0 = 0; j0 < kend; j0 += AttentionTileK)
            {
                int cnt = Math.Min(AttentionTileK, kend - j0);
                bool first = j0 == 0;
                Backends.Cpu.Gemm.SgemmSerial(false, true, rows, cnt, d, _scale, qi, ldq, k0 + (nint)j0 * ldk, ldk, 0f, s, cnt); // S = scale·Q·Kᵀ
                Mask(s, rows, cnt, i0, j0);
                for (int r = 0; r < rows; r++)
                {
                    ref float row = ref SimdMath.At(s + (nint)r * cnt);
                    float bm = SimdMath.Max(ref row, cnt);
                    if (first) m[r] = bm;
                    else if (bm > m[r])
                    {
                        // the running maximum grows: rescale what was summed so far
                        float corr = MathF.Exp(m[r] - bm);
                        l[r] *= corr;
                        SimdMath.Scale(ref SimdMath.At(oi + (nint)r * ldo), dvDim, corr);
                        m[r] = bm;
                    }
                    float sum = SimdMath.ExpShiftSum(ref row, cnt, m[r]);
                    l[r] = first ? sum : l[r] + sum;
                }
                Backends.Cpu.Gemm.SgemmSerial(false, false, rows, dvDim, cnt, 1f, s, cnt, v0 + (nint)j0 * ldv, ldv, first ? 0f : 1f, oi, ldo); // O += P·V
            }
            float* lse = p.Lse + _lseOff + ((nint)b * _h + h) * _tq + i0;
            for (int r = 0; r < rows; r++)
            {
                SimdMath.Scale(ref SimdMath.At(oi + (nint)r * ldo), dvDim, 1f / l[r]);
                lse[r] = m[r] + MathF.Log(l[r]);
            }
        }

        private void BackwardHead(ref Ptrs p, int b, int h, float* s, float* dp, float* di)
        {
            int d = _d, dvDim = _dvDim;
            float* k0 = Row(p.K, _k, b, h, 0), v0 = Row(p.V, _v, b, h, 0), dk0 = Row(p.DK, _dk, b, h, 0), dv0 = Row(p.DV, _dv, b, h, 0);
            int ldq = _q.S2, ldk = _k.S2, ldv = _v.S2, ldo = _o.S2, lddo = _do.S2, lddq = _dq.S2, lddk = _dk.S2, lddv = _dv.S2;
            for (int j = 0; j < _tk; j++)
            {
                new Span<float>(dk0 + (nint)j * lddk, d).Clear();
                new Span<float>(dv0 + (nint)j * lddv, dvDim).Clear();
            }
            for (int i0 = 0; i0 < _tq; i0 += AttentionTileQ)
            {
                int rows = Math.Min(AttentionTileQ, _tq - i0);
                int kend = KeyEnd(i0 + rows - 1);
                float* qi = Row(p.Q, _q, b, h, i0), oi = Row(p.O, _o, b, h, i0), doi = Row(p.DO, _do, b, h, i0), dqi = Row(p.DQ, _dq, b, h, i0);
                float* lse = p.Lse + _lseOff + ((nint)b * _h + h) * _tq + i0;
                for (int r = 0; r < rows; r++)
                    di[r] = SimdMath.Dot(ref SimdMath.At(doi + (nint)r * lddo), ref SimdMath.At(oi + (nint)r * ldo), dvDim);
                for (int j0 = 0; j0 < kend; j0 += AttentionTileK)
                {
                    int cnt = Math.Min(AttentionTileK, kend - j0);
                    Backends.Cpu.Gemm.SgemmSerial(false, true, rows, cnt, d, _scale, qi, ldq, k0 + (nint)j0 * ldk, ldk, 0f, s, cnt); // S = scale·Q·Kᵀ
                    Mask(s, rows, cnt, i0, j0);
                    for (int r = 0; r < rows; r++) SimdMath.ExpShiftSum(ref SimdMath.At(s + (nint)r * cnt), cnt, lse[r]); // P, from the log-sum-exp
                    Backends.Cpu.Gemm.SgemmSerial(true, false, cnt, dvDim, rows, 1f, s, cnt, doi, lddo, 1f, dv0 + (nint)j0 * lddv, lddv); // dV += Pᵀ·dO
                    Backends.Cpu.Gemm.SgemmSerial(false, true, rows, cnt, dvDim, 1f, doi, lddo, v0 + (nint)j0 * ldv, ldv, 0f, dp, cnt); // dP = dO·Vᵀ
                    for (int r = 0; r < rows; r++) // dS/scale = P·(dP − D)
                        SimdMath.MulShifted(ref SimdMath.At(dp + (nint)r * cnt), ref SimdMath.At(s + (nint)r * cnt), cnt, di[r]);
                    Backends.Cpu.Gemm.SgemmSerial(false, false, rows, d, cnt, _scale, dp, cnt, k0 + (nint)j0 * ldk, ldk, j0 == 0 ? 0f : 1f, dqi, lddq); // dQ += scale·dS·K
                    Backends.Cpu.Gemm.SgemmSerial(true, false, cnt, d, rows, _scale, dp, cnt, qi, ldq, 1f, dk0 + (nint)j0 * lddk, lddk); // dK += scale·dSᵀ·Q
                }
            }
        }
    }
}
