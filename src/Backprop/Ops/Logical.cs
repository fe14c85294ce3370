using Backprop.Backends;

namespace Backprop;

// Bool tensors: logical ops (and, or, xor, not, any, all) and the type promotion of a bool operand in
// arithmetic. None of it is differentiable: a bool tensor never requires grad.
public partial class Tensor
{
    /// <summary>
    /// Arithmetic with a bool operand, following PyTorch's type promotion: next to a float or int64 tensor the bool
    /// operand becomes 0/1 of that type (<c>mask * x</c> is x where true, 0 elsewhere); two bool operands give
    /// bool for + (or) and * (and), float32 for /; subtraction with a bool operand is an error (as in PyTorch).
    /// </summary>
    private static Tensor BoolArithmetic(string op, Tensor a, Tensor b)
    {
        if (op == "Sub")
            throw new NotSupportedException(
                $"Sub: subtraction with a bool tensor ({a.DType.Name()} {a.Shape} - {b.DType.Name()} {b.Shape}) is not supported (as in PyTorch); " +
                "to invert a mask use LogicalNot() or !mask, else convert with To(DType.Float32).");
        if (a.DType == DType.Bool && b.DType == DType.Bool)
        {
            return op switch
            {
                "Add" => LogicalOr(a, b),
                "Mul" => LogicalAnd(a, b),
                _ => Div(a.To(DType.Float32), b.To(DType.Float32)),
            };
        }
        var target = a.DType == DType.Bool ? b.DType : a.DType;
        if (op == "Div" && target == DType.Int64) target = DType.Float32; // true division, as torch.div
        var pa = a.DType == DType.Bool || (op == "Div" && a.DType == DType.Int64) ? a.To(target) : a;
        var pb = b.DType == DType.Bool || (op == "Div" && b.DType == DType.Int64) ? b.To(target) : b;
        return op switch
        {
            "Add" => Add(pa, pb),
            "Sub" => Sub(pa, pb),
            "Mul" => Mul(pa, pb),
            _ => Div(pa, pb),
        };
    }

    /// <summary>0/1 float32 of the truth of every element (nonzero is true, NaN included), computed through the backend.</summary>
    private Tensor Truth01(string op)
    {
        var m = DType == DType.Bool ? this : Dispatch.Convert(this, DType.Bool);
        return Dispatch.Convert(m, DType.Float32);
    }

    private static Tensor Logical(string op, Tensor a, Tensor b, BinaryOp combine)
    {
        Dispatch.BackendOf(op, a, b);
        var z = Dispatch.Zip(op, a.Truth01(op), b.Truth01(op), combine);
        return Dispatch.Convert(z, DType.Bool);
    }

    /// <summary>Elementwise a AND b as a bool tensor (broadcast; any dtype, nonzero is true), like torch.logical_and.</summary>
    public static Tensor LogicalAnd(Tensor a, Tensor b) => Logical("LogicalAnd", a, b, BinaryOp.Mul);

    /// <summary>Elementwise a OR b as a bool tensor (broadcast; nonzero is true), like torch.logical_or.</summary>
    public static Tensor LogicalOr(Tensor a, Tensor b) => Logical("LogicalOr", a, b, BinaryOp.Maximum);

    /// <summary>Elementwise a XOR b as a bool tensor (broadcast; nonzero is true), like torch.logical_xor.</summary>
    public static Tensor LogicalXor(Tensor a, Tensor b) => Logical("LogicalXor", a, b, BinaryOp.Ne);

    /// <summary>Elementwise NOT as a bool tensor (nonzero is true, so zeros become true), like torch.logical_not.</summary>
    public Tensor LogicalNot()
    {
        var f = Truth01("LogicalNot");
        return Dispatch.Convert(Dispatch.Zip("LogicalNot", f, f.Const(0), BinaryOp.Eq), DType.Bool);
    }

    /// <summary>Instance form of <see cref="LogicalAnd(Tensor, Tensor)"/>.</summary>
    public Tensor LogicalAnd(Tensor other) => LogicalAnd(this, other);

    /// <summary>Instance form of <see cref="LogicalOr(Tensor, Tensor)"/>.</summary>
    public Tensor LogicalOr(Tensor other) => LogicalOr(this, other);

    /// <summary>Instance form of <see cref="LogicalXor(Tensor, Tensor)"/>.</summary>
    public Tensor LogicalXor(Tensor other) => LogicalXor(this, other);

    /// <summary>Elementwise AND of two masks (<see cref="LogicalAnd(Tensor, Tensor)"/>), like <c>a &amp; b</c> on PyTorch bool tensors.</summary>
    public static Tensor operator &(Tensor a, Tensor b) => LogicalAnd(a, b);

    /// <summary>Elementwise OR of two masks (<see cref="LogicalOr(Tensor, Tensor)"/>).</summary>
    public static Tensor operator |(Tensor a, Tensor b) => LogicalOr(a, b);

    /// <summary>Elementwise XOR of two masks (<see cref="LogicalXor(Tensor, Tensor)"/>).</summary>
    public static Tensor operator ^(Tensor a, Tensor b) => LogicalXor(a, b);

    /// <summary>Elementwise NOT of a mask (<see cref="LogicalNot()"/>).</summary>
    public static Tensor operator !(Tensor a) => a.LogicalNot();

    /// <summary>Elementwise NOT of a mask, PyTorch's spelling <c>~mask</c> (<see cref="LogicalNot()"/>).</summary>
    public static Tensor operator ~(Tensor a) => a.LogicalNot();

    /// <summary>A 0-dimensional bool tensor: true if any element is true (nonzero), like torch.any.</summary>
    public Tensor Any() => FullOn([], CountTrue() > 0 ? 1 : 0, DType.Bool, Backend);

    /// <summary>A 0-dimensional bool tensor: true if every element is true (nonzero; true for no elements), like torch.all.</summary>
    public Tensor All() => FullOn([], CountTrue() == _numel ? 1 : 0, DType.Bool, Backend);

    /// <summary>A bool tensor: true where the element is NaN (torch.isnan; false everywhere for int64 and bool).</summary>
    public Tensor IsNan() => DType.IsFloatingPoint() ? Ne(this) : FullOn(_shape, 0, DType.Bool, Backend);

    /// <summary>A bool tensor: true where the element is finite, neither NaN nor ±∞ (torch.isfinite; true everywhere for int64 and bool).</summary>
    public Tensor IsFinite() => DType.IsFloatingPoint() ? Dispatch.Zip("IsFinite", this, this, BinaryOp.Sub).Eq(0) : FullOn(_shape, 1, DType.Bool, Backend);

    private long CountTrue() => (DType == DType.Bool ? this : Dispatch.Convert(this, DType.Bool)).Sum().GetLong();
}
