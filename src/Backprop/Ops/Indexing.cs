using Backprop.Autograd;
using Backprop.Kernels;

namespace Backprop;

// IndexSelect, Gather, ScatterAdd, OneHot. Indices are int64 tensors; out-of-range indices raise
// an error naming the op, the index and the dimension.
public partial class Tensor
{
    /// <summary>The slices of <paramref name="dim"/> listed in a 1-D int64 <paramref name="index"/> (repeats allowed). Backward adds into those slices.</summary>
    public Tensor IndexSelect(int dim, Tensor index)
    {
        int d = NormalizeDim(dim, Rank, "IndexSelect");
        if (Rank == 0) throw new ShapeException("IndexSelect: cannot index a 0-dimensional tensor.");
        var idx = Kernels.Indexing.Indices1D("IndexSelect", index, _shape[d], dim);
        var y = Kernels.Indexing.IndexSelect(this, d, idx);
        Engine.Record(y, "IndexSelect", static (n, dy) =>
        {
            var g = ZerosLike(n.A!);
            Kernels.Indexing.IndexAddInto(g, n.I0, (int[])n.Obj!, dy.ContiguousData());
            n.A!.AccumulateGrad(g);
        }, this, i0: d, obj: idx);
        return y;
    }

    /// <summary>y[p] = x[p with dimension dim replaced by index[p]] (torch.gather). Backward scatter-adds.</summary>
    public Tensor Gather(int dim, Tensor index)
    {
        int d = NormalizeDim(dim, Rank, "Gather");
        var y = Kernels.Indexing.Gather(this, d, index);
        Engine.Record(y, "Gather", static (n, dy) =>
        {
            var g = ZerosLike(n.A!);
            Kernels.Indexing.ScatterAddInto(g, n.I0, n.S0!, dy);
            n.A!.AccumulateGrad(g);
        }, this, s0: index, i0: d);
        return y;
    }

    /// <summary>
    /// A copy of this tensor with src added at the positions index points to along dim
    /// (torch.scatter_add). Backward: the gradient passes to this tensor unchanged and to src gathered.
    /// </summary>
    public Tensor ScatterAdd(int dim, Tensor index, Tensor src)
    {
        int d = NormalizeDim(dim, Rank, "ScatterAdd");
        var y = Copy.ToContiguous(this);
        Kernels.Indexing.ScatterAddInto(y, d, index, src);
        Engine.Record(y, "ScatterAdd", static (n, dy) =>
        {
            n.A!.AccumulateGrad(dy);
            var src = n.B!;
            if (src.RequiresGrad)
            {
                // src may be larger than index: gather fills index's shape, zero-padded to src's shape.
                var g = Kernels.Indexing.Gather(dy, n.I0, n.S0!);
                if (!g.Shape.Equals(src.Shape))
                {
                    var full = ZerosLike(src);
                    var view = full;
                    for (int i = 0; i < g.Rank; i++) view = view.NarrowView(i, 0, g._shape[i]);
                    Copy.Into(g, view);
                    g = full;
                }
                src.AccumulateGrad(g);
            }
        }, this, src, s0: index, i0: d);
        return y;
    }

    /// <summary>One-hot encoding of int64 class indices: shape [..., numClasses], float32 (or the given dtype).</summary>
    public static Tensor OneHot(Tensor indices, int numClasses, DType dtype = DType.Float32)
    {
        if (indices.DType != DType.Int64)
            throw new ArgumentException($"OneHot: indices must be an int64 tensor, got {indices.DType.Name()}.");
        if (numClasses <= 0) throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "OneHot: numClasses must be positive.");
        var idx = indices.ToLongArray();
        var shape = new int[indices.Rank + 1];
        indices._shape.CopyTo(shape, 0);
        shape[^1] = numClasses;
        var y = Zeros(shape, dtype);
        for (int i = 0; i < idx.Length; i++)
        {
            if (idx[i] < 0 || idx[i] >= numClasses)
                throw new IndexOutOfRangeException($"OneHot: class index {idx[i]} (at flat position {i}) is out of range for {numClasses} classes.");
            y.SetFlat(i * numClasses + (int)idx[i], 1);
        }
        return y;
    }
}
