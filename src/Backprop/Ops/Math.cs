using System.Numerics.Tensors;
using Backprop.Autograd;
using Backprop.Kernels;

namespace Backprop;

// Exp, Log, Sqrt, Abs, Clamp, Maximum, Minimum, Where, and (not differentiable) comparisons and Sign.
public partial class Tensor
{
    /// <summary>Elementwise e^x. Backward reuses the output: d/dx = e^x.</summary>
    public Tensor Exp()
    {
        var y = Elementwise.Map("Exp", this, default(ExpOp<float>), default(ExpOp<double>));
        Engine.Record(y, "Exp", new ExpBackward(this, y), this, saved0: y);
        return y;
    }

    private readonly struct ExpBackward(Tensor x, Tensor y) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Mul(dy, y));
    }

    /// <summary>Elementwise natural logarithm. d/dx = 1/x.</summary>
    public Tensor Log()
    {
        var y = Elementwise.Map("Log", this, default(LogOp<float>), default(LogOp<double>));
        Engine.Record(y, "Log", new LogBackward(this), this);
        return y;
    }

    private readonly struct LogBackward(Tensor x) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Div(dy, x));
    }

    /// <summary>Elementwise natural logarithm of x.</summary>
    public static Tensor Log(Tensor x) => x.Log();

    /// <summary>Elementwise square root. Backward reuses the output: d/dx = 1/(2√x).</summary>
    public Tensor Sqrt()
    {
        var y = Elementwise.Map("Sqrt", this, default(SqrtOp<float>), default(SqrtOp<double>));
        Engine.Record(y, "Sqrt", new SqrtBackward(this, y), this, saved0: y);
        return y;
    }

    private readonly struct SqrtBackward(Tensor x, Tensor y) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Div(dy, Engine.CreateGraph ? y * 2 : Elementwise.Scaled(y, 2)));
    }

    /// <summary>The error function erf(x) = 2/√π ∫₀ˣ e^(−t²) dt. d/dx = 2/√π·e^(−x²).</summary>
    public Tensor Erf()
    {
        var y = Elementwise.Map("Erf", this, default(ErfOp<float>), default(ErfOp<double>));
        Engine.Record(y, "Erf", new ErfBackward(this), this);
        return y;
    }

    private readonly struct ErfBackward(Tensor x) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(dy * (x * x * -1).Exp() * (2 / Math.Sqrt(Math.PI)));
    }

    /// <summary>Elementwise |x|. The gradient at 0 is 0 (as in PyTorch).</summary>
    public Tensor Abs()
    {
        var y = Elementwise.Map("Abs", this, default(AbsOp<float>), default(AbsOp<double>));
        Engine.Record(y, "Abs", new AbsBackward(this), this);
        return y;
    }

    private readonly struct AbsBackward(Tensor x) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Mul(dy, x.NoGraph().Sign()));
    }

    /// <summary>Elementwise sign: -1, 0 or 1 (not differentiable).</summary>
    public Tensor Sign() => Elementwise.Map("Sign", this, default(SignOp<float>), default(SignOp<double>));

    /// <summary>
    /// Limits every element to [min, max] (either bound may be omitted). The gradient passes where
    /// min ≤ x ≤ max and is 0 outside.
    /// </summary>
    public Tensor Clamp(double? min = null, double? max = null)
    {
        if (min == null && max == null) throw new ArgumentException("Clamp: give at least one of min and max.");
        double lo = min ?? double.NegativeInfinity, hi = max ?? double.PositiveInfinity;
        var y = Elementwise.Map("Clamp", this, new ClampOp<float>((float)lo, (float)hi), new ClampOp<double>(lo, hi));
        Engine.Record(y, "Clamp", new ClampBackward(this, lo, hi), this);
        return y;
    }

    private readonly struct ClampBackward(Tensor x, double lo, double hi) : IBackward
    {
        public void Backward(Tensor dy)
        {
            var mask = Elementwise.Map("Clamp", x.NoGraph(), new InRangeOp<float>((float)lo, (float)hi), new InRangeOp<double>(lo, hi));
            x.AccumulateGrad(Mul(dy, mask));
        }
    }

    /// <summary>Elementwise maximum with broadcasting. Where a = b the gradient is split equally (as in PyTorch).</summary>
    public static Tensor Maximum(Tensor a, Tensor b) => Extremum(a, b, max: true);

    /// <summary>Elementwise minimum with broadcasting. Where a = b the gradient is split equally.</summary>
    public static Tensor Minimum(Tensor a, Tensor b) => Extremum(a, b, max: false);

    private static Tensor Extremum(Tensor a, Tensor b, bool max)
    {
        string name = max ? "Maximum" : "Minimum";
        var y = max
            ? Elementwise.Zip(name, a, b, default(MaxOp<float>), default(MaxOp<double>))
            : Elementwise.Zip(name, a, b, default(MinOp<float>), default(MinOp<double>));
        Engine.Record(y, name, new ExtremumBackward(a, b, max), a, b);
        return y;
    }

    private readonly struct ExtremumBackward(Tensor a, Tensor b, bool max) : IBackward
    {
        public void Backward(Tensor dy)
        {
            // share of the gradient that goes to a: 1 where a wins, 1/2 on ties, 0 where b wins (a constant of the backward graph)
            var wa = Elementwise.Zip(max ? "Maximum" : "Minimum", a.NoGraph(), b.NoGraph(), new WinnerOp<float>(max), new WinnerOp<double>(max));
            if (a.RequiresGrad) a.AccumulateGradSummed(Mul(dy, wa));
            if (b.RequiresGrad) b.AccumulateGradSummed(Mul(dy, Sub(wa.Const(1), wa)));
        }
    }

    /// <summary>
    /// Picks a where <paramref name="condition"/> is nonzero, b elsewhere (all three broadcast together).
    /// Gradients flow to a where the condition holds and to b elsewhere.
    /// </summary>
    public static Tensor Where(Tensor condition, Tensor a, Tensor b)
    {
        Elementwise.CheckSameDType("Where", a, b);
        var mask = condition.DType == a.DType ? condition.NotEqualZero() : condition.To(a.DType).NotEqualZero();
        var shape = Strided.BroadcastShapes("Where", Strided.BroadcastShapes("Where", mask._shape, a._shape), b._shape);
        // y = b + mask·(a − b) would lose precision and spread NaNs; select explicitly instead.
        var y = Empty([.. shape], a.DType);
        Copy.Into(b, y);
        var ma = Elementwise.Zip("Where", mask, a, default(SelectOp<float>), default(SelectOp<double>));
        var keep = Elementwise.Zip("Where", mask, y, default(KeepOp<float>), default(KeepOp<double>));
        Elementwise.AddInPlace(keep, ma);
        y = keep;
        Engine.Record(y, "Where", new WhereBackward(a, b, mask), a, b, saved0: mask);
        return y;
    }

    private readonly struct WhereBackward(Tensor a, Tensor b, Tensor mask) : IBackward
    {
        public void Backward(Tensor dy)
        {
            if (a.RequiresGrad) a.AccumulateGradSummed(Where(mask, dy, dy.Const(0)));
            if (b.RequiresGrad) b.AccumulateGradSummed(Where(mask, dy.Const(0), dy));
        }
    }

    // ---------------------------------------------------------------- comparisons (0/1 results, not differentiable)

    private Tensor Compare(Tensor other, int op, string name)
    {
        if (DType == DType.Int64 && other.DType == DType.Int64)
        {
            var shape = Strided.BroadcastShapes(name, _shape, other._shape);
            var r = Empty<float>(shape);
            var ea = Expand(shape).NoGraph();
            var eb = other.Expand(shape).NoGraph();
            for (int i = 0; i < r._numel; i++)
            {
                long x = ea.Data<long>()[ea.FlatPosition(i)], z = eb.Data<long>()[eb.FlatPosition(i)];
                r.Data<float>()[i] = CompareResult(x.CompareTo(z), op) ? 1f : 0f;
            }
            return r;
        }
        var a = DType == DType.Int64 ? To(other.DType) : this;
        var b = other.DType == DType.Int64 ? other.To(a.DType) : other;
        return Elementwise.Zip(name, a.NoGraph(), b.NoGraph(), new CmpOp<float>(op), new CmpOp<double>(op));
    }

    private static bool CompareResult(int c, int op) => op switch
    {
        0 => c == 0,
        1 => c != 0,
        2 => c > 0,
        3 => c >= 0,
        4 => c < 0,
        _ => c <= 0,
    };

    /// <summary>1 where this = other, else 0 (float; int64 inputs give float32).</summary>
    public Tensor Eq(Tensor other) => Compare(other, 0, "Eq");
    /// <summary>1 where this ≠ other, else 0.</summary>
    public Tensor Ne(Tensor other) => Compare(other, 1, "Ne");
    /// <summary>1 where this &gt; other, else 0.</summary>
    public Tensor Gt(Tensor other) => Compare(other, 2, "Gt");
    /// <summary>1 where this ≥ other, else 0.</summary>
    public Tensor Ge(Tensor other) => Compare(other, 3, "Ge");
    /// <summary>1 where this &lt; other, else 0.</summary>
    public Tensor Lt(Tensor other) => Compare(other, 4, "Lt");
    /// <summary>1 where this ≤ other, else 0.</summary>
    public Tensor Le(Tensor other) => Compare(other, 5, "Le");
    /// <summary>1 where this = value.</summary>
    public Tensor Eq(double value) => Eq(Const(value));
    /// <summary>1 where this &gt; value.</summary>
    public Tensor Gt(double value) => Gt(Const(value));
    /// <summary>1 where this &lt; value.</summary>
    public Tensor Lt(double value) => Lt(Const(value));

    private Tensor NotEqualZero() => Elementwise.Map("Where", this, default(NonZeroOp<float>), default(NonZeroOp<double>));

    // ---------------------------------------------------------------- kernels

    private struct ExpOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y) => TensorPrimitives.Exp(x, y);
    }

    private struct LogOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y) => TensorPrimitives.Log(x, y);
    }

    private struct ErfOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            for (int i = 0; i < x.Length; i++) y[i] = T.CreateTruncating(SpecialFunctions.Erf(double.CreateTruncating(x[i])));
        }
    }

    private struct SqrtOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y) => TensorPrimitives.Sqrt(x, y);
    }

    private struct AbsOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y) => TensorPrimitives.Abs(x, y);
    }

    private struct SignOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            for (int i = 0; i < x.Length; i++)
                y[i] = T.IsNaN(x[i]) ? x[i] : x[i] > T.Zero ? T.One : x[i] < T.Zero ? -T.One : T.Zero;
        }
    }

    private readonly struct ClampOp<T>(T lo, T hi) : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            for (int i = 0; i < x.Length; i++)
            {
                T v = x[i];
                y[i] = v < lo ? lo : v > hi ? hi : v; // NaN stays NaN
            }
        }
    }

    private readonly struct InRangeOp<T>(T lo, T hi) : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            for (int i = 0; i < x.Length; i++) y[i] = x[i] >= lo && x[i] <= hi ? T.One : T.Zero;
        }
    }

    private struct MaxOp<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Max(a, b, y);
    }

    private struct MinOp<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Min(a, b, y);
    }

    private readonly struct WinnerOp<T>(bool max) : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y)
        {
            T half = T.One / (T.One + T.One);
            for (int i = 0; i < a.Length; i++)
                y[i] = a[i] == b[i] ? half : (max ? a[i] > b[i] : a[i] < b[i]) ? T.One : T.Zero;
        }
    }

    private struct NonZeroOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            for (int i = 0; i < x.Length; i++) y[i] = x[i] != T.Zero ? T.One : T.Zero;
        }
    }

    /// <summary>y = a where mask (first operand) is 1, else 0 — without multiplying, so NaN/Inf elsewhere do not leak.</summary>
    private struct SelectOp<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> m, ReadOnlySpan<T> a, Span<T> y)
        {
            for (int i = 0; i < m.Length; i++) y[i] = m[i] != T.Zero ? a[i] : T.Zero;
        }
    }

    /// <summary>y = b where mask is 0, else 0.</summary>
    private struct KeepOp<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> m, ReadOnlySpan<T> b, Span<T> y)
        {
            for (int i = 0; i < m.Length; i++) y[i] = m[i] == T.Zero ? b[i] : T.Zero;
        }
    }

    private readonly struct CmpOp<T>(int op) : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y)
        {
            for (int i = 0; i < a.Length; i++)
            {
                bool r = op switch
                {
                    0 => a[i] == b[i],
                    1 => a[i] != b[i],
                    2 => a[i] > b[i],
                    3 => a[i] >= b[i],
                    4 => a[i] < b[i],
                    _ => a[i] <= b[i],
                };
                y[i] = r ? T.One : T.Zero;
            }
        }
    }
}
