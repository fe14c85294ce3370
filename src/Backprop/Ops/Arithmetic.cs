using System.Numerics.Tensors;
using Backprop.Autograd;
using Backprop.Backends;

namespace Backprop;

// Add, Sub, Mul, Div, Neg, Pow with NumPy broadcasting. The backward of a broadcast operand sums
// the gradient back to that operand's shape.
public partial class Tensor
{
    /// <summary>Accumulates <paramref name="g"/> summed down to this tensor's shape (for broadcast operands).</summary>
    internal void AccumulateGradSummed(Tensor g)
    {
        if (RequiresGrad) AccumulateGrad(Engine.CreateGraph ? g.SumTo(_shape) : Dispatch.SumTo(g, _shape));
    }

    /// <summary>A 0-dimensional constant of this tensor's dtype.</summary>
    internal Tensor Const(double value) => FullOn([], value, DType.IsFloatingPoint() ? DType : DType.Float32, Backend);

    /// <summary>A 0-dimensional operand for a number: int64 for an integral number next to an int64 tensor, else <see cref="Const"/>.</summary>
    internal Tensor ScalarOperand(double value) =>
        DType == DType.Int64 && value == Math.Floor(value) && Math.Abs(value) < 9.2e18 ? FullOn([], value, DType.Int64, Backend) : Const(value);

    /// <summary>
    /// a op b for int64 tensors (Add, Sub, Mul), exact, with broadcasting, on the host (not a hot path);
    /// not differentiable. Mixing int64 with a float tensor is an error that says how to convert.
    /// </summary>
    private static Tensor IntArithmetic(string op, Tensor a, Tensor b)
    {
        if (a.DType != b.DType)
            throw new ArgumentException($"{op}: dtypes differ: {a.DType.Name()} {a.Shape} and {b.DType.Name()} {b.Shape}; convert one with To(DType) (int64 arithmetic needs two int64 tensors, or an int64 tensor and an integral number).");
        var backend = Dispatch.BackendOf(op, a, b);
        var shape = Backprop.Shape.Broadcast(op, a._shape, b._shape);
        var ea = a.Expand(shape).ToLongArray();
        var eb = b.Expand(shape).ToLongArray();
        var r = new long[ea.Length];
        switch (op)
        {
            case "Add": for (int i = 0; i < r.Length; i++) r[i] = unchecked(ea[i] + eb[i]); break;
            case "Sub": for (int i = 0; i < r.Length; i++) r[i] = unchecked(ea[i] - eb[i]); break;
            default: for (int i = 0; i < r.Length; i++) r[i] = unchecked(ea[i] * eb[i]); break;
        }
        return Wrap(r, shape).To(backend.Device);
    }

    /// <summary>Elementwise a + b with broadcasting.</summary>
    public static Tensor Add(Tensor a, Tensor b)
    {
        if (a.DType == DType.Bool || b.DType == DType.Bool) return BoolArithmetic("Add", a, b);
        if (a.DType == DType.Int64 || b.DType == DType.Int64) return IntArithmetic("Add", a, b);
        var y = Dispatch.Zip("Add", a, b, BinaryOp.Add);
        Engine.Record(y, "Add", new AddBackward(a, b), a, b);
        return y;
    }

    private readonly struct AddBackward(Tensor a, Tensor b) : IBackward
    {
        public void Backward(Tensor dy)
        {
            a.AccumulateGradSummed(dy);
            b.AccumulateGradSummed(dy);
        }
    }

    /// <summary>Elementwise a - b with broadcasting.</summary>
    public static Tensor Sub(Tensor a, Tensor b)
    {
        if (a.DType == DType.Bool || b.DType == DType.Bool) return BoolArithmetic("Sub", a, b);
        if (a.DType == DType.Int64 || b.DType == DType.Int64) return IntArithmetic("Sub", a, b);
        var y = Dispatch.Zip("Sub", a, b, BinaryOp.Sub);
        Engine.Record(y, "Sub", new SubBackward(a, b), a, b);
        return y;
    }

    private readonly struct SubBackward(Tensor a, Tensor b) : IBackward
    {
        public void Backward(Tensor dy)
        {
            a.AccumulateGradSummed(dy);
            if (b.RequiresGrad) b.AccumulateGradSummed(Neg(dy));
        }
    }

    /// <summary>Elementwise a · b with broadcasting.</summary>
    public static Tensor Mul(Tensor a, Tensor b)
    {
        if (a.DType == DType.Bool || b.DType == DType.Bool) return BoolArithmetic("Mul", a, b);
        if (a.DType == DType.Int64 || b.DType == DType.Int64) return IntArithmetic("Mul", a, b);
        var y = Dispatch.Zip("Mul", a, b, BinaryOp.Mul);
        Engine.Record(y, "Mul", new MulBackward(a, b), a, b);
        return y;
    }

    private readonly struct MulBackward(Tensor a, Tensor b) : IBackward
    {
        public void Backward(Tensor dy)
        {
            if (a.RequiresGrad) a.AccumulateGradSummed(Mul(dy, b));
            if (b.RequiresGrad) b.AccumulateGradSummed(Mul(dy, a));
        }
    }

    /// <summary>Elementwise a / b with broadcasting.</summary>
    public static Tensor Div(Tensor a, Tensor b)
    {
        if (a.DType == DType.Bool || b.DType == DType.Bool) return BoolArithmetic("Div", a, b);
        if (a.DType == DType.Int64 || b.DType == DType.Int64)
            throw new NotSupportedException($"Div: division of int64 tensors ({a.DType.Name()} {a.Shape} / {b.DType.Name()} {b.Shape}) is not supported; convert with To(DType.Float32) first (true division), as torch.div does.");
        var y = Dispatch.Zip("Div", a, b, BinaryOp.Div);
        Engine.Record(y, "Div", new DivBackward(a, b, y), a, b, saved0: y);
        return y;
    }

    private readonly struct DivBackward(Tensor a, Tensor b, Tensor y) : IBackward
    {
        public void Backward(Tensor dy)
        {
            var dyOverB = Div(dy, b);
            a.AccumulateGradSummed(dyOverB);
            // d(a/b)/db = -a/b² = -y/b, with y saved from the forward pass
            if (b.RequiresGrad) b.AccumulateGradSummed(Neg(Mul(dyOverB, y)));
        }
    }

    /// <summary>Elementwise -x.</summary>
    public static Tensor Neg(Tensor x)
    {
        if (x.DType == DType.Bool)
            throw new NotSupportedException($"Neg: negation of a bool tensor {x.Shape} is not supported (as in PyTorch); use LogicalNot() or !mask.");
        if (x.DType == DType.Int64) return IntArithmetic("Sub", x.ScalarOperand(0), x);
        var y = Dispatch.Scaled(x, -1);
        Engine.Record(y, "Neg", new NegBackward(x), x);
        return y;
    }

    private readonly struct NegBackward(Tensor x) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Neg(dy));
    }

    /// <summary>Elementwise x^p for a constant exponent.</summary>
    public static Tensor Pow(Tensor x, double p)
    {
        var y = Dispatch.Map("Pow", x, UnaryOp.Pow, p);
        Engine.Record(y, "Pow", new PowScalarBackward(x, p), x);
        return y;
    }

    private readonly struct PowScalarBackward(Tensor x, double p) : IBackward
    {
        public void Backward(Tensor dy)
        {
            // d(x^p)/dx = p·x^(p-1); x^0 is constant, so 0 also at x = 0 (where 0·0^-1 would be NaN), as in PyTorch
            if (p == 0) { x.AccumulateGrad(ZerosLike(x)); return; }
            Tensor local = Engine.CreateGraph
                ? (p == 1 ? OnesLike(x) : p == 2 ? x * 2 : Pow(x, p - 1) * p)
                : (p == 2 ? Dispatch.Scaled(x, 2) : Dispatch.Scaled(Pow(x, p - 1), p));
            x.AccumulateGrad(Mul(dy, local));
        }
    }

    /// <summary>Elementwise a^b with broadcasting (both may require grad; the gradient for b uses log a).</summary>
    public static Tensor Pow(Tensor a, Tensor b)
    {
        var y = Dispatch.Zip("Pow", a, b, BinaryOp.Pow);
        Engine.Record(y, "Pow", new PowBackward(a, b, y), a, b, saved0: y);
        return y;
    }

    private readonly struct PowBackward(Tensor a, Tensor b, Tensor y) : IBackward
    {
        public void Backward(Tensor dy)
        {
            // As in PyTorch, the gradients are 0 where the formulas would give 0·∞ = NaN but the function is
            // flat: for a where b = 0 (a^0 = 1), for b where a = 0 and b ≥ 0 (0^b = 0, or 1 at b = 0).
            var zero = a.Const(0);
            if (a.RequiresGrad) // b·a^(b-1)
                a.AccumulateGradSummed(Where(b.NoGraph().Eq(0), zero, Mul(dy, Mul(b, Pow(a, Sub(b, a.Const(1)))))));
            if (b.RequiresGrad) // a^b·log a
                b.AccumulateGradSummed(Where(Mul(a.NoGraph().Eq(0), b.NoGraph().Ge(zero)), zero, Mul(dy, Mul(y, Log(a)))));
        }
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
    public static Tensor operator +(Tensor a, double b) => Add(a, a.ScalarOperand(b));
    /// <summary>Adds a constant.</summary>
    public static Tensor operator +(double a, Tensor b) => Add(b.ScalarOperand(a), b);
    /// <summary>Elementwise difference with broadcasting.</summary>
    public static Tensor operator -(Tensor a, Tensor b) => Sub(a, b);
    /// <summary>Subtracts a constant.</summary>
    public static Tensor operator -(Tensor a, double b) => Sub(a, a.ScalarOperand(b));
    /// <summary>Subtracts from a constant.</summary>
    public static Tensor operator -(double a, Tensor b) => Sub(b.ScalarOperand(a), b);
    /// <summary>Elementwise product with broadcasting.</summary>
    public static Tensor operator *(Tensor a, Tensor b) => Mul(a, b);
    /// <summary>Multiplies by a constant.</summary>
    public static Tensor operator *(Tensor a, double b) => Mul(a, a.ScalarOperand(b));
    /// <summary>Multiplies by a constant.</summary>
    public static Tensor operator *(double a, Tensor b) => Mul(b.ScalarOperand(a), b);
    /// <summary>Elementwise quotient with broadcasting.</summary>
    public static Tensor operator /(Tensor a, Tensor b) => Div(a, b);
    /// <summary>Divides by a constant.</summary>
    public static Tensor operator /(Tensor a, double b) => Div(a, a.Const(b));
    /// <summary>Divides a constant.</summary>
    public static Tensor operator /(double a, Tensor b) => Div(b.Const(a), b);
    /// <summary>Negation.</summary>
    public static Tensor operator -(Tensor a) => Neg(a);
}
