using System.Numerics.Tensors;

namespace Backprop.Backends.Cpu;

// Matrix products through the packed GEMM, row softmax, and the fused cross-entropy.
internal sealed partial class CpuBackend
{
    public void SoftmaxRows(in View x, in View y, bool log)
    {
        int cols = x._shape[^1];
        int rows = cols == 0 ? 0 : x._numel / cols;
        if (x.DType == DType.Float32) Rows<float>(x.Span<float>(), y.Span<float>(), rows, cols, log);
        else Rows<double>(x.Span<double>(), y.Span<double>(), rows, cols, log);
    }

    private static void Rows<T>(ReadOnlySpan<T> x, Span<T> y, int rows, int cols, bool log) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols);
            var yr = y.Slice(r * cols, cols);
            T max = TensorPrimitives.Max<T>(xr);
            if (T.IsNegativeInfinity(max)) max = T.Zero; // all −∞: exp gives 0s and the division NaN, as in PyTorch
            TensorPrimitives.Subtract(xr, max, yr);
            if (log)
            {
                // y = (x − max) − log Σ exp(x − max); exp into y, sum, then recompute the shifted row
                TensorPrimitives.Exp<T>(yr, yr);
                T lse = T.Log(TensorPrimitives.Sum<T>(yr));
                // subtract max and lse separately: max + lse would round at the magnitude of max
                TensorPrimitives.Subtract(xr, max, yr);
                TensorPrimitives.Subtract(yr, lse, yr);
            }
            else
            {
                TensorPrimitives.Exp<T>(yr, yr);
                T sum = TensorPrimitives.Sum<T>(yr);
                TensorPrimitives.Divide(yr, sum, yr);
            }
        }
    }

    public int CrossEntropy(in View logits, in View target, in View logp, in View output, LossReduction reduction, long ignoreIndex, double labelSmoothing)
    {
        int n = logits._shape[0], c = logits._shape[1];
        var yd = target.Span<long>();
        for (int i = 0; i < n; i++)
            if (yd[i] != ignoreIndex && (yd[i] < 0 || yd[i] >= c)) throw IndexErrors.ClassOutOfRange("CrossEntropy", yd[i], i, c);
        if (logits.DType == DType.Float32)
        {
            Rows<float>(logits.Span<float>(), logp.Span<float>(), n, c, log: true);
            return IndexLoss<float>(logp.Span<float>(), yd, output.Span<float>(), n, c, reduction, ignoreIndex, labelSmoothing);
        }
        Rows<double>(logits.Span<double>(), logp.Span<double>(), n, c, log: true);
        return IndexLoss<double>(logp.Span<double>(), yd, output.Span<double>(), n, c, reduction, ignoreIndex, labelSmoothing);
    }

    private static int IndexLoss<T>(ReadOnlySpan<T> logp, ReadOnlySpan<long> y, Span<T> output, int n, int c, LossReduction reduction, long ignoreIndex,
        double eps) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double total = 0;
        int counted = 0;
        for (int i = 0; i < n; i++)
        {
            double l = 0;
            if (y[i] != ignoreIndex)
            {
                var row = logp.Slice(i * c, c);
                l = -(1 - eps) * double.CreateTruncating(row[(int)y[i]]);
                if (eps != 0) l -= eps / c * double.CreateTruncating(TensorPrimitives.Sum(row));
                counted++;
            }
            if (reduction == LossReduction.None) output[i] = T.CreateTruncating(l);
            total += l;
        }
        if (reduction != LossReduction.None)
            output[0] = T.CreateTruncating(reduction == LossReduction.Sum ? total : counted == 0 ? double.NaN : total / counted);
        return counted;
    }

    public void CrossEntropyBackward(in View logp, in View target, in View dy, in View grad, LossReduction reduction, long ignoreIndex, double denominator, double labelSmoothing)
    {
        if (grad.DType == DType.Float32)
            IndexGrad<float>(logp.Span<float>(), target.Span<long>(), dy.Span<float>(), grad.Span<float>(), reduction, ignoreIndex, denominator, labelSmoothing);
        else
            IndexGrad<double>(logp.Span<double>(), target.Span<long>(), dy.Span<double>(), grad.Span<double>(), reduction, ignoreIndex, denominator, labelSmoothing);
    }

    // d loss_i / d logits_ij = softmax_ij − q_ij with q = (1 − ε)·onehot(y_i) + ε/C, times the upstream gradient of loss_i.
    private static void IndexGrad<T>(ReadOnlySpan<T> logp, ReadOnlySpan<long> y, ReadOnlySpan<T> dy, Span<T> g, LossReduction reduction,
        long ignoreIndex, double denom, double eps) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = y.Length, c = n == 0 ? 0 : logp.Length / n;
        T shared = reduction == LossReduction.None ? T.Zero : T.CreateTruncating(double.CreateTruncating(dy[0]) / denom);
        for (int i = 0; i < n; i++)
        {
            var gi = g.Slice(i * c, c);
            if (y[i] == ignoreIndex)
            {
                gi.Clear();
                continue;
            }
            T scale = reduction == LossReduction.None ? dy[i] : shared;
            TensorPrimitives.Exp(logp.Slice(i * c, c), gi);
            TensorPrimitives.Multiply(gi, scale, gi);
            if (eps != 0) TensorPrimitives.Subtract(gi, scale * T.CreateTruncating(eps / c), gi);
            gi[(int)y[i]] -= scale * T.CreateTruncating(1 - eps);
        }
    }

    public void MatMul(in View a, in View b, in View y, float beta) => Product(a, b, y, beta);

    public unsafe void Gemm(bool transA, bool transB, int m, int n, int k, in View a, in View b, float beta, in View c)
    {
        if (m == 0 || n == 0) return;
        int lda = Math.Max(transA ? m : k, 1), ldb = Math.Max(transB ? k : n, 1);
        if (c.DType == DType.Float32)
        {
            fixed (float* pa = a.Data<float>(), pb = b.Data<float>(), pc = c.Data<float>())
                Cpu.Gemm.Sgemm(transA, transB, m, n, k, 1f, pa + a._offset, lda, pb + b._offset, ldb, beta, pc + c._offset, n);
        }
        else
        {
            fixed (double* pa = a.Data<double>(), pb = b.Data<double>(), pc = c.Data<double>())
                Cpu.Gemm.Dgemm(transA, transB, m, n, k, 1.0, pa + a._offset, lda, pb + b._offset, ldb, beta, pc + c._offset, n);
        }
    }

    public void AddRowSums(in View m, in View acc)
    {
        int cols = acc._numel;
        int rows = cols == 0 ? 0 : m._numel / cols;
        if (m.DType == DType.Float32)
        {
            var src = m.Span<float>();
            var dst = acc.Span<float>();
            for (int i = 0; i < rows; i++) TensorPrimitives.Add(dst, src.Slice(i * cols, cols), dst);
        }
        else
        {
            var src = m.Span<double>();
            var dst = acc.Span<double>();
            for (int i = 0; i < rows; i++) TensorPrimitives.Add(dst, src.Slice(i * cols, cols), dst);
        }
    }

    /// <summary>How GEMM should read the last two dimensions of a tensor, or null if it needs a copy.</summary>
    private static (bool trans, int ld)? MatrixLayout(View t)
    {
        int r = t.Rank, rows = t._shape[r - 2], cols = t._shape[r - 1];
        int sr = t._strides[r - 2], sc = t._strides[r - 1];
        if ((sc == 1 || cols == 1) && (sr >= Math.Max(cols, 1) || rows == 1)) return (false, rows == 1 ? Math.Max(cols, 1) : sr);
        if ((sr == 1 || rows == 1) && (sc >= Math.Max(rows, 1) || cols == 1)) return (true, cols == 1 ? Math.Max(rows, 1) : sc);
        return null;
    }

    /// <summary>y = a·b + beta·y over broadcast batch dimensions; y must be contiguous with the right shape.</summary>
    internal static void Product(View a, View b, View y, float beta)
    {
        var la = MatrixLayout(a);
        if (la == null) { a = Contiguous(a); la = (false, a._shape[^1]); }
        var lb = MatrixLayout(b);
        if (lb == null) { b = Contiguous(b); lb = (false, b._shape[^1]); }
        int m = a._shape[^2], k = a._shape[^1], n = b._shape[^1];
        if (y._numel == 0) return; // nothing to write (GEMM wants positive leading dimensions)
        int bRank = y.Rank - 2;
        var batch = y._shape[..bRank];
        var sa = new int[bRank];
        var sb = new int[bRank];
        var sy = y._strides[..bRank];
        for (int i = 0; i < bRank; i++)
        {
            int ja = i - (bRank - (a.Rank - 2)), jb = i - (bRank - (b.Rank - 2));
            sa[i] = ja < 0 || a._shape[ja] == 1 ? 0 : a._strides[ja];
            sb[i] = jb < 0 || b._shape[jb] == 1 ? 0 : b._strides[jb];
        }
        if (y.DType == DType.Float32)
        {
            var kk = new GemmInner<float>(a.Data<float>(), b.Data<float>(), y.Data<float>(), la.Value, lb.Value, m, n, k, beta);
            Strided.Run(batch, sa, a._offset, sb, b._offset, sy, y._offset, ref kk);
        }
        else
        {
            var kk = new GemmInner<double>(a.Data<double>(), b.Data<double>(), y.Data<double>(), la.Value, lb.Value, m, n, k, beta);
            Strided.Run(batch, sa, a._offset, sb, b._offset, sy, y._offset, ref kk);
        }
    }

    private readonly unsafe struct GemmInner<T>(T[] a, T[] b, T[] c, (bool trans, int ld) la, (bool trans, int ld) lb, int m, int n, int k, float beta)
        : IStridedInner where T : unmanaged
    {
        public void Run(int count, int oa, int sa, int ob, int sb, int oc, int sc)
        {
            fixed (T* pa = a, pb = b, pc = c)
            {
                if (typeof(T) == typeof(float))
                    Cpu.Gemm.SgemmBatched(count, la.trans, lb.trans, m, n, k, 1f, (float*)pa + oa, la.ld, sa, (float*)pb + ob, lb.ld, sb, beta, (float*)pc + oc, n, sc);
                else
                    Cpu.Gemm.DgemmBatched(count, la.trans, lb.trans, m, n, k, 1.0, (double*)pa + oa, la.ld, sa, (double*)pb + ob, lb.ld, sb, beta, (double*)pc + oc, n, sc);
            }
        }
    }

    /// <summary>A contiguous copy of a view (a scratch buffer from the pool, returned when the product is done would be better; these copies are rare).</summary>
    private static View Contiguous(in View v)
    {
        var y = new View(Instance.Allocate(v.DType, v._numel), (int[])v._shape.Clone());
        Copy.Into(v, y);
        return y;
    }
}
