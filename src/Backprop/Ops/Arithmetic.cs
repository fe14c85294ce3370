using System.Numerics.Tensors;
using Backprop.Autograd;
using Backprop.Kernels;

namespace Backprop;

// Add, Sub, Mul, Div, Neg, Pow with NumPy broadcasting. The backward of a broadcast operand sums
// the gradient back to that operand's shape.
public partial class Tensor
{
    /// <summary>Accumulates <paramref name="g"/> summed down to this tensor's shape (for broadcast operands).</summary>
    internal void AccumulateGradSummed(Tensor g)
    {
        if (RequiresGrad) AccumulateGrad(Reduce.SumTo(g, _shape));
    }

    /// <summary>A 0-dimensional constant of this tensor's dtype.</summary>
    internal Tensor Const(double value) => Scalar(value, DType.IsFloatingPoint() ? DType : DType.Float32);

    /// <summary>Elementwise a + b with broadcasting.</summary>
    public static Tensor Add(Tensor a, Tensor b)
    {
        var y = Elementwise.Zip("Add", a, b, default(Elementwise.Add<float>), default(Elementwise.Add<double>));
        Engine.Record(y, "Add", static (n, dy) =>
        {
            n.A!.AccumulateGradSummed(dy);
            n.B!.AccumulateGradSummed(dy);
        }, a, b);
        return y;
    }

    /// <summary>Elementwise a - b with broadcasting.</summary>
    public static Tensor Sub(Tensor a, Tensor b)
    {
        var y = Elementwise.Zip("Sub", a, b, default(Elementwise.Sub<float>), default(Elementwise.Sub<double>));
        Engine.Record(y, "Sub", static (n, dy) =>
        {
            n.A!.AccumulateGradSummed(dy);
            if (n.B!.RequiresGrad) n.B.AccumulateGradSummed(Neg(dy));
        }, a, b);
        return y;
    }

    /// <summary>Elementwise a · b with broadcasting.</summary>
    public static Tensor Mul(Tensor a, Tensor b)
    {
        var y = Elementwise.Zip("Mul", a, b, default(Elementwise.Mul<float>), default(Elementwise.Mul<double>));
        Engine.Record(y, "Mul", static (n, dy) =>
        {
            if (n.A!.RequiresGrad) n.A.AccumulateGradSummed(Mul(dy, n.B!));
            if (n.B!.RequiresGrad) n.B.AccumulateGradSummed(Mul(dy, n.A));
        }, a, b);
        return y;
    }

    /// <summary>Elementwise a / b with broadcasting.</summary>
    public static Tensor Div(Tensor a, Tensor b)
    {
        var y = Elementwise.Zip("Div", a, b, default(Elementwise.Div<float>), default(Elementwise.Div<double>));
        Engine.Record(y, "Div", static (n, dy) =>
        {
            var dyOverB = Div(dy, n.B!);
            n.A!.AccumulateGradSummed(dyOverB);
            // d(a/b)/db = -a/b² = -y/b, with y saved from the forward pass
            if (n.B!.RequiresGrad) n.B.AccumulateGradSummed(Neg(Mul(dyOverB, n.S0!)));
        }, a, b, s0: y);
        return y;
    }

    /// <summary>Elementwise -x.</summary>
    public static Tensor Neg(Tensor x)
    {
        var y = Elementwise.Scaled(x, -1);
        Engine.Record(y, "Neg", static (n, dy) => n.A!.AccumulateGrad(Neg(dy)), x);
        return y;
    }

    /// <summary>Elementwise x^p for a constant exponent.</summary>
    public static Tensor Pow(Tensor x, double p)
    {
        var y = Elementwise.Map("Pow", x, new PowScalar<float>((float)p), new PowScalar<double>(p));
        Engine.Record(y, "Pow", static (n, dy) =>
        {
            double p = n.D0;
            // d(x^p)/dx = p·x^(p-1); x^0 is constant, so 0 also at x = 0 (where 0·0^-1 would be NaN), as in PyTorch
            if (p == 0) { n.A!.AccumulateGrad(ZerosLike(n.A)); return; }
            var local = p == 2 ? Elementwise.Scaled(n.A!, 2) : Elementwise.Scaled(Pow(n.A!, p - 1), p);
            n.A!.AccumulateGrad(Mul(dy, local));
        }, x, d0: p);
        return y;
    }

    /// <summary>Elementwise a^b with broadcasting (both may require grad; the gradient for b uses log a).</summary>
    public static Tensor Pow(Tensor a, Tensor b)
    {
        var y = Elementwise.Zip("Pow", a, b, default(PowTensor<float>), default(PowTensor<double>));
        Engine.Record(y, "Pow", static (n, dy) =>
        {
            // As in PyTorch, the gradients are 0 where the formulas would give 0·∞ = NaN but the function is
            // flat: for a where b = 0 (a^0 = 1), for b where a = 0 and b ≥ 0 (0^b = 0, or 1 at b = 0).
            var zero = n.A!.Const(0);
            if (n.A!.RequiresGrad) // b·a^(b-1)
                n.A.AccumulateGradSummed(Where(n.B!.Eq(0), zero, Mul(dy, Mul(n.B!, Pow(n.A, Sub(n.B!, n.A.Const(1)))))));
            if (n.B!.RequiresGrad) // a^b·log a
                n.B.AccumulateGradSummed(Where(Mul(n.A.Eq(0), n.B.Ge(zero)), zero, Mul(dy, Mul(n.S0!, Log(n.A)))));
        }, a, b, s0: y);
        return y;
    }

    private readonly struct PowScalar<T>(T p) : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            if (p == T.CreateTruncating(2)) TensorPrimitives.Multiply(x, x, y);
            else if (p == T.One) x.CopyTo(y);
            else if (p == T.CreateTruncating(0.5)) TensorPrimitives.Sqrt(x, y);
            else TensorPrimitives.Pow(x, p, y);
        }
    }

    private struct PowTensor<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Pow(a, b, y);
    }

    // ---------------------------------------------------------------- instance forms and operators

    /// <summary>this + other.</summary>
    public Tensor Add(Tensor other) => Add(this, other);
    /// <summary>this - other.</summary>
    public Tensor Sub(Tensor other) => Sub(this, other);
    /// <summary>this · other.</summary>
    public Tensor Mul(Tensor other) => Mul(this, other);
    /// <summary>this / other.</summary>
    public Tensor Div(Tensor other) => Div(this, other);
    /// <summary>-this.</summary>
    public Tensor Neg() => Neg(this);
    /// <summary>this^p.</summary>
    public Tensor Pow(double p) => Pow(this, p);
    /// <summary>this^other.</summary>
    public Tensor Pow(Tensor other) => Pow(this, other);
    /// <summary>this².</summary>
    public Tensor Square() => Pow(this, 2);

    /// <summary>Elementwise sum with broadcasting.</summary>
    public static Tensor operator +(Tensor a, Tensor b) => Add(a, b);
    /// <summary>Adds a constant.</summary>
    public static Tensor operator +(Tensor a, double b) => Add(a, a.Const(b));
    /// <summary>Adds a constant.</summary>
    public static Tensor operator +(double a, Tensor b) => Add(b.Const(a), b);
    /// <summary>Elementwise difference with broadcasting.</summary>
    public static Tensor operator -(Tensor a, Tensor b) => Sub(a, b);
    /// <summary>Subtracts a constant.</summary>
    public static Tensor operator -(Tensor a, double b) => Sub(a, a.Const(b));
    /// <summary>Subtracts from a constant.</summary>
    public static Tensor operator -(double a, Tensor b) => Sub(b.Const(a), b);
    /// <summary>Elementwise product with broadcasting.</summary>
    public static Tensor operator *(Tensor a, Tensor b) => Mul(a, b);
    /// <summary>Multiplies by a constant.</summary>
    public static Tensor operator *(Tensor a, double b) => Mul(a, a.Const(b));
    /// <summary>Multiplies by a constant.</summary>
    public static Tensor operator *(double a, Tensor b) => Mul(b.Const(a), b);
    /// <summary>Elementwise quotient with broadcasting.</summary>
    public static Tensor operator /(Tensor a, Tensor b) => Div(a, b);
    /// <summary>Divides by a constant.</summary>
    public static Tensor operator /(Tensor a, double b) => Div(a, a.Const(b));
    /// <summary>Divides a constant.</summary>
    public static Tensor operator /(double a, Tensor b) => Div(b.Const(a), b);
    /// <summary>Negation.</summary>
    public static Tensor operator -(Tensor a) => Neg(a);
}
