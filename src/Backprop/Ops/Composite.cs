using Backprop.Autograd;

namespace Backprop;

// Ops composed of existing differentiable ops, so their gradients (and second derivatives) come from
// the ops they are built of: Std, Norm, MaskedFill, Tril/Triu, Repeat, Flip, Roll, Cumsum.
// Einsum is in Einsum.cs.
public partial class Tensor
{
    /// <summary>A constant of this tensor's dtype and device from host values (not part of the graph).</summary>
    internal Tensor HostConst(double[] values, int[] shape)
    {
        var dt = DType.IsFloatingPoint() ? DType : DType.Float32;
        Tensor t = dt == DType.Float64 ? FromArray(values, shape) : FromArray(values.Select(v => (float)v).ToArray(), shape);
        return t.To(Device);
    }

    /// <summary>
    /// Standard deviation over the given dimensions (all when null or empty): √Var, dividing by
    /// N − <paramref name="correction"/> (1 = unbiased, torch.std's default).
    /// </summary>
    public Tensor Std(int[]? dims = null, int correction = 1, bool keepDim = false) => Var(dims, correction, keepDim).Sqrt();

    /// <summary>Standard deviation over one dimension.</summary>
    public Tensor Std(int dim, int correction = 1, bool keepDim = false) => Std([dim], correction, keepDim);

    /// <summary>
    /// The p-norm over the given dimensions (all when null or empty), like torch.linalg.vector_norm:
    /// p = 2 (default) √Σx², p = 1 Σ|x|, p = ∞ max|x|, p = 0 the count of nonzeros (no gradient), otherwise (Σ|x|^p)^(1/p).
    /// For p &gt; 1 the gradient is x·|x|^(p−2)/‖x‖^(p−1), and 0 where the norm is 0 (as in PyTorch,
    /// where x/‖x‖ would be 0/0).
    /// </summary>
    public Tensor Norm(double p = 2, int[]? dims = null, bool keepDim = false)
    {
        if (!DType.IsFloatingPoint()) throw Dispatch.NotFloat("Norm", this);
        if (double.IsNaN(p)) throw new ArgumentException("Norm: p must be a number.");
        dims ??= [];
        if (double.IsPositiveInfinity(p) || double.IsNegativeInfinity(p))
        {
            var a = Abs();
            var mask = Dispatch.DimMask("Norm", Rank, dims);
            var r = a;
            // one dimension at a time, from the last, keeping dims so that the indices stay valid
            for (int d = Rank - 1; d >= 0; d--)
                if (mask[d]) r = double.IsPositiveInfinity(p) ? r.Max(d, keepDim: true).Values : r.Min(d, keepDim: true).Values;
            return keepDim ? r : r.Reshape(Dispatch.ReducedShape(_shape, mask, keepDim: false));
        }
        if (p == 0) return NoGraph().Ne(Const(0)).To(DType).Sum(dims, keepDim);
        if (p == 1) return Abs().Sum(dims, keepDim);
        if (p < 1) return Abs().Pow(p).Sum(dims, keepDim).Pow(1 / p);
        var x0 = NoGraph();
        var y = p == 2 ? (x0 * x0).Sum(dims, keepDim).Sqrt() : x0.Abs().Pow(p).Sum(dims, keepDim).Pow(1 / p);
        Engine.Record(y, "Norm", new NormBackward(this, y, p, Dispatch.DimMask("Norm", Rank, dims), keepDim), this, saved0: y);
        return y;
    }

    private readonly struct NormBackward(Tensor x, Tensor y, double p, bool[] mask, bool keepDim) : IBackward
    {
        // dx = dy·sign(x)|x|^(p−1)/y^(p−1), with 0 where y = 0 (the zero vector's subgradient PyTorch picks).
        // Built of differentiable ops, so the second derivative comes from them.
        public void Backward(Tensor dy)
        {
            var kept = Dispatch.ReducedShape(x._shape, mask, keepDim: true);
            var yk = keepDim ? y : y.Reshape(kept);
            var gk = keepDim ? dy : dy.Reshape(kept);
            var zero = yk.NoGraph().Eq(0);
            var safe = Where(zero, yk.Const(1), yk);
            var dx = p == 2 ? x * (gk / safe) : x.Sign() * x.Abs().Pow(p - 1) * (gk / safe.Pow(p - 1));
            x.AccumulateGrad(Where(zero, x.Const(0), dx));
        }
    }

    /// <summary>This tensor with <paramref name="value"/> where <paramref name="mask"/> (broadcast to this shape) is nonzero (torch.masked_fill). No gradient flows to the filled positions.</summary>
    public Tensor MaskedFill(Tensor mask, double value)
    {
        var shape = Backprop.Shape.Broadcast("MaskedFill", _shape, mask._shape);
        if (!shape.AsSpan().SequenceEqual(_shape))
            throw new ShapeException($"MaskedFill: mask of shape {mask.Shape} does not broadcast to the input's shape {Shape}.");
        return Where(mask, Const(value), this);
    }

    /// <summary>The lower triangle of the last two dimensions: elements with column − row ≤ <paramref name="diagonal"/> kept, the rest 0 (torch.tril).</summary>
    public Tensor Tril(int diagonal = 0) => Triangle("Tril", diagonal, lower: true);

    /// <summary>The upper triangle of the last two dimensions: elements with column − row ≥ <paramref name="diagonal"/> kept, the rest 0 (torch.triu).</summary>
    public Tensor Triu(int diagonal = 0) => Triangle("Triu", diagonal, lower: false);

    private Tensor Triangle(string op, int diagonal, bool lower)
    {
        if (Rank < 2) throw new ShapeException($"{op}: expected a tensor of at least 2 dimensions, got shape {Shape}.");
        int m = _shape[^2], n = _shape[^1];
        var keep = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                keep[i * n + j] = (lower ? j - i <= diagonal : j - i >= diagonal) ? 1 : 0;
        return Where(HostConst(keep, [m, n]), this, Const(0));
    }

    /// <summary>
    /// Tiles the tensor: dimension i is repeated repeats[i] times (torch.Tensor.repeat); with more repeats than
    /// dimensions, leading dimensions of size 1 are added first.
    /// </summary>
    public Tensor Repeat(params int[] repeats)
    {
        if (repeats.Length < Rank)
            throw new ArgumentException($"Repeat: {repeats.Length} repeat counts for a tensor of rank {Rank} (shape {Shape}); give at least one per dimension.");
        if (repeats.Any(r => r < 0)) throw new ArgumentException($"Repeat: repeat counts must be non-negative, got {Backprop.Shape.Format(repeats)}.");
        int lead = repeats.Length - Rank;
        var padded = new int[repeats.Length];
        for (int i = 0; i < padded.Length; i++) padded[i] = i < lead ? 1 : _shape[i - lead];
        // [1, s0, 1, s1, ...] expanded to [r0, s0, r1, s1, ...], then merged pairwise
        var inter = new int[2 * padded.Length];
        var expanded = new int[2 * padded.Length];
        var result = new int[padded.Length];
        for (int i = 0; i < padded.Length; i++)
        {
            inter[2 * i] = 1; inter[2 * i + 1] = padded[i];
            expanded[2 * i] = repeats[i]; expanded[2 * i + 1] = padded[i];
            result[i] = repeats[i] * padded[i];
        }
        return Reshape(inter).Expand(expanded).Reshape(result);
    }

    /// <summary>Reverses the order of elements along the given dimensions (torch.flip; a copy).</summary>
    public Tensor Flip(params int[] dims)
    {
        var mask = Dispatch.DimMask("Flip", Rank, dims);
        var y = this;
        if (dims.Length == 0) return Clone();
        for (int d = 0; d < Rank; d++)
        {
            if (!mask[d]) continue;
            var idx = new long[_shape[d]];
            for (int i = 0; i < idx.Length; i++) idx[i] = idx.Length - 1 - i;
            y = y.IndexSelect(d, FromArray(idx).To(Device));
        }
        return y;
    }

    /// <summary>
    /// Shifts elements along dimensions with wrap-around (torch.roll): element i moves to (i + shift) mod size.
    /// With no dimensions the tensor is flattened, rolled and reshaped back.
    /// </summary>
    public Tensor Roll(int[] shifts, int[]? dims = null)
    {
        if (dims == null || dims.Length == 0)
        {
            if (shifts.Length != 1) throw new ArgumentException($"Roll: without dimensions give one shift, got {shifts.Length}.");
            return Flatten().Roll(shifts, [0]).Reshape(_shape);
        }
        if (shifts.Length != dims.Length)
            throw new ArgumentException($"Roll: {shifts.Length} shifts for {dims.Length} dimensions; give one shift per dimension.");
        var y = this;
        for (int k = 0; k < dims.Length; k++)
        {
            int d = NormalizeDim(dims[k], Rank, "Roll");
            int n = _shape[d];
            if (n == 0) continue;
            int s = ((shifts[k] % n) + n) % n;
            if (s == 0) continue;
            y = Concat([y.Narrow(d, n - s, s), y.Narrow(d, 0, n - s)], d);
        }
        return y;
    }

    /// <summary>Shifts elements along one dimension with wrap-around.</summary>
    public Tensor Roll(int shift, int dim) => Roll([shift], [dim]);

    /// <summary>
    /// Cumulative sum along <paramref name="dim"/> (torch.cumsum): y[i] = Σ_{j ≤ i} x[j], in O(n). The
    /// gradient is the reversed cumulative sum of dy (dx[j] = Σ_{i ≥ j} dy[i]), itself differentiable.
    /// </summary>
    public Tensor Cumsum(int dim) => Cumsum(dim, reverse: false);

    private Tensor Cumsum(int dim, bool reverse)
    {
        if (!DType.IsFloatingPoint()) throw Dispatch.NotFloat("Cumsum", this);
        if (Rank == 0) return Clone();
        int d = NormalizeDim(dim, Rank, "Cumsum");
        var xc = ContiguousData();
        var y = Empty(_shape, DType, Backend);
        Backend.Cumsum(xc.V, d, reverse, y.V);
        Engine.Record(y, "Cumsum", new CumsumBackward(this, d, reverse), this);
        return y;
    }

    private readonly struct CumsumBackward(Tensor x, int dim, bool reverse) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(dy.Cumsum(dim, !reverse));
    }
}
