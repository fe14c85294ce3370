using System.Numerics.Tensors;
using Backprop.Autograd;
using Backprop.Backends;

namespace Backprop;

// Exp, Log, Sqrt, Abs, Clamp, Maximum, Minimum, Where, and (not differentiable) comparisons (bool results) and Sign.
public partial class Tensor
{
    /// <summary>Elementwise e^x. Backward reuses the output: d/dx = e^x.</summary>
    public Tensor Exp()
    {
        var y = Dispatch.Map("Exp", this, UnaryOp.Exp);
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
        var y = Dispatch.Map("Log", this, UnaryOp.Log);
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
        var y = Dispatch.Map("Sqrt", this, UnaryOp.Sqrt);
        Engine.Record(y, "Sqrt", new SqrtBackward(this, y), this, saved0: y);
        return y;
    }

    private readonly struct SqrtBackward(Tensor x, Tensor y) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Div(dy, Engine.CreateGraph ? y * 2 : Dispatch.Scaled(y, 2)));
    }

    /// <summary>The error function erf(x) = 2/√π ∫₀ˣ e^(−t²) dt. d/dx = 2/√π·e^(−x²).</summary>
    public Tensor Erf()
    {
        var y = Dispatch.Map("Erf", this, UnaryOp.Erf);
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
        var y = Dispatch.Map("Abs", this, UnaryOp.Abs);
        Engine.Record(y, "Abs", new AbsBackward(this), this);
        return y;
    }

    private readonly struct AbsBackward(Tensor x) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Mul(dy, x.NoGraph().Sign()));
    }

    /// <summary>Elementwise sine. d/dx = cos x.</summary>
    public Tensor Sin()
    {
        var y = Dispatch.Map("Sin", this, UnaryOp.Sin);
        Engine.Record(y, "Sin", new SinBackward(this), this);
        return y;
    }

    private readonly struct SinBackward(Tensor x) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Engine.CreateGraph
            ? dy * x.Cos()
            : Dispatch.Zip("SinBackward", dy, Dispatch.Map("SinBackward", x.NoGraph(), UnaryOp.Cos), BinaryOp.Mul));
    }

    /// <summary>Elementwise cosine. d/dx = −sin x.</summary>
    public Tensor Cos()
    {
        var y = Dispatch.Map("Cos", this, UnaryOp.Cos);
        Engine.Record(y, "Cos", new CosBackward(this), this);
        return y;
    }

    private readonly struct CosBackward(Tensor x) : IBackward
    {
        public void Backward(Tensor dy)
        {
            if (Engine.CreateGraph)
            {
                x.AccumulateGrad(-(dy * x.Sin()));
                return;
            }
            var g = Dispatch.Zip("CosBackward", dy, Dispatch.Map("CosBackward", x.NoGraph(), UnaryOp.Sin), BinaryOp.Mul);
            Dispatch.ScaleInto(g, g, -1);
            x.AccumulateGrad(g);
        }
    }

    /// <summary>Elementwise largest integer ≤ x (torch.floor). The gradient is 0 everywhere.</summary>
    public Tensor Floor() => Rounding("Floor", UnaryOp.Floor);

    /// <summary>Elementwise smallest integer ≥ x (torch.ceil). The gradient is 0 everywhere.</summary>
    public Tensor Ceil() => Rounding("Ceil", UnaryOp.Ceil);

    /// <summary>Elementwise nearest integer, halves to even (torch.round: 0.5 → 0, 1.5 → 2). The gradient is 0 everywhere.</summary>
    public Tensor Round() => Rounding("Round", UnaryOp.Round);

    private Tensor Rounding(string name, UnaryOp op)
    {
        var y = Dispatch.Map(name, this, op);
        Engine.Record(y, name, new ZeroBackward(this), this);
        return y;
    }

    /// <summary>The backward of a piecewise-constant op (floor, ceil, round): a zero gradient, as in PyTorch.</summary>
    private readonly struct ZeroBackward(Tensor x) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Engine.CreateGraph ? dy * 0 : ZerosLike(dy));
    }

    /// <summary>Elementwise sign: -1, 0 or 1 (not differentiable).</summary>
    public Tensor Sign() => Dispatch.Map("Sign", this, UnaryOp.Sign);

    /// <summary>
    /// Limits every element to [min, max] (either bound may be omitted). The gradient passes where
    /// min ≤ x ≤ max and is 0 outside.
    /// </summary>
    public Tensor Clamp(double? min = null, double? max = null)
    {
        if (min == null && max == null) throw new ArgumentException("Clamp: give at least one of min and max.");
        double lo = min ?? double.NegativeInfinity, hi = max ?? double.PositiveInfinity;
        var y = Dispatch.Map("Clamp", this, UnaryOp.Clamp, lo, hi);
        Engine.Record(y, "Clamp", new ClampBackward(this, lo, hi), this);
        return y;
    }

    private readonly struct ClampBackward(Tensor x, double lo, double hi) : IBackward
    {
        public void Backward(Tensor dy)
        {
            var mask = Dispatch.Map("Clamp", x.NoGraph(), UnaryOp.InRange, lo, hi);
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
            ? Dispatch.Zip(name, a, b, BinaryOp.Maximum)
            : Dispatch.Zip(name, a, b, BinaryOp.Minimum);
        Engine.Record(y, name, new ExtremumBackward(a, b, max), a, b);
        return y;
    }

    private readonly struct ExtremumBackward(Tensor a, Tensor b, bool max) : IBackward
    {
        public void Backward(Tensor dy)
        {
            // share of the gradient that goes to a: 1 where a wins, 1/2 on ties, 0 where b wins (a constant of the backward graph)
            var wa = Dispatch.Zip(max ? "Maximum" : "Minimum", a.NoGraph(), b.NoGraph(), max ? BinaryOp.MaxWinner : BinaryOp.MinWinner);
            if (a.RequiresGrad) a.AccumulateGradSummed(Mul(dy, wa));
            if (b.RequiresGrad) b.AccumulateGradSummed(Mul(dy, Sub(wa.Const(1), wa)));
        }
    }

    /// <summary>
    /// Picks a where <paramref name="condition"/> is true (a bool mask; a float or int64 one counts nonzero as true), b elsewhere (all three broadcast together).
    /// Gradients flow to a where the condition holds and to b elsewhere.
    /// </summary>
    public static Tensor Where(Tensor condition, Tensor a, Tensor b)
    {
        Dispatch.CheckSameDType("Where", a, b);
        var mask = condition.DType == a.DType ? condition.NotEqualZero() : condition.To(a.DType).NotEqualZero();
        var shape = Shape.Broadcast("Where", Shape.Broadcast("Where", mask._shape, a._shape), b._shape);
        // y = b + mask·(a − b) would lose precision and spread NaNs; select explicitly instead.
        var y = Empty([.. shape], a.DType, a.Backend);
        Dispatch.CopyInto(b, y);
        var ma = Dispatch.Zip("Where", mask, a, BinaryOp.SelectNonZero);
        var keep = Dispatch.Zip("Where", mask, y, BinaryOp.KeepZero);
        Dispatch.AddInPlace(keep, ma);
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

    // ---------------------------------------------------------------- comparisons (bool results, not differentiable)

    private Tensor Compare(Tensor other, int op, string name)
    {
        // a bool operand compares as 0/1: as int64 next to int64 or bool, else as the other operand's float type
        var a = this;
        var b = other;
        if (a.DType == DType.Bool) a = a.To(b.DType is DType.Int64 or DType.Bool ? DType.Int64 : b.DType);
        if (b.DType == DType.Bool) b = b.To(a.DType);
        if (a.DType == DType.Int64 && b.DType == DType.Int64)
        {
            // int64 values compared exactly, on the host (not a hot path)
            var shape = Shape.Broadcast(name, a._shape, b._shape);
            var backend = Dispatch.BackendOf(name, a, b);
            var ea = a.Expand(shape).NoGraph().ToLongArray();
            var eb = b.Expand(shape).NoGraph().ToLongArray();
            var r = new bool[ea.Length];
            for (int i = 0; i < r.Length; i++) r[i] = CompareResult(ea[i].CompareTo(eb[i]), op);
            return Wrap(r, shape).To(backend.Device);
        }
        if (a.DType == DType.Int64) a = a.To(b.DType);
        if (b.DType == DType.Int64) b = b.To(a.DType);
        var z = Dispatch.Zip(name, a.NoGraph(), b.NoGraph(), CompareOps[op]); // 0/1 in a's float type
        return Dispatch.Convert(z, DType.Bool);
    }

    private static readonly BinaryOp[] CompareOps = [BinaryOp.Eq, BinaryOp.Ne, BinaryOp.Gt, BinaryOp.Ge, BinaryOp.Lt, BinaryOp.Le];

    private static bool CompareResult(int c, int op) => op switch
    {
        0 => c == 0,
        1 => c != 0,
        2 => c > 0,
        3 => c >= 0,
        4 => c < 0,
        _ => c <= 0,
    };

    /// <summary>A bool tensor: true where this = other (broadcast; not differentiable). <c>Mean()</c> of it is the fraction of true elements.</summary>
    public Tensor Eq(Tensor other) => Compare(other, 0, "Eq");
    /// <summary>True where this ≠ other.</summary>
    public Tensor Ne(Tensor other) => Compare(other, 1, "Ne");
    /// <summary>True where this &gt; other.</summary>
    public Tensor Gt(Tensor other) => Compare(other, 2, "Gt");
    /// <summary>True where this ≥ other.</summary>
    public Tensor Ge(Tensor other) => Compare(other, 3, "Ge");
    /// <summary>True where this &lt; other.</summary>
    public Tensor Lt(Tensor other) => Compare(other, 4, "Lt");
    /// <summary>True where this ≤ other.</summary>
    public Tensor Le(Tensor other) => Compare(other, 5, "Le");
    /// <summary>True where this = value.</summary>
    public Tensor Eq(double value) => Eq(ScalarOperand(value));
    /// <summary>True where this ≠ value.</summary>
    public Tensor Ne(double value) => Ne(ScalarOperand(value));
    /// <summary>True where this &gt; value.</summary>
    public Tensor Gt(double value) => Gt(ScalarOperand(value));
    /// <summary>True where this &lt; value.</summary>
    public Tensor Lt(double value) => Lt(ScalarOperand(value));
    /// <summary>True where this ≥ value.</summary>
    public Tensor Ge(double value) => Ge(ScalarOperand(value));
    /// <summary>True where this ≤ value.</summary>
    public Tensor Le(double value) => Le(ScalarOperand(value));

    /// <summary>A bool tensor: true where a &gt; b (broadcast; <c>(a &gt; 0).Mean()</c> is the fraction, <c>Sum()</c> the int64 count).</summary>
    public static Tensor operator >(Tensor a, Tensor b) => a.Gt(b);
    /// <summary>True where a &lt; b.</summary>
    public static Tensor operator <(Tensor a, Tensor b) => a.Lt(b);
    /// <summary>True where a ≥ b.</summary>
    public static Tensor operator >=(Tensor a, Tensor b) => a.Ge(b);
    /// <summary>True where a ≤ b.</summary>
    public static Tensor operator <=(Tensor a, Tensor b) => a.Le(b);
    /// <summary>True where a &gt; b.</summary>
    public static Tensor operator >(Tensor a, double b) => a.Gt(b);
    /// <summary>True where a &lt; b.</summary>
    public static Tensor operator <(Tensor a, double b) => a.Lt(b);
    /// <summary>True where a ≥ b.</summary>
    public static Tensor operator >=(Tensor a, double b) => a.Ge(b);
    /// <summary>True where a ≤ b.</summary>
    public static Tensor operator <=(Tensor a, double b) => a.Le(b);
    /// <summary>True where a &gt; b.</summary>
    public static Tensor operator >(double a, Tensor b) => b.Lt(a);
    /// <summary>True where a &lt; b.</summary>
    public static Tensor operator <(double a, Tensor b) => b.Gt(a);
    /// <summary>True where a ≥ b.</summary>
    public static Tensor operator >=(double a, Tensor b) => b.Le(a);
    /// <summary>True where a ≤ b.</summary>
    public static Tensor operator <=(double a, Tensor b) => b.Ge(a);

    private Tensor NotEqualZero() => Dispatch.Map("Where", this, UnaryOp.NonZero);
}
