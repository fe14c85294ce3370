using Backprop.Backends.Cpu;

namespace Backprop.Backends.Reference;

/// <summary>
/// The oracle: every method is the plainest loop over elements that could be correct: one element at
/// a time, multi-indices computed by division, arithmetic in double and rounded to the output's dtype,
/// no SIMD, no threads, no cleverness. The CPU backend is tested against it.
/// </summary>
internal sealed partial class ReferenceBackend : IBackend
{
    public static readonly ReferenceBackend Instance = new();

    private ReferenceBackend() { }

    public Device Device => Device.Reference;

    public Storage Allocate(DType dtype, int length) => new ReferenceStorage(dtype, length);

    private static ReferenceStorage S(in View v) => (ReferenceStorage)v._storage;

    /// <summary>Storage position of row-major element <paramref name="flat"/> of a view whose strides are <paramref name="strides"/> (broadcast strides allowed).</summary>
    internal static int Position(int[] shape, ReadOnlySpan<int> strides, int offset, int flat)
    {
        int pos = offset;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            int n = shape[d];
            if (n == 0) return offset;
            pos += flat % n * strides[d];
            flat /= n;
        }
        return pos;
    }

    internal static int Position(in View v, int flat) => Position(v._shape, v._strides, v._offset, flat);

    /// <summary>Strides of <paramref name="x"/> seen from <paramref name="shape"/> (0 on broadcast dimensions).</summary>
    internal static int[] BroadcastStrides(in View x, int[] shape) => Strided.BroadcastStrides(x, shape);

    public void Upload<T>(ReadOnlySpan<T> source, in View y) where T : unmanaged
    {
        var s = S(y);
        for (int i = 0; i < source.Length; i++)
        {
            int p = Position(y, i);
            if (source[i] is long l) s.SetLong(p, l);
            else s.Set(p, ToDouble(source[i]));
        }
    }

    private static double ToDouble<T>(T v) => v switch
    {
        float f => f,
        double d => d,
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw new NotSupportedException($"Reference backend: element type {typeof(T).Name}."),
    };

    public void Download<T>(in View x, Span<T> destination) where T : unmanaged
    {
        var s = S(x);
        for (int i = 0; i < x._numel; i++)
        {
            int p = Position(x, i);
            if (typeof(T) == typeof(long)) destination[i] = (T)(object)s.GetLong(p);
            else if (typeof(T) == typeof(bool)) destination[i] = (T)(object)(s.Get(p) != 0);
            else if (typeof(T) == typeof(float)) destination[i] = (T)(object)(float)s.Get(p);
            else destination[i] = (T)(object)s.Get(p);
        }
    }

    public void Fill(in View y, double value)
    {
        var s = S(y);
        for (int i = 0; i < y._numel; i++) s.Set(Position(y, i), value);
    }

    public void Copy(in View x, in View y)
    {
        var sx = S(x);
        var sy = S(y);
        var bs = BroadcastStrides(x, y._shape);
        for (int i = 0; i < y._numel; i++)
        {
            int px = Position(y._shape, bs, x._offset, i), py = Position(y, i);
            if (x.DType == DType.Int64 && y.DType == DType.Int64) sy.SetLong(py, sx.GetLong(px));
            else sy.Set(py, sx.Get(px));
        }
    }

    public void Unary(UnaryOp op, in View x, in View y, double p0, double p1)
    {
        var sx = S(x);
        var sy = S(y);
        bool f32 = y.DType == DType.Float32;
        var values = new double[x._numel]; // read everything first: y may be x
        for (int i = 0; i < x._numel; i++) values[i] = sx.Get(Position(x, i));
        for (int i = 0; i < values.Length; i++) sy.Set(Position(y, i), Scalar.Unary(op, values[i], p0, p1, f32));
    }

    public void Binary(BinaryOp op, in View a, in View b, in View y, double p0, double p1)
    {
        var sa = S(a);
        var sb = S(b);
        var sy = S(y);
        var ba = BroadcastStrides(a, y._shape);
        var bb = BroadcastStrides(b, y._shape);
        bool f32 = y.DType == DType.Float32;
        var values = new double[y._numel];
        for (int i = 0; i < y._numel; i++)
            values[i] = Scalar.Binary(op, sa.Get(Position(y._shape, ba, a._offset, i)), sb.Get(Position(y._shape, bb, b._offset, i)), p0, p1, f32);
        for (int i = 0; i < values.Length; i++) sy.Set(Position(y, i), values[i]);
    }

    public void Sum(in View x, in View y, bool accumulate)
    {
        var sx = S(x);
        var sy = S(y);
        var acc = new double[y._numel];
        // y's strides seen from x's index space: 0 on the reduced dimensions
        var ys = new int[x.Rank];
        var yc = ShapeCache.ContiguousStrides(y._shape);
        for (int d = 0; d < x.Rank; d++) ys[d] = y._shape[d] == 1 ? 0 : yc[d];
        for (int i = 0; i < x._numel; i++) acc[Position(x._shape, ys, 0, i)] += sx.Get(Position(x, i));
        for (int i = 0; i < acc.Length; i++) sy.Set(Position(y, i), accumulate ? sy.Get(Position(y, i)) + acc[i] : acc[i]);
    }

    public void Cumsum(in View x, int dim, bool reverse, in View y)
    {
        var sx = S(x);
        var sy = S(y);
        int n = x._shape[dim];
        int inner = 1;
        for (int d = dim + 1; d < x.Rank; d++) inner *= x._shape[d];
        int outer = n == 0 || inner == 0 ? 0 : x._numel / (n * inner);
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < inner; j++)
            {
                double acc = 0;
                for (int s = 0; s < n; s++)
                {
                    int k = reverse ? n - 1 - s : s;
                    acc += sx.Get(x._offset + (o * n + k) * inner + j);
                    sy.Set(y._offset + (o * n + k) * inner + j, acc);
                }
            }
    }

    public void ArgExtreme(in View x, int dim, bool max, in View values, in View indices)
    {
        var sx = S(x);
        var sv = S(values);
        var si = S(indices);
        int n = x._shape[dim];
        for (int o = 0; o < values._numel; o++)
        {
            // the multi-index of output o, walked along dim
            var idx = new int[x.Rank];
            int rest = o;
            for (int d = x.Rank - 1; d >= 0; d--)
            {
                int size = d == dim ? 1 : x._shape[d];
                idx[d] = rest % size;
                rest /= size;
            }
            double best = 0;
            long bestAt = 0;
            for (int k = 0; k < n; k++)
            {
                idx[dim] = k;
                int p = x._offset;
                for (int d = 0; d < x.Rank; d++) p += idx[d] * x._strides[d];
                double v = x.DType == DType.Int64 ? sx.GetLong(p) : sx.Get(p);
                bool better = k == 0 || (!double.IsNaN(best) && (double.IsNaN(v) || (max ? v > best : v < best)));
                if (better) { best = v; bestAt = k; }
            }
            sv.Set(Position(values, o), best);
            si.SetLong(Position(indices, o), bestAt);
        }
    }

    public (long NaN, long PosInf, long NegInf) CountNonFinite(in View x)
    {
        if (x.DType is DType.Int64 or DType.Bool) return (0, 0, 0);
        var s = S(x);
        long nan = 0, pos = 0, neg = 0;
        for (int i = 0; i < x._numel; i++)
        {
            double v = s.Get(Position(x, i));
            if (double.IsNaN(v)) nan++;
            else if (double.IsPositiveInfinity(v)) pos++;
            else if (double.IsNegativeInfinity(v)) neg++;
        }
        return (nan, pos, neg);
    }
}
