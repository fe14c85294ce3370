using Backprop.Autograd;
using Backprop.Backends;

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
        var idx = Dispatch.Indices1D("IndexSelect", index, _shape[d], dim);
        var y = Dispatch.IndexSelect(this, d, idx);
        Engine.Record(y, "IndexSelect", new IndexSelectBackward(this, d, idx), this);
        return y;
    }

    private readonly struct IndexSelectBackward(Tensor x, int dim, int[] index) : IBackward
    {
        public void Backward(Tensor dy)
        {
            if (Engine.CreateGraph)
            {
                // index_add as a recorded scatter-add: each selected slice of dy goes back to its source slice.
                var positions = new long[index.Length];
                for (int i = 0; i < index.Length; i++) positions[i] = index[i];
                var along = Enumerable.Repeat(1, dy.Rank).ToArray();
                along[dim] = index.Length;
                var idx = FromArray(positions).Reshape(along).Expand(dy._shape).Contiguous();
                x.AccumulateGrad(ZerosLike(x).ScatterAdd(dim, idx, dy));
                return;
            }
            var g = ZerosLike(x);
            Dispatch.IndexAddInto(g, dim, index, dy.ContiguousData());
            x.AccumulateGrad(g);
        }
    }

    /// <summary>y[p] = x[p with dimension dim replaced by index[p]] (torch.gather). Backward scatter-adds.</summary>
    public Tensor Gather(int dim, Tensor index)
    {
        int d = NormalizeDim(dim, Rank, "Gather");
        var y = Dispatch.Gather(this, d, index);
        Engine.Record(y, "Gather", new GatherBackward(this, index, d), this, saved0: index);
        return y;
    }

    private readonly struct GatherBackward(Tensor x, Tensor index, int dim) : IBackward
    {
        public void Backward(Tensor dy)
        {
            if (Engine.CreateGraph)
            {
                x.AccumulateGrad(ZerosLike(x).ScatterAdd(dim, index, dy));
                return;
            }
            var g = ZerosLike(x);
            Dispatch.ScatterAddInto(g, dim, index, dy);
            x.AccumulateGrad(g);
        }
    }

    /// <summary>
    /// A copy of this tensor with src added at the positions index points to along dim
    /// (torch.scatter_add). Backward: the gradient passes to this tensor unchanged and to src gathered.
    /// </summary>
    public Tensor ScatterAdd(int dim, Tensor index, Tensor src)
    {
        int d = NormalizeDim(dim, Rank, "ScatterAdd");
        var y = Dispatch.ToContiguous(this);
        Dispatch.ScatterAddInto(y, d, index, src);
        Engine.Record(y, "ScatterAdd", new ScatterAddBackward(this, src, index, d), this, src, saved0: index);
        return y;
    }

    private readonly struct ScatterAddBackward(Tensor x, Tensor src, Tensor index, int dim) : IBackward
    {
        public void Backward(Tensor dy)
        {
            x.AccumulateGrad(dy);
            if (!src.RequiresGrad) return;
            // src may be larger than index: gather fills index's shape, zero-padded to src's shape.
            if (Engine.CreateGraph)
            {
                var gathered = dy.Gather(dim, index);
                if (!gathered.Shape.Equals(src.Shape))
                {
                    for (int i = 0; i < gathered.Rank; i++)
                        if (gathered._shape[i] < src._shape[i])
                        {
                            var padShape = (int[])gathered._shape.Clone();
                            padShape[i] = src._shape[i] - gathered._shape[i];
                            gathered = Concat([gathered, Zeros(padShape, gathered.DType)], i);
                        }
                }
                src.AccumulateGrad(gathered);
                return;
            }
            var g = Dispatch.Gather(dy, dim, index);
            if (!g.Shape.Equals(src.Shape))
            {
                var full = ZerosLike(src);
                var view = full;
                for (int i = 0; i < g.Rank; i++) view = view.NarrowView(i, 0, g._shape[i]);
                Dispatch.CopyInto(g, view);
                g = full;
            }
            src.AccumulateGrad(g);
        }
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
