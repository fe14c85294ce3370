using Backprop.Autograd;
using Backprop.Backends;

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
        Dispatch.CheckSameDType("MatMul", a, b);
        if (!a.DType.IsFloatingPoint()) throw Dispatch.NotFloat("MatMul", a);
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
            batch = Shape.Broadcast("MatMul", a._shape[..^2], b._shape[..^2]);
        }
        catch (ShapeException)
        {
            throw new ShapeException($"MatMul: batch dimensions of {origA.Shape} and {origB.Shape} cannot be broadcast together.");
        }
        var outShape = new int[batch.Length + 2];
        batch.CopyTo(outShape, 0);
        outShape[^2] = m;
        outShape[^1] = n;
        var y = Empty(outShape, a.DType, a.Backend);
        y.Backend.MatMul(a.V, b.V, y.V, beta: 0);
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
    /// their offsets (op(a) is m×k, op(b) is k×n, c is m×n), whatever their nominal shapes: transposes
    /// are strides handed to the backend, never copies.
    /// </summary>
    internal static void GemmRows(Tensor a, bool transA, Tensor b, bool transB, Tensor c, int m, int n, int k, float beta)
    {
        Debug.Assert(a._contiguous && b._contiguous && c._contiguous);
        if (m == 0 || n == 0) return;
        c.Backend.Gemm(transA, transB, m, n, k, a.V, b.V, beta, c.V);
        c.BumpVersion();
    }
}
