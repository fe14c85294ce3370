namespace Backprop.Backends.Cpu;

/// <summary>Gather/scatter kernels over int64 indices, with bounds-checked indices.</summary>
internal sealed partial class CpuBackend
{
    public void ScatterAdd(in View target, int dim, in View index, in View src)
    {
        if (target.DType == DType.Float32) Scatter<float>(target, dim, index, src);
        else Scatter<double>(target, dim, index, src);
    }

    private static void Scatter<T>(in View target, int dim, in View index, in View src) where T : unmanaged, INumber<T>
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
            if ((ulong)v >= (ulong)size) throw IndexErrors.OutOfRange("ScatterAdd", id[index._offset + flat], dim, size, index._shape, flat);
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

    public void Gather(in View x, int dim, in View index, in View y)
    {
        switch (x.DType)
        {
            case DType.Float32: GatherCore<float>(x, dim, index, y); break;
            case DType.Float64: GatherCore<double>(x, dim, index, y); break;
            case DType.Bool: GatherCore<bool>(x, dim, index, y); break;
            default: GatherCore<long>(x, dim, index, y); break;
        }
    }

    private static void GatherCore<T>(in View x, int dim, in View index, in View y) where T : unmanaged
    {
        var xd = x.Data<T>();
        var yd = y.Span<T>();
        var id = index.Data<long>();
        int rank = index.Rank, size = x._shape[dim];
        Span<int> pos = stackalloc int[rank];
        for (int flat = 0; flat < index._numel; flat++)
        {
            long v = id[index._offset + flat];
            if (v < 0) v += size;
            if ((ulong)v >= (ulong)size) throw IndexErrors.OutOfRange("Gather", id[index._offset + flat], dim, size, index._shape, flat);
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

    /// <summary>A view of start..start+length along dim.</summary>
    private static View Narrow(in View v, int dim, int start, int length)
    {
        var shape = (int[])v._shape.Clone();
        shape[dim] = length;
        return v.With(shape, v._strides, v._offset + start * v._strides[dim]);
    }

    public void IndexSelect(in View x, int dim, int[] idx, in View y)
    {
        if (dim == 0 && x._contiguous)
        {
            int row = x._shape[0] == 0 ? 0 : x._numel / x._shape[0];
            for (int i = 0; i < idx.Length; i++)
                switch (x.DType)
                {
                    case DType.Float32: x.Data<float>().AsSpan(x._offset + idx[i] * row, row).CopyTo(y.Data<float>().AsSpan(y._offset + i * row, row)); break;
                    case DType.Float64: x.Data<double>().AsSpan(x._offset + idx[i] * row, row).CopyTo(y.Data<double>().AsSpan(y._offset + i * row, row)); break;
                    case DType.Bool: x.Data<bool>().AsSpan(x._offset + idx[i] * row, row).CopyTo(y.Data<bool>().AsSpan(y._offset + i * row, row)); break;
                    default: x.Data<long>().AsSpan(x._offset + idx[i] * row, row).CopyTo(y.Data<long>().AsSpan(y._offset + i * row, row)); break;
                }
            return;
        }
        for (int i = 0; i < idx.Length; i++)
            Copy.Into(Narrow(x, dim, idx[i], 1), Narrow(y, dim, i, 1));
    }

    public void IndexAdd(in View target, int dim, int[] idx, in View src)
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
            return;
        }
        for (int i = 0; i < idx.Length; i++)
        {
            var dst = Narrow(target, dim, idx[i], 1);
            Binary(BinaryOp.Add, dst, Narrow(src, dim, i, 1), dst, 0, 0);
        }
    }

    public void EmbeddingForward(in View weight, in View ids, in View y)
    {
        int num = weight._shape[0], dim = weight._shape[1];
        var idSpan = ids.Span<long>();
        for (int i = 0; i < idSpan.Length; i++)
            if ((ulong)idSpan[i] >= (ulong)num) throw IndexErrors.EmbeddingOutOfRange(idSpan[i], i, num);
        if (weight.DType == DType.Float32) GatherRows(weight.Span<float>(), idSpan, y.Span<float>(), dim);
        else GatherRows(weight.Span<double>(), idSpan, y.Span<double>(), dim);
    }

    private static void GatherRows<T>(ReadOnlySpan<T> w, ReadOnlySpan<long> ids, Span<T> y, int dim)
    {
        for (int i = 0; i < ids.Length; i++) w.Slice((int)ids[i] * dim, dim).CopyTo(y.Slice(i * dim, dim));
    }

    public void EmbeddingBackward(in View dy, in View ids, in View target)
    {
        int dim = target._shape[1];
        if (target.DType == DType.Float32) ScatterRows(dy.Span<float>(), ids.Span<long>(), target.Span<float>(), dim);
        else ScatterRows(dy.Span<double>(), ids.Span<long>(), target.Span<double>(), dim);
    }

    private static void ScatterRows<T>(ReadOnlySpan<T> g, ReadOnlySpan<long> ids, Span<T> target, int dim) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < ids.Length; i++)
        {
            var row = target.Slice((int)ids[i] * dim, dim);
            System.Numerics.Tensors.TensorPrimitives.Add<T>(row, g.Slice(i * dim, dim), row);
        }
    }
}
