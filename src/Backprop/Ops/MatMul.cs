using Backprop.Autograd;
using Backprop.Kernels;

namespace Backprop;

// Matrix products. Backward never builds a Jacobian: for Y = A·B, dA = dY·Bᵀ and dB = Aᵀ·dY,
// where the transposes are views handed to GEMM as transpose flags (no copies).
public partial class Tensor
{
    /// <summary>
    /// Matrix product with PyTorch's rules: 1-D·1-D is a dot product; a 1-D operand is treated as a
    /// row (left) or column (right) vector and that dimension is removed from the result; operands
    /// of rank &gt; 2 are batches of matrices whose leading dimensions broadcast.
    /// </summary>
    public static Tensor MatMul(Tensor a, Tensor b)
    {
        if (a.Rank == 0 || b.Rank == 0)
            throw new ShapeException($"MatMul: both arguments must have at least one dimension, got {a.Shape} and {b.Shape}.");
        Elementwise.CheckSameDType("MatMul", a, b);
        if (!a.DType.IsFloatingPoint()) throw Elementwise.NotFloat("MatMul", a);
        if (a.Rank == 1 && b.Rank == 1)
        {
            if (a._numel != b._numel)
                throw new ShapeException($"MatMul: cannot take the dot product of {a.Shape} and {b.Shape}: lengths {a._numel} and {b._numel} differ.");
            return MatMulCore(a.Unsqueeze(0), b.Unsqueeze(1), a, b).Reshape([]);
        }
        if (a.Rank == 1) return MatMulCore(a.Unsqueeze(0), b, a, b).Squeeze(-2);
        if (b.Rank == 1) return MatMulCore(a, b.Unsqueeze(1), a, b).Squeeze(-1);
        return MatMulCore(a, b, a, b);
    }

    /// <summary>this · other (see <see cref="MatMul(Tensor, Tensor)"/>).</summary>
    public Tensor MatMul(Tensor other) => MatMul(this, other);

    private static Tensor MatMulCore(Tensor a, Tensor b, Tensor origA, Tensor origB)
    {
        int m = a._shape[^2], k = a._shape[^1], k2 = b._shape[^2], n = b._shape[^1];
        if (k != k2)
            throw new ShapeException(
                $"MatMul: cannot multiply {origA.Shape} by {origB.Shape}: inner dimensions {k} and {k2} differ.");
        int[] batch;
        try
        {
            batch = Strided.BroadcastShapes("MatMul", a._shape[..^2], b._shape[..^2]);
        }
        catch (ShapeException)
        {
            throw new ShapeException($"MatMul: batch dimensions of {origA.Shape} and {origB.Shape} cannot be broadcast together.");
        }
        var outShape = new int[batch.Length + 2];
        batch.CopyTo(outShape, 0);
        outShape[^2] = m;
        outShape[^1] = n;
        var y = Empty(outShape, a.DType);
        Product(a, b, y, beta: 0);
        Engine.Record(y, "MatMul", new MatMulBackward(a, b), a, b);
        return y;
    }

    private readonly struct MatMulBackward(Tensor a, Tensor b) : IBackward
    {
        public void Backward(Tensor dy)
        {
            if (a.RequiresGrad) a.AccumulateGradSummed(MatMul(dy, b.Transpose(-1, -2)));
            if (b.RequiresGrad) b.AccumulateGradSummed(MatMul(a.Transpose(-1, -2), dy));
        }
    }

    /// <summary>
    /// c = op(a)·op(b) + beta·c where a, b, c are contiguous tensors read as row-major matrices from
    /// their offsets (op(a) is m×k, op(b) is k×n, c is m×n), whatever their nominal shapes: no view objects needed.
    /// </summary>
    internal static unsafe void GemmRows(Tensor a, bool transA, Tensor b, bool transB, Tensor c, int m, int n, int k, float beta)
    {
        Debug.Assert(a._contiguous && b._contiguous && c._contiguous);
        if (m == 0 || n == 0) return;
        int lda = Math.Max(transA ? m : k, 1), ldb = Math.Max(transB ? k : n, 1);
        if (c.DType == DType.Float32)
        {
            fixed (float* pa = a.Data<float>(), pb = b.Data<float>(), pc = c.Data<float>())
                Gemm.Sgemm(transA, transB, m, n, k, 1f, pa + a._offset, lda, pb + b._offset, ldb, beta, pc + c._offset, n);
        }
        else
        {
            fixed (double* pa = a.Data<double>(), pb = b.Data<double>(), pc = c.Data<double>())
                Gemm.Dgemm(transA, transB, m, n, k, 1.0, pa + a._offset, lda, pb + b._offset, ldb, beta, pc + c._offset, n);
        }
        c.BumpVersion();
    }

    /// <summary>c = op(a)·op(b) + beta·c for 2-D tensors; c must be contiguous. Transposes are flags, not copies.</summary>
    internal static void Gemm2D(Tensor a, bool transA, Tensor b, bool transB, Tensor c, float beta)
    {
        Debug.Assert(c.IsContiguous && a.Rank == 2 && b.Rank == 2 && c.Rank == 2);
        if (!a._contiguous) a = Copy.ToContiguous(a);
        if (!b._contiguous) b = Copy.ToContiguous(b);
        // a's and b's row lengths are the leading dimensions GemmRows derives from m, n, k and the flags.
        GemmRows(a, transA, b, transB, c, c._shape[0], c._shape[1], transA ? a._shape[0] : a._shape[1], beta);
    }

    /// <summary>How GEMM should read the last two dimensions of a tensor, or null if it needs a copy.</summary>
    private static (bool trans, int ld)? MatrixLayout(Tensor t)
    {
        int r = t.Rank, rows = t._shape[r - 2], cols = t._shape[r - 1];
        int sr = t._strides[r - 2], sc = t._strides[r - 1];
        if ((sc == 1 || cols == 1) && (sr >= Math.Max(cols, 1) || rows == 1)) return (false, rows == 1 ? Math.Max(cols, 1) : sr);
        if ((sr == 1 || rows == 1) && (sc >= Math.Max(rows, 1) || cols == 1)) return (true, cols == 1 ? Math.Max(rows, 1) : sc);
        return null;
    }

    /// <summary>y = a·b + beta·y over broadcast batch dimensions; y must be contiguous with the right shape.</summary>
    internal static void Product(Tensor a, Tensor b, Tensor y, float beta)
    {
        var la = MatrixLayout(a);
        if (la == null) { a = Copy.ToContiguous(a); la = (false, a._shape[^1]); }
        var lb = MatrixLayout(b);
        if (lb == null) { b = Copy.ToContiguous(b); lb = (false, b._shape[^1]); }
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
                    Gemm.SgemmBatched(count, la.trans, lb.trans, m, n, k, 1f, (float*)pa + oa, la.ld, sa, (float*)pb + ob, lb.ld, sb, beta, (float*)pc + oc, n, sc);
                else
                    Gemm.DgemmBatched(count, la.trans, lb.trans, m, n, k, 1.0, (double*)pa + oa, la.ld, sa, (double*)pb + ob, lb.ld, sb, beta, (double*)pc + oc, n, sc);
            }
        }
    }
}
