namespace Backprop.Kernels;

/// <summary>Gather/scatter kernels over an int64 index tensor, with bounds-checked indices.</summary>
internal static class Indexing
{
    /// <summary>Checks index against a source/target per torch.gather/scatter_add rules and returns it contiguous.</summary>
    public static Tensor CheckIndex(string op, Tensor index, Tensor other, int dim, bool isTarget)
    {
        if (index.DType != DType.Int64)
            throw new ArgumentException($"{op}: index must be an int64 tensor, got {index.DType.Name()}; convert with To(DType.Int64).");
        if (index.Rank != other.Rank)
            throw new ShapeException($"{op}: index has shape {index.Shape} but the {(isTarget ? "target" : "input")} has shape {other.Shape}; ranks must match.");
        for (int i = 0; i < index.Rank; i++)
            if (i != dim && index._shape[i] > other._shape[i])
                throw new ShapeException($"{op}: index shape {index.Shape} exceeds shape {other.Shape} in dimension {i}.");
        return index.ContiguousData();
    }

    private static Exception OutOfRange(string op, long v, int dim, int size, Tensor index, int flat)
    {
        var pos = new int[index.Rank];
        for (int d = index.Rank - 1; d >= 0; d--) { pos[d] = flat % Math.Max(index._shape[d], 1); flat /= Math.Max(index._shape[d], 1); }
        return new IndexOutOfRangeException($"{op}: index {v} is out of range for dimension {dim} of size {size} (at index position {Shape.Format(pos)}).");
    }

    /// <summary>target[..., index[p], ...] += src[p] for every position p of index (dimension <paramref name="dim"/> replaced).</summary>
    public static void ScatterAddInto(Tensor target, int dim, Tensor index, Tensor src)
    {
        index = CheckIndex("ScatterAdd", index, target, dim, isTarget: true);
        for (int i = 0; i < index.Rank; i++)
            if (index._shape[i] > src._shape[i])
                throw new ShapeException($"ScatterAdd: index shape {index.Shape} exceeds the source shape {src.Shape} in dimension {i}.");
        Elementwise.CheckSameDType("ScatterAdd", target, src);
        if (target.DType == DType.Float32) Scatter<float>(target, dim, index, src);
        else if (target.DType == DType.Float64) Scatter<double>(target, dim, index, src);
        else throw Elementwise.NotFloat("ScatterAdd", target);
        target.BumpVersion();
    }

    private static void Scatter<T>(Tensor target, int dim, Tensor index, Tensor src) where T : unmanaged, INumber<T>
    {
        var td = target.Data<T>();
        var sd = src.Data<T>();
        var id = index.Data<long>();
        int rank = index.Rank, size = target._shape[dim];
        Span<int> pos = stackalloc int[rank];
        for (int flat = 0; flat < index._numel; flat++)
        {
            long v = id[index._offset + flat];
            if (v < 0) v += size;
            if ((ulong)v >= (ulong)size) throw OutOfRange("ScatterAdd", id[index._offset + flat], dim, size, index, flat);
            int so = src._offset, to = target._offset;
            for (int d = 0; d < rank; d++)
            {
                so += pos[d] * src._strides[d];
                to += (d == dim ? (int)v : pos[d]) * target._strides[d];
            }
            td[to] += sd[so];
            for (int d = rank - 1; d >= 0; d--)
            {
                if (++pos[d] < index._shape[d]) break;
                pos[d] = 0;
            }
        }
    }

    /// <summary>y[p] = x[..., index[p], ...] for every position p of index; y has index's shape.</summary>
    public static Tensor Gather(Tensor x, int dim, Tensor index)
    {
        index = CheckIndex("Gather", index, x, dim, isTarget: false);
        var y = Tensor.Empty([.. index._shape], x.DType);
        switch (x.DType)
        {
            case DType.Float32: GatherCore<float>(x, dim, index, y); break;
            case DType.Float64: GatherCore<double>(x, dim, index, y); break;
            default: GatherCore<long>(x, dim, index, y); break;
        }
        return y;
    }

    private static void GatherCore<T>(Tensor x, int dim, Tensor index, Tensor y) where T : unmanaged
    {
        var xd = x.Data<T>();
        var yd = y.Data<T>();
        var id = index.Data<long>();
        int rank = index.Rank, size = x._shape[dim];
        Span<int> pos = stackalloc int[rank];
        for (int flat = 0; flat < index._numel; flat++)
        {
            long v = id[index._offset + flat];
            if (v < 0) v += size;
            if ((ulong)v >= (ulong)size) throw OutOfRange("Gather", id[index._offset + flat], dim, size, index, flat);
            int xo = x._offset;
            for (int d = 0; d < rank; d++) xo += (d == dim ? (int)v : pos[d]) * x._strides[d];
            yd[flat] = xd[xo];
            for (int d = rank - 1; d >= 0; d--)
            {
                if (++pos[d] < index._shape[d]) break;
                pos[d] = 0;
            }
        }
    }

    /// <summary>Validated int indices from a 1-D int64 index tensor for a dimension of the given size.</summary>
    public static int[] Indices1D(string op, Tensor index, int size, int dim)
    {
        if (index.DType != DType.Int64)
            throw new ArgumentException($"{op}: index must be an int64 tensor, got {index.DType.Name()}; convert with To(DType.Int64).");
        if (index.Rank > 1)
            throw new ShapeException($"{op}: index must be 0- or 1-dimensional, got shape {index.Shape}.");
        var raw = index.ToLongArray();
        var r = new int[raw.Length];
        for (int i = 0; i < raw.Length; i++)
        {
            long v = raw[i] < 0 ? raw[i] + size : raw[i];
            if ((ulong)v >= (ulong)size)
                throw new IndexOutOfRangeException($"{op}: index {raw[i]} (at position {i}) is out of range for dimension {dim} of size {size}.");
            r[i] = (int)v;
        }
        return r;
    }

    /// <summary>y = x with dimension dim replaced by the selected slices.</summary>
    public static Tensor IndexSelect(Tensor x, int dim, int[] idx)
    {
        var shape = (int[])x._shape.Clone();
        shape[dim] = idx.Length;
        var y = Tensor.Empty(shape, x.DType);
        if (dim == 0 && x._contiguous)
        {
            int row = x._shape[0] == 0 ? 0 : x._numel / x._shape[0];
            var src = x._storage.Array;
            var dst = y._storage.Array;
            for (int i = 0; i < idx.Length; i++)
                Array.Copy(src, x._offset + idx[i] * row, dst, i * row, row);
            return y;
        }
        for (int i = 0; i < idx.Length; i++)
            Copy.Into(x.NarrowView(dim, idx[i], 1), y.NarrowView(dim, i, 1));
        return y;
    }

    /// <summary>target's slice idx[i] along dim += src's slice i (the backward of IndexSelect; repeated indices add up).</summary>
    public static void IndexAddInto(Tensor target, int dim, int[] idx, Tensor src)
    {
        if (dim == 0 && target._contiguous && src._contiguous && target.DType == DType.Float32)
        {
            int row = target._shape[0] == 0 ? 0 : target._numel / target._shape[0];
            var t = target.Data<float>().AsSpan(target._offset);
            var s = src.Data<float>().AsSpan(src._offset);
            for (int i = 0; i < idx.Length; i++)
            {
                var dst = t.Slice(idx[i] * row, row);
                System.Numerics.Tensors.TensorPrimitives.Add(dst, s.Slice(i * row, row), dst);
            }
            target.BumpVersion();
            return;
        }
        for (int i = 0; i < idx.Length; i++)
            Elementwise.AddInPlace(target.NarrowView(dim, idx[i], 1), src.NarrowView(dim, i, 1));
    }
}
