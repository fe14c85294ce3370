namespace Backprop.Backends.Cpu;

/// <summary>Inner loop of a strided iteration over up to three operands.</summary>
internal interface IStridedInner
{
    /// <summary>Processes <paramref name="n"/> elements starting at the given offsets with the given element strides.</summary>
    void Run(int n, int oa, int sa, int ob, int sb, int oc, int sc);
}

/// <summary>
/// Walks an n-dimensional index space over up to three strided operands. Dimensions that are
/// contiguous for every operand are merged first, so the inner loop is as long as possible and
/// usually unit-stride (a broadcast operand has stride 0).
/// </summary>
internal static class Strided
{
    /// <summary>Strides of <paramref name="t"/> seen as broadcast to <paramref name="outShape"/> (0 on broadcast dimensions).</summary>
    public static int[] BroadcastStrides(in View t, ReadOnlySpan<int> outShape)
    {
        var s = new int[outShape.Length];
        BroadcastStrides(t, outShape, s);
        return s;
    }

    public static void BroadcastStrides(in View t, ReadOnlySpan<int> outShape, Span<int> dest)
    {
        int shift = outShape.Length - t.Rank;
        for (int i = 0; i < outShape.Length; i++)
        {
            int j = i - shift;
            dest[i] = j < 0 || t._shape[j] == 1 ? 0 : t._strides[j];
        }
    }

    /// <summary>Runs <paramref name="k"/> over <paramref name="shape"/> with per-operand strides and base offsets.</summary>
    public static void Run<K>(ReadOnlySpan<int> shape,
        ReadOnlySpan<int> sa, int oa, ReadOnlySpan<int> sb, int ob, ReadOnlySpan<int> sc, int oc, ref K k)
        where K : struct, IStridedInner
    {
        int rank = shape.Length;
        Span<int> cs = stackalloc int[rank + 1];
        Span<int> ca = stackalloc int[rank + 1];
        Span<int> cb = stackalloc int[rank + 1];
        Span<int> cc = stackalloc int[rank + 1];
        int r = 0;
        for (int i = 0; i < rank; i++)
        {
            int n = shape[i];
            if (n == 0) return;
            if (n == 1) continue;
            int a = sa.IsEmpty ? 0 : sa[i], b = sb.IsEmpty ? 0 : sb[i], c = sc.IsEmpty ? 0 : sc[i];
            if (r > 0 && ca[r - 1] == a * n && cb[r - 1] == b * n && cc[r - 1] == c * n)
            {
                cs[r - 1] *= n;
                ca[r - 1] = a; cb[r - 1] = b; cc[r - 1] = c;
            }
            else
            {
                cs[r] = n; ca[r] = a; cb[r] = b; cc[r] = c;
                r++;
            }
        }
        if (r == 0)
        {
            k.Run(1, oa, 0, ob, 0, oc, 0);
            return;
        }
        int inner = r - 1, len = cs[inner];
        int ia = ca[inner], ib = cb[inner], ic = cc[inner];
        if (r == 1)
        {
            k.Run(len, oa, ia, ob, ib, oc, ic);
            return;
        }
        Span<int> idx = stackalloc int[r - 1];
        idx.Clear();
        int pa = oa, pb = ob, pc = oc;
        while (true)
        {
            k.Run(len, pa, ia, pb, ib, pc, ic);
            int d = r - 2;
            for (; d >= 0; d--)
            {
                pa += ca[d]; pb += cb[d]; pc += cc[d];
                if (++idx[d] < cs[d]) break;
                pa -= ca[d] * cs[d]; pb -= cb[d] * cs[d]; pc -= cc[d] * cs[d];
                idx[d] = 0;
            }
            if (d < 0) return;
        }
    }
}
