using System.Numerics.Tensors;
using static Backprop.Backends.Cpu.CpuOps;

namespace Backprop.Backends.Cpu;

/// <summary>
/// The fast backend: managed arrays from a per-thread pool, SIMD span kernels (TensorPrimitives and
/// hand-written Vector512/256 loops), the packed GEMM, work split across <see cref="Threads"/>.
/// </summary>
internal sealed partial class CpuBackend : IBackend
{
    public static readonly CpuBackend Instance = new();

    private CpuBackend() { }

    public Device Device => Device.Cpu;

    public Storage Allocate(DType dtype, int length) => dtype switch
    {
        DType.Float32 => new CpuStorage<float>(length),
        DType.Float64 => new CpuStorage<double>(length),
        DType.Bool => new CpuStorage<bool>(length),
        _ => new CpuStorage<long>(length),
    };

    public void Upload<T>(ReadOnlySpan<T> source, in View y) where T : unmanaged => source.CopyTo(y.Span<T>());

    public void Download<T>(in View x, Span<T> destination) where T : unmanaged
    {
        if (x._contiguous)
        {
            x.Span<T>().CopyTo(destination);
            return;
        }
        var data = x.Data<T>();
        int rank = x.Rank;
        Span<int> idx = stackalloc int[rank];
        for (int i = 0; i < x._numel; i++)
        {
            int p = x._offset;
            for (int d = 0; d < rank; d++) p += idx[d] * x._strides[d];
            destination[i] = data[p];
            for (int d = rank - 1; d >= 0; d--)
            {
                if (++idx[d] < x._shape[d]) break;
                idx[d] = 0;
            }
        }
    }

    public void Fill(in View y, double value)
    {
        if (y._numel == 0) return;
        if (y._contiguous)
        {
            switch (y.DType)
            {
                case DType.Float32: y.Span<float>().Fill((float)value); break;
                case DType.Float64: y.Span<double>().Fill(value); break;
                case DType.Bool: y.Span<bool>().Fill(value != 0); break;
                default: y.Span<long>().Fill(checked((long)value)); break;
            }
            return;
        }
        var one = new View(Allocate(y.DType, 1), []);
        Fill(one, value);
        Copy.Into(one, y);
    }

    void IBackend.Copy(in View x, in View y) => Copy.Into(x, y);

    public void Unary(UnaryOp op, in View x, in View y, double p0, double p1)
    {
        if (x.DType == DType.Float32) Unary<float>(op, x, y, (float)p0, (float)p1);
        else Unary<double>(op, x, y, p0, p1);
    }

    private static void Unary<T>(UnaryOp op, in View x, in View y, T p0, T p1) where T : unmanaged, IFloatingPointIeee754<T>
    {
        switch (op)
        {
            case UnaryOp.Copy: Elementwise.MapInto<T, Elementwise.Identity<T>>(x, y, default); break;
            case UnaryOp.Scale: Elementwise.MapInto<T, Elementwise.Scale<T>>(x, y, new(p0)); break;
            case UnaryOp.Neg: Elementwise.MapInto<T, Elementwise.Scale<T>>(x, y, new(-T.One)); break;
            case UnaryOp.Exp: Elementwise.MapInto<T, ExpOp<T>>(x, y, default); break;
            case UnaryOp.Log: Elementwise.MapInto<T, LogOp<T>>(x, y, default); break;
            case UnaryOp.Sqrt: Elementwise.MapInto<T, SqrtOp<T>>(x, y, default); break;
            case UnaryOp.Abs: Elementwise.MapInto<T, AbsOp<T>>(x, y, default); break;
            case UnaryOp.Sign: Elementwise.MapInto<T, SignOp<T>>(x, y, default); break;
            case UnaryOp.Erf: Elementwise.MapInto<T, ErfOp<T>>(x, y, default); break;
            case UnaryOp.Tanh: Elementwise.MapInto<T, TanhOp<T>>(x, y, default); break;
            case UnaryOp.Sigmoid: Elementwise.MapInto<T, SigmoidOp<T>>(x, y, default); break;
            case UnaryOp.Relu: Elementwise.MapInto<T, ReluOp<T>>(x, y, default); break;
            case UnaryOp.LeakyRelu: Elementwise.MapInto<T, LeakyOp<T>>(x, y, new(p0)); break;
            case UnaryOp.Gelu: Elementwise.MapInto<T, GeluOp<T>>(x, y, default); break;
            case UnaryOp.GeluTanh: Elementwise.MapInto<T, GeluTanhOp<T>>(x, y, default); break;
            case UnaryOp.Softplus: Elementwise.MapInto<T, SoftplusOp<T>>(x, y, new(p0, p1)); break;
            case UnaryOp.Clamp: Elementwise.MapInto<T, ClampOp<T>>(x, y, new(p0, p1)); break;
            case UnaryOp.InRange: Elementwise.MapInto<T, InRangeOp<T>>(x, y, new(p0, p1)); break;
            case UnaryOp.NonZero: Elementwise.MapInto<T, NonZeroOp<T>>(x, y, default); break;
            case UnaryOp.FiniteOrZero: Elementwise.MapInto<T, FiniteOrZero<T>>(x, y, default); break;
            case UnaryOp.Pow: Elementwise.MapInto<T, PowScalar<T>>(x, y, new(p0)); break;
            case UnaryOp.Sin: Elementwise.MapInto<T, SinOp<T>>(x, y, default); break;
            case UnaryOp.Cos: Elementwise.MapInto<T, CosOp<T>>(x, y, default); break;
            case UnaryOp.Floor: Elementwise.MapInto<T, FloorOp<T>>(x, y, default); break;
            case UnaryOp.Ceil: Elementwise.MapInto<T, CeilOp<T>>(x, y, default); break;
            case UnaryOp.Round: Elementwise.MapInto<T, RoundOp<T>>(x, y, default); break;
            default: throw new NotSupportedException($"CPU backend: unary op {op}.");
        }
    }

    public void Binary(BinaryOp op, in View a, in View b, in View y, double p0, double p1)
    {
        if (y.DType == DType.Float32) Binary<float>(op, a, b, y, (float)p0, (float)p1);
        else Binary<double>(op, a, b, y, p0, p1);
    }

    private static void Binary<T>(BinaryOp op, in View a, in View b, in View y, T p0, T p1) where T : unmanaged, IFloatingPointIeee754<T>
    {
        switch (op)
        {
            case BinaryOp.Add: Elementwise.ZipInto<T, Elementwise.Add<T>>(a, b, y, default); break;
            case BinaryOp.Sub: Elementwise.ZipInto<T, Elementwise.Sub<T>>(a, b, y, default); break;
            case BinaryOp.Mul: Elementwise.ZipInto<T, Elementwise.Mul<T>>(a, b, y, default); break;
            case BinaryOp.Div: Elementwise.ZipInto<T, Elementwise.Div<T>>(a, b, y, default); break;
            case BinaryOp.Pow: Elementwise.ZipInto<T, PowTensor<T>>(a, b, y, default); break;
            case BinaryOp.Maximum: Elementwise.ZipInto<T, MaxOp<T>>(a, b, y, default); break;
            case BinaryOp.Minimum: Elementwise.ZipInto<T, MinOp<T>>(a, b, y, default); break;
            case BinaryOp.MaxWinner: Elementwise.ZipInto<T, WinnerOp<T>>(a, b, y, new(true)); break;
            case BinaryOp.MinWinner: Elementwise.ZipInto<T, WinnerOp<T>>(a, b, y, new(false)); break;
            case BinaryOp.Eq: Elementwise.ZipInto<T, CmpOp<T>>(a, b, y, new(0)); break;
            case BinaryOp.Ne: Elementwise.ZipInto<T, CmpOp<T>>(a, b, y, new(1)); break;
            case BinaryOp.Gt: Elementwise.ZipInto<T, CmpOp<T>>(a, b, y, new(2)); break;
            case BinaryOp.Ge: Elementwise.ZipInto<T, CmpOp<T>>(a, b, y, new(3)); break;
            case BinaryOp.Lt: Elementwise.ZipInto<T, CmpOp<T>>(a, b, y, new(4)); break;
            case BinaryOp.Le: Elementwise.ZipInto<T, CmpOp<T>>(a, b, y, new(5)); break;
            case BinaryOp.TanhGrad: Elementwise.ZipInto<T, TanhGrad<T>>(a, b, y, default); break;
            case BinaryOp.SigmoidGrad: Elementwise.ZipInto<T, SigmoidGrad<T>>(a, b, y, default); break;
            case BinaryOp.ReluGrad: Elementwise.ZipInto<T, ReluGrad<T>>(a, b, y, default); break;
            case BinaryOp.LeakyReluGrad: Elementwise.ZipInto<T, LeakyGrad<T>>(a, b, y, new(p0)); break;
            case BinaryOp.GeluGrad: Elementwise.ZipInto<T, GeluGrad<T>>(a, b, y, default); break;
            case BinaryOp.GeluTanhGrad: Elementwise.ZipInto<T, GeluTanhGrad<T>>(a, b, y, default); break;
            case BinaryOp.SoftplusGrad: Elementwise.ZipInto<T, SoftplusGrad<T>>(a, b, y, new(p0, p1)); break;
            case BinaryOp.SelectNonZero: Elementwise.ZipInto<T, SelectOp<T>>(a, b, y, default); break;
            case BinaryOp.KeepZero: Elementwise.ZipInto<T, KeepOp<T>>(a, b, y, default); break;
            default: throw new NotSupportedException($"CPU backend: binary op {op}.");
        }
    }

    public void Sum(in View x, in View y, bool accumulate)
    {
        if (x.DType == DType.Float32) Reduce.Sum<float>(x, y, accumulate);
        else Reduce.Sum<double>(x, y, accumulate);
    }

    public void ArgExtreme(in View x, int dim, bool max, in View values, in View indices)
    {
        switch (x.DType)
        {
            case DType.Float32: Reduce.ArgExtreme<float>(x, dim, max, values, indices); break;
            case DType.Float64: Reduce.ArgExtreme<double>(x, dim, max, values, indices); break;
            default: Reduce.ArgExtremeLong(x, dim, max, values, indices); break;
        }
    }

    public void Cumsum(in View x, int dim, bool reverse, in View y)
    {
        if (x.DType == DType.Float32) Reduce.Cumsum<float>(x, dim, reverse, y);
        else Reduce.Cumsum<double>(x, dim, reverse, y);
    }

    public (long NaN, long PosInf, long NegInf) CountNonFinite(in View x) => x.DType switch
    {
        DType.Float32 => Reduce.CountNonFinite<float>(x.Span<float>()),
        DType.Float64 => Reduce.CountNonFinite<double>(x.Span<double>()),
        _ => (0, 0, 0),
    };
}
