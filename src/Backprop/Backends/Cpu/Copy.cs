namespace Backprop.Backends.Cpu;

/// <summary>Layout changes: broadcast copies, with a conversion when the dtypes differ.</summary>
internal static class Copy
{
    /// <summary>Copies <paramref name="src"/>, broadcast to <paramref name="dst"/>'s shape (validated by the caller), into <paramref name="dst"/>.</summary>
    public static void Into(in View src, in View dst)
    {
        Span<int> sa = stackalloc int[dst.Rank];
        Strided.BroadcastStrides(src, dst._shape, sa);
        switch ((src.DType, dst.DType))
        {
            case (DType.Float32, DType.Float32): Run<float>(src, dst, sa); break;
            case (DType.Float64, DType.Float64): Run<double>(src, dst, sa); break;
            case (DType.Int64, DType.Int64): Run<long>(src, dst, sa); break;
            case (DType.Bool, DType.Bool): Run<bool>(src, dst, sa); break;
            case (DType.Float32, DType.Bool) when src._contiguous && dst._contiguous && src._numel == dst._numel:
                ToBool(src.Span<float>(), dst.Span<bool>()); break;
            case (DType.Float64, DType.Bool) when src._contiguous && dst._contiguous && src._numel == dst._numel:
                ToBool(src.Span<double>(), dst.Span<bool>()); break;
            case (DType.Bool, DType.Float32) when src._contiguous && dst._contiguous && src._numel == dst._numel:
                FromBool(src.Span<bool>(), dst.Span<float>()); break;
            case (DType.Bool, DType.Float64) when src._contiguous && dst._contiguous && src._numel == dst._numel:
                FromBool(src.Span<bool>(), dst.Span<double>()); break;
            case (DType.Float32, DType.Float64) when src._contiguous && dst._contiguous && src._numel == dst._numel:
                System.Numerics.Tensors.TensorPrimitives.ConvertChecked<float, double>(src.Span<float>(), dst.Span<double>()); break;
            case (DType.Float64, DType.Float32) when src._contiguous && dst._contiguous && src._numel == dst._numel:
                System.Numerics.Tensors.TensorPrimitives.ConvertTruncating<double, float>(src.Span<double>(), dst.Span<float>()); break;
            default: Convert(src, dst, sa); break;
        }
    }

    private static void Run<T>(in View src, in View dst, ReadOnlySpan<int> sa) where T : unmanaged
    {
        var k = new CopyInner<T>(src.Data<T>(), dst.Data<T>());
        Strided.Run(dst._shape, sa, src._offset, dst._strides, dst._offset, default, 0, ref k);
    }

    /// <summary>Element by element through double (int64 values beyond 2^53 are not exact; float to int64 truncates, checked).</summary>
    private static void Convert(in View src, in View dst, ReadOnlySpan<int> sa)
    {
        int n = dst._numel, rank = dst.Rank;
        Span<int> idx = stackalloc int[rank];
        for (int i = 0; i < n; i++)
        {
            int ps = src._offset, pd = dst._offset;
            for (int d = 0; d < rank; d++) { ps += idx[d] * sa[d]; pd += idx[d] * dst._strides[d]; }
            double v = src.DType switch
            {
                DType.Float32 => src.Data<float>()[ps],
                DType.Float64 => src.Data<double>()[ps],
                DType.Bool => src.Data<bool>()[ps] ? 1 : 0,
                _ => src.Data<long>()[ps],
            };
            switch (dst.DType)
            {
                case DType.Float32: dst.Data<float>()[pd] = (float)v; break;
                case DType.Float64: dst.Data<double>()[pd] = v; break;
                case DType.Bool: dst.Data<bool>()[pd] = v != 0; break; // NaN is true, as bool(nan) in PyTorch
                default: dst.Data<long>()[pd] = checked((long)v); break;
            }
            for (int d = rank - 1; d >= 0; d--)
            {
                if (++idx[d] < dst._shape[d]) break;
                idx[d] = 0;
            }
        }
    }

    /// <summary>x ≠ 0 (NaN counts as true), 1 byte out per float in.</summary>
    private static void ToBool<T>(ReadOnlySpan<T> x, Span<bool> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < x.Length; i++) y[i] = x[i] != T.Zero;
    }

    /// <summary>true → 1, false → 0.</summary>
    private static void FromBool<T>(ReadOnlySpan<bool> x, Span<T> y) where T : unmanaged, INumberBase<T>
    {
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(x);
        System.Numerics.Tensors.TensorPrimitives.ConvertChecked<byte, T>(bytes, y);
    }

    private readonly struct CopyInner<T>(T[] src, T[] dst) : IStridedInner where T : unmanaged
    {
        public void Run(int n, int oa, int sa, int ob, int sb, int oc, int sc)
        {
            if (sa == 1 && sb == 1) { src.AsSpan(oa, n).CopyTo(dst.AsSpan(ob, n)); return; }
            if (sa == 0 && sb == 1) { dst.AsSpan(ob, n).Fill(src[oa]); return; }
            for (int i = 0; i < n; i++) dst[ob + i * sb] = src[oa + i * sa];
        }
    }
}
