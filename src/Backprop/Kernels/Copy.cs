namespace Backprop.Kernels;

/// <summary>Layout changes: contiguous copies and broadcast copies.</summary>
internal static class Copy
{
    /// <summary>A new contiguous tensor with the same values (always a copy).</summary>
    public static Tensor ToContiguous(Tensor t) => t.DType switch
    {
        DType.Float32 => Elementwise.Map<float, Elementwise.Identity<float>>(t, default),
        DType.Float64 => Elementwise.Map<double, Elementwise.Identity<double>>(t, default),
        _ => Elementwise.Map<long, Elementwise.Identity<long>>(t, default),
    };

    /// <summary>Copies <paramref name="src"/>, broadcast to <paramref name="dst"/>'s shape, into <paramref name="dst"/>.</summary>
    public static void Into(Tensor src, Tensor dst)
    {
        Elementwise.CheckSameDType("Copy", src, dst);
        int rank = dst.Rank;
        if (src.Rank > rank) throw new ShapeException($"Copy: cannot copy shape {src.Shape} into shape {dst.Shape}.");
        Strided.BroadcastShapes("Copy", src._shape, dst._shape); // validates
        var sa = Strided.BroadcastStrides(src, dst._shape);
        for (int i = 0; i < rank; i++)
        {
            int j = i - (rank - src.Rank);
            if (j >= 0 && src._shape[j] != 1 && src._shape[j] != dst._shape[i])
                throw new ShapeException($"Copy: cannot copy shape {src.Shape} into shape {dst.Shape}.");
        }
        switch (dst.DType)
        {
            case DType.Float32: Run<float>(src, dst, sa); break;
            case DType.Float64: Run<double>(src, dst, sa); break;
            default: Run<long>(src, dst, sa); break;
        }
        dst.BumpVersion();
    }

    private static void Run<T>(Tensor src, Tensor dst, int[] sa) where T : unmanaged
    {
        var k = new CopyInner<T>(src.Data<T>(), dst.Data<T>());
        Strided.Run(dst._shape, sa, src._offset, dst._strides, dst._offset, default, 0, ref k);
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
